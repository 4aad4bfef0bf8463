//! One simulated run: setup, a phase of orders under faults, a drain until quiet, checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use contract::{Discount, Envelope, Event, Service, Won};
use coupon_source_service::app::NewSource;
use order_service::domain::{Line, OrderRequest};
use platform::batch::{EventHandler, HandlerError};
use platform::bus::Delivered;
use platform::bus::stepping::{self, Step, Stepper};
use platform::clock::Clock;
use platform::docstore::{Commit, DocStore, Expect, Write};
use platform::publish::EventPublisher;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checks::{self, Model};
use crate::world::{ORDER_TTL_SECONDS, SimWorld, UNDO_GRACE_SECONDS};

/// Fault rates, each a probability per opportunity.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// A queue delivers a message twice (SNS→SQS at-least-once).
    pub duplicate: f64,
    /// A relay publishes an event twice (relay→SNS at-least-once).
    pub relay_duplicate: f64,
    /// A message is lost between a topic and a queue.
    pub drop: f64,
    /// A handler commits, then crashes before the message is deleted (it comes back).
    pub crash_after_commit: f64,
    /// A handler fails before committing (throttling, a timeout), then is retried.
    pub fail_before_commit: f64,
    /// Time jumps past an order's expiry.
    pub long_delay: f64,
    /// Two requests or deliveries run at once, racing on the same values.
    pub race: f64,
    /// A store call is refused as DynamoDB throttles under load: nothing done, the caller
    /// retries or fails and is retried.
    pub throttle: f64,
    /// A transaction is refused as meeting another on one of its items
    /// (`TransactionConflict`): nothing done, retried likewise.
    pub transaction_conflict: f64,
    /// An eventually consistent read answers the item as it was at some moment of the last
    /// second (an older version, or absent) rather than as it is.
    pub stale_read: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            duplicate: 0.1,
            relay_duplicate: 0.05,
            drop: 0.02,
            crash_after_commit: 0.05,
            fail_before_commit: 0.05,
            long_delay: 0.01,
            race: 0.3,
            throttle: 0.02,
            transaction_conflict: 0.05,
            stale_read: 0.5,
        }
    }
}

impl Faults {
    /// Every rate multiplied by `factor` (each kept within 0..=1).
    pub fn scaled(self, factor: f64) -> Faults {
        let f = |rate: f64| (rate * factor).clamp(0.0, 1.0);
        Faults {
            duplicate: f(self.duplicate),
            relay_duplicate: f(self.relay_duplicate),
            drop: f(self.drop),
            crash_after_commit: f(self.crash_after_commit),
            fail_before_commit: f(self.fail_before_commit),
            long_delay: f(self.long_delay),
            race: f(self.race),
            throttle: f(self.throttle),
            transaction_conflict: f(self.transaction_conflict),
            stale_read: f(self.stale_read),
        }
    }

    pub fn none() -> Faults {
        Faults {
            duplicate: 0.0,
            relay_duplicate: 0.0,
            drop: 0.0,
            crash_after_commit: 0.0,
            fail_before_commit: 0.0,
            long_delay: 0.0,
            race: 0.0,
            throttle: 0.0,
            transaction_conflict: 0.0,
            stale_read: 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub orders: usize,
    pub users: usize,
    pub products: usize,
    pub faults: Faults,
    /// Service clocks differ by up to this many seconds either way.
    pub max_skew_seconds: i64,
    /// Breaks one rule on purpose, to show the checker catching it.
    pub sabotage: Option<Sabotage>,
}

/// A rule broken on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// Product reserves without its per-order de-duplication record.
    ForgetReservations,
    /// Confirmations are announced once only, as before the sweep re-announced them: a lost
    /// `OrderConfirmed` then loses its sales statistics.
    AnnounceConfirmationsOnce,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            orders: 20,
            users: 4,
            products: 3,
            faults: Faults::default(),
            max_skew_seconds: 2,
            sabotage: None,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub orders_placed: u64,
    pub orders_refused: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub steps: u64,
    pub deliveries: u64,
    pub faults: BTreeMap<&'static str, u64>,
    /// Why orders were refused at creation.
    pub refusals: BTreeMap<String, u64>,
    pub violations: Vec<String>,
    /// The orders the violations are about.
    pub involved: BTreeSet<String>,
    /// Their timelines, for the failure report.
    pub timelines: Vec<String>,
}

impl Report {
    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }
}

/// Runs one seed to the end and checks it.
pub fn run_seed(config: &SimConfig) -> Report {
    platform::docstore::retry_without_backoff();
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            return Report {
                seed: config.seed,
                violations: vec![format!("no runtime: {e}")],
                ..Report::default()
            };
        }
    };
    runtime.block_on(Sim::new(config).run())
}

/// Product's reservation without its de-duplication: forgets the order's record before
/// every `OrderCreated`, so a duplicate reserves again.
struct ForgetfulReservations {
    inner: Arc<dyn EventHandler>,
    store: Arc<platform::docstore::memory::MemoryDocStore>,
}

#[async_trait]
impl EventHandler for ForgetfulReservations {
    async fn handle(&self, event: &Envelope, attempt: u32) -> Result<(), HandlerError> {
        if let Event::OrderCreated(e) = &event.event {
            let key = product_service::repo::reservation_key(&e.order_id);
            if let Some(item) = self.store.get(&key).await? {
                let _ = self
                    .store
                    .commit(Commit::new().write(Write::Delete {
                        key,
                        expect: Expect::Version(item.version),
                    }))
                    .await;
            }
        }
        self.inner.handle(event, attempt).await
    }
}

struct Sim {
    /// Orders whose confirmation was relayed (for `Sabotage::AnnounceConfirmationsOnce`).
    announced: BTreeSet<String>,
    config: SimConfig,
    rng: ChaCha8Rng,
    w: SimWorld,
    stepper: Stepper,
    model: Model,
    report: Report,
}

/// A request or delivery, chosen before it runs (so several can run at once).
enum Action {
    Order {
        user: String,
        lines: Vec<Line>,
        coupon: Option<String>,
    },
    Cancel {
        user: String,
        order: String,
    },
    Charge {
        user: String,
        amount: i64,
    },
    Deliver {
        queue: String,
        message: Delivered,
        fault: Option<&'static str>,
    },
}

enum Outcome {
    Placed {
        order: String,
        user: String,
    },
    Charged {
        user: String,
        amount: u64,
    },
    Refused(String),
    Other,
    Delivered {
        queue: String,
        message: Delivered,
        failed: bool,
    },
}

impl Sim {
    fn new(config: &SimConfig) -> Sim {
        let mut w = SimWorld::build(config.seed, config.max_skew_seconds);
        if config.sabotage == Some(Sabotage::ForgetReservations)
            && let (Some(inner), Some(store)) = (
                w.handlers.get("product-order-created").cloned(),
                w.stores.get(&Service::Product).cloned(),
            )
        {
            w.handlers.insert(
                "product-order-created".to_owned(),
                Arc::new(ForgetfulReservations { inner, store }),
            );
        }
        let faults = stepping::Faults {
            duplicate: config.faults.duplicate,
            drop: config.faults.drop,
        };
        let stepper = Stepper::new(w.world.bus.clone(), config.seed, faults);
        Sim {
            announced: BTreeSet::new(),
            config: config.clone(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            w,
            stepper,
            model: Model::default(),
            report: Report {
                seed: config.seed,
                ..Report::default()
            },
        }
    }

    async fn run(mut self) -> Report {
        self.setup().await;
        // The catalogue and the coupons reach every copy before the rush (faults still
        // come later: a late copy only makes orders refused, which proves little).
        self.drain().await;
        self.stepper = Stepper::new(
            self.w.world.bus.clone(),
            self.config.seed,
            stepping::Faults {
                duplicate: self.config.faults.duplicate,
                drop: self.config.faults.drop,
            },
        );
        let faults = &self.config.faults;
        self.w
            .refusals
            .set_rates(faults.throttle, faults.transaction_conflict);
        self.w.stale_reads.set_rate(faults.stale_read);
        self.chaos().await;
        self.w.refusals.set_rates(0.0, 0.0);
        self.w.stale_reads.set_rate(0.0);
        let (throttled, conflicts) = self.w.refusals.refused();
        for (fault, count) in [
            ("store call throttled", throttled),
            ("transaction conflict", conflicts),
            ("stale read", self.w.stale_reads.served()),
        ] {
            if count > 0 {
                *self.report.faults.entry(fault).or_default() += count;
            }
        }
        if self.report.violations.is_empty() {
            self.drain().await;
        }
        if self.report.violations.is_empty() {
            for v in checks::at_the_end(&self.w, &self.model) {
                self.violation(v);
            }
        }
        for (_, status) in checks::order_statuses(&self.w) {
            match status.as_str() {
                "CONFIRMED" => self.report.confirmed += 1,
                "FAILED" => self.report.failed += 1,
                "CANCELLED" => self.report.cancelled += 1,
                _ => {}
            }
        }
        if !self.report.violations.is_empty() {
            let involved: Vec<String> = self.report.involved.iter().take(3).cloned().collect();
            for order in involved {
                let timeline = self
                    .w
                    .world
                    .services
                    .orders
                    .timeline(&order)
                    .await
                    .unwrap_or_default();
                let lines: Vec<String> = timeline
                    .iter()
                    .map(|e| {
                        format!(
                            "    {} {} ({})",
                            e.seen_at.format("%H:%M:%S%.3f"),
                            e.event_type,
                            e.source
                        )
                    })
                    .collect();
                self.report
                    .timelines
                    .push(format!("  order {order}:\n{}", lines.join("\n")));
            }
        }
        self.report
    }

    fn violation(&mut self, v: checks::Violation) {
        self.report.involved.extend(v.orders.iter().cloned());
        self.report.violations.push(v.text);
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    async fn setup(&mut self) {
        let s = &self.w.world.services;
        for i in 0..self.config.products {
            let price = self.rng.random_range(5..=200) * 100;
            let stock = self.rng.random_range(10..=40);
            // The first is a flash sale's: its stock spread over 4 shards.
            let rate = (i == 0).then_some(200);
            if let Ok(p) = s
                .products
                .register(&format!("product {i}"), price, stock, rate)
                .await
            {
                self.model.products.push((p.product_id, stock as u64));
            }
        }
        for i in 0..self.config.users {
            let user = format!("user-{i}");
            let amount = self.rng.random_range(50..=300) * 1_000;
            if s.balance.charge(&user, amount, None).await.is_ok() {
                *self.model.charged.entry(user.clone()).or_default() += amount as u64;
            }
            self.model.users.push(user);
        }
        let now = self.w.clock.now();
        let discounts = [
            (
                Discount::Fixed { amount: Won(1_000) },
                5_000,
                self.config.users as i64 - 1,
                0,
            ),
            (
                Discount::Percent {
                    rate: 10,
                    max_amount: Some(Won(3_000)),
                },
                0,
                self.config.users as i64,
                // A flash sale's rate: spread over as many shards as it has coupons, which
                // run dry one by one while issues move to the others.
                1_000,
            ),
        ];
        for (discount, minimum, quantity, rate) in discounts {
            let new = NewSource {
                name: "sim".into(),
                discount,
                minimum_order_amount: Some(minimum),
                quantity: quantity.max(1),
                issuable_from: now - Duration::hours(1),
                issuable_until: now + Duration::days(30),
                coupon_valid_days: 30,
                expected_issues_per_second: Some(rate),
            };
            if let Ok(source) = s.coupon_sources.create(new).await {
                // Requests race: two users at once, and each user twice at once.
                let users = self.model.users.clone();
                for pair in users.chunks(2) {
                    let id = &source.source_id;
                    let other = pair.get(1).unwrap_or(&pair[0]);
                    let (a, b, c) = tokio::join!(
                        s.coupon_sources.issue("simulation", id, &pair[0]),
                        s.coupon_sources.issue("simulation", id, other),
                        s.coupon_sources.issue("simulation", id, &pair[0]),
                    );
                    for (user, result) in [(&pair[0], a), (other, b), (&pair[0], c)] {
                        if let Ok(coupon) = result
                            && !self.model.coupons.iter().any(|(c, _)| *c == coupon)
                        {
                            self.model.coupons.push((coupon, user.clone()));
                        }
                    }
                }
            }
        }
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())].clone())
    }

    fn choose_order(&mut self) -> Option<Action> {
        let user = self.pick(&self.model.users.clone())?;
        let mut lines = Vec::new();
        for (product, _) in self.model.products.clone() {
            if self.chance(0.5) {
                lines.push(Line {
                    product_id: product,
                    quantity: self.rng.random_range(1..=3),
                });
            }
        }
        if lines.is_empty() {
            let (product, _) = self.pick(&self.model.products.clone())?;
            lines.push(Line {
                product_id: product,
                quantity: 1,
            });
        }
        let mine: Vec<String> = self
            .model
            .coupons
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(c, _)| c.clone())
            .collect();
        let coupon = if self.chance(0.5) {
            self.pick(&mine)
        } else {
            None
        };
        Some(Action::Order {
            user,
            lines,
            coupon,
        })
    }

    fn choose_delivery(&mut self, faults: bool) -> Option<Action> {
        match self.stepper.step()? {
            Step::Lost { .. } => {
                self.report.fault("message lost");
                None
            }
            Step::Deliver { queue, message } => {
                let fault = if !faults {
                    None
                } else if self.chance(self.config.faults.fail_before_commit) {
                    Some("failure before commit")
                } else if self.chance(self.config.faults.crash_after_commit) {
                    Some("crash after commit")
                } else {
                    None
                };
                if message.receive_count > 1 {
                    self.report.fault("redelivery");
                }
                Some(Action::Deliver {
                    queue,
                    message,
                    fault,
                })
            }
        }
    }

    async fn perform(&self, action: Action) -> Outcome {
        let s = &self.w.world.services;
        match action {
            Action::Order {
                user,
                lines,
                coupon,
            } => {
                let placed = match OrderRequest::parse(lines, coupon) {
                    Ok(request) => s.orders.create(&user, &request, None).await,
                    Err(e) => Err(e.into()),
                };
                match placed {
                    Ok(order) => Outcome::Placed {
                        order: order.order_id,
                        user,
                    },
                    Err(e) => Outcome::Refused(match e {
                        order_service::app::OrderFailure::Invalid(e) => e.code().to_owned(),
                        other => other.to_string(),
                    }),
                }
            }
            Action::Cancel { user, order } => {
                let _ = s.orders.cancel(&user, &order).await;
                Outcome::Other
            }
            Action::Charge { user, amount } => match s.balance.charge(&user, amount, None).await {
                Ok(_) => Outcome::Charged {
                    user,
                    amount: amount as u64,
                },
                Err(_) => Outcome::Other,
            },
            Action::Deliver {
                queue,
                message,
                fault,
            } => {
                if fault == Some("failure before commit") {
                    return Outcome::Delivered {
                        queue,
                        message,
                        failed: true,
                    };
                }
                let ok = match (
                    Envelope::from_json(&message.body),
                    self.w.handlers.get(queue.as_str()),
                ) {
                    (Ok(event), Some(handler)) => {
                        handler.handle(&event, message.receive_count).await.is_ok()
                    }
                    _ => false,
                };
                Outcome::Delivered {
                    queue,
                    message,
                    failed: !ok || fault == Some("crash after commit"),
                }
            }
        }
    }

    fn settle(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Placed { order, user } => {
                self.report.orders_placed += 1;
                self.model.orders.push((order, user));
            }
            Outcome::Refused(why) => {
                self.report.orders_refused += 1;
                *self.report.refusals.entry(why).or_default() += 1;
            }
            Outcome::Charged { user, amount } => {
                *self.model.charged.entry(user).or_default() += amount
            }
            Outcome::Other => {}
            Outcome::Delivered {
                queue,
                message,
                failed,
            } => {
                self.report.deliveries += 1;
                let _ = self.stepper.settle(&queue, &message, failed);
            }
        }
    }

    async fn relay_one(&mut self, service: Service, duplicate: bool) {
        let position = self.w.relayed[&service];
        let outbox = self.w.world.outboxes[&service].clone();
        // The topic the template's relay of this table publishes to.
        let topic = self
            .w
            .world
            .relays
            .iter()
            .find(|r| r.service == service)
            .map(|r| r.topic.clone());
        if let Some(record) = outbox.read(position, 1).into_iter().next()
            && let Ok(Some(event)) = record.events.map(|mut e| e.pop())
            && let Some(topic) = topic
            && !self.silenced(&event)
        {
            let publisher = platform::bus::BusPublisher::to_topic(self.w.world.bus.clone(), &topic);
            let _ = publisher.publish(&event).await;
            if duplicate {
                self.report.fault("relay duplicate");
                let _ = publisher.publish(&event).await;
            }
        }
        self.w.relayed.insert(service, position + 1);
    }

    /// Whether the sabotage swallows this event at the relay.
    fn silenced(&mut self, event: &Envelope) -> bool {
        match (&event.event, self.config.sabotage) {
            (Event::OrderConfirmed(c), Some(Sabotage::AnnounceConfirmationsOnce)) => {
                !self.announced.insert(c.order_id.clone())
            }
            _ => false,
        }
    }

    /// A request or a delivery; sometimes two at once.
    async fn act(&mut self, first: Action) {
        let second = if self.chance(self.config.faults.race) {
            let roll = self.rng.random_range(0..8);
            match roll {
                0..=2 => self.choose_order(),
                3..=5 => self.choose_delivery(true),
                // Cancel racing whatever comes next for the newest order (its confirmation).
                6 if self.chance(0.3) => self
                    .model
                    .orders
                    .last()
                    .cloned()
                    .map(|(order, user)| Action::Cancel { user, order }),
                _ => self
                    .pick(&self.model.users.clone())
                    .map(|user| Action::Charge {
                        user,
                        amount: 1_000,
                    }),
            }
        } else {
            None
        };
        let fault_of = |a: &Action| match a {
            Action::Deliver { fault: Some(f), .. } => Some(*f),
            _ => None,
        };
        for f in [fault_of(&first), second.as_ref().and_then(fault_of)]
            .into_iter()
            .flatten()
        {
            self.report.fault(f);
        }
        let outcomes = match second {
            None => vec![self.perform(first).await],
            Some(second) => {
                self.report.fault("concurrent requests");
                let (a, b) = tokio::join!(self.perform(first), self.perform(second));
                vec![a, b]
            }
        };
        for outcome in outcomes {
            self.settle(outcome);
        }
    }

    async fn chaos(&mut self) {
        let max_steps = self.config.orders as u64 * 60 + 200;
        let mut attempts = 0;
        while self.report.steps < max_steps {
            self.report.steps += 1;
            let roll: f64 = self.rng.random();
            if roll < 0.12 {
                if attempts < self.config.orders {
                    attempts += 1;
                    if let Some(action) = self.choose_order() {
                        self.act(action).await;
                    }
                }
            } else if roll < 0.125 {
                if let Some((order, user)) = self.pick(&self.model.orders.clone()) {
                    self.act(Action::Cancel { user, order }).await;
                }
            } else if roll < 0.17 {
                if let Some(user) = self.pick(&self.model.users.clone()) {
                    let amount = self.rng.random_range(1..=20) * 1_000;
                    self.act(Action::Charge { user, amount }).await;
                }
            } else if roll < 0.45 {
                let pending = self.w.unrelayed();
                if let Some(service) = self.pick(&pending) {
                    let duplicate = self.chance(self.config.faults.relay_duplicate);
                    self.relay_one(service, duplicate).await;
                }
            } else if roll < 0.90 {
                if let Some(action) = self.choose_delivery(true) {
                    self.act(action).await;
                }
            } else if roll < 0.98 {
                let seconds = if self.chance(self.config.faults.long_delay) {
                    self.report.fault("delay past expiry");
                    self.rng
                        .random_range(ORDER_TTL_SECONDS..=ORDER_TTL_SECONDS * 2)
                } else {
                    self.rng.random_range(0..=2)
                };
                self.w.clock.advance(Duration::seconds(seconds));
            } else {
                let _ = self.w.world.services.orders.sweep().await;
            }
            for v in checks::at_every_moment(&self.w, &self.model) {
                self.violation(v);
            }
            if !self.report.violations.is_empty() {
                return;
            }
            if attempts >= self.config.orders && self.report.steps >= self.config.orders as u64 * 30
            {
                return;
            }
        }
    }

    /// No more faults: relay, deliver, sweep and let time pass until nothing is left to do.
    async fn drain(&mut self) {
        self.stepper = Stepper::new(
            self.w.world.bus.clone(),
            self.config.seed ^ 0xd7a1,
            stepping::Faults::default(),
        );
        for _ in 0..20_000 {
            self.report.steps += 1;
            if let Some(service) = self.w.unrelayed().first().copied() {
                self.relay_one(service, false).await;
            } else if let Some(action) = self.choose_delivery(false) {
                let outcome = self.perform(action).await;
                self.settle(outcome);
            } else if self.in_flight() {
                self.w.clock.advance(Duration::seconds(1));
            } else if checks::sweep_has_work(&self.w) {
                self.w
                    .clock
                    .advance(Duration::seconds(UNDO_GRACE_SECONDS.min(ORDER_TTL_SECONDS)));
                let _ = self.w.world.services.orders.sweep().await;
            } else {
                return;
            }
            for v in checks::at_every_moment(&self.w, &self.model) {
                self.violation(v);
            }
            if !self.report.violations.is_empty() {
                return;
            }
        }
        self.report
            .violations
            .push("the system did not become quiet in 20,000 steps".into());
    }

    fn in_flight(&self) -> bool {
        let bus = &self.w.world.bus;
        bus.queue_names()
            .iter()
            .any(|q| bus.depth(q).is_ok_and(|d| d.in_flight > 0 || d.visible > 0))
    }
}
