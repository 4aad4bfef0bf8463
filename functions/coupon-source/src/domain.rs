//! Coupon policy rules. Pure.

use chrono::{DateTime, Duration, Utc};
use contract::{CouponIssued, Discount, Won};
use serde::{Deserialize, Serialize};

pub const MAX_QUANTITY: u64 = 1_000_000;
pub const MAX_FIXED_DISCOUNT: Won = Won(10_000_000);
pub const MAX_MINIMUM_ORDER: Won = Won(100_000_000);
pub const MAX_VALID_DAYS: u32 = 365;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the name must have 1 to 100 characters")]
    Name,
    #[error(
        "a FIXED discount needs an amount from 1 to 10,000,000; a PERCENT one a rate from 1 to 100 and, if given, a positive maxAmount"
    )]
    Discount,
    #[error("minimumOrderAmount must be from 0 to 100,000,000")]
    Minimum,
    #[error("quantity must be from 1 to 1,000,000")]
    Quantity,
    #[error("the quantity cannot go below the number already issued")]
    QuantityBelowIssued,
    #[error("issuableFrom must be before issuableUntil")]
    Window,
    #[error("couponValidDays must be from 1 to 365")]
    ValidDays,
    #[error("expectedIssuesPerSecond must be from 0 to 1,000,000")]
    ExpectedRate,
}

impl PolicyError {
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Name => "INVALID_NAME",
            PolicyError::Discount => "INVALID_DISCOUNT",
            PolicyError::Minimum => "INVALID_MINIMUM_ORDER_AMOUNT",
            PolicyError::Quantity => "INVALID_QUANTITY",
            PolicyError::QuantityBelowIssued => "QUANTITY_BELOW_ISSUED",
            PolicyError::Window => "INVALID_ISSUING_WINDOW",
            PolicyError::ValidDays => "INVALID_VALID_DAYS",
            PolicyError::ExpectedRate => "INVALID_EXPECTED_RATE",
        }
    }
}

/// A coupon source: the policy and how many were issued. As stored, `issued` and `left`
/// are the counts of its first shard (the item itself); as answered, of all its shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponSource {
    pub source_id: String,
    pub name: String,
    pub discount: Discount,
    pub minimum_order_amount: Won,
    pub quantity: u64,
    /// Counters, moved together by each issue: `left` never below zero is what keeps
    /// `issued` from passing `quantity` (`issued + left = quantity`).
    pub issued: u64,
    pub left: u64,
    pub issuable_from: DateTime<Utc>,
    pub issuable_until: DateTime<Utc>,
    pub coupon_valid_days: u32,
    pub active: bool,
    /// How many items its count is spread over (`platform::docstore::shards`), chosen at
    /// creation from the expected rate of issues.
    #[serde(default = "one_shard")]
    pub shards: u32,
}

fn one_shard() -> u32 {
    1
}

/// Issues a second expected at the source's peak (`platform::docstore::shards`).
pub fn expected_rate(raw: Option<i64>) -> Result<u64, PolicyError> {
    platform::docstore::shards::expected_rate(raw).ok_or(PolicyError::ExpectedRate)
}

pub fn name(raw: &str) -> Result<String, PolicyError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 || name.chars().any(char::is_control) {
        return Err(PolicyError::Name);
    }
    Ok(name.to_owned())
}

pub fn discount(d: &Discount) -> Result<(), PolicyError> {
    let ok = match d {
        Discount::Fixed { amount } => amount.0 >= 1 && *amount <= MAX_FIXED_DISCOUNT,
        Discount::Percent { rate, max_amount } => {
            (1..=100).contains(rate) && max_amount.is_none_or(|m| m.0 >= 1)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Discount)
    }
}

pub fn quantity(raw: i64, issued: u64) -> Result<u64, PolicyError> {
    let q = u64::try_from(raw)
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or(PolicyError::Quantity)?;
    if q < issued {
        return Err(PolicyError::QuantityBelowIssued);
    }
    Ok(q)
}

pub fn minimum(raw: i64) -> Result<Won, PolicyError> {
    u64::try_from(raw)
        .ok()
        .map(Won)
        .filter(|m| *m <= MAX_MINIMUM_ORDER)
        .ok_or(PolicyError::Minimum)
}

pub fn window(from: DateTime<Utc>, until: DateTime<Utc>) -> Result<(), PolicyError> {
    if from < until {
        Ok(())
    } else {
        Err(PolicyError::Window)
    }
}

pub fn valid_days(raw: i64) -> Result<u32, PolicyError> {
    u32::try_from(raw)
        .ok()
        .filter(|d| (1..=MAX_VALID_DAYS).contains(d))
        .ok_or(PolicyError::ValidDays)
}

/// Why a coupon cannot be issued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssueRefusal {
    #[error("the coupon source is not active")]
    Inactive,
    #[error("coupons of this source are not issued at this time")]
    OutsideWindow,
    #[error("all coupons of this source have been issued")]
    SoldOut,
    #[error("this user already has a coupon of this source")]
    AlreadyIssued,
}

impl IssueRefusal {
    pub fn code(self) -> &'static str {
        match self {
            IssueRefusal::Inactive => "SOURCE_INACTIVE",
            IssueRefusal::OutsideWindow => "OUTSIDE_ISSUING_WINDOW",
            IssueRefusal::SoldOut => "SOLD_OUT",
            IssueRefusal::AlreadyIssued => "ALREADY_ISSUED",
        }
    }
}

/// Why a coupon of `source` cannot be issued now to whoever asks, if it cannot: inactive,
/// outside its window, or sold out (no shard may still have one: `any_left` false).
pub fn refusal(
    source: &CouponSource,
    any_left: bool,
    now: DateTime<Utc>,
) -> Result<(), IssueRefusal> {
    if !source.active {
        return Err(IssueRefusal::Inactive);
    }
    if now < source.issuable_from || now >= source.issuable_until {
        return Err(IssueRefusal::OutsideWindow);
    }
    if !any_left {
        return Err(IssueRefusal::SoldOut);
    }
    Ok(())
}

/// Issues one more coupon, `coupon_id`, to `user_id`, who has none of this source yet: the
/// `CouponIssued` that tells the coupon and order services. Counting it is the store's (one
/// coupon off a shard's `left`, under its bound), so a shard thought to have some may still
/// turn out empty.
pub fn issue(
    source: &CouponSource,
    coupon_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<CouponIssued, IssueRefusal> {
    refusal(source, true, now)?;
    Ok(CouponIssued {
        coupon_id: coupon_id.to_owned(),
        source_id: source.source_id.clone(),
        user_id: user_id.to_owned(),
        discount: source.discount.clone(),
        minimum_order_amount: source.minimum_order_amount,
        expires_at: now + Duration::days(i64::from(source.coupon_valid_days)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(now: DateTime<Utc>) -> CouponSource {
        CouponSource {
            source_id: "s".into(),
            name: "Welcome".into(),
            discount: Discount::Fixed { amount: Won(500) },
            minimum_order_amount: Won(0),
            quantity: 2,
            issued: 0,
            left: 2,
            issuable_from: now - Duration::hours(1),
            issuable_until: now + Duration::hours(1),
            coupon_valid_days: 7,
            active: true,
            shards: 1,
        }
    }

    #[test]
    fn an_issue_says_what_the_coupon_is_worth_and_until_when() {
        // Given a source with two coupons, none issued
        let now = Utc::now();
        // When one is issued
        let issued = issue(&source(now), "c-1", "u-1", now).unwrap();
        // Then the event carries the policy and the expiry

        assert_eq!(
            issued,
            CouponIssued {
                coupon_id: "c-1".into(),
                source_id: "s".into(),
                user_id: "u-1".into(),
                discount: Discount::Fixed { amount: Won(500) },
                minimum_order_amount: Won(0),
                expires_at: now + Duration::days(7),
            }
        );
    }

    #[test]
    fn issuing_needs_an_active_source_inside_its_window_with_coupons_left() {
        let now = Utc::now();
        let refused = |source: CouponSource, at| issue(&source, "c", "u", at).err();
        assert_eq!(refused(source(now), now), None);
        let inactive = CouponSource {
            active: false,
            ..source(now)
        };
        assert_eq!(refused(inactive, now), Some(IssueRefusal::Inactive));
        // The window is [issuableFrom, issuableUntil).
        assert_eq!(
            refused(source(now), now + Duration::hours(1)),
            Some(IssueRefusal::OutsideWindow)
        );
        assert_eq!(
            refused(source(now), now - Duration::hours(2)),
            Some(IssueRefusal::OutsideWindow)
        );
        assert_eq!(
            refusal(&source(now), false, now).err(),
            Some(IssueRefusal::SoldOut)
        );
        // Inactive comes before sold out.
        let inactive = CouponSource {
            active: false,
            ..source(now)
        };
        assert_eq!(
            refusal(&inactive, false, now).err(),
            Some(IssueRefusal::Inactive)
        );
    }

    #[test]
    fn policies_are_checked() {
        assert!(
            discount(&Discount::Percent {
                rate: 0,
                max_amount: None
            })
            .is_err()
        );
        assert!(
            discount(&Discount::Percent {
                rate: 101,
                max_amount: None
            })
            .is_err()
        );
        assert!(
            discount(&Discount::Percent {
                rate: 10,
                max_amount: Some(Won(0))
            })
            .is_err()
        );
        assert!(discount(&Discount::Fixed { amount: Won(0) }).is_err());
        assert!(
            discount(&Discount::Percent {
                rate: 100,
                max_amount: Some(Won(1))
            })
            .is_ok()
        );
        assert_eq!(quantity(0, 0), Err(PolicyError::Quantity));
        assert_eq!(quantity(5, 6), Err(PolicyError::QuantityBelowIssued));
        assert_eq!(valid_days(366), Err(PolicyError::ValidDays));
        assert_eq!(expected_rate(None), Ok(0));
        assert_eq!(expected_rate(Some(10_000)), Ok(10_000));
        assert_eq!(expected_rate(Some(-1)), Err(PolicyError::ExpectedRate));
        assert_eq!(
            expected_rate(Some(1_000_001)),
            Err(PolicyError::ExpectedRate)
        );
        let now = Utc::now();
        assert_eq!(window(now, now), Err(PolicyError::Window));
    }
}
