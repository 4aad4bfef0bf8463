//! The payment's state machine. Pure: given the record and what arrived, the next record
//! and what to say.

use contract::Won;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
        }
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
