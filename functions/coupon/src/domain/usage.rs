//! A coupon used by an order on `OrderCreated`, and given back on `OrderFailed` /
//! `OrderCancelled`. The order's use record is the de-duplication key of both.

use chrono::{DateTime, Utc};
use contract::{CouponRestored, CouponUseFailed, CouponUsed, Event, OrderCreated};
use serde::{Deserialize, Serialize};

use super::{Coupon, Status};

/// How many deliveries of an `OrderCreated` may find its coupon not yet known (its
/// `CouponIssued` still on the way) before the use fails. Below the queue's
/// `maxReceiveCount`, so the answer is a `CouponUseFailed`, not a dead letter.
pub const UNKNOWN_COUPON_ATTEMPTS: u32 = 4;

/// What the coupon service did for one order: the de-duplication record of the use and of
/// its undo, and the tombstone when the undo comes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponUse {
    Used { coupon_id: String },
    Failed { coupon_id: String, reason: String },
    Restored { restored: bool },
    Tombstone,
}

/// What `OrderCreated` does to its coupon.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    /// The coupon after (marked used by this order); `None` when it does not change.
    pub coupon: Option<Coupon>,
    /// The use record to create; `None` when the order was decided before.
    pub record: Option<CouponUse>,
    /// What to tell the order; `None` when it has been undone since.
    pub answer: Option<Event>,
}

/// The coupon is not known here yet (its `CouponIssued` is on the way): let the message
/// come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the coupon is not known here yet")]
pub struct NotKnownYet;

/// Decides `order`'s use of `coupon_id` from the order's use record (if any) and the coupon
/// (`None`: not known here), on its `attempt`-th delivery at `now`.
pub fn use_coupon(
    record: Option<&CouponUse>,
    coupon: Option<&Coupon>,
    order: &OrderCreated,
    coupon_id: &str,
    attempt: u32,
    now: DateTime<Utc>,
) -> Result<Use, NotKnownYet> {
    let used = || -> Event {
        CouponUsed {
            order_id: order.order_id.clone(),
            coupon_id: coupon_id.to_owned(),
        }
        .into()
    };
    let failed = |reason: &str| -> Event {
        CouponUseFailed {
            order_id: order.order_id.clone(),
            coupon_id: coupon_id.to_owned(),
            reason: reason.to_owned(),
        }
        .into()
    };
    let refuse = |reason: &str| Use {
        coupon: None,
        record: Some(CouponUse::Failed {
            coupon_id: coupon_id.to_owned(),
            reason: reason.to_owned(),
        }),
        answer: Some(failed(reason)),
    };
    if let Some(record) = record {
        let answer = match record {
            CouponUse::Used { .. } => Some(used()),
            CouponUse::Failed { reason, .. } => Some(failed(reason)),
            CouponUse::Restored { .. } | CouponUse::Tombstone => None,
        };
        return Ok(Use {
            coupon: None,
            record: None,
            answer,
        });
    }
    let Some(coupon) = coupon else {
        return if attempt < UNKNOWN_COUPON_ATTEMPTS {
            Err(NotKnownYet)
        } else {
            Ok(refuse("UNKNOWN_COUPON"))
        };
    };
    if let Err(reason) = coupon.check_use(&order.user_id, &order.order_id, order.total_amount, now)
    {
        return Ok(refuse(reason));
    }
    Ok(Use {
        coupon: Some(Coupon {
            status: Status::Used,
            order_id: Some(order.order_id.clone()),
            ..coupon.clone()
        }),
        record: Some(CouponUse::Used {
            coupon_id: coupon_id.to_owned(),
        }),
        answer: Some(used()),
    })
}

/// What the undo does.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    /// The coupon given back; `None` when it does not change.
    pub coupon: Option<Coupon>,
    /// The record's next state; `None` when it stays.
    pub record: Option<CouponUse>,
    pub answer: CouponRestored,
}

/// Decides the undo from the order's use record and, when it was used, the coupon as it is
/// now: given back if this order still holds it, once; a tombstone if the order has not come.
pub fn restore(record: Option<&CouponUse>, coupon: Option<&Coupon>, order_id: &str) -> Restore {
    let unchanged = |restored| Restore {
        coupon: None,
        record: None,
        answer: CouponRestored {
            order_id: order_id.to_owned(),
            restored,
        },
    };
    match record {
        None => Restore {
            record: Some(CouponUse::Tombstone),
            ..unchanged(false)
        },
        Some(CouponUse::Failed { .. }) => Restore {
            record: Some(CouponUse::Restored { restored: false }),
            ..unchanged(false)
        },
        Some(CouponUse::Restored { restored }) => unchanged(*restored),
        Some(CouponUse::Tombstone) => unchanged(false),
        Some(CouponUse::Used { .. }) => Restore {
            coupon: coupon
                .filter(|c| c.order_id.as_deref() == Some(order_id))
                .map(|c| Coupon {
                    status: Status::Issued,
                    order_id: None,
                    ..c.clone()
                }),
            record: Some(CouponUse::Restored { restored: true }),
            ..unchanged(true)
        },
    }
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
