//! The benchmarks' shoppers: requests through the system's gateway router (in process, the
//! same routes and auth as on AWS), the shop they set up, and the outcomes of their orders.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower::ServiceExt;
use user_service::app::UserService;

pub const ADMIN: &str = "admin@bench.kr";
const PASSWORD: &str = "bench-secret-1";

pub type BenchResult<T> = Result<T, String>;

/// Calls the gateway router in process.
#[derive(Clone)]
pub struct Shop {
    router: Router,
    /// For the bootstrap of the benchmark's administrator.
    users: Arc<UserService>,
}

impl Shop {
    pub fn new(router: Router, users: Arc<UserService>) -> Shop {
        Shop { router, users }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> BenchResult<(StatusCode, Value)> {
        send(&self.router, method, path, token, body, None).await
    }

    /// A request that must answer `expected`; returns the body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> BenchResult<Value> {
        let (status, value) = self.call(method.clone(), path, token, body).await?;
        if status != expected {
            return Err(format!("{method} {path} answered {status}: {value}"));
        }
        Ok(value)
    }

    /// Signs up and logs in; returns the token.
    pub async fn user(&self, email: &str) -> BenchResult<String> {
        self.sign_up(email).await?;
        self.log_in(email).await
    }

    /// Signs up [`ADMIN`], grants the role on the store (the bootstrap), logs in.
    pub async fn admin(&self) -> BenchResult<String> {
        let user_id = self.sign_up(ADMIN).await?;
        self.users
            .grant_role(&user_id, platform::identity::Role::Admin)
            .await
            .map_err(|e| e.to_string())?;
        self.log_in(ADMIN).await
    }

    async fn sign_up(&self, email: &str) -> BenchResult<String> {
        let form = json!({"email": email, "password": PASSWORD, "name": "Bench"});
        let body = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/users/signup",
                None,
                Some(form),
            )
            .await?;
        text(&body, "userId")
    }

    async fn log_in(&self, email: &str) -> BenchResult<String> {
        let login = json!({"email": email, "password": PASSWORD});
        let body = self
            .expect(
                StatusCode::OK,
                Method::POST,
                "/users/login",
                None,
                Some(login),
            )
            .await?;
        text(&body, "token")
    }
}

/// Sends one request to `router` in process, as a client at `peer` if given (the gateway
/// takes the client address from the connection, as API Gateway does).
pub async fn send(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    peer: Option<std::net::SocketAddr>,
) -> BenchResult<(StatusCode, Value)> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(b) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).map_err(|e| e.to_string())?;
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
    }
    let response = match router.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, value))
}

fn text(body: &Value, field: &str) -> BenchResult<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field} in {body}"))
}

/// One customer: a token, and a coupon for their first order.
#[derive(Clone)]
pub struct Customer {
    pub token: String,
    pub coupon: Option<String>,
}

/// The shop the orders are placed in.
#[derive(Clone)]
pub struct Scenario {
    pub customers: Vec<Customer>,
    /// Plenty of stock: these orders succeed when paid.
    pub plenty: String,
    /// Stock for about half the orders that ask for it: the rest fail OUT_OF_STOCK.
    pub scarce: String,
}

/// What the orders are: 1 in 10 customers never tops up (their orders fail at payment,
/// after stock and coupon were taken and are given back), 1 order in 20 asks for a scarce
/// product (about half fail OUT_OF_STOCK), every customer's first order uses a coupon.
/// About 87 % are confirmed.
pub async fn set_up(shop: &Shop, customers: usize, orders: usize) -> BenchResult<Scenario> {
    let admin = shop.admin().await?;
    let product = |name: &str, price: u64, stock: u64| {
        let body = json!({"name": name, "price": price, "stock": stock});
        let admin = admin.clone();
        async move {
            let body = shop
                .expect(
                    StatusCode::CREATED,
                    Method::POST,
                    "/products",
                    Some(&admin),
                    Some(body),
                )
                .await?;
            text(&body, "productId")
        }
    };
    let plenty = product("Green tea", 1_000, (orders as u64 * 2).clamp(10, 1_000_000)).await?;
    let scarce = product("Limited edition", 3_000, (orders as u64 / 40).max(1)).await?;
    let now = chrono::Utc::now();
    let source = json!({
        "name": "Welcome",
        "discount": {"type": "FIXED", "amount": 500},
        "minimumOrderAmount": 0,
        "quantity": customers.max(1),
        "issuableFrom": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "issuableUntil": (now + chrono::Duration::days(1)).to_rfc3339(),
        "couponValidDays": 7,
    });
    let source = shop
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/coupon-sources",
            Some(&admin),
            Some(source),
        )
        .await?;
    let source = text(&source, "sourceId")?;
    // Enough for every order of theirs at the dearest price, within the balance limit.
    let top_up = (orders.div_ceil(customers.max(1)) as u64 * 6_000).clamp(1, 100_000_000);
    // A few at a time: each password hash takes 19 MiB while it runs.
    let hashing = Arc::new(tokio::sync::Semaphore::new(4));
    let mut signing_up = tokio::task::JoinSet::new();
    for i in 0..customers {
        let shop = shop.clone();
        let source = source.clone();
        let hashing = hashing.clone();
        signing_up.spawn(async move {
            let _permit = hashing.acquire().await.map_err(|e| e.to_string())?;
            let token = shop.user(&format!("customer{i}@bench.kr")).await?;
            // One in ten never tops up: every order of theirs fails at payment.
            if i % 10 != 9 {
                shop.expect(
                    StatusCode::OK,
                    Method::POST,
                    "/balance/charge",
                    Some(&token),
                    Some(json!({ "amount": top_up })),
                )
                .await?;
            }
            let coupon = shop
                .expect(
                    StatusCode::CREATED,
                    Method::POST,
                    &format!("/coupon-sources/{source}/issue"),
                    Some(&token),
                    None,
                )
                .await?;
            Ok::<_, String>((
                i,
                Customer {
                    token,
                    coupon: Some(text(&coupon, "couponId")?),
                },
            ))
        });
    }
    let mut signed_up = Vec::with_capacity(customers);
    while let Some(joined) = signing_up.join_next().await {
        signed_up.push(joined.map_err(|e| e.to_string())??);
    }
    signed_up.sort_by_key(|(i, _)| *i);
    Ok(Scenario {
        customers: signed_up.into_iter().map(|(_, c)| c).collect(),
        plenty,
        scarce,
    })
}

impl Scenario {
    /// The body of order number `n` overall, by a customer placing their `kth` order.
    pub fn order(&self, customer: &Customer, n: usize, kth: usize) -> Value {
        let (product, quantity) = if n % 20 == 7 {
            (&self.scarce, 1)
        } else {
            (&self.plenty, 1 + n % 2)
        };
        let mut body = json!({"items": [{"productId": product, "quantity": quantity}]});
        if kth == 0
            && let Some(coupon) = &customer.coupon
        {
            body["couponId"] = json!(coupon);
        }
        body
    }
}

/// How a saga ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Confirmed,
    Failed,
}

enum Entry {
    Waiting(oneshot::Sender<(Outcome, Instant)>),
    Arrived(Outcome, Instant),
}

/// The outcomes of orders as a subscriber to the order topic hears them
/// (`OrderConfirmed`, `OrderFailureCompleted`), handed to whoever waits for that order.
#[derive(Clone, Default)]
pub struct Outcomes {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// When each outcome was decided: its event's `occurredAt` (the first one heard).
    decided: Arc<Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>>,
}

/// The event types an outcome subscriber listens to.
pub const OUTCOME_EVENTS: [&str; 2] = ["OrderConfirmed", "OrderFailureCompleted"];

impl Outcomes {
    /// Records an event heard (the envelope as published); others than the outcomes are ignored.
    pub fn heard(&self, body: &str, at: Instant) {
        let Ok(event) = serde_json::from_str::<Value>(body) else {
            return;
        };
        let outcome = match event["type"].as_str() {
            Some("OrderConfirmed") => Outcome::Confirmed,
            Some("OrderFailureCompleted") => Outcome::Failed,
            _ => return,
        };
        let Some(order) = event["aggregateId"].as_str() else {
            return;
        };
        if let Some(at) = event["occurredAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            self.decided
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(order.to_owned())
                .or_insert(at.to_utc());
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.remove(order) {
            Some(Entry::Waiting(tx)) => {
                let _ = tx.send((outcome, at));
            }
            // A confirmation may be announced again; the first one counts.
            Some(arrived @ Entry::Arrived(..)) => {
                entries.insert(order.to_owned(), arrived);
            }
            None => {
                entries.insert(order.to_owned(), Entry::Arrived(outcome, at));
            }
        }
    }

    /// When the outcome of `order` was decided, by the clock of the service that decided it.
    pub fn decided_at(&self, order: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.decided
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(order)
            .copied()
    }

    /// Waits (at most `timeout`) for the outcome of `order`, and when it was heard.
    pub async fn wait(&self, order: &str, timeout: Duration) -> Option<(Outcome, Instant)> {
        let rx = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match entries.remove(order) {
                Some(Entry::Arrived(outcome, at)) => return Some((outcome, at)),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    entries.insert(order.to_owned(), Entry::Waiting(tx));
                    rx
                }
            }
        };
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

/// One order placed and followed to its end.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub outcome: Option<Outcome>,
    /// From sending `POST /orders` to hearing the outcome.
    pub latency: Duration,
    /// From sending `POST /orders` to the outcome's decision (the order CONFIRMED or its
    /// failure completed): `latency` less the outcome event's own trip to the listener.
    pub decided: Option<Duration>,
    /// The order's lines (products) and whether it used a coupon.
    pub lines: usize,
    pub coupon: bool,
}

/// Places an order and waits for its outcome (at most `timeout`).
pub async fn place(
    shop: &Shop,
    outcomes: &Outcomes,
    customer: &Customer,
    body: Value,
    timeout: Duration,
) -> BenchResult<Placed> {
    let lines = body["items"].as_array().map_or(0, Vec::len);
    let coupon = body.get("couponId").is_some();
    let sent = Instant::now();
    let sent_at = chrono::Utc::now();
    let created = shop
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/orders",
            Some(&customer.token),
            Some(body),
        )
        .await?;
    let order = text(&created, "orderId")?;
    Ok(match outcomes.wait(&order, timeout).await {
        Some((outcome, at)) => Placed {
            outcome: Some(outcome),
            latency: at.saturating_duration_since(sent),
            decided: outcomes
                .decided_at(&order)
                .and_then(|t| (t - sent_at).to_std().ok()),
            lines,
            coupon,
        },
        None => Placed {
            outcome: None,
            latency: sent.elapsed(),
            decided: None,
            lines,
            coupon,
        },
    })
}

/// Each of `clients` customers places its share of `orders`, the next when the last ended
/// (a closed loop). Returns every order placed.
pub async fn closed_loop(
    shop: &Shop,
    outcomes: &Outcomes,
    scenario: &Arc<Scenario>,
    clients: usize,
    orders: usize,
    timeout: Duration,
) -> BenchResult<Vec<Placed>> {
    let clients = clients.clamp(1, scenario.customers.len().max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (shop, outcomes, scenario) = (shop.clone(), outcomes.clone(), scenario.clone());
        tasks.spawn(async move {
            let Some(customer) = scenario.customers.get(c) else {
                return Ok(Vec::new());
            };
            let mut placed = Vec::new();
            for (kth, n) in (c..orders).step_by(clients).enumerate() {
                let body = scenario.order(customer, n, kth);
                placed.push(place(&shop, &outcomes, customer, body, timeout).await?);
            }
            Ok::<_, String>(placed)
        });
    }
    let mut placed = Vec::with_capacity(orders);
    while let Some(joined) = tasks.join_next().await {
        placed.extend(joined.map_err(|e| e.to_string())??);
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outcome_heard_before_or_after_the_wait_reaches_the_waiter() {
        let outcomes = Outcomes::default();
        let t = Instant::now();
        outcomes.heard(r#"{"type":"OrderConfirmed","aggregateId":"o-1"}"#, t);
        assert_eq!(
            outcomes.wait("o-1", Duration::from_secs(1)).await,
            Some((Outcome::Confirmed, t))
        );
        let waiter = {
            let outcomes = outcomes.clone();
            tokio::spawn(async move { outcomes.wait("o-2", Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcomes.heard(r#"{"type":"StockReserved","aggregateId":"o-2"}"#, t);
        outcomes.heard("not json", t);
        outcomes.heard(r#"{"type":"OrderFailureCompleted","aggregateId":"o-2"}"#, t);
        assert_eq!(waiter.await.unwrap(), Some((Outcome::Failed, t)));
        assert_eq!(outcomes.wait("o-3", Duration::from_millis(10)).await, None);
    }
}
