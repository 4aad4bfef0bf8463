//! The saga with every service's document store on DynamoDB (the in-memory bus between
//! them): the same handlers and repositories, on real conditional writes, transactions and
//! indexes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::{self, serve};
use contract::Service;
use local::system::LocalSystem;
use platform::clock::SystemClock;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::ids::RandomIds;
use platform::testing::TeeStore;
use platform::testing::aws::{TestTable, endpoint};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The system, and its tables (deleted when they go).
async fn start() -> (support::TestSystem, Vec<TestTable>) {
    let client = endpoint().dynamodb().await;
    let mut tables = BTreeMap::new();
    let mut kept = Vec::new();
    for service in Service::ALL {
        let table = endpoint().table(&client, service.name()).await;
        tables.insert(service, table.name.clone());
        kept.push(table);
    }
    let system = serve(&[], move |config| {
        LocalSystem::start_on(
            config,
            Arc::new(SystemClock),
            Arc::new(RandomIds),
            |service, outbox| {
                let table = tables[&service].clone();
                Arc::new(TeeStore {
                    inner: Arc::new(DynamoDocStore::new(client.clone(), table)),
                    outbox,
                })
            },
        )
        .expect("start")
    })
    .await;
    (system, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_success_and_failure_sagas_on_dynamodb() {
    let (sys, _tables) = start().await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    kim.charge(30_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let vase = admin.product("Vase", 25_000, 5).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 1_000}), 0, 10)
        .await;
    let coupon = kim.issue(&source).await;

    let order_id = kim
        .placed(json!([{"productId": tea, "quantity": 4}]), Some(&coupon))
        .await;
    assert_eq!(
        kim.await_order(&order_id, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    assert_eq!(kim.balance().await, 30_000 - 11_000);
    assert_eq!(admin.stock(&tea).await, 6);
    assert_eq!(kim.coupon_status(&coupon).await, "USED");
    kim.await_get("/products/ranking", |r| r["items"][0]["quantitySold"] == 4)
        .await;

    // Not enough money left for this one: it fails and everything comes back.
    let failing = kim
        .placed(json!([{"productId": vase, "quantity": 1}]), None)
        .await;
    let order = kim.await_order(&failing, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (order["status"].as_str(), order["failureReason"].as_str()),
        (Some("FAILED"), Some("PAYMENT_FAILED"))
    );
    assert_eq!(kim.balance().await, 19_000);
    assert_eq!(admin.stock(&vase).await, 5);

    // Lists page through the indexes.
    let (status, first) = kim.call(Method::GET, "/orders?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first["items"][0]["orderId"],
        failing.as_str(),
        "newest first"
    );
    let cursor = first["nextCursor"].as_str().expect("a second page");
    let second = kim.get(&format!("/orders?limit=1&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["orderId"], order_id.as_str());
    assert!(second.get("nextCursor").is_none(), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_users_racing_for_twenty_coupons_on_dynamodb_get_exactly_twenty() {
    let (sys, _tables) = start().await;
    let admin = sys.admin().await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 1_000}), 0, 20)
        .await;
    let answers = support::race_for_coupons(&sys, &source, 100).await;
    let created = support::issued_count(&answers);
    assert_eq!(created, 20);
    assert_eq!(
        admin.get(&format!("/coupon-sources/{source}")).await["issued"],
        20
    );
}
