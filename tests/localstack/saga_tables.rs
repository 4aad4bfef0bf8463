//! The saga with every service's document store on DynamoDB (the in-memory bus between
//! them): the same handlers and repositories, on real conditional writes, transactions and
//! indexes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::{self, scenarios, serve};
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
    // A batch of ten on LocalStack's tables can take longer than the in-memory default.
    let system = serve(&[("REDELIVERY_SECONDS", "5")], move |config| {
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
    scenarios::an_order_with_a_coupon_is_confirmed_and_everything_adds_up(&sys, &admin).await;
    scenarios::insufficient_balance_fails_the_order_and_restores_stock_and_coupon(&sys, &admin)
        .await;
    scenarios::out_of_stock_after_payment_refunds_it_and_restores_the_coupon(&sys, &admin).await;

    // Lists page through the indexes: kim's orders, newest first.
    let kim = sys.user("kim-pages@shop.kr").await;
    kim.charge(30_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let mut orders = Vec::new();
    for _ in 0..2 {
        let order_id = kim
            .placed(json!([{"productId": tea, "quantity": 1}]), None)
            .await;
        kim.await_order(&order_id, &["CONFIRMED", "FAILED"]).await;
        orders.push(order_id);
    }
    let (status, first) = kim.call(Method::GET, "/orders?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first["items"][0]["orderId"],
        orders[1].as_str(),
        "newest first"
    );
    let cursor = first["nextCursor"].as_str().expect("a second page");
    let second = kim.get(&format!("/orders?limit=1&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["orderId"], orders[0].as_str());
    assert!(second.get("nextCursor").is_none(), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_users_racing_for_twenty_coupons_on_dynamodb_get_exactly_twenty() {
    let (sys, _tables) = start().await;
    let admin = sys.admin().await;
    scenarios::racing_for_coupons_issues_exactly_the_stock(&sys, &admin, 100, 20, 0).await;
    // A flash sale's source: each of its 20 coupons on a shard item of its own.
    scenarios::racing_for_coupons_issues_exactly_the_stock(&sys, &admin, 100, 20, 1_000).await;
}
