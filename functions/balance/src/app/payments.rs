//! The payment handlers: deduct (`PaymentRequested`) and refund (`PaymentRefundRequested`),
//! each once per payment, on the items [`PaymentKeys`] names (what each writes: [`super`]).

use contract::{
    BalanceDeducted, BalanceDeductionFailed, BalanceRefunded, Envelope, Event,
    PaymentRefundRequested, PaymentRequested, Won,
};
use platform::docstore::{
    Commit, ConditionedReads, Decision, Expect, Item, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;

use super::{BalanceService, MoneyMove, account_of, money_moved};
use crate::domain::{self, DeductAnswer, PaymentRecord};
use crate::repo::{self, EntryType, PaymentKeys, account_key};

/// What was recorded for a payment, and the item that said it.
struct Recorded {
    item: Option<Item>,
    record: Option<PaymentRecord>,
}

/// The commit of what was decided for a payment: `moved` money and its entry, and its `next`
/// record, unless the entry is that record (the ledger keeps it).
fn payment_commit(
    user_id: &str,
    keys: &PaymentKeys,
    recorded: &Recorded,
    moved: Option<(MoneyMove<'_>, Option<&Item>)>,
    next: Option<PaymentRecord>,
) -> Result<Commit, StoreError> {
    let in_entry = moved.is_some() && keys.in_ledger();
    let mut commit = match moved {
        Some((moved, account)) => money_moved(user_id, account, moved)?,
        None => Commit::new(),
    };
    if let Some(next) = next.filter(|_| !in_entry) {
        let expect = Expect::after_read(recorded.item.as_ref());
        commit = commit.write(Write::put(keys.record.clone(), &next, expect)?);
    }
    Ok(commit)
}

impl BalanceService {
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

    /// What was recorded for the payment at `keys`; with `refund`, whether it was refunded.
    ///
    /// Read eventually: a stale read leads to the decision the item as it is would, or to a
    /// write whose condition refuses it. A record or refund entry answered absent is then
    /// written expecting it absent. The ledger's entries and marks are never rewritten, so
    /// one seen is seen as it is. The old layout's record changes once, `Deducted` to
    /// `Refunded`: both answer a deduction alike, and a refund replaces the record expecting
    /// the version read.
    async fn recorded(
        &self,
        reads: &ConditionedReads<'_>,
        keys: &PaymentKeys,
        refund: bool,
    ) -> Result<Recorded, StoreError> {
        let item = reads.get(&keys.record).await?;
        let Some(read) = &item else {
            return Ok(Recorded { item, record: None });
        };
        if !keys.in_ledger() {
            let record = read.parse::<PaymentRecord>()?;
            return Ok(Recorded {
                item,
                record: Some(record),
            });
        }
        let mut record = repo::ledger_record(read)?;
        if refund
            && matches!(record, PaymentRecord::Deducted { .. })
            && let Some(entry) = reads.get(&keys.refund).await?
        {
            record = repo::refunded(&entry)?;
        }
        Ok(Recorded {
            item,
            record: Some(record),
        })
    }

    /// `PaymentRequested`: take the amount once, never below zero.
    pub async fn deduct(
        &self,
        cause: &Envelope,
        request: &PaymentRequested,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let (payment_id, user_id) = (request.payment_id.as_str(), request.user_id.as_str());
        let now = self.ports.clock.now();
        let keys = PaymentKeys::of(user_id, payment_id, request.requested_at, None, now);
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            let recorded = self.recorded(&reads, &keys, false).await?;
            // Strong: a deduction refused for the balance writes nothing to the account,
            // so a stale balance would refuse it with no condition to catch that.
            let item = match recorded.record {
                None => store.get(&account_key(user_id)).await?,
                Some(_) => None,
            };
            let balance = account_of(item.as_ref(), user_id)?.amount;
            let decided = domain::deduct(recorded.record, balance, request.amount);
            let moved = decided.balance_after.map(|after| {
                let moved = MoneyMove {
                    kind: EntryType::Payment,
                    amount: request.amount,
                    after,
                    entry: keys.deduction.clone(),
                    at: now,
                    payment_id: Some(payment_id),
                };
                (moved, item.as_ref())
            });
            let commit = payment_commit(user_id, &keys, &recorded, moved, decided.record)?;
            let answer = self.deduct_answer(
                cause,
                payment_id,
                &request.order_id,
                user_id,
                request.amount,
                decided.answer,
            );
            Ok(Decision::Commit(commit.event(answer), ()))
        })
        .await
    }

    /// `PaymentRefundRequested`: give back what was taken, once; if nothing was taken yet,
    /// leave a tombstone so that a late deduction takes nothing.
    pub async fn refund(
        &self,
        cause: &Envelope,
        request: &PaymentRefundRequested,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let (payment_id, user_id) = (request.payment_id.as_str(), request.user_id.as_str());
        let now = self.ports.clock.now();
        let keys = PaymentKeys::of(
            user_id,
            payment_id,
            request.requested_at,
            request.refund_requested_at,
            now,
        );
        let refunded = |amount: Won| {
            let event = BalanceRefunded {
                payment_id: payment_id.to_owned(),
                order_id: request.order_id.clone(),
                user_id: user_id.to_owned(),
                amount,
            };
            self.ports
                .events
                .envelope(Cause::Event(cause), payment_id, event)
        };
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            let recorded = self.recorded(&reads, &keys, true).await?;
            // Eventual: a refund always writes the account, under the version read.
            let item = match recorded.record {
                Some(PaymentRecord::Deducted { .. }) => reads.get(&account_key(user_id)).await?,
                _ => None,
            };
            let balance = account_of(item.as_ref(), user_id)?.amount;
            let decided = domain::refund(recorded.record, balance).map_err(StoreError::corrupt)?;
            let moved = decided.balance_after.map(|after| {
                let moved = MoneyMove {
                    kind: EntryType::Refund,
                    amount: decided.refunded,
                    after,
                    entry: keys.refund.clone(),
                    at: now,
                    payment_id: Some(payment_id),
                };
                (moved, item.as_ref())
            });
            let commit = payment_commit(user_id, &keys, &recorded, moved, decided.record)?;
            Ok(Decision::Commit(
                commit.event(refunded(decided.refunded)),
                (),
            ))
        })
        .await
    }
}
