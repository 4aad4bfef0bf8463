//! The balance service's handlers.
//!
//! Every handler is one atomic commit: a single conditional put when it writes one item
//! (its events riding on it), else a transaction of the items it writes. Written per
//! handler (the table: [`crate::repo`]):
//! - open account (`UserRegistered`): one conditional put, absent → created (1 write).
//! - charge: account (version) + ledger entry [+ processed key]: transaction.
//! - deduct (`PaymentRequested`): account (version) + the payment's ledger entry (absent),
//!   carrying `BalanceDeducted`: a transaction of two items; or, when nothing is taken,
//!   the payment's mark where its entry would be (absent), carrying
//!   `BalanceDeductionFailed`: one put.
//! - refund (`PaymentRefundRequested`): account (version) + the refund's ledger entry
//!   (absent), carrying `BalanceRefunded`: a transaction of two items; or, when nothing was
//!   taken yet, the tombstone mark where the deduction's entry would be (absent), carrying
//!   `BalanceRefunded{0}`: one put.
//!
//! The payment's entries are its de-duplication records (keyed by what every request for it
//! says, [`PaymentKeys`](crate::repo::PaymentKeys)): a repeated event finds them and publishes the recorded answer
//! again (the events alone: one outbox item). A payment requested before requests said
//! `requestedAt` keeps its old `PAYMENT#` record beside the entries: three items.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contract::{Envelope, Event, Won};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, ConditionedReads, Decision, Expect, Index, Item, Key, Query, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::idempotency::KeyedRequest;
use platform::ports::Ports;

use crate::domain::{self, ChargeError};
use crate::repo::{
    Account, EntryType, LEDGER_PREFIX, LedgerEntry, LedgerItem, account_key, account_pk,
    charge_business_key, ledger_key,
};

pub struct BalanceService {
    ports: Ports,
}

#[derive(Debug, thiserror::Error)]
pub enum ChargeFailure {
    #[error(transparent)]
    Invalid(#[from] ChargeError),
    #[error(transparent)]
    KeyReused(#[from] platform::idempotency::KeyReused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One movement of money on an account.
struct MoneyMove<'a> {
    kind: EntryType,
    amount: Won,
    after: Won,
    /// Where its ledger entry goes (it must not be there yet), and the time it says.
    entry: Key,
    at: DateTime<Utc>,
    payment_id: Option<&'a str>,
}

/// The most pages of the ledger one page of the listing reads (see [`BalanceService::ledger`]).
const LEDGER_READS: usize = 10;

/// A page of the ledger.
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    pub cursor: Option<String>,
}

fn account_of(item: Option<&Item>, user_id: &str) -> Result<Account, StoreError> {
    match item {
        Some(item) => item.parse(),
        None => Ok(Account {
            user_id: user_id.to_owned(),
            amount: Won::ZERO,
        }),
    }
}

/// The account at its new amount (under the version it was read at) and the ledger entry
/// saying why: the two writes of every movement of money.
fn money_moved(
    user_id: &str,
    read: Option<&Item>,
    moved: MoneyMove<'_>,
) -> Result<Commit, StoreError> {
    let account = Account {
        user_id: user_id.to_owned(),
        amount: moved.after,
    };
    let entry = LedgerEntry {
        kind: moved.kind,
        amount: moved.amount,
        balance_after: moved.after,
        at: moved.at,
        payment_id: moved.payment_id.map(str::to_owned),
    };
    Ok(Commit::new()
        .write(Write::put(
            account_key(user_id),
            &account,
            Expect::after_read(read),
        )?)
        .write(Write::put(moved.entry, &entry, Expect::Absent)?))
}

impl BalanceService {
    pub fn new(ports: Ports) -> Self {
        BalanceService { ports }
    }

    pub async fn balance(&self, user_id: &str) -> Result<Account, StoreError> {
        let item = self.ports.store.get(&account_key(user_id)).await?;
        account_of(item.as_ref(), user_id)
    }

    /// Adds `amount`; with an idempotency key, a repeat answers the first charge's balance
    /// (and the same key with another amount is refused).
    pub async fn charge(
        &self,
        user_id: &str,
        amount: i64,
        idempotency_key: Option<&str>,
    ) -> Result<Account, ChargeFailure> {
        let store = self.ports.store.as_ref();
        let business_key = idempotency_key.map(|k| charge_business_key(user_id, k));
        let fingerprint = format!("charge amount={amount}");
        commit_with_retries(store, || async {
            if let Some(key) = &business_key
                && let Some(recorded) = store.processed(key).await?
            {
                let outcome = KeyedRequest::recall(&recorded, &fingerprint)?;
                let amount = outcome.parse().map_err(StoreError::corrupt)?;
                let account = Account {
                    user_id: user_id.to_owned(),
                    amount: Won(amount),
                };
                return Ok(Decision::Done(account));
            }
            let item = store.get(&account_key(user_id)).await?;
            let account = account_of(item.as_ref(), user_id)?;
            let after = domain::charge(account.amount, amount)?;
            let charged = after.checked_sub(account.amount).unwrap_or_default();
            let at = self.ports.clock.now();
            let moved = MoneyMove {
                kind: EntryType::Charge,
                amount: charged,
                after,
                entry: ledger_key(user_id, at, &self.ports.ids.next_id()),
                at,
                payment_id: None,
            };
            let mut commit = money_moved(user_id, item.as_ref(), moved)?;
            if let Some(key) = &business_key {
                commit = commit.processed(
                    key,
                    KeyedRequest::record(&fingerprint, &after.0.to_string()),
                );
            }
            Ok(Decision::Commit(
                commit,
                Account {
                    user_id: user_id.to_owned(),
                    amount: after,
                },
            ))
        })
        .await
    }

    /// A page of the ledger, newest first: its entries, without the payments' marks. A page
    /// that meets marks reads on (and, past the entries it wants, again up to the last one,
    /// for the cursor after it), at most `LEDGER_READS` pages: then it is answered short,
    /// its cursor where the reading stopped.
    pub async fn ledger(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<LedgerPage, StoreError> {
        let store = self.ports.store.as_ref();
        let query = |cursor: Option<String>, limit: usize| {
            Query::partition(Index::Table, account_pk(user_id))
                .prefix(LEDGER_PREFIX)
                .newest_first()
                .limit(limit)
                .after(cursor)
        };
        let entries_of = |items: Vec<LedgerItem>| items.into_iter().filter_map(LedgerItem::entry);
        let mut entries = Vec::with_capacity(limit);
        let mut cursor = cursor;
        for _ in 0..LEDGER_READS {
            let wanted = limit.saturating_sub(entries.len()).max(1);
            let page = store.query(query(cursor.clone(), limit)).await?;
            let items = page.parse::<LedgerItem>()?;
            let through = items
                .iter()
                .enumerate()
                .filter(|(_, item)| matches!(item, LedgerItem::Entry(_)))
                .nth(wanted - 1)
                .map(|(at, _)| at + 1);
            if let Some(through) = through.filter(|n| *n < items.len()) {
                let page = store.query(query(cursor, through)).await?;
                entries.extend(entries_of(page.parse()?));
                return Ok(LedgerPage {
                    entries,
                    cursor: page.cursor,
                });
            }
            entries.extend(entries_of(items));
            cursor = page.cursor;
            if cursor.is_none() || entries.len() >= limit {
                break;
            }
        }
        Ok(LedgerPage { entries, cursor })
    }

    /// `UserRegistered`: an account at zero, unless one exists (a charge may have come first).
    pub async fn open_account(&self, user_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        // Eventual: an account is never deleted, so one seen is there; one missed is
        // created only if absent.
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            if reads.get(&account_key(user_id)).await?.is_some() {
                return Ok(Decision::Done(()));
            }
            let account = Account {
                user_id: user_id.to_owned(),
                amount: Won::ZERO,
            };
            Ok(Decision::Commit(
                Commit::new().write(Write::put(account_key(user_id), &account, Expect::Absent)?),
                (),
            ))
        })
        .await
    }
}

/// The balance service's consuming functions: `UserRegistered`, `PaymentRequested`,
/// `PaymentRefundRequested`.
pub struct BalanceConsumer(pub Arc<BalanceService>);

#[async_trait]
impl EventHandler for BalanceConsumer {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        match &event.event {
            Event::UserRegistered(e) => self.0.open_account(&e.user_id).await?,
            Event::PaymentRequested(e) => self.0.deduct(event, e).await?,
            Event::PaymentRefundRequested(e) => self.0.refund(event, e).await?,
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the balance service; ignored"
            ),
        }
        Ok(())
    }
}

mod payments;

#[cfg(test)]
mod tests;
