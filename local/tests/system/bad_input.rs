//! api.md's "Bad input", through HTTP: each case gets its status and error code, and
//! nothing changes.

use crate::support;

use std::sync::Arc;

use platform::clock::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Client, request, start, start_with_clock};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Sends each case and checks its status and code.
async fn expect_all(
    client: &Client,
    method: Method,
    path: &str,
    cases: Vec<(Value, StatusCode, &str)>,
) {
    for (body, status, expected) in cases {
        let (got, answer) = client.call(method.clone(), path, Some(body.clone())).await;
        assert_eq!(
            (got, code(&answer)),
            (status, expected),
            "{method} {path} {body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn bad_orders_are_refused_and_change_nothing() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    let lee = sys.user("lee@shop.kr").await;
    kim.charge(50_000).await;
    lee.charge(50_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 20_000, 10)
        .await;
    let kims_coupon = kim.issue(&source).await;
    let lees_coupon = lee.issue(&source).await;
    // Make sure the order service knows them all before testing what it refuses.
    let probe = lee
        .placed(
            json!([{"productId": tea, "quantity": 7}]),
            Some(&lees_coupon),
        )
        .await;
    lee.await_order(&probe, &["CONFIRMED"]).await;
    let (status, body) = kim
        .order(
            json!([{"productId": tea, "quantity": 1}]),
            Some(&kims_coupon),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "BELOW_MINIMUM_ORDER_AMOUNT"
        )
    );
    let before = (kim.balance().await, admin.stock(&tea).await);

    let line = |q: Value| json!({"items": [{"productId": tea, "quantity": q}]});
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"productId": format!("p{i}"), "quantity": 1}))
        .collect();
    let cases = vec![
        (
            json!({"items": [{"productId": tea, "quantity": "two"}]}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"items": [{"productId": tea, "quantity": 1, "price": 1}]}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"products": []}),
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
        ),
        (
            json!({"items": []}),
            StatusCode::BAD_REQUEST,
            "INVALID_ITEM_COUNT",
        ),
        (
            json!({ "items": many }),
            StatusCode::BAD_REQUEST,
            "INVALID_ITEM_COUNT",
        ),
        (line(json!(0)), StatusCode::BAD_REQUEST, "INVALID_QUANTITY"),
        (line(json!(-3)), StatusCode::BAD_REQUEST, "INVALID_QUANTITY"),
        (
            line(json!(1_001)),
            StatusCode::BAD_REQUEST,
            "INVALID_QUANTITY",
        ),
        (line(json!(1e30)), StatusCode::BAD_REQUEST, "INVALID_BODY"),
        (
            json!({"items": [{"productId": tea, "quantity": 1}, {"productId": tea, "quantity": 2}]}),
            // Well-formed as the document says (no schema can say "distinct by productId"),
            // refused by a rule.
            StatusCode::UNPROCESSABLE_ENTITY,
            "DUPLICATE_PRODUCT",
        ),
        (
            json!({"items": [{"productId": "p".repeat(101), "quantity": 1}]}),
            StatusCode::BAD_REQUEST,
            "INVALID_PRODUCT_ID",
        ),
        (
            json!({"items": [{"productId": "nope", "quantity": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_PRODUCT",
        ),
        (
            json!({"items": [{"productId": tea, "quantity": 7}], "couponId": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_COUPON",
        ),
        (
            // Another user's coupon answers exactly as an unknown one (no existence oracle).
            json!({"items": [{"productId": tea, "quantity": 7}], "couponId": lees_coupon}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_COUPON",
        ),
        (
            json!({"items": [{"productId": tea, "quantity": 1}], "couponId": kims_coupon}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "BELOW_MINIMUM_ORDER_AMOUNT",
        ),
    ];
    expect_all(&kim, Method::POST, "/orders", cases).await;

    // Not even the message tells another user's coupon from one that does not exist.
    let (_, foreign) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 7}], "couponId": lees_coupon}),
        )
        .await;
    let (_, unknown) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 7}], "couponId": "nope"}),
        )
        .await;
    assert_eq!(foreign, unknown);

    // Lee's coupon is used by Lee's confirmed order.
    let (status, body) = lee
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 7}], "couponId": lees_coupon}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "COUPON_USED")
    );

    let response = reqwest::Client::new()
        .post(format!("{}/orders", sys.base))
        .bearer_auth(&kim.token)
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&response.json().await.unwrap()), "MALFORMED_JSON");
    let big = json!({"items": [{"productId": "x".repeat(70_000), "quantity": 1}]});
    let (status, body) = kim.post("/orders", big).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE")
    );

    // Nothing changed.
    assert_eq!(kim.get("/orders").await["items"], json!([]));
    assert_eq!((kim.balance().await, admin.stock(&tea).await), before);
    assert_eq!(kim.coupon_status(&kims_coupon).await, "ISSUED");
}

#[tokio::test]
async fn an_expired_coupon_is_refused() {
    let clock = ManualClock::starting_at(chrono::Utc::now());
    let sys = start_with_clock(&[], Arc::new(clock.clone())).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 500}), 10_000, 10)
        .await;
    let coupon = kim.issue(&source).await;
    kim.await_get("/coupons", |c| {
        c["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    // Known to the order service (refused for its minimum, not as unknown).
    let (status, body) = kim
        .order(json!([{"productId": tea, "quantity": 1}]), Some(&coupon))
        .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "BELOW_MINIMUM_ORDER_AMOUNT"
        )
    );
    clock.advance(chrono::Duration::days(8));
    let (status, _) = kim.call(Method::GET, "/coupons", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the token expired with the clock"
    );
    let (_, login) = request(
        &sys.base,
        Method::POST,
        "/users/login",
        None,
        Some(json!({"email": "kim@shop.kr", "password": "secret123"})),
        &[],
    )
    .await;
    let kim = Client {
        token: login["token"].as_str().unwrap().to_owned(),
        ..kim
    };
    assert_eq!(kim.coupon_status(&coupon).await, "EXPIRED");
    let (status, body) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 4}], "couponId": coupon}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "COUPON_EXPIRED")
    );
    assert_eq!(kim.get("/orders").await["items"], json!([]));
}

#[tokio::test]
async fn bad_charges_products_and_coupon_sources_are_refused_and_change_nothing() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    kim.charge(1_000).await;
    expect_all(
        &kim,
        Method::POST,
        "/balance/charge",
        vec![
            (
                json!({"amount": 0}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_AMOUNT",
            ),
            (
                json!({"amount": -500}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_AMOUNT",
            ),
            (
                json!({"amount": 100_000_000}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "BALANCE_LIMIT_EXCEEDED",
            ),
            (
                json!({"amount": i64::MAX}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "BALANCE_LIMIT_EXCEEDED",
            ),
            (
                json!({"amount": 1e30}),
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
            ),
            (
                json!({"amount": "1000"}),
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
            ),
            (json!({}), StatusCode::BAD_REQUEST, "INVALID_BODY"),
        ],
    )
    .await;
    assert_eq!(kim.balance().await, 1_000);
    assert_eq!(
        kim.get("/balance/transactions").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let tea = admin.product("Tea", 3_000, 10).await;
    expect_all(
        &admin,
        Method::POST,
        "/products",
        vec![
            (
                json!({"name": "", "price": 1, "stock": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_NAME",
            ),
            (
                json!({"name": "x".repeat(101), "price": 1, "stock": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_NAME",
            ),
            (
                json!({"name": "A", "price": -1, "stock": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PRICE",
            ),
            (
                json!({"name": "A", "price": 1, "stock": -1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_STOCK",
            ),
            (
                json!({"name": "A", "price": 1e25, "stock": 1}),
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
            ),
        ],
    )
    .await;
    let (status, body) = kim
        .post("/products", json!({"name": "A", "price": 1, "stock": 1}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    let patch = format!("/products/{tea}");
    expect_all(
        &admin,
        Method::PATCH,
        &patch,
        vec![
            (
                json!({"stockDelta": -11}),
                StatusCode::CONFLICT,
                "INSUFFICIENT_STOCK",
            ),
            (
                json!({}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "NOTHING_TO_CHANGE",
            ),
            (
                json!({"price": -5}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PRICE",
            ),
            (json!({"stock": 5}), StatusCode::BAD_REQUEST, "INVALID_BODY"),
        ],
    )
    .await;
    let (status, _) = admin
        .call(
            Method::PATCH,
            "/products/no-such-product",
            Some(json!({"price": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let products = kim.get("/products").await;
    assert_eq!(products["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            products["items"][0]["stock"].as_u64(),
            products["items"][0]["price"].as_u64()
        ),
        (Some(10), Some(3_000))
    );

    let now = chrono::Utc::now();
    let source = |discount: Value,
                  quantity: i64,
                  from: chrono::DateTime<chrono::Utc>,
                  until: chrono::DateTime<chrono::Utc>| {
        json!({"name": "S", "discount": discount, "quantity": quantity, "issuableFrom": from.to_rfc3339(), "issuableUntil": until.to_rfc3339(), "couponValidDays": 7})
    };
    let day = chrono::Duration::days(1);
    let fixed = json!({"type": "FIXED", "amount": 500});
    expect_all(
        &admin,
        Method::POST,
        "/coupon-sources",
        vec![
            (
                source(json!({"type": "PERCENT", "rate": 0}), 10, now, now + day),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_DISCOUNT",
            ),
            (
                source(json!({"type": "PERCENT", "rate": 101}), 10, now, now + day),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_DISCOUNT",
            ),
            (
                source(json!({"type": "GIFT", "amount": 5}), 10, now, now + day),
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
            ),
            (
                source(fixed.clone(), 0, now, now + day),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_QUANTITY",
            ),
            (
                source(fixed.clone(), 10, now + day, now),
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_ISSUING_WINDOW",
            ),
        ],
    )
    .await;
    let open = admin.coupon_source(fixed.clone(), 0, 1).await;
    kim.issue(&open).await;
    let patch = format!("/coupon-sources/{open}");
    expect_all(
        &admin,
        Method::PATCH,
        &patch,
        vec![(
            json!({"quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_QUANTITY",
        )],
    )
    .await;
    let (status, body) = admin
        .call(Method::PATCH, &patch, Some(json!({"active": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lee = sys.user("lee@shop.kr").await;
    let (status, body) = lee
        .post(&format!("/coupon-sources/{open}/issue"), json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "SOURCE_INACTIVE")
    );
    let (status, body) = admin
        .call(Method::PATCH, &patch, Some(json!({"active": true})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = lee
        .post(&format!("/coupon-sources/{open}/issue"), json!({}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "SOLD_OUT"));
    let later = admin.coupon_source(fixed, 0, 5).await;
    let (status, body) = admin.call(Method::PATCH, &format!("/coupon-sources/{later}"), Some(json!({"issuableFrom": (now + day).to_rfc3339(), "issuableUntil": (now + day + day).to_rfc3339()}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = lee
        .post(&format!("/coupon-sources/{later}/issue"), json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "OUTSIDE_ISSUING_WINDOW")
    );
    assert_eq!(
        admin.get(&format!("/coupon-sources/{later}")).await["issued"],
        0
    );
}

#[tokio::test]
async fn bad_routes_methods_and_query_strings_get_error_bodies() {
    let sys = start(&[]).await;
    let kim = sys.user("kim@shop.kr").await;
    let cases = [
        (Method::GET, "/nowhere", StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            Method::DELETE,
            "/orders",
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            Method::PUT,
            "/balance",
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            Method::GET,
            "/orders?limit=0",
            StatusCode::BAD_REQUEST,
            "INVALID_LIMIT",
        ),
        (
            Method::GET,
            "/orders?limit=lots",
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            Method::GET,
            "/orders?cursor=zz",
            StatusCode::BAD_REQUEST,
            "INVALID_CURSOR",
        ),
        (
            Method::GET,
            "/balance/transactions?limit=101",
            StatusCode::BAD_REQUEST,
            "INVALID_LIMIT",
        ),
        (
            Method::GET,
            "/products/ranking?days=0",
            StatusCode::BAD_REQUEST,
            "INVALID_DAYS",
        ),
        (
            Method::GET,
            "/products/ranking?days=3&top=1",
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            Method::GET,
            "/payments",
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            Method::GET,
            "/payments?orderId=nope",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            "/orders/nope",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            "/orders/nope/timeline?format=svg",
            StatusCode::BAD_REQUEST,
            "INVALID_FORMAT",
        ),
    ];
    for (method, path, status, expected) in cases {
        let (got, body) = kim.call(method.clone(), path, None).await;
        assert_eq!(
            (got, code(&body)),
            (status, expected),
            "{method} {path}: {body}"
        );
    }
    let (status, body) = request(&sys.base, Method::GET, "/orders", None, None, &[]).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
}

#[tokio::test]
async fn ids_of_another_shape_are_refused_before_any_store_sees_them() {
    let sys = start(&[]).await;
    let admin = sys.admin().await;
    let kim = sys.user("kim@shop.kr").await;
    kim.charge(10_000).await;
    let tea = admin.product("Tea", 1_000, 10).await;
    let long = "x".repeat(1_000);
    for path in [
        "/products/%ff%fe".to_owned(),
        "/products/a%2Fb".to_owned(),
        format!("/products/{long}"),
        format!("/orders/{long}"),
        format!("/orders/{long}/timeline"),
        format!("/coupon-sources/{long}"),
        format!("/users/{long}"),
    ] {
        let client = if path.starts_with("/users/") {
            &admin
        } else {
            &kim
        };
        let (status, body) = client.call(Method::GET, &path, None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "INVALID_ID"),
            "GET {path}: {body}"
        );
    }
    let (status, body) = kim
        .call(Method::GET, &format!("/payments?orderId={long}"), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        "{body}"
    );
    // A 60 KB coupon id (under the body limit) is refused by shape, not looked up.
    let (status, body) = kim
        .post(
            "/orders",
            json!({"items": [{"productId": tea, "quantity": 1}], "couponId": "c".repeat(60_000)}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_COUPON_ID"),
        "{body}"
    );
    assert_eq!(kim.balance().await, 10_000);
    assert_eq!(admin.stock(&tea).await, 10);
    assert!(
        kim.get("/orders").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
