//! Given the use record and the coupon, when an order's event comes, then this is written
//! and said.

use chrono::Duration;
use contract::{Discount, Won};

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000, 0).unwrap()
}

fn coupon() -> Coupon {
    Coupon {
        coupon_id: "c".into(),
        source_id: "s".into(),
        user_id: "u".into(),
        discount: Discount::Fixed { amount: Won(500) },
        minimum_order_amount: Won(0),
        expires_at: now() + Duration::days(1),
        issued_at: now(),
        status: Status::Issued,
        order_id: None,
    }
}

fn order(order_id: &str, user_id: &str) -> OrderCreated {
    OrderCreated {
        order_id: order_id.into(),
        user_id: user_id.into(),
        items: vec![],
        coupon_id: Some("c".into()),
        total_amount: Won(10_000),
        discount_amount: Won(500),
        payment_amount: Won(9_500),
        expires_at: now() + Duration::minutes(15),
    }
}

fn refused(reason: &str) -> Result<Use, NotKnownYet> {
    Ok(Use {
        coupon: None,
        record: Some(CouponUse::Failed {
            coupon_id: "c".into(),
            reason: reason.into(),
        }),
        answer: Some(
            CouponUseFailed {
                order_id: "o1".into(),
                coupon_id: "c".into(),
                reason: reason.into(),
            }
            .into(),
        ),
    })
}

#[test]
fn its_owner_uses_an_issued_coupon_and_the_order_holds_it() {
    let got = use_coupon(None, Some(&coupon()), &order("o1", "u"), "c", 1, now());
    let Ok(Use {
        coupon: Some(after),
        record,
        answer,
    }) = got
    else {
        panic!("used: {got:?}");
    };
    assert_eq!(
        (after.status, after.order_id.as_deref()),
        (Status::Used, Some("o1"))
    );
    assert_eq!(
        record,
        Some(CouponUse::Used {
            coupon_id: "c".into()
        })
    );
    assert!(matches!(answer, Some(Event::CouponUsed(_))));
}

#[test]
fn a_coupon_of_someone_else_or_used_by_another_order_is_refused() {
    let got = use_coupon(None, Some(&coupon()), &order("o1", "v"), "c", 1, now());
    assert_eq!(got, refused("NOT_OWNER"));
    let held = Coupon {
        status: Status::Used,
        order_id: Some("o0".into()),
        ..coupon()
    };
    let got = use_coupon(None, Some(&held), &order("o1", "u"), "c", 1, now());
    assert_eq!(got, refused("ALREADY_USED"));
}

#[test]
fn an_unknown_coupon_is_waited_for_a_bounded_number_of_deliveries_then_refused() {
    for attempt in 1..UNKNOWN_COUPON_ATTEMPTS {
        let got = use_coupon(None, None, &order("o1", "u"), "c", attempt, now());
        assert_eq!(got, Err(NotKnownYet));
    }
    let got = use_coupon(
        None,
        None,
        &order("o1", "u"),
        "c",
        UNKNOWN_COUPON_ATTEMPTS,
        now(),
    );
    assert_eq!(got, refused("UNKNOWN_COUPON"));
}

#[test]
fn a_repeated_order_says_again_what_was_said_and_one_after_its_undo_says_nothing() {
    let failed = CouponUse::Failed {
        coupon_id: "c".into(),
        reason: "EXPIRED".into(),
    };
    let got = use_coupon(
        Some(&failed),
        Some(&coupon()),
        &order("o1", "u"),
        "c",
        1,
        now(),
    );
    let Ok(Use {
        coupon: after,
        record,
        answer,
    }) = got
    else {
        panic!("decided");
    };
    assert_eq!((after, record), (None, None));
    assert!(matches!(answer, Some(Event::CouponUseFailed(e)) if e.reason == "EXPIRED"));

    let got = use_coupon(
        Some(&CouponUse::Tombstone),
        Some(&coupon()),
        &order("o1", "u"),
        "c",
        1,
        now(),
    );
    assert_eq!(
        got,
        Ok(Use {
            coupon: None,
            record: None,
            answer: None
        })
    );
}

#[test]
fn the_undo_gives_the_coupon_back_once_if_this_order_still_holds_it() {
    let held = Coupon {
        status: Status::Used,
        order_id: Some("o1".into()),
        ..coupon()
    };
    let used = CouponUse::Used {
        coupon_id: "c".into(),
    };
    let got = restore(Some(&used), Some(&held), "o1");
    assert_eq!(got.coupon, Some(coupon()));
    assert_eq!(got.record, Some(CouponUse::Restored { restored: true }));
    assert!(got.answer.restored);

    let again = restore(got.record.as_ref(), Some(&coupon()), "o1");
    assert_eq!(
        (again.coupon, again.record, again.answer.restored),
        (None, None, true)
    );

    // Held by another order since (it cannot be, but the undo must not take it from them).
    let other = Coupon {
        order_id: Some("o2".into()),
        ..held
    };
    assert_eq!(restore(Some(&used), Some(&other), "o1").coupon, None);
}

#[test]
fn an_undo_before_the_order_leaves_a_tombstone() {
    let got = restore(None, None, "o1");
    assert_eq!(got.record, Some(CouponUse::Tombstone));
    assert!(got.coupon.is_none() && !got.answer.restored);
}
