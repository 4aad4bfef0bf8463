//! A local system in the test process, served on a free port, and an HTTP client for it.

#![allow(dead_code)]

pub mod scenarios;

use std::collections::HashMap;
use std::time::Duration;

use local::config::LocalConfig;
use local::system::LocalSystem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestSystem {
    pub base: String,
    pub system: LocalSystem,
}

pub const ADMIN: &str = "admin@shop.kr";

/// Every request of a test comes from one address (127.0.0.1), so the per-client limits
/// are off unless a test sets them: a test of the limits turns them on again.
pub use local::config::NO_CLIENT_LIMITS;

/// Starts the whole system with these extra settings (e.g. `ORDER_TTL_SECONDS`).
pub async fn start(settings: &[(&str, &str)]) -> TestSystem {
    start_with_clock(settings, std::sync::Arc::new(platform::clock::SystemClock)).await
}

/// The same on a clock the test controls.
pub async fn start_with_clock(
    settings: &[(&str, &str)],
    clock: std::sync::Arc<dyn platform::clock::Clock>,
) -> TestSystem {
    serve(settings, |config| {
        LocalSystem::start_with(config, clock, std::sync::Arc::new(platform::ids::RandomIds))
            .expect("start")
    })
    .await
}

/// Starts a system built by `build` from the test configuration, on a free port.
pub async fn serve(
    settings: &[(&str, &str)],
    build: impl FnOnce(LocalConfig) -> LocalSystem,
) -> TestSystem {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("JWT_SECRET", "saga-tests-secret-of-at-least-32-bytes"),
        ("SWEEP_INTERVAL_SECONDS", "1"),
    ]);
    env.extend(NO_CLIENT_LIMITS);
    env.extend(settings.iter().copied());
    let config = LocalConfig::from_env(&env).expect("test configuration");
    let system = build(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = system.router();
    // The server `shop-local` runs, with its limits and the peer's address.
    tokio::spawn(local::server::serve(
        listener,
        router,
        local::server::Limits::default(),
        std::future::pending(),
    ));
    TestSystem { base, system }
}

/// A signed-in user.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: String,
    pub user_id: String,
}

pub async fn request(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Signs up `email` at `base`; their user id.
pub async fn sign_up(base: &str, email: &str) -> String {
    let (status, body) = request(
        base,
        Method::POST,
        "/users/signup",
        None,
        Some(json!({"email": email, "password": "secret123", "name": "Tester"})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["userId"].as_str().unwrap().to_owned()
}

/// Logs in `email` (signed up by [`sign_up`]) at `base`.
pub async fn logged_in(base: &str, email: &str, user_id: String) -> Client {
    let (status, body) = request(
        base,
        Method::POST,
        "/users/login",
        None,
        Some(json!({"email": email, "password": "secret123"})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Client {
        base: base.to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
        user_id,
    }
}

/// Signs up and logs in `email` at `base`.
pub async fn signed_up(base: &str, email: &str) -> Client {
    let user_id = sign_up(base, email).await;
    logged_in(base, email, user_id).await
}

/// Signs up [`ADMIN`], gives them the admin role the way an operator would (the bootstrap,
/// straight on the store), and logs in.
pub async fn admin_signed_up(base: &str, users: &user_service::app::UserService) -> Client {
    let user_id = sign_up(base, ADMIN).await;
    users
        .grant_role(&user_id, platform::identity::Role::Admin)
        .await
        .expect("grant the admin role");
    logged_in(base, ADMIN, user_id).await
}

impl TestSystem {
    pub async fn user(&self, email: &str) -> Client {
        signed_up(&self.base, email).await
    }

    pub async fn admin(&self) -> Client {
        admin_signed_up(&self.base, &self.system.services.users).await
    }
}

impl scenarios::Backend for TestSystem {
    fn base(&self) -> &str {
        &self.base
    }

    fn users(&self) -> &user_service::app::UserService {
        &self.system.services.users
    }

    async fn hold(&self, _topic: contract::Service, queue: &str) {
        self.system
            .bus
            .hold(queue)
            .expect("a queue of the template");
    }

    async fn settled(&self, queue: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let depth = self
                .system
                .bus
                .depth(queue)
                .expect("a queue of the template");
            if depth.visible + depth.in_flight == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{queue} still holds {depth:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn deliver_late(&self, queue: &str, _order_id: &str) {
        self.system
            .bus
            .release(queue)
            .expect("a queue of the template");
    }
}

impl Client {
    /// A POST as a well-behaved client sends it: a 503 `CONTENDED` (every bounded attempt
    /// lost a race) is tried again after its `Retry-After`, a few times.
    pub async fn call_retrying_contention(&self, path: &str) -> (StatusCode, Value) {
        for _ in 0..10 {
            let response = reqwest::Client::new()
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&json!({}))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return (status, body);
            }
            assert_eq!(body["error"]["code"], "CONTENDED", "{body}");
            let wait = retry_after.expect("a 503 says when to retry");
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        panic!("POST {path} stayed contended through 10 tries");
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        request(&self.base, method, path, Some(&self.token), body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn charge(&self, amount: u64) {
        let (status, body) = self
            .post("/balance/charge", json!({ "amount": amount }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn balance(&self) -> u64 {
        self.get("/balance").await["amount"].as_u64().unwrap()
    }

    /// Registers a product (as an admin) and waits until the order service can price it.
    pub async fn product(&self, name: &str, price: u64, stock: u64) -> String {
        self.new_product(json!({"name": name, "price": price, "stock": stock}))
            .await
    }

    /// A product for a flash sale: its stock spread over shards for `rate` orders a second.
    pub async fn product_for(&self, name: &str, price: u64, stock: u64, rate: u64) -> String {
        self.new_product(json!({"name": name, "price": price, "stock": stock,
            "expectedOrdersPerSecond": rate}))
            .await
    }

    async fn new_product(&self, body: Value) -> String {
        let (status, body) = self.post("/products", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["productId"].as_str().unwrap().to_owned()
    }

    pub async fn stock(&self, product_id: &str) -> u64 {
        self.get(&format!("/products/{product_id}")).await["stock"]
            .as_u64()
            .unwrap()
    }

    /// A coupon source issuing now (as an admin).
    pub async fn coupon_source(&self, discount: Value, minimum: u64, quantity: u64) -> String {
        self.new_coupon_source(discount, minimum, quantity, None)
            .await
    }

    /// A source for a flash sale: spread over shards for `rate` issues a second.
    pub async fn coupon_source_for(&self, discount: Value, quantity: u64, rate: u64) -> String {
        self.new_coupon_source(discount, 0, quantity, Some(rate))
            .await
    }

    async fn new_coupon_source(
        &self,
        discount: Value,
        minimum: u64,
        quantity: u64,
        rate: Option<u64>,
    ) -> String {
        let now = chrono::Utc::now();
        let mut body = json!({
            "name": "Welcome",
            "discount": discount,
            "minimumOrderAmount": minimum,
            "quantity": quantity,
            "issuableFrom": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "issuableUntil": (now + chrono::Duration::days(1)).to_rfc3339(),
            "couponValidDays": 7,
        });
        if let Some(rate) = rate {
            body["expectedIssuesPerSecond"] = rate.into();
        }
        let (status, body) = self.post("/coupon-sources", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["sourceId"].as_str().unwrap().to_owned()
    }

    pub async fn issue(&self, source_id: &str) -> String {
        let (status, body) = self
            .post(&format!("/coupon-sources/{source_id}/issue"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["couponId"].as_str().unwrap().to_owned()
    }

    pub async fn coupon_status(&self, coupon_id: &str) -> String {
        let coupons = self.get("/coupons").await;
        coupons["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["couponId"] == coupon_id)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Places an order, retrying while the order service has not yet heard of its products
    /// or coupon (their events are on the way).
    pub async fn order(&self, items: Value, coupon_id: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({ "items": items });
        if let Some(c) = coupon_id {
            body["couponId"] = json!(c);
        }
        for _ in 0..100 {
            let (status, answer) = self.post("/orders", body.clone()).await;
            let not_yet = status == StatusCode::UNPROCESSABLE_ENTITY
                && matches!(
                    answer["error"]["code"].as_str(),
                    Some("UNKNOWN_PRODUCT" | "UNKNOWN_COUPON")
                );
            if !not_yet {
                return (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the order service never learnt of the products or coupon of {body}");
    }

    pub async fn placed(&self, items: Value, coupon_id: Option<&str>) -> String {
        let (status, body) = self.order(items, coupon_id).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["orderId"].as_str().unwrap().to_owned()
    }

    /// Waits (at most 60 s) until the order is in one of `statuses`; returns it.
    pub async fn await_order(&self, order_id: &str, statuses: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let order = self.get(&format!("/orders/{order_id}")).await;
            if statuses.contains(&order["status"].as_str().unwrap_or_default()) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} still {} after 60 s",
                order["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most 60 s) for `GET path` to answer 200 with a body of which `check` holds
    /// (what it answers until then, a 404 say, is "not yet").
    pub async fn await_get(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.call(Method::GET, path, None).await;
            if status == StatusCode::OK && check(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} never satisfied the check; it last answered {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (with a deadline) until `order_id`'s timeline holds an `event_type`, and
    /// answers the timeline.
    pub async fn await_timeline_with(&self, order_id: &str, event_type: &str) -> Value {
        self.await_timeline_with_all(order_id, &[event_type]).await
    }

    /// The timeline once every one of `event_types` is in it. The timeline is written in
    /// batches, in parallel: a later event may be listed before an earlier one.
    pub async fn await_timeline_with_all(&self, order_id: &str, event_types: &[&str]) -> Value {
        self.await_get(&format!("/orders/{order_id}/timeline"), |t| {
            t["items"].as_array().is_some_and(|items| {
                event_types
                    .iter()
                    .all(|wanted| items.iter().any(|e| e["type"] == *wanted))
            })
        })
        .await
    }

    pub async fn timeline_types(&self, order_id: &str) -> Vec<String> {
        let timeline = self.get(&format!("/orders/{order_id}/timeline")).await;
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}
