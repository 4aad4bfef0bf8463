//! A flash sale: a crowd of users pressing "issue" on one first-come coupon source, and the
//! same crowd's orders reserving one product's stock, with DynamoDB's per-item limits
//! modelled by the in-memory store (1,000 write units a second per item; a committed
//! transaction holds its items for `--hold-ms`). Coupons go through the gateway (the
//! authorizer, the route, the per-address limit), each user from an address of their own;
//! orders reach the product service as its queue would hand them over (`OrderCreated`),
//! since the order and payment steps write per-order items that nobody contends for.
//!
//! Attempts are counted per request: the commits it sent (a refused one included), or one
//! for an answer given without writing.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use contract::{OrderCreated, OrderItem, Won};
use coupon_source_service::app::CouponSourceService;
use platform::clock::{Clock, SystemClock};
use platform::docstore::limits::{Elapsed, ItemLimits, LimitReport};
use platform::docstore::memory::MemoryDocStore;
use platform::docstore::{Commit, CommitError, DocStore, Item, Key, Page, Query};
use platform::errors::StoreError;
use platform::events::{Cause, EventFactory};
use platform::identity::Role;
use platform::ids::{IdGenerator, RandomIds};
use platform::invocations::{Invocations, Meter};
use platform::outbox::MemoryOutbox;
use platform::ports::Ports;
use product_service::app::ProductService;
use serde_json::{Value, json};
use user_service::auth::TokenCodec;
use user_service::keys::{JwtSecret, SigningKeys};

use crate::measure::{self, ms};
use crate::shop::BenchResult;

pub struct Settings {
    pub users: usize,
    pub quantity: usize,
    pub stock: usize,
    pub concurrency: usize,
    pub hold: Duration,
}

/// How many times the product service's queue hands an order over before it is counted as
/// given up (SQS would send it to the dead-letter queue after its receives).
const DELIVERIES: u32 = 5;
/// How long a failed delivery waits to come back (a short visibility timeout).
const REDELIVERY: Duration = Duration::from_millis(100);

tokio::task_local! {
    /// The commits and the reads the current request sent.
    static COMMITS: Cell<u32>;
    static READS: Cell<u32>;
}

fn count_read() {
    let _ = READS.try_with(|c| c.set(c.get() + 1));
}

/// The store as the benchmark sees it: counts each request's commits, and the per-address
/// limit's commits apart (they are the gateway's cost, not the sale's).
struct Counted {
    inner: Arc<MemoryDocStore>,
    limit_commits: AtomicUsize,
}

fn is_limit_commit(commit: &Commit) -> bool {
    commit
        .writes
        .first()
        .is_some_and(|w| w.key().pk.starts_with("THROTTLE#"))
}

#[async_trait]
impl DocStore for Counted {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        if !key.pk.starts_with("THROTTLE#") {
            count_read();
        }
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        count_read();
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        count_read();
        self.inner.query(query).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let limit = is_limit_commit(&commit);
        if !limit {
            let _ = COMMITS.try_with(|c| c.set(c.get() + 1));
        }
        let result = self.inner.commit(commit).await;
        if limit && !matches!(result, Err(CommitError::Store(StoreError::Throttled))) {
            self.limit_commits.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.processed(key).await
    }
}

/// A store with the limits, timed from now.
fn limited_store(hold: Duration) -> (Arc<MemoryDocStore>, Arc<Counted>) {
    let start = Instant::now();
    let elapsed: Elapsed = Arc::new(move || start.elapsed());
    let memory = Arc::new(
        MemoryDocStore::new(Arc::new(MemoryOutbox::new()))
            .with_limits(ItemLimits::dynamodb(hold), elapsed),
    );
    let counted = Arc::new(Counted {
        inner: memory.clone(),
        limit_commits: AtomicUsize::new(0),
    });
    (memory, counted)
}

/// One request's answer.
struct Answer {
    status: StatusCode,
    code: String,
    user: usize,
    latency: Duration,
    attempts: u32,
    reads: u32,
    at: Duration,
}

/// Runs `request` for every user, `concurrency` at a time; answers in any order.
async fn crowd<F, Fut>(users: usize, concurrency: usize, request: F) -> (Vec<Answer>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (StatusCode, String)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::with_capacity(users)));
    let request = Arc::new(request);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(users))
        .map(|_| {
            let (next, answers, request) = (next.clone(), answers.clone(), request.clone());
            tokio::spawn(async move {
                loop {
                    let user = next.fetch_add(1, Ordering::Relaxed);
                    if user >= users {
                        break;
                    }
                    let sent = Instant::now();
                    let ((status, code), commits, reads) = COMMITS
                        .scope(
                            Cell::new(0),
                            READS.scope(Cell::new(0), async {
                                let answer = request(user).await;
                                (answer, COMMITS.with(Cell::get), READS.with(Cell::get))
                            }),
                        )
                        .await;
                    let answer = Answer {
                        status,
                        code,
                        user,
                        latency: sent.elapsed(),
                        attempts: commits.max(1),
                        reads,
                        at: start.elapsed(),
                    };
                    answers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(answer);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = start.elapsed();
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(|p| p.into_inner()));
    (answers, elapsed)
}

/// Figures of one crowd, as table rows.
struct Figures {
    rows: Vec<(String, String)>,
}

impl Figures {
    fn of(
        answers: &[Answer],
        elapsed: Duration,
        won: StatusCode,
        report: LimitReport,
        limit_units: f64,
    ) -> Figures {
        let mut latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
        latencies.sort();
        let wins: Vec<&Answer> = answers.iter().filter(|a| a.status == won).collect();
        let last_win = wins.iter().map(|a| a.at).max().unwrap_or_default();
        let attempts: u64 = answers.iter().map(|a| u64::from(a.attempts)).sum();
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for a in answers {
            *outcomes
                .entry(format!("{} {}", a.status.as_u16(), a.code))
                .or_default() += 1;
        }
        let n = answers.len().max(1) as f64;
        let w = wins.len().max(1) as f64;
        let sale_units = report.write_units - limit_units;
        let rows = vec![
            (
                "requests answered / s".into(),
                format!("{:.0}", answers.len() as f64 / elapsed.as_secs_f64()),
            ),
            (
                "won / s (until the last one)".into(),
                format!(
                    "{:.0}",
                    wins.len() as f64 / last_win.as_secs_f64().max(1e-9)
                ),
            ),
            (
                "attempts per request (mean / max)".into(),
                format!(
                    "{:.2} / {}",
                    attempts as f64 / n,
                    answers.iter().map(|a| a.attempts).max().unwrap_or(0)
                ),
            ),
            (
                "reads per request (mean)".into(),
                format!(
                    "{:.2}",
                    answers.iter().map(|a| u64::from(a.reads)).sum::<u64>() as f64 / n
                ),
            ),
            (
                "write units per win (sale items)".into(),
                format!("{:.2}", sale_units / w),
            ),
            (
                "write units per win (with the per-address limit)".into(),
                format!("{:.2}", report.write_units / w),
            ),
            (
                "latency p50 / p99 / max".into(),
                format!(
                    "{} / {} / {}",
                    ms(measure::percentile(&latencies, 50.0)),
                    ms(measure::percentile(&latencies, 99.0)),
                    ms(measure::percentile(&latencies, 100.0))
                ),
            ),
            (
                "refused by the limits: throttled / transaction conflicts".into(),
                format!("{} / {}", report.throttled, report.conflicts),
            ),
            (
                "answers".into(),
                outcomes
                    .iter()
                    .map(|(k, v)| format!("{v} × {k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "wall time".into(),
                format!("{:.2} s", elapsed.as_secs_f64()),
            ),
        ];
        Figures { rows }
    }
}

fn jwt_codec() -> BenchResult<TokenCodec> {
    let secret = JwtSecret::parse("JWT_SECRET", "flash-sale-secret-of-at-least-32-bytes!")
        .map_err(|e| e.to_string())?;
    Ok(TokenCodec::new(
        &SigningKeys::single(secret),
        chrono::Duration::hours(1),
        Arc::new(SystemClock),
    ))
}

/// Calls the gateway as a client at `address`.
async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: &str,
    address: [u8; 4],
    body: Option<Value>,
) -> BenchResult<(StatusCode, Value)> {
    let peer = SocketAddr::from((address, 443));
    crate::shop::send(router, method, path, Some(token), body, Some(peer)).await
}

/// User `n`'s own address (10.x.y.z).
fn address(n: usize) -> [u8; 4] {
    let n = n as u32 + 1;
    [10, (n >> 16) as u8, (n >> 8) as u8, n as u8]
}

async fn coupons(s: &Settings, out: &mut String) -> BenchResult<()> {
    let (memory, store) = limited_store(s.hold);
    let ports = Ports::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    let service = Arc::new(CouponSourceService::new(ports));
    let codec = jwt_codec()?;
    let admin = codec
        .issue("bench-admin", Role::Admin)
        .map_err(|e| e.to_string())?
        .token;
    let tokens: Vec<String> = (0..s.users)
        .map(|n| {
            codec
                .issue(&format!("user-{n}"), Role::Customer)
                .map(|t| t.token)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let router = local::gateway::gateway(
        vec![coupon_source_service::api::router(service.clone())],
        codec,
        &user_service::api::PUBLIC_ROUTES,
        Meter::new(Arc::new(Invocations::new()), "authorizer"),
    );
    let now = Utc::now();
    let new_source = json!({
        "name": "Flash sale",
        "discount": {"type": "FIXED", "amount": 1000},
        "quantity": s.quantity,
        "issuableFrom": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "issuableUntil": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "couponValidDays": 7,
        // The crowd, all at once: its size is the rate to expect.
        "expectedIssuesPerSecond": s.users,
    });
    let (status, body) = call(
        &router,
        Method::POST,
        "/coupon-sources",
        &admin,
        [10, 255, 255, 254],
        Some(new_source),
    )
    .await?;
    if status != StatusCode::CREATED {
        return Err(format!("creating the source answered {status}: {body}"));
    }
    let source = body["sourceId"].as_str().ok_or("no sourceId")?.to_owned();
    let before = memory.limit_report();
    let limit_before = store.limit_commits.load(Ordering::Relaxed);
    let tokens = Arc::new(tokens);
    let path = format!("/coupon-sources/{source}/issue");
    let (answers, elapsed) = crowd(s.users, s.concurrency, move |n| {
        let (router, tokens, path) = (router.clone(), tokens.clone(), path.clone());
        async move {
            match call(&router, Method::POST, &path, &tokens[n], address(n), None).await {
                Ok((status, body)) => (
                    status,
                    body["error"]["code"].as_str().unwrap_or("").to_owned(),
                ),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e),
            }
        }
    })
    .await;
    let report = since(memory.limit_report(), before);
    let limit_units = (store.limit_commits.load(Ordering::Relaxed) - limit_before) as f64;
    let figures = Figures::of(&answers, elapsed, StatusCode::CREATED, report, limit_units);
    // The checks: exactly min(Q, N) issued, each to a different user, and the store agrees.
    let winners: BTreeSet<usize> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| a.user)
        .collect();
    let issued = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let records = memory
        .items()
        .iter()
        .filter(|i| i.key.pk == format!("SOURCE#{source}") && i.key.sk.starts_with("USER#"))
        .count();
    let counted = counters(&memory.items(), &format!("SOURCE#{source}"), "issued");
    let expected = s.quantity.min(s.users);
    let exact = issued == expected
        && winners.len() == issued
        && records == issued
        && counted == issued as i64;
    let title = format!("Coupons: {} users, one source of {}", s.users, s.quantity);
    let check = format!(
        "{issued} issued to {} distinct users; {records} issue records; the source counts {counted} issued",
        winners.len()
    );
    section(out, &title, &figures, &check, exact)
}

/// The sum of counter `name` over the items of partition `pk` and its shards.
fn counters(items: &[Item], pk: &str, name: &str) -> i64 {
    items
        .iter()
        .filter(|i| i.key.pk == pk || i.key.pk.starts_with(&format!("{pk}#")))
        .filter_map(|i| i.body.get(name).and_then(Value::as_i64))
        .sum()
}

fn since(now: LimitReport, before: LimitReport) -> LimitReport {
    LimitReport {
        commits: now.commits - before.commits,
        write_units: now.write_units - before.write_units,
        throttled: now.throttled - before.throttled,
        conflicts: now.conflicts - before.conflicts,
    }
}

/// One crowd's section: its figures and its check, which fails the benchmark if not exact.
fn section(
    out: &mut String,
    title: &str,
    figures: &Figures,
    check: &str,
    exact: bool,
) -> BenchResult<()> {
    let _ = writeln!(out, "### {title}\n\n| | |\n| --- | ---: |");
    for (name, value) in &figures.rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    let verdict = if exact { "exact" } else { "NOT EXACT" };
    let _ = writeln!(out, "\nCheck: {check}: **{verdict}**\n");
    if exact {
        Ok(())
    } else {
        Err(format!("{title}: not exact\n{out}"))
    }
}

async fn orders(s: &Settings, out: &mut String) -> BenchResult<()> {
    let (memory, store) = limited_store(s.hold);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let service = Arc::new(ProductService::new(Ports::new(
        store.clone(),
        clock.clone(),
        ids.clone(),
    )));
    let stock = i64::try_from(s.stock).map_err(|e| e.to_string())?;
    let product = service
        .register("Flash sale tea", 1_000, stock, Some(s.users as i64))
        .await
        .map_err(|e| e.to_string())?;
    let events = Arc::new(EventFactory::new(ids, clock));
    let before = memory.limit_report();
    let product_id = product.product_id.clone();
    let (answers, elapsed) = crowd(s.users, s.concurrency, move |n| {
        let (service, events, product_id) = (service.clone(), events.clone(), product_id.clone());
        async move {
            let order_id = format!("order-{n}");
            let created = events.envelope(
                Cause::Request {
                    correlation_id: &order_id,
                },
                &order_id,
                OrderCreated {
                    order_id: order_id.clone(),
                    user_id: format!("user-{n}"),
                    items: vec![OrderItem {
                        product_id,
                        quantity: 1,
                        unit_price: Won(1_000),
                    }],
                    coupon_id: None,
                    total_amount: Won(1_000),
                    discount_amount: Won(0),
                    payment_amount: Won(1_000),
                    expires_at: Utc::now() + chrono::Duration::minutes(10),
                },
            );
            let contract::Event::OrderCreated(order) = &created.event else {
                return (StatusCode::INTERNAL_SERVER_ERROR, "not an order".to_owned());
            };
            for delivery in 1..=DELIVERIES {
                match service
                    .reserve(&created, &order.order_id, &order.items)
                    .await
                {
                    Ok(()) => return (StatusCode::OK, String::new()),
                    Err(e) if e.is_retryable() && delivery < DELIVERIES => {
                        tokio::time::sleep(REDELIVERY).await
                    }
                    Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                }
            }
            (StatusCode::SERVICE_UNAVAILABLE, "given up".to_owned())
        }
    })
    .await;
    let report = since(memory.limit_report(), before);
    let items = memory.items();
    let reservations: Vec<&Item> = items.iter().filter(|i| i.key.sk == "RESERVATION").collect();
    let reserved = reservations
        .iter()
        .filter(|i| i.body["state"] == "RESERVED")
        .count();
    let out_of_stock = reservations
        .iter()
        .filter(|i| i.body["reason"] == "OUT_OF_STOCK")
        .count();
    // Each reservation is one answer: reserved or out of stock, as its record says.
    let mut answers = answers;
    for a in &mut answers {
        if a.status == StatusCode::OK {
            let record = items.iter().find(|i| {
                i.key.pk == format!("ORDER#order-{}", a.user) && i.key.sk == "RESERVATION"
            });
            a.status = match record.map(|r| r.body["state"].clone()) {
                Some(v) if v == "RESERVED" => StatusCode::CREATED,
                _ => StatusCode::CONFLICT,
            };
            a.code = if a.status == StatusCode::CREATED {
                "RESERVED".into()
            } else {
                "OUT_OF_STOCK".into()
            };
        }
    }
    let figures = Figures::of(&answers, elapsed, StatusCode::CREATED, report, 0.0);
    let left = counters(&items, &format!("PRODUCT#{}", product.product_id), "stock");
    let never_below = items
        .iter()
        .filter(|i| {
            i.key
                .pk
                .starts_with(&format!("PRODUCT#{}", product.product_id))
        })
        .all(|i| i.body["stock"].as_i64().is_some_and(|v| v >= 0));
    let expected = s.stock.min(s.users);
    let exact = reserved == expected && left == stock - reserved as i64 && never_below;
    let title = format!(
        "Orders: {} orders of one product of stock {}",
        s.users, s.stock
    );
    let check = format!(
        "{reserved} reserved, {out_of_stock} out of stock; stock left {left} (of {stock}), never below zero"
    );
    section(out, &title, &figures, &check, exact)
}

pub async fn flash_sale(s: Settings) -> BenchResult<String> {
    let mut out = format!(
        "## Flash sale\n\nModel: 1,000 write units a second per item; a committed transaction holds its items for {} ms; {} requests in flight at once.\n\n",
        s.hold.as_millis(),
        s.concurrency
    );
    coupons(&s, &mut out).await?;
    orders(&s, &mut out).await?;
    Ok(out)
}
