//! Placing an order, given / when / then: no store, the copies as values.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use contract::{Discount, OrderItem, Won};

use super::*;
use crate::domain::{Status, StepState};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T09:00:00Z")
        .unwrap()
        .into()
}

const TTL: Duration = Duration::minutes(10);

fn line(product: &str, quantity: i64) -> Line {
    Line {
        product_id: product.into(),
        quantity,
    }
}

fn prices(list: &[(&str, u64)]) -> HashMap<String, PriceCopy> {
    list.iter()
        .map(|(id, price)| {
            let copy = PriceCopy {
                product_id: (*id).into(),
                price: Won(*price),
                as_of: t0(),
            };
            ((*id).to_owned(), copy)
        })
        .collect()
}

fn coupon(owner: &str, held_by: Option<&str>, expires_in: Duration) -> CouponCopy {
    CouponCopy {
        coupon_id: "c1".into(),
        user_id: owner.into(),
        discount: Discount::Fixed { amount: Won(500) },
        minimum_order_amount: Won(1_000),
        expires_at: t0() + expires_in,
        held_by: held_by.map(str::to_owned),
    }
}

fn request(lines: Vec<Line>, coupon_id: Option<&str>) -> OrderRequest {
    OrderRequest::parse(lines, coupon_id.map(str::to_owned)).unwrap()
}

/// Given the price copies and the coupon copy, when `u1` places `request` at t0.
fn place_at_t0(
    request: &OrderRequest,
    prices: &HashMap<String, PriceCopy>,
    coupon: Option<CouponCopy>,
) -> Result<Placed, OrderError> {
    place(
        "o1".into(),
        "u1",
        request,
        Known { prices, coupon },
        t0(),
        TTL,
    )
}

#[test]
fn an_order_is_priced_from_the_copies_and_announced_pending() {
    let prices = prices(&[("tea", 1_200), ("cup", 3_000)]);
    let placed = place_at_t0(
        &request(vec![line("tea", 2), line("cup", 1)], None),
        &prices,
        None,
    )
    .unwrap();
    assert_eq!(placed.order.status, Status::Pending);
    assert_eq!(placed.order.steps.coupon, StepState::NotRequired);
    assert_eq!(placed.order.expires_at, t0() + TTL);
    assert_eq!(placed.order.payment_amount, Won(5_400));
    assert_eq!(placed.created.order_id, "o1");
    assert_eq!(placed.created.items, placed.order.items);
    assert_eq!(placed.created.payment_amount, Won(5_400));
    assert_eq!(placed.held_coupon, None);
}

#[test]
fn a_product_without_a_price_copy_is_unknown() {
    let prices = prices(&[("tea", 1_200)]);
    let asked = request(vec![line("tea", 1), line("ghost", 1)], None);
    assert_eq!(
        place_at_t0(&asked, &prices, None),
        Err(OrderError::UnknownProduct("ghost".into()))
    );
}

#[test]
fn a_coupon_of_mine_is_held_by_the_order_and_discounts_it() {
    let prices = prices(&[("tea", 1_200)]);
    let asked = request(vec![line("tea", 1)], Some("c1"));
    let placed = place_at_t0(&asked, &prices, Some(coupon("u1", None, TTL))).unwrap();
    assert_eq!(placed.order.discount_amount, Won(500));
    assert_eq!(placed.order.payment_amount, Won(700));
    assert_eq!(placed.order.steps.coupon, StepState::Pending);
    assert_eq!(placed.created.coupon_id.as_deref(), Some("c1"));
    assert_eq!(
        placed.held_coupon.and_then(|c| c.held_by),
        Some("o1".to_owned())
    );
}

#[test]
fn the_coupon_policy_refuses_missing_foreign_used_expired_and_below_minimum() {
    let prices = prices(&[("tea", 1_200), ("gum", 100)]);
    let asked = request(vec![line("tea", 1)], Some("c1"));
    let cases = [
        (None, OrderError::UnknownCoupon),
        // Another user's coupon answers as an unknown one.
        (Some(coupon("u2", None, TTL)), OrderError::UnknownCoupon),
        (Some(coupon("u1", Some("o0"), TTL)), OrderError::CouponUsed),
        (
            Some(coupon("u1", None, Duration::zero())),
            OrderError::CouponExpired,
        ),
    ];
    for (copy, expected) in cases {
        assert_eq!(place_at_t0(&asked, &prices, copy), Err(expected));
    }
    let small = request(vec![line("gum", 1)], Some("c1"));
    assert_eq!(
        place_at_t0(&small, &prices, Some(coupon("u1", None, TTL))),
        Err(OrderError::BelowMinimum)
    );
}

#[test]
fn an_order_ending_unconfirmed_releases_only_its_own_coupon() {
    let prices = prices(&[("tea", 1_200)]);
    let asked = request(vec![line("tea", 1)], Some("c1"));
    let placed = place_at_t0(&asked, &prices, Some(coupon("u1", None, TTL))).unwrap();
    let held = placed.held_coupon.unwrap();
    let ended = |status| Order {
        status,
        ..placed.order.clone()
    };
    for status in [Status::Failed, Status::Cancelled] {
        assert_eq!(release_coupon(&ended(status), &held).unwrap().held_by, None);
    }
    for status in [Status::Pending, Status::Confirmed, Status::Failing] {
        assert_eq!(release_coupon(&ended(status), &held), None);
    }
    let other = CouponCopy {
        held_by: Some("o9".into()),
        ..held
    };
    assert_eq!(release_coupon(&ended(Status::Failed), &other), None);
}

#[test]
fn the_request_is_parsed_at_the_boundary() {
    let parse = |lines: Vec<Line>| OrderRequest::parse(lines, None).map(|_| ());
    assert_eq!(parse(vec![]), Err(OrderError::ItemCount));
    assert_eq!(parse(vec![line("a", 0)]), Err(OrderError::Quantity));
    assert_eq!(parse(vec![line("a", 1_001)]), Err(OrderError::Quantity));
    assert_eq!(parse(vec![line("a", -1)]), Err(OrderError::Quantity));
    assert_eq!(
        parse(vec![line("a", 1), line("a", 2)]),
        Err(OrderError::DuplicateProduct)
    );
    assert_eq!(parse(vec![line("", 1)]), Err(OrderError::ProductId));
    let many: Vec<Line> = (0..51).map(|i| line(&format!("p{i}"), 1)).collect();
    assert_eq!(parse(many.clone()), Err(OrderError::ItemCount));
    assert_eq!(parse(many[..50].to_vec()), Ok(()));
    assert_eq!(
        OrderRequest::parse(vec![line("a", 1)], Some(String::new())),
        Err(OrderError::CouponId)
    );
    let one = OrderRequest::parse(vec![line("b", 2), line("a", 1)], Some("c".into())).unwrap();
    let same = OrderRequest::parse(vec![line("a", 1), line("b", 2)], Some("c".into())).unwrap();
    assert_eq!(one.fingerprint(), same.fingerprint());
    assert_eq!(one.lines()[0].quantity(), 2);
}

#[test]
fn pricing_applies_fixed_and_percent_discounts() {
    let items = vec![
        OrderItem {
            product_id: "a".into(),
            quantity: 3,
            unit_price: Won(1_999),
        },
        OrderItem {
            product_id: "b".into(),
            quantity: 1,
            unit_price: Won(10_000),
        },
    ];
    assert_eq!(
        price(&items, None).unwrap(),
        Amounts {
            total: Won(15_997),
            discount: Won(0),
            payment: Won(15_997)
        }
    );
    let fixed = CouponTerms {
        discount: Discount::Fixed { amount: Won(500) },
        minimum_order_amount: Won(10_000),
    };
    assert_eq!(price(&items, Some(&fixed)).unwrap().payment, Won(15_497));
    let pct = CouponTerms {
        discount: Discount::Percent {
            rate: 15,
            max_amount: None,
        },
        minimum_order_amount: Won(0),
    };
    // 15% of 15,997 is 2,399.55: rounded down to 2,399.
    assert_eq!(price(&items, Some(&pct)).unwrap().discount, Won(2_399));
    let capped = CouponTerms {
        discount: Discount::Percent {
            rate: 15,
            max_amount: Some(Won(1_000)),
        },
        minimum_order_amount: Won(0),
    };
    assert_eq!(price(&items, Some(&capped)).unwrap().discount, Won(1_000));
    let big = CouponTerms {
        discount: Discount::Fixed {
            amount: Won(1_000_000),
        },
        minimum_order_amount: Won(0),
    };
    assert_eq!(
        price(&items, Some(&big)).unwrap(),
        Amounts {
            total: Won(15_997),
            discount: Won(15_997),
            payment: Won(0)
        }
    );
    let high_minimum = CouponTerms {
        discount: Discount::Fixed { amount: Won(1) },
        minimum_order_amount: Won(20_000),
    };
    assert_eq!(
        price(&items, Some(&high_minimum)),
        Err(OrderError::BelowMinimum)
    );
    let huge = vec![OrderItem {
        product_id: "a".into(),
        quantity: 1_000,
        unit_price: Won(u64::MAX / 10),
    }];
    assert_eq!(price(&huge, None), Err(OrderError::AmountTooLarge));
}
