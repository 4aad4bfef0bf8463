//! The order saga through HTTP against the local system: success, failures with
//! compensation, cancel, expiry.

use crate::support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::start;

#[tokio::test]
async fn an_order_with_a_coupon_is_confirmed_and_everything_adds_up() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::an_order_with_a_coupon_is_confirmed_and_everything_adds_up(&sys, &admin)
        .await;
}

#[tokio::test]
async fn insufficient_balance_fails_the_order_and_restores_stock_and_coupon() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::insufficient_balance_fails_the_order_and_restores_stock_and_coupon(
        &sys, &admin,
    )
    .await;
}

#[tokio::test]
async fn out_of_stock_after_payment_refunds_it_and_restores_the_coupon() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::out_of_stock_after_payment_refunds_it_and_restores_the_coupon(&sys, &admin)
        .await;
}

#[tokio::test]
async fn an_unknown_product_or_coupon_is_refused_at_creation() {
    let sys = start(&[]).await;
    let kim = sys.user("kim3@shop.kr").await;
    let (status, body) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": "no-such-product", "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("UNKNOWN_PRODUCT"))
    );
    let admin = sys.admin().await;
    let tea = admin.product("Tea", 1_000, 5).await;
    let (status, body) = kim
        .order(json!([{"productId": tea, "quantity": 1}]), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 1}], "couponId": "no-such-coupon"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("UNKNOWN_COUPON"))
    );
}

#[tokio::test]
async fn cancelling_a_pending_and_a_confirmed_order_restores_everything() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::cancelling_a_pending_and_a_confirmed_order_restores_everything(
        &sys, &admin,
    )
    .await;
}

#[tokio::test]
async fn a_failed_order_cannot_be_cancelled() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let han = sys.user("han@shop.kr").await;
    let pen = admin.product("Pen", 2_000, 20).await;
    let order_id = han
        .placed(json!([{"productId": pen, "quantity": 1}]), None)
        .await;
    assert_eq!(
        han.await_order(&order_id, &["FAILED", "CONFIRMED"]).await["status"],
        "FAILED"
    );
    // No coupon, nothing for the coupon service to undo: it answers nothing at all.
    let drained = |queue: &str| {
        sys.system
            .bus
            .depth(queue)
            .is_ok_and(|d| d.visible == 0 && d.in_flight == 0)
    };
    han.await_get(&format!("/orders/{order_id}/timeline"), |t| {
        t.to_string().contains("OrderFailureCompleted")
            && drained("coupon-order-undo")
            && drained("order-timeline")
    })
    .await;
    let types = han.timeline_types(&order_id).await;
    assert!(
        types.contains(&"StockReleased".to_owned())
            && types.contains(&"PaymentCancelled".to_owned())
            && !types.contains(&"CouponRestored".to_owned()),
        "{types:?}"
    );
    let (status, body) = han
        .post(&format!("/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("ORDER_NOT_CANCELLABLE"))
    );
    // Another user's order is not there at all.
    let other = sys.user("other@shop.kr").await;
    let (status, _) = other
        .post(&format!("/orders/{order_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other
        .call(Method::GET, &format!("/orders/{order_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_sweep_fails_an_expired_order_and_compensation_completes() {
    let sys = start(&[("ORDER_TTL_SECONDS", "1")]).await;
    let admin = sys.admin().await;
    support::scenarios::the_sweep_fails_an_order_that_cannot_complete_and_takes_no_money(
        &sys, &admin,
    )
    .await;
}

#[tokio::test]
async fn a_coupon_unknown_to_the_coupon_service_is_retried_a_bounded_number_of_times_then_fails() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let jung = sys.user("jung@shop.kr").await;
    jung.charge(20_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 0, 10)
        .await;
    // The coupon service never hears of the coupon (its CouponIssued is held back); the
    // order service does, so the order is accepted.
    sys.system.bus.hold("coupon-coupon-issued").unwrap();
    let coupon = jung.issue(&source).await;
    let order_id = jung
        .placed(json!([{"productId": tea, "quantity": 2}]), Some(&coupon))
        .await;
    let order = jung.await_order(&order_id, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (order["status"].as_str(), order["failureReason"].as_str()),
        (Some("FAILED"), Some("COUPON_REJECTED")),
        "{order}"
    );
    assert_eq!(jung.balance().await, 20_000);
    assert_eq!(admin.stock(&tea).await, 10);
    // It failed by answering, not by dead-lettering.
    assert_eq!(
        sys.system
            .bus
            .dead_letters("coupon-order-created")
            .unwrap()
            .len(),
        0
    );
    sys.system.bus.release("coupon-coupon-issued").unwrap();
    jung.await_get("/coupons", |c| c["items"][0]["status"] == "ISSUED")
        .await;
}

#[tokio::test]
async fn a_zero_amount_is_approved_at_once() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let seo = sys.user("seo@shop.kr").await;
    let sample = admin.product("Free sample", 0, 10).await;
    let order_id = seo
        .placed(json!([{"productId": sample, "quantity": 1}]), None)
        .await;
    assert_eq!(
        seo.await_order(&order_id, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    let payment = seo.get(&format!("/payments?orderId={order_id}")).await;
    assert_eq!(
        (payment["status"].as_str(), payment["amount"].as_u64()),
        (Some("APPROVED"), Some(0))
    );
    let types = seo.timeline_types(&order_id).await;
    assert!(!types.iter().any(|t| t == "PaymentRequested"), "{types:?}");
    assert_eq!(seo.balance().await, 0);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_repeated_order_or_charge_happen_once() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kang = sys.user("kang@shop.kr").await;
    let tea = admin.product("Tea", 1_000, 10).await;
    let key = [("idempotency-key", "order-2026-11-24-1")];
    let charge_key = [("idempotency-key", "charge-1")];
    for _ in 0..3 {
        let (status, body) = support::request(
            &kang.base,
            Method::POST,
            "/balance/charge",
            Some(&kang.token),
            Some(json!({"amount": 5_000})),
            &charge_key,
        )
        .await;
        assert_eq!(
            (status, body["amount"].as_u64()),
            (StatusCode::OK, Some(5_000))
        );
    }
    let mut ids = Vec::new();
    let order = json!({"items": [{"productId": tea, "quantity": 2}]});
    for _ in 0..200 {
        let (status, body) = support::request(
            &kang.base,
            Method::POST,
            "/orders",
            Some(&kang.token),
            Some(order.clone()),
            &key,
        )
        .await;
        if status == StatusCode::UNPROCESSABLE_ENTITY && body["error"]["code"] == "UNKNOWN_PRODUCT"
        {
            // The product's event is still on its way; a refused order records no key.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["orderId"].as_str().unwrap().to_owned());
        if ids.len() == 3 {
            break;
        }
    }
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        kang.await_order(&ids[0], &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    assert_eq!(
        kang.get("/orders").await["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(kang.balance().await, 5_000 - 2_000);
    assert_eq!(admin.stock(&tea).await, 8);

    // The same keys with another request are refused, and change nothing.
    let (status, body) = support::request(
        &kang.base,
        Method::POST,
        "/balance/charge",
        Some(&kang.token),
        Some(json!({"amount": 100_000})),
        &charge_key,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        ),
        "{body}"
    );
    let (status, body) = support::request(
        &kang.base,
        Method::POST,
        "/orders",
        Some(&kang.token),
        Some(json!({"items": [{"productId": tea, "quantity": 5}]})),
        &key,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        ),
        "{body}"
    );
    assert_eq!(kang.balance().await, 5_000 - 2_000);
    assert_eq!(admin.stock(&tea).await, 8);
    assert_eq!(
        kang.get("/orders").await["items"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn orders_without_a_coupon_never_reach_the_coupon_service() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim-no-coupon@shop.kr").await;
    kim.charge(10_000).await;
    let pen = admin.product("Pen", 2_000, 20).await;
    let coupon_records = || {
        let stats = sys.system.invocations.snapshot();
        ["coupon-order-created", "coupon-order-undo"].map(|f| stats.get(f).map_or(0, |s| s.records))
    };

    // Confirmed, then cancelled; and one refused for want of money.
    let cancelled = kim
        .placed(json!([{"productId": pen, "quantity": 1}]), None)
        .await;
    assert_eq!(
        kim.await_order(&cancelled, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    let (status, body) = kim
        .post(&format!("/orders/{cancelled}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    kim.await_timeline_with(&cancelled, "OrderCancellationCompleted")
        .await;
    let failed = kim
        .placed(json!([{"productId": pen, "quantity": 10}]), None)
        .await;
    kim.await_timeline_with(&failed, "OrderFailureCompleted")
        .await;
    assert_eq!(coupon_records(), [0, 0], "filtered out by hasCoupon");

    // With a coupon, the coupon service hears the order and its undo.
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 0, 10)
        .await;
    let coupon = kim.issue(&source).await;
    let with = kim
        .placed(json!([{"productId": pen, "quantity": 10}]), Some(&coupon))
        .await;
    kim.await_timeline_with(&with, "OrderFailureCompleted")
        .await;
    assert!(
        coupon_records().iter().all(|&n| n > 0),
        "{:?}",
        coupon_records()
    );
    assert_eq!(kim.coupon_status(&coupon).await, "ISSUED");
}
