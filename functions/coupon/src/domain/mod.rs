//! Coupon rules: what a coupon is and who may use it when. Using one for an order and
//! giving it back are in `usage`. Pure.

use chrono::{DateTime, Utc};
use contract::{Discount, Won};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Issued,
    Used,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coupon {
    pub coupon_id: String,
    pub source_id: String,
    pub user_id: String,
    pub discount: Discount,
    pub minimum_order_amount: Won,
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl Coupon {
    /// `ISSUED`, `USED` or `EXPIRED` (an unused coupon past its expiry).
    pub fn shown_status(&self, now: DateTime<Utc>) -> &'static str {
        match self.status {
            Status::Used => "USED",
            Status::Issued if now >= self.expires_at => "EXPIRED",
            Status::Issued => "ISSUED",
        }
    }

    /// Whether `order_id` of `user_id`, worth `total`, may use this coupon at `now`.
    pub fn check_use(
        &self,
        user_id: &str,
        order_id: &str,
        total: Won,
        now: DateTime<Utc>,
    ) -> Result<(), &'static str> {
        if self.user_id != user_id {
            return Err("NOT_OWNER");
        }
        if self.status == Status::Used {
            return if self.order_id.as_deref() == Some(order_id) {
                Ok(())
            } else {
                Err("ALREADY_USED")
            };
        }
        if now >= self.expires_at {
            return Err("EXPIRED");
        }
        if total < self.minimum_order_amount {
            return Err("BELOW_MINIMUM_ORDER_AMOUNT");
        }
        Ok(())
    }
}

mod usage;
pub use usage::*;

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn coupon(now: DateTime<Utc>) -> Coupon {
        Coupon {
            coupon_id: "c".into(),
            source_id: "s".into(),
            user_id: "u".into(),
            discount: Discount::Fixed { amount: Won(500) },
            minimum_order_amount: Won(10_000),
            expires_at: now + Duration::days(1),
            issued_at: now,
            status: Status::Issued,
            order_id: None,
        }
    }

    #[test]
    fn a_coupon_is_used_by_its_owner_once_before_it_expires_above_its_minimum() {
        let now = Utc::now();
        let c = coupon(now);
        assert_eq!(c.check_use("u", "o", Won(10_000), now), Ok(()));
        assert_eq!(c.check_use("v", "o", Won(10_000), now), Err("NOT_OWNER"));
        assert_eq!(
            c.check_use("u", "o", Won(9_999), now),
            Err("BELOW_MINIMUM_ORDER_AMOUNT")
        );
        assert_eq!(
            c.check_use("u", "o", Won(10_000), now + Duration::days(1)),
            Err("EXPIRED")
        );
        let used = Coupon {
            status: Status::Used,
            order_id: Some("o".into()),
            ..coupon(now)
        };
        assert_eq!(
            used.check_use("u", "o2", Won(10_000), now),
            Err("ALREADY_USED")
        );
        assert_eq!(used.check_use("u", "o", Won(10_000), now), Ok(()));
        assert_eq!(c.shown_status(now + Duration::days(2)), "EXPIRED");
        assert_eq!(used.shown_status(now + Duration::days(2)), "USED");
    }
}
