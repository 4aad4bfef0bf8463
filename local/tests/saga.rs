//! The order saga through HTTP against the local system: success, failures with
//! compensation, cancel, expiry.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::start;

#[tokio::test]
async fn an_order_with_a_coupon_is_confirmed_and_everything_adds_up() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    kim.charge(100_000).await;
    let tea = admin.product("Green tea", 3_000, 10).await;
    let cup = admin.product("Cup", 12_000, 5).await;
    let source = admin
        .coupon_source(
            json!({"type": "PERCENT", "rate": 10, "maxAmount": 2_000}),
            10_000,
            100,
        )
        .await;
    let coupon = kim.issue(&source).await;

    let (status, created) = kim
        .order(
            json!([{"productId": tea, "quantity": 2}, {"productId": cup, "quantity": 1}]),
            Some(&coupon),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "PENDING");
    // 2 × 3,000 + 12,000 = 18,000; 10% = 1,800 (under the 2,000 cap).
    assert_eq!(
        (
            created["totalAmount"].as_u64(),
            created["discountAmount"].as_u64(),
            created["paymentAmount"].as_u64()
        ),
        (Some(18_000), Some(1_800), Some(16_200))
    );
    let order_id = created["orderId"].as_str().unwrap();

    let order = kim.await_order(order_id, &["CONFIRMED", "FAILED"]).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(
        order["steps"],
        json!({"stock": "DONE", "coupon": "DONE", "payment": "DONE"})
    );
    assert_eq!(kim.balance().await, 100_000 - 16_200);
    assert_eq!(admin.stock(&tea).await, 8);
    assert_eq!(admin.stock(&cup).await, 4);
    assert_eq!(kim.coupon_status(&coupon).await, "USED");
    let payment = kim.get(&format!("/payments?orderId={order_id}")).await;
    assert_eq!(
        (payment["status"].as_str(), payment["amount"].as_u64()),
        (Some("APPROVED"), Some(16_200))
    );

    // Statistics and ranking follow the confirmation.
    let ranking = kim
        .await_get("/products/ranking?days=3&limit=5", |r| {
            r["items"].as_array().is_some_and(|i| i.len() == 2)
        })
        .await;
    assert_eq!(ranking["items"][0]["productId"], tea.as_str());
    assert_eq!(ranking["items"][0]["quantitySold"], 2);
    assert_eq!(ranking["items"][1]["productId"], cup.as_str());
    let stats = admin.get(&format!("/products/{tea}/stats?days=7")).await;
    let today = stats["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (today["quantity"].as_u64(), today["amount"].as_u64()),
        (Some(2), Some(6_000))
    );
    assert_eq!(admin.get(&format!("/products/{tea}")).await["rank"], 1);

    // The ledger shows the charge and the payment, newest first.
    let ledger = kim.get("/balance/transactions").await;
    let kinds: Vec<&str> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PAYMENT", "CHARGE"]);

    // The timeline lists every event of the saga.
    let types = kim
        .await_get(&format!("/orders/{order_id}/timeline"), |t| {
            t["items"].as_array().is_some_and(|i| i.len() >= 7)
        })
        .await;
    let mut types: Vec<String> = types["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "BalanceDeducted",
            "CouponUsed",
            "OrderConfirmed",
            "OrderCreated",
            "PaymentApproved",
            "PaymentRequested",
            "StockReserved"
        ]
    );
    let (status, _) = kim
        .call(
            Method::GET,
            &format!("/orders/{order_id}/timeline?format=mermaid"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
