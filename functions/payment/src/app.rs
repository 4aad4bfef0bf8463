//! The payment service's handlers. Each is one commit of the order's payment record
//! (absent / version) and what it says: one conditional put of the record, carrying its
//! events. A repeat says again what the record says.
//!
//! Table: `ORDER#<orderId>`/`PAYMENT` ([`Record`]).

use std::sync::Arc;

use async_trait::async_trait;
use contract::{
    Envelope, Event, OrderCreated, PaymentApproved, PaymentCancelled, PaymentFailed,
    PaymentRefundRequested, PaymentRequested, Won,
};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, ConditionedReads, Decision, Expect, Item, Key, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::Ports;

use crate::domain::{self, Payment, Record, Say, Status};

pub struct PaymentService {
    ports: Ports,
}

fn payment_key(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "PAYMENT")
}

impl PaymentService {
    pub fn new(ports: Ports) -> Self {
        PaymentService { ports }
    }

    pub async fn payment_of_order(&self, order_id: &str) -> Result<Option<Payment>, StoreError> {
        Ok(
            match self
                .ports
                .store
                .get(&payment_key(order_id))
                .await?
                .as_ref()
                .map(Item::parse::<Record>)
                .transpose()?
            {
                Some(Record::Payment(p)) => Some(p),
                _ => None,
            },
        )
    }

    fn say(
        &self,
        cause: &Envelope,
        order_id: &str,
        payment: Option<&Payment>,
        say: Say,
    ) -> Envelope {
        let payment_id = payment.map(|p| p.payment_id.clone());
        let amount = payment.map_or(Won::ZERO, |p| p.amount);
        let event: Event = match say {
            Say::Requested => {
                let p = payment.cloned().unwrap_or_else(|| Payment {
                    payment_id: String::new(),
                    order_id: order_id.to_owned(),
                    user_id: String::new(),
                    amount,
                    status: Status::Pending,
                    failure_reason: None,
                    requested_at: None,
                    refund_requested_at: None,
                });
                PaymentRequested {
                    payment_id: p.payment_id,
                    order_id: order_id.to_owned(),
                    user_id: p.user_id,
                    amount,
                    requested_at: p.requested_at,
                }
                .into()
            }
            Say::Approved => PaymentApproved {
                order_id: order_id.to_owned(),
                payment_id,
                amount,
            }
            .into(),
            Say::Failed(reason) => PaymentFailed {
                order_id: order_id.to_owned(),
                payment_id,
                amount,
                reason,
            }
            .into(),
            Say::RefundRequested => PaymentRefundRequested {
                payment_id: payment_id.unwrap_or_default(),
                order_id: order_id.to_owned(),
                user_id: payment.map(|p| p.user_id.clone()).unwrap_or_default(),
                amount,
                requested_at: payment.and_then(|p| p.requested_at),
                refund_requested_at: payment.and_then(|p| p.refund_requested_at),
            }
            .into(),
            Say::Cancelled { refunded } => PaymentCancelled {
                order_id: order_id.to_owned(),
                payment_id,
                refunded,
            }
            .into(),
        };
        self.ports
            .events
            .envelope(Cause::Event(cause), order_id, event)
    }

    /// Reads the order's record, lets `decide` choose the next record and what to say, and
    /// commits both.
    async fn step<F>(&self, cause: &Envelope, order_id: &str, decide: F) -> Result<(), StoreError>
    where
        F: Fn(Option<&Record>) -> Option<(Option<Record>, Option<Say>)>,
    {
        let store = self.ports.store.as_ref();
        let key = payment_key(order_id);
        // Eventual first, at half the read units: only a decision that writes the record is
        // committed under the version read; anything else (nothing, or an answer alone) is
        // made again on a strong read.
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            let read = |item: Option<&Item>| -> Result<_, StoreError> {
                let record = item.map(Item::parse::<Record>).transpose()?;
                let decided = decide(record.as_ref());
                Ok((record, decided))
            };
            let writes_record = |(_, decided): &(_, Option<(Option<Record>, _)>)| {
                matches!(decided, Some((Some(_), _)))
            };
            let (item, (record, decided)) = reads.decide(&key, read, writes_record).await?;
            let Some((next, say)) = decided else {
                return Ok(Decision::Done(()));
            };
            let mut commit = Commit::new();
            let speaker = next.as_ref().or(record.as_ref()).and_then(|r| match r {
                Record::Payment(p) => Some(p),
                Record::Tombstone => None,
            });
            if let Some(say) = say {
                commit = commit.event(self.say(cause, order_id, speaker, say));
            }
            if let Some(next) = &next {
                commit = commit.write(Write::put(
                    key.clone(),
                    next,
                    Expect::after_read(item.as_ref()),
                )?);
            }
            Ok(Decision::Commit(commit, ()))
        })
        .await
    }

    /// `OrderCreated`: the payment; zero is approved at once.
    pub async fn create(&self, cause: &Envelope, order: &OrderCreated) -> Result<(), StoreError> {
        let payment_id = self.ports.ids.next_id();
        let now = self.ports.clock.now();
        self.step(cause, &order.order_id, |record| {
            domain::create(record, order, &payment_id, now)
        })
        .await
    }

    /// `BalanceDeducted` (`Ok`) or `BalanceDeductionFailed` (`Err(reason)`).
    pub async fn balance_answered(
        &self,
        cause: &Envelope,
        order_id: &str,
        deducted: Result<(), &str>,
    ) -> Result<(), StoreError> {
        self.step(cause, order_id, |record| {
            let Some(Record::Payment(p)) = record else {
                return None;
            };
            let (status, say) = domain::balance_answer(p, deducted)?;
            let next = status.map(|s| {
                let failure_reason = deducted
                    .err()
                    .map(str::to_owned)
                    .or(p.failure_reason.clone());
                Record::Payment(Payment {
                    status: s,
                    failure_reason,
                    ..p.clone()
                })
            });
            Some((next, Some(say)))
        })
        .await
    }

    /// `OrderFailed` / `OrderCancelled`.
    pub async fn undo(&self, cause: &Envelope, order_id: &str) -> Result<(), StoreError> {
        let now = self.ports.clock.now();
        self.step(cause, order_id, |record| {
            let payment = match record {
                Some(Record::Payment(p)) => Some(p),
                Some(Record::Tombstone) => {
                    return Some((None, Some(Say::Cancelled { refunded: false })));
                }
                None => None,
            };
            let (status, say) = domain::undo(payment);
            let next = match (payment, status) {
                (None, _) => Some(Record::Tombstone),
                (Some(p), Some(s)) => Some(Record::Payment(p.moved(s, now))),
                (Some(_), None) => None,
            };
            Some((next, Some(say)))
        })
        .await
    }

    /// `BalanceRefunded`.
    pub async fn refunded(
        &self,
        cause: &Envelope,
        order_id: &str,
        amount: Won,
    ) -> Result<(), StoreError> {
        self.step(cause, order_id, |record| {
            let Some(Record::Payment(p)) = record else {
                return None;
            };
            let (status, say) = domain::refunded(p, amount)?;
            Some((
                Some(Record::Payment(Payment {
                    status,
                    ..p.clone()
                })),
                Some(say),
            ))
        })
        .await
    }
}

/// The payment service's consuming functions.
pub struct PaymentConsumer(pub Arc<PaymentService>);

#[async_trait]
impl EventHandler for PaymentConsumer {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let service = &self.0;
        match &event.event {
            Event::OrderCreated(e) => service.create(event, e).await?,
            Event::OrderFailed(e) => service.undo(event, &e.order_id).await?,
            Event::OrderCancelled(e) => service.undo(event, &e.order_id).await?,
            Event::BalanceDeducted(e) => {
                service.balance_answered(event, &e.order_id, Ok(())).await?
            }
            Event::BalanceDeductionFailed(e) => {
                service
                    .balance_answered(event, &e.order_id, Err(&e.reason))
                    .await?
            }
            Event::BalanceRefunded(e) => service.refunded(event, &e.order_id, e.amount).await?,
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the payment service; ignored"
            ),
        }
        Ok(())
    }
}
