//! Every event of the catalogue survives the wire, and bad messages fail distinctly.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use contract::*;

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap()
}

fn items() -> Vec<OrderItem> {
    vec![
        OrderItem {
            product_id: "p-1".into(),
            quantity: 2,
            unit_price: Won(1_500),
        },
        OrderItem {
            product_id: "p-2".into(),
            quantity: 1,
            unit_price: Won(20_000),
        },
    ]
}

/// One sample per event type; `samples_cover_the_whole_catalogue` keeps it complete.
fn samples() -> Vec<Event> {
    let o = || "o-1".to_string();
    vec![
        UserRegistered {
            user_id: "u-1".into(),
        }
        .into(),
        ProductRegistered {
            product_id: "p-1".into(),
            name: "Tea".into(),
            price: Won(1_500),
        }
        .into(),
        ProductPriceChanged {
            product_id: "p-1".into(),
            price: Won(1_800),
        }
        .into(),
        CouponIssued {
            coupon_id: "c-1".into(),
            source_id: "s-1".into(),
            user_id: "u-1".into(),
            discount: Discount::Percent {
                rate: 10,
                max_amount: Some(Won(3_000)),
            },
            minimum_order_amount: Won(10_000),
            expires_at: at(),
        }
        .into(),
        OrderCreated {
            order_id: o(),
            user_id: "u-1".into(),
            items: items(),
            coupon_id: Some("c-1".into()),
            total_amount: Won(23_000),
            discount_amount: Won(2_300),
            payment_amount: Won(20_700),
            expires_at: at(),
        }
        .into(),
        StockReserved { order_id: o() }.into(),
        StockReservationFailed {
            order_id: o(),
            reason: "OUT_OF_STOCK".into(),
            product_id: Some("p-2".into()),
        }
        .into(),
        CouponUsed {
            order_id: o(),
            coupon_id: "c-1".into(),
        }
        .into(),
        CouponUseFailed {
            order_id: o(),
            coupon_id: "c-1".into(),
            reason: "EXPIRED".into(),
        }
        .into(),
        PaymentRequested {
            payment_id: "pay-1".into(),
            order_id: o(),
            user_id: "u-1".into(),
            amount: Won(20_700),
            requested_at: Some(at()),
        }
        .into(),
        BalanceDeducted {
            payment_id: "pay-1".into(),
            order_id: o(),
            user_id: "u-1".into(),
            amount: Won(20_700),
        }
        .into(),
        BalanceDeductionFailed {
            payment_id: "pay-1".into(),
            order_id: o(),
            user_id: "u-1".into(),
            amount: Won(20_700),
            reason: "INSUFFICIENT_BALANCE".into(),
        }
        .into(),
        PaymentApproved {
            order_id: o(),
            payment_id: Some("pay-1".into()),
            amount: Won(20_700),
        }
        .into(),
        PaymentFailed {
            order_id: o(),
            payment_id: None,
            amount: Won(20_700),
            reason: "INSUFFICIENT_BALANCE".into(),
        }
        .into(),
        OrderConfirmed {
            order_id: o(),
            user_id: "u-1".into(),
            items: items(),
            payment_amount: Won(20_700),
        }
        .into(),
        SaleRecorded { order_id: o() }.into(),
        OrderFailed {
            order_id: o(),
            reason: FailureReason::OutOfStock,
            has_coupon: Some(false),
        }
        .into(),
        OrderCancelled {
            order_id: o(),
            was_confirmed: true,
            has_coupon: Some(true),
        }
        .into(),
        StockReleased {
            order_id: o(),
            released: false,
        }
        .into(),
        CouponRestored {
            order_id: o(),
            restored: true,
        }
        .into(),
        PaymentRefundRequested {
            payment_id: "pay-1".into(),
            order_id: o(),
            user_id: "u-1".into(),
            amount: Won(20_700),
            requested_at: Some(at()),
            refund_requested_at: Some(at()),
        }
        .into(),
        BalanceRefunded {
            payment_id: "pay-1".into(),
            order_id: o(),
            user_id: "u-1".into(),
            amount: Won(20_700),
        }
        .into(),
        PaymentCancelled {
            order_id: o(),
            payment_id: Some("pay-1".into()),
            refunded: true,
        }
        .into(),
        OrderFailureCompleted {
            order_id: o(),
            reason: FailureReason::Expired,
        }
        .into(),
        OrderCancellationCompleted { order_id: o() }.into(),
    ]
}

fn envelope(event: Event) -> Envelope {
    let meta = EventMeta {
        event_id: "e-1".into(),
        occurred_at: at(),
        correlation_id: "o-1".into(),
        causation_id: Some("e-0".into()),
    };
    Envelope::new(meta, "agg-1", event)
}

#[test]
fn samples_cover_the_whole_catalogue() {
    let sampled: BTreeSet<EventType> = samples().iter().map(Event::event_type).collect();
    let all: BTreeSet<EventType> = EventType::ALL.iter().copied().collect();
    assert_eq!(sampled, all);
    assert_eq!(EventType::ALL.len(), 25);
}

#[test]
fn every_event_round_trips_through_json() {
    for event in samples() {
        let original = envelope(event);
        let json = original.to_json();
        let decoded = Envelope::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(decoded, original);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], original.event_type().name());
        assert_eq!(value["source"], original.source.name());
    }
}

#[test]
fn the_source_is_the_catalogue_producer_and_goes_into_the_attributes() {
    let e = envelope(
        OrderFailed {
            order_id: "o-1".into(),
            reason: FailureReason::Expired,
            has_coupon: None,
        }
        .into(),
    );
    assert_eq!(e.source, Service::Order);
    // Whether it had a coupon is not known (an older producer): the coupon service hears it.
    assert_eq!(
        e.message_attributes(),
        [
            ("type", "OrderFailed"),
            ("source", "order"),
            ("hasCoupon", "true")
        ]
    );
    let without = envelope(
        OrderCancelled {
            order_id: "o-1".into(),
            was_confirmed: false,
            has_coupon: Some(false),
        }
        .into(),
    );
    assert_eq!(
        without.message_attributes(),
        [
            ("type", "OrderCancelled"),
            ("source", "order"),
            ("hasCoupon", "false")
        ]
    );
    let e = envelope(
        StockReleased {
            order_id: "o-1".into(),
            released: true,
        }
        .into(),
    );
    assert_eq!(
        e.message_attributes(),
        [("type", "StockReleased"), ("source", "product")]
    );
}

#[test]
fn the_wire_form_is_camel_case_with_the_documented_fields() {
    let json = envelope(
        StockReserved {
            order_id: "o-9".into(),
        }
        .into(),
    )
    .to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in [
        "eventId",
        "type",
        "source",
        "aggregateId",
        "occurredAt",
        "correlationId",
        "causationId",
        "version",
        "payload",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {json}");
    }
    assert_eq!(v["payload"]["orderId"], "o-9");
    assert_eq!(v["version"], SCHEMA_VERSION);
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v: serde_json::Value = serde_json::from_str(
        &envelope(
            StockReserved {
                order_id: "o-1".into(),
            }
            .into(),
        )
        .to_json(),
    )
    .unwrap();
    v["addedLater"] = serde_json::json!({"x": 1});
    v["payload"]["warehouse"] = serde_json::json!("B");
    let decoded = Envelope::from_json(&v.to_string()).unwrap();
    assert_eq!(
        decoded.event,
        Event::StockReserved(StockReserved {
            order_id: "o-1".into()
        })
    );
}

#[test]
fn a_user_registered_event_carries_no_personal_data_and_older_ones_still_decode() {
    let json = envelope(
        UserRegistered {
            user_id: "u-1".into(),
        }
        .into(),
    )
    .to_json();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["payload"], serde_json::json!({"userId": "u-1"}));
    // What the user service wrote before the event was trimmed.
    v["payload"]["email"] = serde_json::json!("kim@shop.kr");
    v["payload"]["name"] = serde_json::json!("Kim");
    let decoded = Envelope::from_json(&v.to_string()).unwrap();
    assert_eq!(
        decoded.event,
        Event::UserRegistered(UserRegistered {
            user_id: "u-1".into()
        })
    );
}

#[test]
fn an_undo_from_an_older_producer_does_not_say_whether_the_order_had_a_coupon() {
    let failed = |has_coupon| {
        envelope(
            OrderFailed {
                order_id: "o-1".into(),
                reason: FailureReason::Expired,
                has_coupon,
            }
            .into(),
        )
    };
    let wire: serde_json::Value = serde_json::from_str(&failed(Some(false)).to_json()).unwrap();
    assert_eq!(wire["payload"]["hasCoupon"], false);
    let mut older = wire.clone();
    older["payload"]
        .as_object_mut()
        .unwrap()
        .remove("hasCoupon");
    assert_eq!(
        Envelope::from_json(&older.to_string()).unwrap(),
        failed(None)
    );
}

#[test]
fn a_payment_request_from_an_older_producer_has_no_times() {
    let requested = |requested_at| {
        envelope(
            PaymentRequested {
                payment_id: "pay-1".into(),
                order_id: "o-1".into(),
                user_id: "u-1".into(),
                amount: Won(6_000),
                requested_at,
            }
            .into(),
        )
    };
    let wire: serde_json::Value = serde_json::from_str(&requested(Some(at())).to_json()).unwrap();
    assert_eq!(wire["payload"]["requestedAt"], "2026-11-24T09:30:00Z");
    let mut older = wire.clone();
    older["payload"]
        .as_object_mut()
        .unwrap()
        .remove("requestedAt");
    assert_eq!(
        Envelope::from_json(&older.to_string()).unwrap(),
        requested(None)
    );
    let refund = serde_json::json!({"paymentId": "pay-1", "orderId": "o-1", "userId": "u-1", "amount": 6000});
    let mut older = wire;
    older["type"] = serde_json::json!("PaymentRefundRequested");
    older["payload"] = refund;
    match Envelope::from_json(&older.to_string()).unwrap().event {
        Event::PaymentRefundRequested(r) => {
            assert_eq!((r.requested_at, r.refund_requested_at), (None, None))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_type_is_its_own_error() {
    let mut v: serde_json::Value = serde_json::from_str(
        &envelope(
            StockReserved {
                order_id: "o-1".into(),
            }
            .into(),
        )
        .to_json(),
    )
    .unwrap();
    v["type"] = serde_json::json!("StockTeleported");
    match Envelope::from_json(&v.to_string()) {
        Err(DecodeError::UnknownType(t)) => assert_eq!(t, "StockTeleported"),
        other => panic!("expected UnknownType, got {other:?}"),
    }
}

#[test]
fn an_unparseable_body_is_malformed() {
    for body in ["", "not json", "[]", "{\"eventId\": 3}"] {
        assert!(
            matches!(Envelope::from_json(body), Err(DecodeError::Malformed(_))),
            "{body:?}"
        );
    }
}

#[test]
fn a_payload_of_the_wrong_shape_is_invalid() {
    let mut v: serde_json::Value = serde_json::from_str(
        &envelope(
            StockReleased {
                order_id: "o-1".into(),
                released: true,
            }
            .into(),
        )
        .to_json(),
    )
    .unwrap();
    v["payload"]["released"] = serde_json::json!("yes");
    assert!(matches!(
        Envelope::from_json(&v.to_string()),
        Err(DecodeError::InvalidPayload { .. })
    ));
}

#[test]
fn an_event_claiming_another_producer_is_rejected() {
    let mut v: serde_json::Value = serde_json::from_str(
        &envelope(
            StockReserved {
                order_id: "o-1".into(),
            }
            .into(),
        )
        .to_json(),
    )
    .unwrap();
    v["source"] = serde_json::json!("order");
    assert!(matches!(
        Envelope::from_json(&v.to_string()),
        Err(DecodeError::WrongSource { .. })
    ));
}

#[test]
fn discounts_use_the_api_shapes() {
    let fixed = serde_json::to_value(Discount::Fixed { amount: Won(500) }).unwrap();
    assert_eq!(fixed, serde_json::json!({"type": "FIXED", "amount": 500}));
    let pct = serde_json::to_value(Discount::Percent {
        rate: 10,
        max_amount: Some(Won(3000)),
    })
    .unwrap();
    assert_eq!(
        pct,
        serde_json::json!({"type": "PERCENT", "rate": 10, "maxAmount": 3000})
    );
}

fn traced() -> TraceContext {
    TraceContext {
        trace_id: "1-6761a2b0-0123456789abcdef01234567".into(),
        parent_id: "53995c3f42cd8ad8".into(),
        sampled: true,
    }
}

#[test]
fn the_trace_context_round_trips_and_is_written_only_when_there_is_one() {
    let event = envelope(
        StockReserved {
            order_id: "o-1".into(),
        }
        .into(),
    );
    let untraced = event.to_json();
    assert!(!untraced.contains("\"trace\""), "{untraced}");
    let with = event.with_trace(Some(traced()));
    let json = with.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["trace"],
        serde_json::json!({
            "traceId": "1-6761a2b0-0123456789abcdef01234567",
            "parentId": "53995c3f42cd8ad8",
            "sampled": true
        })
    );
    assert_eq!(Envelope::from_json(&json).unwrap(), with);
}

#[test]
fn an_envelope_from_before_traces_reads_without_one_and_a_trace_without_sampled_is_sampled() {
    // Written by code that knew no trace: no `trace` field at all.
    let old = r#"{"eventId":"e-1","type":"StockReserved","source":"product","aggregateId":"o-1",
        "occurredAt":"2026-11-24T09:30:00Z","correlationId":"o-1","version":1,
        "payload":{"orderId":"o-1"}}"#;
    let decoded = Envelope::from_json(old).unwrap();
    assert_eq!(decoded.trace, None);
    let mut v: serde_json::Value = serde_json::from_str(old).unwrap();
    v["trace"] = serde_json::json!({"traceId": traced().trace_id, "parentId": traced().parent_id});
    let decoded = Envelope::from_json(&v.to_string()).unwrap();
    assert_eq!(decoded.trace, Some(traced()));
}

#[test]
fn a_failure_reason_is_spelled_as_on_the_wire() {
    for reason in [
        FailureReason::CouponRejected,
        FailureReason::OutOfStock,
        FailureReason::PaymentFailed,
        FailureReason::Expired,
    ] {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
    }
}
