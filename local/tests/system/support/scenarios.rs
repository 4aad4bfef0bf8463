//! Saga scenarios written once and run on each backend: the system in memory
//! (`local/tests/system/saga.rs`) and on AWS APIs (`tests/localstack/system.rs`). A backend
//! says where its HTTP edge is, who can make an admin, and how to hold a queue back.

use std::future::Future;

use contract::Service;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Client, admin_signed_up, signed_up};

/// A percent coupon, two products: the amounts, every step, the stock, the coupon, the
/// payment, the statistics, the ranking, the ledger and the timeline all add up.
pub async fn an_order_with_a_coupon_is_confirmed_and_everything_adds_up(
    sys: &impl Backend,
    admin: &Client,
) {
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

    // The timeline lists every event of the saga, and nothing else. An answer may be listed
    // twice (a repeated request is answered again, as a new event: delivery is at least
    // once, and a loaded emulator does deliver twice), so the types are compared as a set.
    let saga = [
        "BalanceDeducted",
        "CouponUsed",
        "OrderConfirmed",
        "OrderCreated",
        "PaymentApproved",
        "PaymentRequested",
        "SaleRecorded",
        "StockReserved",
    ];
    let timeline = kim.await_timeline_with_all(order_id, &saga).await;
    let types: std::collections::BTreeSet<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, saga.into_iter().collect());
    let (status, _) = kim
        .call(
            Method::GET,
            &format!("/orders/{order_id}/timeline?format=mermaid"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Payment never hears of the order (its `OrderCreated` is held back): the sweep fails it
/// when its time is up (the backend starts with a short `ORDER_TTL_SECONDS`), the stock
/// comes back, and the late `OrderCreated` takes no money.
pub async fn the_sweep_fails_an_order_that_cannot_complete_and_takes_no_money(
    sys: &impl Backend,
    admin: &Client,
) {
    let yoon = sys.user("yoon@shop.kr").await;
    yoon.charge(10_000).await;
    let pen = admin.product("Pen", 2_000, 20).await;
    sys.hold(Service::Order, "payment-order-created").await;
    let order_id = yoon
        .placed(json!([{"productId": pen, "quantity": 2}]), None)
        .await;
    let order = yoon.await_order(&order_id, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (order["status"].as_str(), order["failureReason"].as_str()),
        (Some("FAILED"), Some("EXPIRED")),
        "{order}"
    );
    yoon.await_get(&format!("/products/{pen}"), |p| p["stock"] == 20)
        .await;
    // Both listed in time (in either order: the timeline is written in batches).
    yoon.await_timeline_with_all(&order_id, &["OrderFailed", "OrderFailureCompleted"])
        .await;
    sys.deliver_late("payment-order-created", &order_id).await;
    sys.settled("payment-order-created").await;
    assert_eq!(yoon.balance().await, 10_000);
}

/// `users` customers at once for `stock` coupons of a source created for `rate` issues a
/// second (so spread over `rate / 50` shards; 0: one): exactly `stock` distinct coupons,
/// every other answer `SOLD_OUT`, and the source counts them.
pub async fn racing_for_coupons_issues_exactly_the_stock(
    sys: &impl Backend,
    admin: &Client,
    users: usize,
    stock: u64,
    rate: u64,
) {
    let source = admin
        .coupon_source_for(json!({"type": "FIXED", "amount": 1_000}), stock, rate)
        .await;
    let path = format!("/coupon-sources/{source}/issue");
    let tasks: Vec<_> = (0..users)
        .map(|n| {
            let user_id = format!("racer-{n}");
            let token = sys
                .users()
                .tokens
                .issue(&user_id, platform::identity::Role::Customer)
                .unwrap()
                .token;
            let client = Client {
                base: sys.base().to_owned(),
                token,
                user_id,
            };
            let path = path.clone();
            tokio::spawn(async move { client.call_retrying_contention(&path).await })
        })
        .collect();
    let mut coupons = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => {
                let coupon = body["couponId"].as_str().expect("a coupon id").to_owned();
                assert!(coupons.insert(coupon), "issued twice: {body}");
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "SOLD_OUT", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(coupons.len() as u64, stock);
    let source = admin.get(&format!("/coupon-sources/{source}")).await;
    assert_eq!(
        (source["issued"].as_u64(), source["remaining"].as_u64()),
        (Some(stock), Some(0))
    );
}

pub trait Backend: Sync {
    fn base(&self) -> &str;
    fn users(&self) -> &user_service::app::UserService;
    /// Keeps what `topic` publishes from reaching `queue` (an `*-order-created` queue) until
    /// [`Backend::deliver_late`]: in memory the queue is held; on AWS its subscription is
    /// taken off.
    fn hold(&self, topic: Service, queue: &str) -> impl Future<Output = ()> + Send;
    /// Delivers `order_id`'s `OrderCreated` that `queue` missed: in memory the held messages
    /// are released; on AWS the event is read from the order table's outbox and sent to the
    /// queue as its subscription would have.
    fn deliver_late(&self, queue: &str, order_id: &str) -> impl Future<Output = ()> + Send;
    /// Waits (with a deadline) until `queue` has nothing left to deliver.
    fn settled(&self, queue: &str) -> impl Future<Output = ()> + Send;

    fn admin(&self) -> impl Future<Output = Client> + Send {
        admin_signed_up(self.base(), self.users())
    }

    fn user(&self, email: &str) -> impl Future<Output = Client> + Send {
        signed_up(self.base(), email)
    }
}

/// A confirmed order and a pending one (its payment held back) are cancelled: balance,
/// stock, the coupon and the best-seller statistics are as before, and the late step pays
/// nothing.
pub async fn cancelling_a_pending_and_a_confirmed_order_restores_everything(
    sys: &impl Backend,
    admin: &Client,
) {
    let choi = sys.user("choi@shop.kr").await;
    choi.charge(100_000).await;
    let pen = admin.product("Pen", 2_000, 20).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 0, 10)
        .await;
    let coupon = choi.issue(&source).await;

    // Confirmed, then cancelled.
    let confirmed = choi
        .placed(json!([{"productId": pen, "quantity": 5}]), Some(&coupon))
        .await;
    assert_eq!(
        choi.await_order(&confirmed, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    choi.await_get("/products/ranking?days=1", |r| {
        r["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(choi.balance().await, 100_000 - 9_500);
    let (status, body) = choi
        .post(&format!("/orders/{confirmed}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "CANCELLING");
    let order = choi.await_order(&confirmed, &["CANCELLED"]).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(choi.balance().await, 100_000);
    assert_eq!(admin.stock(&pen).await, 20);
    assert_eq!(choi.coupon_status(&coupon).await, "ISSUED");
    choi.await_get("/products/ranking?days=1", |r| {
        r["items"].as_array().is_some_and(|i| i.is_empty())
    })
    .await;
    let stats = admin.get(&format!("/products/{pen}/stats?days=1")).await;
    assert_eq!(stats["items"][0]["quantity"], 0);
    assert_eq!(stats["items"][0]["amount"], 0);
    assert_eq!(
        admin.get(&format!("/products/{pen}")).await["rank"],
        serde_json::Value::Null
    );

    // Cancelled while still PENDING: the payment step has not heard of the order, so it
    // cannot be confirmed before the cancel.
    sys.hold(Service::Order, "payment-order-created").await;
    let pending = choi
        .placed(json!([{"productId": pen, "quantity": 3}]), Some(&coupon))
        .await;
    choi.await_get(&format!("/orders/{pending}"), |o| {
        o["status"] == "PENDING" && o["steps"]["stock"] == "DONE" && o["steps"]["coupon"] == "DONE"
    })
    .await;
    let (status, body) = choi
        .post(&format!("/orders/{pending}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = choi.await_order(&pending, &["CANCELLED"]).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(choi.balance().await, 100_000);
    choi.await_get(&format!("/products/{pen}"), |p| p["stock"] == 20)
        .await;
    assert_eq!(choi.coupon_status(&coupon).await, "ISSUED");
    choi.await_timeline_with(&pending, "OrderCancellationCompleted")
        .await;

    // The OrderCreated that payment never heard of arrives after the cancellation: it finds
    // the tombstone the undo left, and no payment is made.
    sys.deliver_late("payment-order-created", &pending).await;
    sys.settled("payment-order-created").await;
    let (status, _) = choi
        .call(Method::GET, &format!("/payments?orderId={pending}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(choi.balance().await, 100_000);
}

/// Not enough money: the payment is refused, stock and coupon come back, and the coupon
/// serves a later order.
pub async fn insufficient_balance_fails_the_order_and_restores_stock_and_coupon(
    sys: &impl Backend,
    admin: &Client,
) {
    let lee = sys.user("lee@shop.kr").await;
    lee.charge(5_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 0, 10)
        .await;
    let coupon = lee.issue(&source).await;

    let order_id = lee
        .placed(json!([{"productId": tea, "quantity": 3}]), Some(&coupon))
        .await;
    let order = lee.await_order(&order_id, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(order["status"], "FAILED", "{order}");
    assert_eq!(order["failureReason"], "PAYMENT_FAILED");
    assert_eq!(lee.balance().await, 5_000, "nothing charged");
    lee.await_get(&format!("/products/{tea}"), |p| p["stock"] == 10)
        .await;
    lee.await_get("/coupons", |c| c["items"][0]["status"] == "ISSUED")
        .await;
    lee.await_get(&format!("/payments?orderId={order_id}"), |p| {
        p["status"] == "CANCELLED"
    })
    .await;
    // The whole saga listed in time, the refused deduction among it (the timeline is
    // written in batches: in time, not in order).
    let wanted = ["BalanceDeductionFailed", "OrderFailureCompleted"];
    lee.await_get(&format!("/orders/{order_id}/timeline"), |t| {
        t["items"].as_array().is_some_and(|items| {
            items.len() >= 8 && wanted.iter().all(|w| items.iter().any(|e| e["type"] == *w))
        })
    })
    .await;

    // The coupon can be used again by a new order.
    lee.charge(10_000).await;
    let again = lee
        .placed(json!([{"productId": tea, "quantity": 1}]), Some(&coupon))
        .await;
    assert_eq!(
        lee.await_order(&again, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    // The refused deduction moved no money: the ledger, read one entry a page, lists the
    // charges and the payment only.
    let (mut kinds, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = lee
            .get(&format!("/balance/transactions?limit=1{cursor}"))
            .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "{page}");
        kinds.extend(
            items
                .iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned)),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(kinds, ["PAYMENT", "CHARGE", "CHARGE"]);
}

/// The payment is approved, then the stock runs out (the stock step hears of the order only
/// after the payment): the payment is refunded and the coupon comes back.
pub async fn out_of_stock_after_payment_refunds_it_and_restores_the_coupon(
    sys: &impl Backend,
    admin: &Client,
) {
    let park = sys.user("park@shop.kr").await;
    park.charge(50_000).await;
    let vase = admin.product("Vase", 10_000, 1).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 1_000}), 0, 10)
        .await;
    let coupon = park.issue(&source).await;

    sys.hold(Service::Order, "product-order-created").await;
    let order_id = park
        .placed(json!([{"productId": vase, "quantity": 2}]), Some(&coupon))
        .await;
    park.await_get(&format!("/payments?orderId={order_id}"), |p| {
        p["status"] == "APPROVED"
    })
    .await;
    assert_eq!(park.balance().await, 50_000 - 19_000);
    sys.deliver_late("product-order-created", &order_id).await;

    let order = park.await_order(&order_id, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (order["status"].as_str(), order["failureReason"].as_str()),
        (Some("FAILED"), Some("OUT_OF_STOCK")),
        "{order}"
    );
    park.await_get(&format!("/payments?orderId={order_id}"), |p| {
        p["status"] == "REFUNDED"
    })
    .await;
    assert_eq!(park.balance().await, 50_000, "refunded");
    park.await_get("/coupons", |c| c["items"][0]["status"] == "ISSUED")
        .await;
    assert_eq!(admin.stock(&vase).await, 1);
    let ledger = park.get("/balance/transactions").await;
    let kinds: Vec<&str> = ledger["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["REFUND", "PAYMENT", "CHARGE"]);
    let timeline = park
        .await_timeline_with_all(
            &order_id,
            &[
                "OrderFailureCompleted",
                "StockReservationFailed",
                "OrderFailed",
                "PaymentRefundRequested",
                "BalanceRefunded",
                "PaymentCancelled",
                "StockReleased",
                "CouponRestored",
            ],
        )
        .await;
    let types: Vec<&str> = timeline["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for expected in [
        "StockReservationFailed",
        "OrderFailed",
        "PaymentRefundRequested",
        "BalanceRefunded",
        "PaymentCancelled",
        "StockReleased",
        "CouponRestored",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
}
