//! Balance rules.

use contract::Won;
use serde::{Deserialize, Serialize};

/// The most an account may hold: 100,000,000 won. A charge that would pass it is refused;
/// a refund is never refused (the money was the user's).
pub const MAX_BALANCE: Won = Won(100_000_000);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("the amount must be a positive number of won")]
    NotPositive,
    #[error("the balance may not exceed {MAX_BALANCE}")]
    OverLimit,
}

impl ChargeError {
    pub fn code(&self) -> &'static str {
        match self {
            ChargeError::NotPositive => "INVALID_AMOUNT",
            ChargeError::OverLimit => "BALANCE_LIMIT_EXCEEDED",
        }
    }
}

/// The balance after charging `amount` (as sent: it may be zero or negative).
pub fn charge(balance: Won, amount: i64) -> Result<Won, ChargeError> {
    let amount = u64::try_from(amount)
        .ok()
        .filter(|a| *a > 0)
        .ok_or(ChargeError::NotPositive)?;
    balance
        .checked_add(Won(amount))
        .filter(|after| *after <= MAX_BALANCE)
        .ok_or(ChargeError::OverLimit)
}

/// What the balance service did for one payment, as its items say (the entries of what was
/// taken and given back, or the mark of a deduction that took nothing: see [`crate::repo`]):
/// the de-duplication record, and the tombstone that keeps a late deduction from happening
/// after a refund request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentRecord {
    Deducted {
        amount: Won,
    },
    Failed,
    Refunded {
        amount: Won,
    },
    /// The refund request came first: nothing was taken, and nothing will be.
    CancelledBeforeDeduction,
}

/// The answer to a deduction request, given what was recorded for the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeductAnswer {
    Deducted(Won),
    Failed(&'static str),
}

impl PaymentRecord {
    pub fn deduct_answer(self) -> DeductAnswer {
        match self {
            PaymentRecord::Deducted { amount } | PaymentRecord::Refunded { amount } => {
                DeductAnswer::Deducted(amount)
            }
            PaymentRecord::Failed => DeductAnswer::Failed(INSUFFICIENT_BALANCE),
            PaymentRecord::CancelledBeforeDeduction => DeductAnswer::Failed(PAYMENT_CANCELLED),
        }
    }

    /// What a refund request answers when this is recorded (and nothing more is to be done).
    pub fn refunded_amount(self) -> Won {
        match self {
            PaymentRecord::Refunded { amount } => amount,
            _ => Won::ZERO,
        }
    }
}

pub const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";
pub const PAYMENT_CANCELLED: &str = "PAYMENT_CANCELLED";

/// What `PaymentRequested` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deduct {
    /// The payment's record to create; `None` when it was decided before.
    pub record: Option<PaymentRecord>,
    /// The balance after taking the amount; `None` when nothing is taken.
    pub balance_after: Option<Won>,
    pub answer: DeductAnswer,
}

/// Decides a deduction of `amount` from `balance`, given what was recorded for the payment:
/// once, and never below zero.
pub fn deduct(record: Option<PaymentRecord>, balance: Won, amount: Won) -> Deduct {
    if let Some(record) = record {
        return Deduct {
            record: None,
            balance_after: None,
            answer: record.deduct_answer(),
        };
    }
    match balance.checked_sub(amount) {
        Some(after) => Deduct {
            record: Some(PaymentRecord::Deducted { amount }),
            balance_after: Some(after),
            answer: DeductAnswer::Deducted(amount),
        },
        None => Deduct {
            record: Some(PaymentRecord::Failed),
            balance_after: None,
            answer: DeductAnswer::Failed(INSUFFICIENT_BALANCE),
        },
    }
}

/// What `PaymentRefundRequested` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    /// The payment record's next state; `None` when it stays.
    pub record: Option<PaymentRecord>,
    /// The balance after giving the money back; `None` when nothing moves.
    pub balance_after: Option<Won>,
    /// What the answer says was given back.
    pub refunded: Won,
}

/// A balance that would overflow `u64` won: only a corrupt item can hold one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the balance would overflow")]
pub struct Overflow;

/// Decides a refund given what was recorded for the payment: what was taken is given back
/// once (never refused, even over [`MAX_BALANCE`]: the money was the user's); if nothing was
/// taken yet, a tombstone keeps a late deduction from taking anything.
pub fn refund(record: Option<PaymentRecord>, balance: Won) -> Result<Refund, Overflow> {
    Ok(match record {
        None => Refund {
            record: Some(PaymentRecord::CancelledBeforeDeduction),
            balance_after: None,
            refunded: Won::ZERO,
        },
        Some(PaymentRecord::Deducted { amount }) => Refund {
            record: Some(PaymentRecord::Refunded { amount }),
            balance_after: Some(balance.checked_add(amount).ok_or(Overflow)?),
            refunded: amount,
        },
        Some(other) => Refund {
            record: None,
            balance_after: None,
            refunded: other.refunded_amount(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_positive_and_bounded() {
        assert_eq!(charge(Won(0), 5_000), Ok(Won(5_000)));
        assert_eq!(charge(Won(10), 0), Err(ChargeError::NotPositive));
        assert_eq!(charge(Won(10), -5), Err(ChargeError::NotPositive));
        assert_eq!(charge(Won(0), 100_000_000), Ok(MAX_BALANCE));
        assert_eq!(charge(Won(1), 100_000_000), Err(ChargeError::OverLimit));
        assert_eq!(
            charge(Won(u64::MAX - 1), i64::MAX),
            Err(ChargeError::OverLimit)
        );
    }

    #[test]
    fn a_deduction_takes_the_amount_once_and_never_below_zero() {
        let first = deduct(None, Won(10_000), Won(9_000));
        assert_eq!(first.balance_after, Some(Won(1_000)));
        assert_eq!(first.answer, DeductAnswer::Deducted(Won(9_000)));
        let again = deduct(first.record, Won(1_000), Won(9_000));
        assert_eq!((again.record, again.balance_after), (None, None));
        assert_eq!(again.answer, DeductAnswer::Deducted(Won(9_000)));

        let short = deduct(None, Won(8_999), Won(9_000));
        assert_eq!(short.record, Some(PaymentRecord::Failed));
        assert_eq!(short.balance_after, None);
        assert_eq!(short.answer, DeductAnswer::Failed(INSUFFICIENT_BALANCE));
    }

    #[test]
    fn a_refund_gives_back_what_was_taken_once() {
        let taken = Some(PaymentRecord::Deducted { amount: Won(9_000) });
        let first = refund(taken, Won(1_000)).unwrap();
        assert_eq!(first.balance_after, Some(Won(10_000)));
        assert_eq!(first.refunded, Won(9_000));
        let again = refund(first.record, Won(10_000)).unwrap();
        assert_eq!((again.record, again.balance_after), (None, None));
        assert_eq!(again.refunded, Won(9_000), "a repeat says what was given");
        // Never refused over the limit: the money was the user's.
        let full = refund(taken, MAX_BALANCE).unwrap();
        assert_eq!(full.balance_after, Some(Won(MAX_BALANCE.0 + 9_000)));
        assert_eq!(refund(taken, Won(u64::MAX)), Err(Overflow));
    }

    #[test]
    fn a_refund_before_the_deduction_leaves_a_tombstone_that_refuses_it() {
        let first = refund(None, Won(5_000)).unwrap();
        assert_eq!(first.record, Some(PaymentRecord::CancelledBeforeDeduction));
        assert_eq!((first.balance_after, first.refunded), (None, Won::ZERO));
        let late = deduct(first.record, Won(5_000), Won(1_000));
        assert_eq!((late.record, late.balance_after), (None, None));
        assert_eq!(late.answer, DeductAnswer::Failed(PAYMENT_CANCELLED));
    }

    #[test]
    fn a_recorded_payment_answers_the_same_again() {
        assert_eq!(
            PaymentRecord::Deducted { amount: Won(7) }.deduct_answer(),
            DeductAnswer::Deducted(Won(7))
        );
        assert_eq!(
            PaymentRecord::CancelledBeforeDeduction.deduct_answer(),
            DeductAnswer::Failed(PAYMENT_CANCELLED)
        );
        assert_eq!(
            PaymentRecord::Refunded { amount: Won(7) }.refunded_amount(),
            Won(7)
        );
        assert_eq!(PaymentRecord::Failed.refunded_amount(), Won(0));
    }
}
