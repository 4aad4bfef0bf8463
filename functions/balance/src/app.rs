//! The balance service's handlers.
//!
//! Every handler is one atomic commit: a single conditional put when it writes one item
//! (its events riding on it), else a transaction of the items it writes. Written per
//! handler:
//! - open account (`UserRegistered`): one conditional put, absent → created (1 write).
//! - charge: account (version) + ledger entry [+ processed key]: transaction.
//! - deduct (`PaymentRequested`): account (version) + ledger + payment record (absent) +
//!   `BalanceDeducted`, or payment record + `BalanceDeductionFailed`: transaction.
//! - refund (`PaymentRefundRequested`): account + ledger + payment record (version) +
//!   `BalanceRefunded`, or the tombstone + `BalanceRefunded{0}`: transaction (the tombstone
//!   alone: one put).
//!
//! A repeated event finds the payment record and publishes the recorded answer again.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{BalanceDeducted, BalanceDeductionFailed, BalanceRefunded, Envelope, Event, Won};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, Decision, Expect, Index, Item, Query, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::idempotency::KeyedRequest;
use platform::ports::Ports;

use crate::domain::{self, ChargeError, DeductAnswer, PaymentRecord};
use crate::repo::{
    Account, EntryType, LEDGER_PREFIX, LedgerEntry, account_key, account_pk, charge_business_key,
    ledger_key, payment_key,
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
    entry_id: &'a str,
    payment_id: Option<&'a str>,
}

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
            let entry_id = self.ports.ids.next_id();
            let moved = MoneyMove {
                kind: EntryType::Charge,
                amount: charged,
                after,
                entry_id: &entry_id,
                payment_id: None,
            };
            let mut commit = self.money_moved(user_id, item.as_ref(), moved)?;
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

    /// The account at its new amount (under the version it was read at) and the ledger
    /// entry saying why: the two writes of every movement of money.
    fn money_moved(
        &self,
        user_id: &str,
        read: Option<&Item>,
        moved: MoneyMove<'_>,
    ) -> Result<Commit, StoreError> {
        let now = self.ports.clock.now();
        let account = Account {
            user_id: user_id.to_owned(),
            amount: moved.after,
        };
        let entry = LedgerEntry {
            kind: moved.kind,
            amount: moved.amount,
            balance_after: moved.after,
            at: now,
            payment_id: moved.payment_id.map(str::to_owned),
        };
        Ok(Commit::new()
            .write(Write::put(
                account_key(user_id),
                &account,
                Expect::after_read(read),
            )?)
            .write(Write::put(
                ledger_key(user_id, now, moved.entry_id),
                &entry,
                Expect::Absent,
            )?))
    }

    pub async fn ledger(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<LedgerPage, StoreError> {
        let query = Query::partition(Index::Table, account_pk(user_id))
            .prefix(LEDGER_PREFIX)
            .newest_first()
            .limit(limit)
            .after(cursor);
        let page = self.ports.store.query(query).await?;
        Ok(LedgerPage {
            entries: page.parse()?,
            cursor: page.cursor,
        })
    }

    /// `UserRegistered`: an account at zero, unless one exists (a charge may have come first).
    pub async fn open_account(&self, user_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            if store.get(&account_key(user_id)).await?.is_some() {
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

    fn deduct_answer(
        &self,
        cause: &Envelope,
        payment_id: &str,
        order_id: &str,
        user_id: &str,
        amount: Won,
        answer: DeductAnswer,
    ) -> Envelope {
        let event: Event = match answer {
            DeductAnswer::Deducted(amount) => BalanceDeducted {
                payment_id: payment_id.to_owned(),
                order_id: order_id.to_owned(),
                user_id: user_id.to_owned(),
                amount,
            }
            .into(),
            DeductAnswer::Failed(reason) => BalanceDeductionFailed {
                payment_id: payment_id.to_owned(),
                order_id: order_id.to_owned(),
                user_id: user_id.to_owned(),
                amount,
                reason: reason.to_owned(),
            }
            .into(),
        };
        self.ports
            .events
            .envelope(Cause::Event(cause), payment_id, event)
    }

    /// `PaymentRequested`: take the amount once, never below zero.
    pub async fn deduct(
        &self,
        cause: &Envelope,
        payment_id: &str,
        order_id: &str,
        user_id: &str,
        amount: Won,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let record_item = store.get(&payment_key(payment_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<PaymentRecord>)
                .transpose()?;
            let item = match record {
                None => store.get(&account_key(user_id)).await?,
                Some(_) => None,
            };
            let balance = account_of(item.as_ref(), user_id)?.amount;
            let decided = domain::deduct(record, balance, amount);
            let mut commit = match decided.balance_after {
                Some(after) => self.money_moved(
                    user_id,
                    item.as_ref(),
                    MoneyMove {
                        kind: EntryType::Payment,
                        amount,
                        after,
                        entry_id: payment_id,
                        payment_id: Some(payment_id),
                    },
                )?,
                None => Commit::new(),
            };
            if let Some(next) = decided.record {
                commit = commit.write(Write::put(payment_key(payment_id), &next, Expect::Absent)?);
            }
            let answer =
                self.deduct_answer(cause, payment_id, order_id, user_id, amount, decided.answer);
            Ok(Decision::Commit(commit.event(answer), ()))
        })
        .await
    }

    /// `PaymentRefundRequested`: give back what was taken, once; if nothing was taken yet,
    /// leave a tombstone so that a late deduction takes nothing.
    pub async fn refund(
        &self,
        cause: &Envelope,
        payment_id: &str,
        order_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let record_item = store.get(&payment_key(payment_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<PaymentRecord>)
                .transpose()?;
            let refunded = |amount: Won| {
                let event = BalanceRefunded {
                    payment_id: payment_id.to_owned(),
                    order_id: order_id.to_owned(),
                    user_id: user_id.to_owned(),
                    amount,
                };
                self.ports
                    .events
                    .envelope(Cause::Event(cause), payment_id, event)
            };
            let item = match record {
                Some(PaymentRecord::Deducted { .. }) => store.get(&account_key(user_id)).await?,
                _ => None,
            };
            let balance = account_of(item.as_ref(), user_id)?.amount;
            let decided = domain::refund(record, balance).map_err(StoreError::corrupt)?;
            let mut commit = match decided.balance_after {
                Some(after) => {
                    let entry_id = format!("{payment_id}-refund");
                    self.money_moved(
                        user_id,
                        item.as_ref(),
                        MoneyMove {
                            kind: EntryType::Refund,
                            amount: decided.refunded,
                            after,
                            entry_id: &entry_id,
                            payment_id: Some(payment_id),
                        },
                    )?
                }
                None => Commit::new(),
            };
            if let Some(next) = decided.record {
                commit = commit.write(Write::put(
                    payment_key(payment_id),
                    &next,
                    Expect::after_read(record_item.as_ref()),
                )?);
            }
            Ok(Decision::Commit(
                commit.event(refunded(decided.refunded)),
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
            Event::PaymentRequested(e) => {
                self.0
                    .deduct(event, &e.payment_id, &e.order_id, &e.user_id, e.amount)
                    .await?
            }
            Event::PaymentRefundRequested(e) => {
                self.0
                    .refund(event, &e.payment_id, &e.order_id, &e.user_id)
                    .await?
            }
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the balance service; ignored"
            ),
        }
        Ok(())
    }
}
