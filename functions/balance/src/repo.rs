//! The balance table:
//!
//! | pk                 | sk                                  | body                      |
//! |--------------------|-------------------------------------|---------------------------|
//! | `ACCOUNT#<userId>` | `ACCOUNT`                           | [`Account`]               |
//! | `ACCOUNT#<userId>` | `TX#<time>#<entryId>`               | a charge's [`LedgerEntry`] |
//! | `ACCOUNT#<userId>` | `TX#<requestedAt>#<paymentId>`      | a payment's [`LedgerItem`] |
//! | `ACCOUNT#<userId>` | `TX#<refundRequestedAt>#<paymentId>-refund` | its refund's [`LedgerEntry`] |
//! | `PAYMENT#<id>`     | `BALANCE`                           | an old [`PaymentRecord`]  |
//!
//! plus the platform's processed-key records (charges with an `Idempotency-Key`) and outbox.
//!
//! A payment's items are its de-duplication records, keyed by what every (re-)publication
//! of its requests says: its id and the payment service's recorded times
//! (`PaymentRequested.requestedAt`, `PaymentRefundRequested.refundRequestedAt`). So a repeat,
//! or the refund, finds what the first request did by reading them ([`PaymentKeys`]). The
//! payment's item is the entry of what it took or, when it took nothing, its mark (`FAILED`;
//! `CANCELLED_BEFORE_DEDUCTION`, the tombstone of a refund asked for first). The ledger is
//! listed newest first by a query of the `TX#` prefix that skips the marks.
//!
//! `PAYMENT#` records are those of payments requested before requests said `requestedAt`
//! (see [`PaymentKeys::of`]); their entries are keyed by the time they were written.

use chrono::{DateTime, Utc};
use contract::Won;
use platform::docstore::{Item, Key};
use platform::errors::StoreError;
use platform::ports::sortable_time;
use serde::{Deserialize, Serialize};

use crate::domain::PaymentRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub user_id: String,
    pub amount: Won,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryType {
    Charge,
    Payment,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub amount: Won,
    pub balance_after: Won,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

/// What a `TX#` item holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LedgerItem {
    /// A movement of money: listed.
    Entry(LedgerEntry),
    /// A deduction that took nothing (`FAILED`, `CANCELLED_BEFORE_DEDUCTION`), kept where
    /// its entry would be, so that a repeat or a late deduction finds it: never listed.
    Mark(PaymentRecord),
}

impl LedgerItem {
    /// The movement of money, if it is one.
    pub fn entry(self) -> Option<LedgerEntry> {
        match self {
            LedgerItem::Entry(entry) => Some(entry),
            LedgerItem::Mark(_) => None,
        }
    }
}

pub fn account_pk(user_id: &str) -> String {
    format!("ACCOUNT#{user_id}")
}

pub fn account_key(user_id: &str) -> Key {
    Key::new(account_pk(user_id), "ACCOUNT")
}

pub const LEDGER_PREFIX: &str = "TX#";

pub fn ledger_key(user_id: &str, at: DateTime<Utc>, entry_id: &str) -> Key {
    Key::new(
        account_pk(user_id),
        format!("{LEDGER_PREFIX}{}#{entry_id}", sortable_time(at)),
    )
}

pub fn charge_business_key(user_id: &str, idempotency_key: &str) -> String {
    format!("charge#{user_id}#{idempotency_key}")
}

/// Where what was done for one payment is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentKeys {
    /// The item that says whether the payment was deducted (or failed, or was cancelled
    /// before it was).
    pub record: Key,
    /// Where the entry of what was taken goes.
    pub deduction: Key,
    /// Where the entry of what was given back goes.
    pub refund: Key,
}

impl PaymentKeys {
    /// With `requestedAt`, the ledger keeps it: the deduction's entry (or its mark) at the
    /// payment's time is its record, the refund's entry is at the time the refund was asked
    /// for (the payment's time when not said).
    ///
    /// Without (a payment made before its requests said it: they all lack it, as the payment
    /// service reads it from its record), nothing stable but the id keys it: its record is
    /// `PAYMENT#<id>` as written before, beside entries keyed by the time they are written
    /// (`now`), so that what the old layout did for it is found and finished in that layout,
    /// a transaction of three items. A request that says `requestedAt` but finds nothing in
    /// the ledger also looks there (a balance service deployed after the payment service
    /// kept it in the old layout), so the services may be deployed in any order.
    pub fn of(
        user_id: &str,
        payment_id: &str,
        requested_at: Option<DateTime<Utc>>,
        refund_requested_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> PaymentKeys {
        let refund_id = format!("{payment_id}-refund");
        match requested_at {
            Some(at) => PaymentKeys {
                record: ledger_key(user_id, at, payment_id),
                deduction: ledger_key(user_id, at, payment_id),
                refund: ledger_key(user_id, refund_requested_at.unwrap_or(at), &refund_id),
            },
            None => PaymentKeys {
                record: Key::new(format!("PAYMENT#{payment_id}"), "BALANCE"),
                deduction: ledger_key(user_id, now, payment_id),
                refund: ledger_key(user_id, now, &refund_id),
            },
        }
    }

    /// Whether the ledger keeps the record (its entry is the record of a deduction).
    pub fn in_ledger(&self) -> bool {
        self.record == self.deduction
    }
}

/// What the item at [`PaymentKeys::record`] says was done, when the ledger keeps it.
pub fn ledger_record(item: &Item) -> Result<PaymentRecord, StoreError> {
    match item.parse::<LedgerItem>()? {
        LedgerItem::Entry(LedgerEntry {
            kind: EntryType::Payment,
            amount,
            ..
        }) => Ok(PaymentRecord::Deducted { amount }),
        LedgerItem::Mark(
            mark @ (PaymentRecord::Failed | PaymentRecord::CancelledBeforeDeduction),
        ) => Ok(mark),
        other => Err(StoreError::corrupt(format!(
            "{}/{}: not a payment's entry or mark: {other:?}",
            item.key.pk, item.key.sk
        ))),
    }
}

/// What the refund entry at [`PaymentKeys::refund`] says was given back.
pub fn refunded(item: &Item) -> Result<PaymentRecord, StoreError> {
    match item.parse::<LedgerItem>()? {
        LedgerItem::Entry(LedgerEntry {
            kind: EntryType::Refund,
            amount,
            ..
        }) => Ok(PaymentRecord::Refunded { amount }),
        other => Err(StoreError::corrupt(format!(
            "{}/{}: not a refund: {other:?}",
            item.key.pk, item.key.sk
        ))),
    }
}
