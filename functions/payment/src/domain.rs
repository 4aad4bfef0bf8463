//! The payment's state machine. Pure: given the record and what arrived, the next record
//! and what to say.

use chrono::{DateTime, Utc};
use contract::{OrderCreated, Won};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = PaymentStatus)]
pub enum Status {
    /// Asked balance to deduct; no answer yet.
    Pending,
    Approved,
    Failed,
    /// Undone while money was or may have been taken: asked balance to refund.
    Refunding,
    /// Undone, nothing taken.
    Cancelled,
    /// Undone, money given back.
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Approved => "APPROVED",
            Status::Failed => "FAILED",
            Status::Refunding => "REFUNDING",
            Status::Cancelled => "CANCELLED",
            Status::Refunded => "REFUNDED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// When it was made; the balance service keys its record of the payment by it (with
    /// the id), so every request and refund request says it. Absent from older payments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// When it first asked for its refund; the balance service keys the refund by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_requested_at: Option<DateTime<Utc>>,
}

impl Payment {
    /// The payment moved to `status` at `now`: the time it first asked for a refund stays.
    pub fn moved(&self, status: Status, now: DateTime<Utc>) -> Payment {
        let asks_refund = status == Status::Refunding;
        Payment {
            status,
            refund_requested_at: self.refund_requested_at.or(asks_refund.then_some(now)),
            ..self.clone()
        }
    }
}

/// What the payment service knows of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Record {
    Payment(Payment),
    /// The undo came before the order: a late `OrderCreated` creates nothing.
    Tombstone,
}

/// What to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Say {
    Requested,
    Approved,
    Failed(String),
    RefundRequested,
    /// `PaymentCancelled` with `refunded`.
    Cancelled {
        refunded: bool,
    },
}

/// `OrderCreated` given what is recorded for the order: the payment (a zero amount is
/// approved at once, anything else is asked of the balance), or what it said before, or
/// nothing after an undo. The next record (if it changes) and what to say; `None`: nothing.
pub fn create(
    record: Option<&Record>,
    order: &OrderCreated,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Option<(Option<Record>, Option<Say>)> {
    match record {
        None => {
            let zero = order.payment_amount == Won::ZERO;
            let payment = Payment {
                payment_id: payment_id.to_owned(),
                order_id: order.order_id.clone(),
                user_id: order.user_id.clone(),
                amount: order.payment_amount,
                status: if zero {
                    Status::Approved
                } else {
                    Status::Pending
                },
                failure_reason: None,
                requested_at: Some(now),
                refund_requested_at: None,
            };
            let say = if zero { Say::Approved } else { Say::Requested };
            Some((Some(Record::Payment(payment)), Some(say)))
        }
        Some(Record::Tombstone) => None,
        Some(Record::Payment(p)) => match p.status {
            Status::Pending => Some((None, Some(Say::Requested))),
            Status::Approved => Some((None, Some(Say::Approved))),
            Status::Failed => Some((
                None,
                Some(Say::Failed(p.failure_reason.clone().unwrap_or_default())),
            )),
            // Undoing or undone: the order has moved on.
            _ => None,
        },
    }
}

/// The undo (`OrderFailed`/`OrderCancelled`) for a payment in `status` (`None`: no payment).
pub fn undo(payment: Option<&Payment>) -> (Option<Status>, Say) {
    let Some(p) = payment else {
        return (None, Say::Cancelled { refunded: false });
    };
    match p.status {
        Status::Pending => (Some(Status::Refunding), Say::RefundRequested),
        Status::Approved if p.amount > Won::ZERO => (Some(Status::Refunding), Say::RefundRequested),
        Status::Approved | Status::Failed => {
            (Some(Status::Cancelled), Say::Cancelled { refunded: false })
        }
        // Already undoing or undone: say it again (a lost answer is recovered this way).
        Status::Refunding => (None, Say::RefundRequested),
        Status::Cancelled => (None, Say::Cancelled { refunded: false }),
        Status::Refunded => (None, Say::Cancelled { refunded: true }),
    }
}

/// The balance's deduction answer: `Ok(())` deducted, `Err(reason)` not.
pub fn balance_answer(p: &Payment, deducted: Result<(), &str>) -> Option<(Option<Status>, Say)> {
    match (p.status, deducted) {
        (Status::Pending, Ok(())) => Some((Some(Status::Approved), Say::Approved)),
        (Status::Pending, Err(reason)) => {
            Some((Some(Status::Failed), Say::Failed(reason.to_owned())))
        }
        (Status::Approved, Ok(())) => Some((None, Say::Approved)),
        (Status::Failed, Err(_)) => Some((
            None,
            Say::Failed(p.failure_reason.clone().unwrap_or_default()),
        )),
        // Undoing: the refund request settles it, whatever the deduction did.
        _ => None,
    }
}

/// The balance's refund answer.
pub fn refunded(p: &Payment, amount: Won) -> Option<(Status, Say)> {
    (p.status == Status::Refunding).then(|| {
        let refunded = amount > Won::ZERO;
        (
            if refunded {
                Status::Refunded
            } else {
                Status::Cancelled
            },
            Say::Cancelled { refunded },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: Status, amount: u64) -> Payment {
        Payment {
            payment_id: "p".into(),
            order_id: "o".into(),
            user_id: "u".into(),
            amount: Won(amount),
            status,
            failure_reason: None,
            requested_at: None,
            refund_requested_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    fn order(amount: u64) -> OrderCreated {
        OrderCreated {
            order_id: "o".into(),
            user_id: "u".into(),
            items: vec![],
            coupon_id: None,
            total_amount: Won(amount),
            discount_amount: Won(0),
            payment_amount: Won(amount),
            expires_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_order_is_asked_of_the_balance_once_and_a_zero_amount_approved_at_once() {
        let Some((Some(Record::Payment(first)), say)) = create(None, &order(5), "p", now()) else {
            panic!("created");
        };
        assert_eq!((first.status, say), (Status::Pending, Some(Say::Requested)));
        assert_eq!(
            first.requested_at,
            Some(now()),
            "the time that keys it at the balance"
        );
        let again = create(Some(&Record::Payment(first)), &order(5), "p2", now());
        assert_eq!(
            again,
            Some((None, Some(Say::Requested))),
            "the first payment stands"
        );

        let Some((Some(Record::Payment(zero)), say)) = create(None, &order(0), "p", now()) else {
            panic!("created");
        };
        assert_eq!((zero.status, say), (Status::Approved, Some(Say::Approved)));
    }

    #[test]
    fn an_order_after_its_undo_creates_nothing_and_says_nothing() {
        assert_eq!(
            create(Some(&Record::Tombstone), &order(5), "p", now()),
            None
        );
        let refunding = Record::Payment(p(Status::Refunding, 5));
        assert_eq!(create(Some(&refunding), &order(5), "p", now()), None);
    }

    #[test]
    fn the_time_a_refund_was_first_asked_for_stays() {
        let later = now() + chrono::TimeDelta::seconds(5);
        let refunding = p(Status::Pending, 5).moved(Status::Refunding, now());
        assert_eq!(refunding.refund_requested_at, Some(now()));
        let refunded = refunding.moved(Status::Refunded, later);
        assert_eq!(refunded.refund_requested_at, Some(now()));
        let cancelled = p(Status::Failed, 5).moved(Status::Cancelled, later);
        assert_eq!(cancelled.refund_requested_at, None, "asked for none");
    }

    #[test]
    fn every_state_has_an_undo() {
        assert_eq!(undo(None), (None, Say::Cancelled { refunded: false }));
        assert_eq!(
            undo(Some(&p(Status::Pending, 5))),
            (Some(Status::Refunding), Say::RefundRequested)
        );
        assert_eq!(
            undo(Some(&p(Status::Approved, 5))),
            (Some(Status::Refunding), Say::RefundRequested)
        );
        assert_eq!(
            undo(Some(&p(Status::Approved, 0))),
            (Some(Status::Cancelled), Say::Cancelled { refunded: false })
        );
        assert_eq!(
            undo(Some(&p(Status::Failed, 5))),
            (Some(Status::Cancelled), Say::Cancelled { refunded: false })
        );
        assert_eq!(
            undo(Some(&p(Status::Refunding, 5))),
            (None, Say::RefundRequested)
        );
        assert_eq!(
            undo(Some(&p(Status::Refunded, 5))),
            (None, Say::Cancelled { refunded: true })
        );
    }

    #[test]
    fn balance_answers_move_only_a_pending_payment() {
        assert_eq!(
            balance_answer(&p(Status::Pending, 5), Ok(())),
            Some((Some(Status::Approved), Say::Approved))
        );
        assert_eq!(
            balance_answer(&p(Status::Pending, 5), Err("X")),
            Some((Some(Status::Failed), Say::Failed("X".into())))
        );
        assert_eq!(balance_answer(&p(Status::Refunding, 5), Ok(())), None);
        assert_eq!(balance_answer(&p(Status::Cancelled, 5), Ok(())), None);
        assert_eq!(
            refunded(&p(Status::Refunding, 5), Won(5)),
            Some((Status::Refunded, Say::Cancelled { refunded: true }))
        );
        assert_eq!(
            refunded(&p(Status::Refunding, 5), Won(0)),
            Some((Status::Cancelled, Say::Cancelled { refunded: false }))
        );
        assert_eq!(refunded(&p(Status::Approved, 5), Won(5)), None);
    }
}
