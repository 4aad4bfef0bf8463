//! The payment handlers: deduct (`PaymentRequested`) and refund (`PaymentRefundRequested`),
//! each once per payment, on the items [`PaymentKeys`] names (what each writes: [`super`]).

use chrono::{DateTime, Utc};
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

/// What was recorded for a payment, the item that said it, and the layout it is kept in.
struct Recorded {
    item: Option<Item>,
    record: Option<PaymentRecord>,
    keys: PaymentKeys,
}

/// Where a payment's record may be: in the ledger (a request saying `requestedAt`), and in
/// the old layout (`PAYMENT#<id>`), where a balance service deployed after the payment
/// service may have kept it for a request that already said `requestedAt`.
struct Layouts {
    ledger: PaymentKeys,
    old: PaymentKeys,
}

impl Layouts {
    fn of(user_id: &str, payment_id: &str, request: RequestTimes, now: DateTime<Utc>) -> Layouts {
        Layouts {
            ledger: PaymentKeys::of(user_id, payment_id, request.0, request.1, now),
            old: PaymentKeys::of(user_id, payment_id, None, None, now),
        }
    }
}

/// A request's `requestedAt` and `refundRequestedAt`.
type RequestTimes = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The commit of what was decided for a payment: `moved` money and its entry, and its `next`
/// record, unless the entry is that record (the ledger keeps it).
fn payment_commit(
    user_id: &str,
    recorded: &Recorded,
    moved: Option<(MoneyMove<'_>, Option<&Item>)>,
    next: Option<PaymentRecord>,
) -> Result<Commit, StoreError> {
    let keys = &recorded.keys;
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

    /// What was recorded for the payment, in the layout that keeps it; with `refund`, whether
    /// it was refunded.
    ///
    /// Read eventually (but for the fallback below): a stale read leads to the decision the
    /// item as it is would, or to a write whose condition refuses it. A record or refund
    /// entry answered absent is then written expecting it absent. The ledger's entries and
    /// marks are never rewritten, so one seen is seen as it is. The old layout's record
    /// changes once, `Deducted` to `Refunded`: both answer a deduction alike, and a refund
    /// replaces the record expecting the version read.
    ///
    /// A record absent from the ledger is looked for in the old layout too, strongly: a
    /// payment requested while the payment service already said `requestedAt` but the
    /// balance service did not yet read it was kept there, and is finished there (deducted
    /// once, refunded once), whichever service a deployment updated first.
    async fn recorded(
        &self,
        reads: &ConditionedReads<'_>,
        layouts: &Layouts,
        refund: bool,
    ) -> Result<Recorded, StoreError> {
        let mut keys = layouts.ledger.clone();
        let mut item = reads.get(&keys.record).await?;
        if item.is_none() && keys.in_ledger() {
            // Strong: an old record missed would be decided again in the ledger, whose
            // writes expect nothing of the old record's key.
            let old = self.ports.store.get(&layouts.old.record).await?;
            if old.is_some() {
                (keys, item) = (layouts.old.clone(), old);
            }
        }
        let Some(read) = &item else {
            return Ok(Recorded {
                item,
                record: None,
                keys,
            });
        };
        if !keys.in_ledger() {
            let record = read.parse::<PaymentRecord>()?;
            return Ok(Recorded {
                item,
                record: Some(record),
                keys,
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
            keys,
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
        let layouts = Layouts::of(user_id, payment_id, (request.requested_at, None), now);
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            let recorded = self.recorded(&reads, &layouts, false).await?;
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
                    entry: recorded.keys.deduction.clone(),
                    at: now,
                    payment_id: Some(payment_id),
                };
                (moved, item.as_ref())
            });
            let commit = payment_commit(user_id, &recorded, moved, decided.record)?;
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
        let times = (request.requested_at, request.refund_requested_at);
        let layouts = Layouts::of(user_id, payment_id, times, now);
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
            let recorded = self.recorded(&reads, &layouts, true).await?;
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
                    entry: recorded.keys.refund.clone(),
                    at: now,
                    payment_id: Some(payment_id),
                };
                (moved, item.as_ref())
            });
            let commit = payment_commit(user_id, &recorded, moved, decided.record)?;
            Ok(Decision::Commit(
                commit.event(refunded(decided.refunded)),
                (),
            ))
        })
        .await
    }
}
