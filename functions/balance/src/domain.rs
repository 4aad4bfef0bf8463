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

/// What the balance service did for one payment: its de-duplication record and the
/// tombstone that keeps a late deduction from happening after a refund request.
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
