//! Contested values under concurrency, through HTTP: stock, coupon quantity, one coupon per
//! user.

use crate::support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Client, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_orders_on_a_stock_of_fifty_confirm_exactly_fifty() {
    two_hundred_orders_on_fifty_lamps(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_orders_on_fifty_lamps_over_twenty_shards_confirm_exactly_fifty() {
    two_hundred_orders_on_fifty_lamps(Some(1_000)).await;
}

/// 200 orders of one lamp each at once, from 20 customers, for 50 lamps (spread over shards
/// for `rate` orders a second, if given).
async fn two_hundred_orders_on_fifty_lamps(rate: Option<u64>) {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let lamp = match rate {
        Some(rate) => admin.product_for("Lamp", 1_000, 50, rate).await,
        None => admin.product("Lamp", 1_000, 50).await,
    };
    let mut users = Vec::new();
    for n in 0..20 {
        let user = sys.user(&format!("buyer{n}@shop.kr")).await;
        user.charge(10_000).await;
        users.push(user);
    }
    let orders = futures_orders(&users, &lamp).await;
    assert_eq!(orders.len(), 200);

    let mut confirmed = 0;
    for (user, order_id) in &orders {
        let order = user.await_order(order_id, &["CONFIRMED", "FAILED"]).await;
        if order["status"] == "CONFIRMED" {
            confirmed += 1;
        } else {
            assert_eq!(order["failureReason"], "OUT_OF_STOCK", "{order}");
        }
    }
    assert_eq!(confirmed, 50);
    assert_eq!(admin.stock(&lamp).await, 0);
    // A FAILED order is final only after its payment was cancelled or refunded, so the
    // balances are settled now.
    let mut taken = 0;
    for user in &users {
        taken += 10_000 - user.balance().await;
    }
    assert_eq!(
        taken,
        50 * 1_000,
        "money taken for exactly the confirmed orders"
    );
}

#[tokio::test]
async fn a_sharded_products_stock_is_added_removed_and_given_back_over_its_shards() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    // 7 cups over 20 shards: most shards start empty.
    let cup = admin.product_for("Cup", 500, 7, 1_000).await;
    let path = format!("/products/{cup}");
    assert_eq!(admin.stock(&cup).await, 7);
    let patch = |body| admin.call(Method::PATCH, &path, Some(body));
    let (status, body) = patch(json!({"stockDelta": 33})).await;
    assert_eq!(
        (status, body["stock"].as_u64()),
        (StatusCode::OK, Some(40)),
        "{body}"
    );
    let (status, body) = patch(json!({"stockDelta": -41})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("INSUFFICIENT_STOCK"))
    );
    // A new price and fewer cups in one change.
    let (status, body) = patch(json!({"price": 600, "stockDelta": -38})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["stock"].as_u64(), body["price"].as_u64()),
        (Some(2), Some(600))
    );

    // Two orders take the last two; a third is refused; a cancel gives one back.
    let kim = sys.user("kim@shop.kr").await;
    kim.charge(10_000).await;
    let cups = json!([{"productId": cup, "quantity": 1}]);
    let first = kim.placed(cups.clone(), None).await;
    let second = kim.placed(cups.clone(), None).await;
    for order in [&first, &second] {
        kim.await_order(order, &["CONFIRMED"]).await;
    }
    let third = kim.placed(cups.clone(), None).await;
    let refused = kim.await_order(&third, &["FAILED"]).await;
    assert_eq!(refused["failureReason"], "OUT_OF_STOCK", "{refused}");
    assert_eq!(admin.stock(&cup).await, 0);
    let (status, body) = kim
        .call(Method::POST, &format!("/orders/{first}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    kim.await_order(&first, &["CANCELLED"]).await;
    assert_eq!(admin.stock(&cup).await, 1);
    let fourth = kim.placed(cups, None).await;
    kim.await_order(&fourth, &["CONFIRMED"]).await;
    assert_eq!(admin.stock(&cup).await, 0);
}

/// Ten orders of one lamp per user, all at once.
async fn futures_orders(users: &[Client], lamp: &str) -> Vec<(Client, String)> {
    let mut tasks = Vec::new();
    for user in users {
        for _ in 0..10 {
            let user = user.clone();
            let lamp = lamp.to_owned();
            tasks.push(tokio::spawn(async move {
                let id = user
                    .placed(json!([{"productId": lamp, "quantity": 1}]), None)
                    .await;
                (user, id)
            }));
        }
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_users_racing_for_a_hundred_coupons_get_exactly_a_hundred() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::racing_for_coupons_issues_exactly_the_stock(&sys, &admin, 500, 100, 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_users_racing_for_a_hundred_coupons_over_fifty_shards_get_exactly_a_hundred() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    support::scenarios::racing_for_coupons_issues_exactly_the_stock(&sys, &admin, 500, 100, 2_500)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_issuing_twenty_times_at_once_gets_one_coupon() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("eager@shop.kr").await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 1_000}), 0, 100)
        .await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let kim = kim.clone();
            let path = format!("/coupon-sources/{source}/issue");
            tokio::spawn(async move { kim.call(Method::POST, &path, Some(json!({}))).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "ALREADY_ISSUED"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1);
    let coupons = kim
        .await_get("/coupons", |c| {
            c["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await;
    assert_eq!(coupons["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        admin.get(&format!("/coupon-sources/{source}")).await["issued"],
        1
    );
}
