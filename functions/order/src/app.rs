//! The order service's handlers. Written per handler:
//! - create: reads the price and coupon copies, lets `domain::place` decide, and commits
//!   the order (absent) [+ its coupon copy (version), marked held by the order]
//!   [+ the `Idempotency-Key`] + `OrderCreated`: one put of the order carrying its event,
//!   a transaction with the copy or the key.
//! - a step result, an undo answer, `SaleRecorded`, cancel, the sweep: the order (version) + what the
//!   transition publishes [+ the coupon copy, released when the order ends FAILED or
//!   CANCELLED]: a transaction when it touches the coupon, else one conditional put of
//!   the order carrying its events.
//! - catalogue copies (`ProductRegistered`, `ProductPriceChanged`, `CouponIssued`): one
//!   conditional put each.
//! - timeline: one conditional put (absent) per order per batch, named by a digest of its
//!   events' ids;
//!   a duplicate in another batch is listed once when read.
//!
//! The saga's metrics are counted here, after a commit that changed something (so a repeated
//! delivery counts nothing): `OrdersCreated` when an order is placed; `OrdersConfirmed`,
//! `OrdersFailed` (by reason) and `OrdersCancelled` when it reaches CONFIRMED, FAILED or
//! CANCELLED, with `SagaDuration` from its creation to confirmed or failed; `UndoAnswers` for
//! each undo answer recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use contract::{
    CouponIssued, Envelope, Event, OrderCancellationCompleted, OrderCancelled, OrderConfirmed,
    OrderFailed, OrderFailureCompleted,
};
use platform::batch::{EventHandler, HandlerError, Outcome};
use platform::docstore::{
    Commit, CommitError, ConditionedReads, Decision, Expect, Index, Item, Query, Write,
    commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::idempotency::KeyedRequest;
use platform::metrics::{self, Metric};
use platform::ports::{Ports, sortable_time};

use crate::domain::{
    self, CouponCopy, Emit, Input, Milestone, NotCancellable, Order, OrderError, OrderRequest,
    PriceCopy, Status,
};
use crate::repo::{
    SWEEP, StoredTimeline, TIMELINE_PREFIX, TimelineBatch, TimelineEntry, coupon_key,
    order_business_key, order_key, order_pk, owner_index, price_key, sweep_index, timeline_key,
};

/// How long orders live and how patient the undo is.
#[derive(Debug, Clone, Copy)]
pub struct OrderSettings {
    /// `ORDER_TTL_SECONDS`: a PENDING order older than this is failed by the sweep.
    pub order_ttl: Duration,
    /// `UNDO_GRACE_SECONDS`: how long FAILING/CANCELLING orders wait for undo answers before
    /// the sweep publishes `OrderFailed`/`OrderCancelled` again, and CONFIRMED ones for
    /// `SaleRecorded` before it announces `OrderConfirmed` again.
    pub undo_grace: Duration,
}

impl OrderSettings {
    /// `ORDER_TTL_SECONDS` (default 600) and `UNDO_GRACE_SECONDS` (default 60).
    pub fn from_env(
        env: &dyn platform::config::Env,
    ) -> Result<OrderSettings, platform::config::ConfigError> {
        use platform::config::number_in;
        Ok(OrderSettings {
            order_ttl: Duration::seconds(
                number_in(env, "ORDER_TTL_SECONDS", 600, 1, 86_400)? as i64
            ),
            undo_grace: Duration::seconds(
                number_in(env, "UNDO_GRACE_SECONDS", 60, 1, 86_400)? as i64
            ),
        })
    }
}

pub struct OrderService {
    ports: Ports,
    settings: OrderSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum OrderFailure {
    #[error(transparent)]
    Invalid(#[from] OrderError),
    #[error(transparent)]
    NotCancellable(#[from] NotCancellable),
    #[error(transparent)]
    KeyReused(#[from] platform::idempotency::KeyReused),
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct OrderPage {
    pub orders: Vec<Order>,
    pub cursor: Option<String>,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub changed: usize,
}

impl OrderService {
    pub fn new(ports: Ports, settings: OrderSettings) -> Self {
        OrderService { ports, settings }
    }

    pub fn settings(&self) -> OrderSettings {
        self.settings
    }

    /// On Lambda: the table from `TABLE_NAME`, the settings from the environment.
    #[cfg(feature = "lambda")]
    pub async fn from_env() -> Result<OrderService, platform::config::ConfigError> {
        let settings = OrderSettings::from_env(&platform::config::ProcessEnv)?;
        Ok(OrderService::new(
            platform::lambda::ports_from_env().await?,
            settings,
        ))
    }

    pub async fn order(&self, order_id: &str) -> Result<Option<Order>, StoreError> {
        self.ports
            .store
            .get(&order_key(order_id))
            .await?
            .as_ref()
            .map(Item::parse)
            .transpose()
    }

    /// The order if `user_id` owns it (another user's order is as good as absent).
    pub async fn order_of(&self, user_id: &str, order_id: &str) -> Result<Order, OrderFailure> {
        match self.order(order_id).await? {
            Some(order) if order.user_id == user_id => Ok(order),
            _ => Err(OrderFailure::NotFound),
        }
    }

    pub async fn mine(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<OrderPage, StoreError> {
        let query = Query::partition(Index::Gsi1, format!("USER#{user_id}"))
            .newest_first()
            .limit(limit)
            .after(cursor);
        let page = self.ports.store.query(query).await?;
        Ok(OrderPage {
            orders: page.parse()?,
            cursor: page.cursor,
        })
    }

    pub async fn timeline(&self, order_id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .ports
                .store
                .query(
                    Query::partition(Index::Table, order_pk(order_id))
                        .prefix(TIMELINE_PREFIX)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                entries.extend(item.parse::<StoredTimeline>()?.into_entries());
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        // An event delivered again in another batch is in two items: listed once, as
        // first seen.
        entries.sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        let mut listed = std::collections::HashSet::new();
        entries.retain(|e| listed.insert(e.event_id.clone()));
        Ok(entries)
    }

    /// `POST /orders`: places the order (priced from the copies, the coupon held) and stores
    /// it PENDING with `OrderCreated`. With an idempotency key, a repeat answers the first order.
    pub async fn create(
        &self,
        user_id: &str,
        request: &OrderRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Order, OrderFailure> {
        let store = self.ports.store.as_ref();
        let business_key = idempotency_key.map(|k| order_business_key(user_id, k));
        let fingerprint = request.fingerprint();
        let order_id = self.ports.ids.next_id();
        // The order, and whether this request created it (not a repeat answered again).
        let (order, created) = commit_with_retries::<_, OrderFailure, _, _>(store, || async {
            if let Some(key) = &business_key
                && let Some(recorded) = store.processed(key).await?
            {
                let first = KeyedRequest::recall(&recorded, &fingerprint)?;
                let order = self.order(&first).await?.ok_or(OrderFailure::NotFound)?;
                return Ok(Decision::Done((order, false)));
            }
            let mut prices = HashMap::with_capacity(request.lines().len());
            for line in request.lines() {
                // The first missing copy decides the answer: no need to read the rest.
                let Some(copy) = store.get(&price_key(line.product_id())).await? else {
                    break;
                };
                prices.insert(line.product_id().to_owned(), copy.parse::<PriceCopy>()?);
            }
            let coupon = match request.coupon_id() {
                Some(id) => store.get(&coupon_key(id)).await?,
                None => None,
            };
            let known = domain::Known {
                prices: &prices,
                coupon: coupon.as_ref().map(Item::parse).transpose()?,
            };
            let now = self.ports.clock.now();
            let placed = domain::place(
                order_id.clone(),
                user_id,
                request,
                known,
                now,
                self.settings.order_ttl,
            )?;
            let mut commit = Commit::new();
            if let (Some(held), Some(read)) = (&placed.held_coupon, &coupon) {
                commit = commit.write(Write::put(
                    coupon_key(&held.coupon_id),
                    held,
                    Expect::Version(read.version),
                )?);
            }
            let event = self.ports.events.envelope(
                Cause::Request {
                    correlation_id: &order_id,
                },
                &order_id,
                placed.created,
            );
            let order = placed.order;
            commit = commit
                .write(
                    Write::put(order_key(&order_id), &order, Expect::Absent)?
                        .indexed(Some(owner_index(&order)), sweep_index(&order)),
                )
                .event(event);
            if let Some(key) = &business_key {
                commit = commit.processed(key, KeyedRequest::record(&fingerprint, &order_id));
            }
            Ok(Decision::Commit(commit, (order, true)))
        })
        .await?;
        if created {
            metrics::count(Metric::OrdersCreated);
        }
        Ok(order)
    }

    /// Applies `input` to the order and commits what the transition table says.
    /// Returns the order as it is afterwards (`None`: no such order).
    async fn apply(
        &self,
        order_id: &str,
        input: Input,
        cause: Option<&Envelope>,
    ) -> Result<Option<Order>, OrderFailure> {
        let store = self.ports.store.as_ref();
        let key = order_key(order_id);
        // Eventual first, at half the read units: only a decision to change the order is
        // committed under the version read; anything else is made again on a strong read.
        let reads = ConditionedReads::new(store);
        // The order afterwards, and — if this changed it — its status before and when.
        let (after, changed) = commit_with_retries::<_, OrderFailure, _, _>(store, || async {
            let now = self.ports.clock.now();
            let decide = |item: Option<&Item>| -> Result<_, OrderFailure> {
                let Some(item) = item else {
                    return Ok(None);
                };
                let order: Order = item.parse()?;
                let next = domain::transition(&order, &input, now, self.settings.undo_grace)?;
                Ok(Some((order, next)))
            };
            let changes =
                |decided: &Option<(Order, Option<_>)>| matches!(decided, Some((_, Some(_))));
            let (item, decided) = reads.decide(&key, decide, changes).await?;
            let (Some(item), Some((order, next))) = (item, decided) else {
                return Ok(Decision::Done((None, None)));
            };
            let Some((next, emits)) = next else {
                return Ok(Decision::Done((Some(order), None)));
            };
            let mut commit = Commit::new().write(
                Write::put(order_key(order_id), &next, Expect::Version(item.version))?
                    .indexed(Some(owner_index(&next)), sweep_index(&next)),
            );
            for emit in emits {
                commit = commit.event(self.emit(&next, emit, cause));
            }
            // An order that ends without being confirmed lets go of its coupon.
            if next.status.ended_unconfirmed()
                && let Some(coupon_id) = &next.coupon_id
                && let Some(copy_item) = store.get(&coupon_key(coupon_id)).await?
                && let Some(released) = domain::release_coupon(&next, &copy_item.parse()?)
            {
                commit = commit.write(Write::put(
                    coupon_key(coupon_id),
                    &released,
                    Expect::Version(copy_item.version),
                )?);
            }
            Ok(Decision::Commit(
                commit,
                (Some(next), Some((order.status, now))),
            ))
        })
        .await?;
        if let (Some(order), Some((before, at))) = (&after, changed) {
            count_change(&input, before, order, at);
        }
        Ok(after)
    }

    fn emit(&self, order: &Order, emit: Emit, cause: Option<&Envelope>) -> Envelope {
        let order_id = order.order_id.clone();
        let event: Event = match emit {
            Emit::Confirmed => OrderConfirmed {
                order_id: order_id.clone(),
                user_id: order.user_id.clone(),
                items: order.items.clone(),
                payment_amount: order.payment_amount,
            }
            .into(),
            Emit::Failed(reason) => OrderFailed {
                order_id: order_id.clone(),
                reason,
                has_coupon: Some(order.coupon_id.is_some()),
            }
            .into(),
            Emit::Cancelled { was_confirmed } => OrderCancelled {
                order_id: order_id.clone(),
                was_confirmed,
                has_coupon: Some(order.coupon_id.is_some()),
            }
            .into(),
            Emit::FailureCompleted(reason) => OrderFailureCompleted {
                order_id: order_id.clone(),
                reason,
            }
            .into(),
            Emit::CancellationCompleted => OrderCancellationCompleted {
                order_id: order_id.clone(),
            }
            .into(),
        };
        let cause = match cause {
            Some(e) => Cause::Event(e),
            None => Cause::Request {
                correlation_id: &order_id,
            },
        };
        self.ports.events.envelope(cause, &order_id, event)
    }

    /// `POST /orders/{id}/cancel` by its owner.
    pub async fn cancel(&self, user_id: &str, order_id: &str) -> Result<Order, OrderFailure> {
        self.order_of(user_id, order_id).await?;
        self.apply(order_id, Input::Cancel, None)
            .await?
            .ok_or(OrderFailure::NotFound)
    }

    /// A step result or undo answer from another service.
    pub async fn on_answer(
        &self,
        cause: &Envelope,
        order_id: &str,
        input: Input,
    ) -> Result<(), OrderFailure> {
        self.apply(order_id, input, Some(cause)).await.map(|_| ())
    }

    /// The sweep: fails expired PENDING orders and publishes the undo again for FAILING /
    /// CANCELLING orders whose answers are overdue — found through the sweep index.
    pub async fn sweep(&self) -> Result<SweepReport, OrderFailure> {
        let now = self.ports.clock.now();
        let mut report = SweepReport::default();
        let mut cursor = None;
        loop {
            let query = Query::partition(Index::Gsi2, SWEEP)
                .up_to(format!("{}~", sortable_time(now)))
                .limit(100)
                .after(cursor);
            let page = self.ports.store.query(query).await?;
            for item in &page.items {
                let order: Order = item.parse()?;
                report.due += 1;
                let before = order.status;
                if let Some(after) = self.apply(&order.order_id, Input::Sweep, None).await?
                    && (after.status != before
                        || after.announce_again_at != order.announce_again_at)
                {
                    report.changed += 1;
                }
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        Ok(report)
    }

    /// `ProductRegistered` / `ProductPriceChanged`: the newest price wins.
    pub async fn copy_price(
        &self,
        product_id: &str,
        price: contract::Won,
        as_of: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        // Eventual: a copy read is replaced under its version, and one missed is written
        // expecting it absent. A copy as new as this price ends the work with no write, and
        // rightly: copies only move forward, so the current one is at least as new.
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            let item = reads.get(&price_key(product_id)).await?;
            if let Some(current) = item.as_ref().map(Item::parse::<PriceCopy>).transpose()?
                && current.as_of >= as_of
            {
                return Ok(Decision::Done(()));
            }
            let copy = PriceCopy {
                product_id: product_id.to_owned(),
                price,
                as_of,
            };
            Ok(Decision::Commit(
                Commit::new().write(Write::put(
                    price_key(product_id),
                    &copy,
                    Expect::after_read(item.as_ref()),
                )?),
                (),
            ))
        })
        .await
    }

    /// `CouponIssued`: the copy the order service prices with.
    pub async fn copy_coupon(&self, issued: &CouponIssued) -> Result<(), StoreError> {
        let copy = CouponCopy {
            coupon_id: issued.coupon_id.clone(),
            user_id: issued.user_id.clone(),
            discount: issued.discount.clone(),
            minimum_order_amount: issued.minimum_order_amount,
            expires_at: issued.expires_at,
            held_by: None,
        };
        match self
            .ports
            .store
            .commit(Commit::new().write(Write::put(
                coupon_key(&copy.coupon_id),
                &copy,
                Expect::Absent,
            )?))
            .await
        {
            Ok(()) | Err(CommitError::Conflict(_)) => Ok(()),
            Err(CommitError::Store(e)) => Err(e),
        }
    }

    /// Any event of an order's saga, into its timeline (listed once per event id).
    pub async fn record(&self, event: &Envelope) -> Result<(), StoreError> {
        self.record_all(&[event]).await.remove(0)
    }

    /// Events of one batch into their orders' timelines: one write per order, not one per
    /// event. Each event's outcome, in order.
    pub async fn record_all(&self, events: &[&Envelope]) -> Vec<Result<(), StoreError>> {
        let seen_at = self.ports.clock.now();
        let mut outcomes: Vec<Result<(), StoreError>> = events.iter().map(|_| Ok(())).collect();
        let mut by_order: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            by_order.entry(&event.correlation_id).or_default().push(i);
        }
        for (order_id, indexes) in by_order {
            let entries = indexes
                .iter()
                .map(|&i| TimelineEntry {
                    event_id: events[i].event_id.clone(),
                    event_type: events[i].event_type().name().to_owned(),
                    source: events[i].source.name().to_owned(),
                    occurred_at: events[i].occurred_at,
                    seen_at,
                    causation_id: events[i].causation_id.clone(),
                })
                .collect();
            let ids: Vec<&str> = indexes
                .iter()
                .map(|&i| events[i].event_id.as_str())
                .collect();
            let outcome = self.write_timeline(order_id, &ids, entries).await;
            for &i in &indexes {
                outcomes[i] = outcome.as_ref().map_err(StoreError::again).copied();
            }
        }
        outcomes
    }

    async fn write_timeline(
        &self,
        order_id: &str,
        ids: &[&str],
        entries: Vec<TimelineEntry>,
    ) -> Result<(), StoreError> {
        let write = Write::put(
            timeline_key(order_id, ids),
            &TimelineBatch { entries },
            Expect::Absent,
        )?;
        match self.ports.store.commit(Commit::new().write(write)).await {
            // There already: these very events were recorded (a batch delivered again).
            Ok(()) | Err(CommitError::Conflict(_)) => Ok(()),
            Err(CommitError::Store(e)) => Err(e),
        }
    }
}

/// The saga's figures for one committed change (never for a repeat that changed nothing):
/// an undo answer recorded, and the end the order reached, with how long its saga took.
fn count_change(input: &Input, before: Status, after: &Order, at: DateTime<Utc>) {
    if matches!(input, Input::Undone(..)) {
        metrics::count(Metric::UndoAnswers);
    }
    match domain::milestone(before, after, at) {
        Some(Milestone::Confirmed { took }) => {
            metrics::count(Metric::OrdersConfirmed);
            metrics::emit(
                Metric::SagaDuration,
                metrics::millis(took),
                Some("confirmed"),
            );
        }
        Some(Milestone::Failed { reason, took }) => {
            metrics::emit(Metric::OrdersFailed, 1.0, Some(reason.as_str()));
            metrics::emit(Metric::SagaDuration, metrics::millis(took), Some("failed"));
        }
        Some(Milestone::Cancelled) => metrics::count(Metric::OrdersCancelled),
        None => {}
    }
}

impl From<OrderFailure> for HandlerError {
    fn from(e: OrderFailure) -> Self {
        match e {
            OrderFailure::Store(e) => e.into(),
            // A consumer never asks for these; one here is a bug, and retrying repeats it.
            other => HandlerError::reject(other),
        }
    }
}

/// The order service's saga consumer: catalogue copies, step results and undo answers.
pub struct OrderConsumer(pub Arc<OrderService>);

#[async_trait]
impl EventHandler for OrderConsumer {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        use domain::Step::{Coupon, Payment, Stock};
        let service = &self.0;
        let answer = match &event.event {
            Event::ProductRegistered(e) => {
                return Ok(service
                    .copy_price(&e.product_id, e.price, event.occurred_at)
                    .await?);
            }
            Event::ProductPriceChanged(e) => {
                return Ok(service
                    .copy_price(&e.product_id, e.price, event.occurred_at)
                    .await?);
            }
            Event::CouponIssued(e) => return Ok(service.copy_coupon(e).await?),
            Event::StockReserved(e) => Some((&e.order_id, Input::StepResult(Stock, true))),
            Event::StockReservationFailed(e) => {
                Some((&e.order_id, Input::StepResult(Stock, false)))
            }
            Event::CouponUsed(e) => Some((&e.order_id, Input::StepResult(Coupon, true))),
            Event::CouponUseFailed(e) => Some((&e.order_id, Input::StepResult(Coupon, false))),
            Event::PaymentApproved(e) => Some((&e.order_id, Input::StepResult(Payment, true))),
            Event::PaymentFailed(e) => Some((&e.order_id, Input::StepResult(Payment, false))),
            Event::StockReleased(e) => Some((&e.order_id, Input::Undone(Stock, e.released))),
            Event::CouponRestored(e) => Some((&e.order_id, Input::Undone(Coupon, e.restored))),
            Event::PaymentCancelled(e) => Some((&e.order_id, Input::Undone(Payment, e.refunded))),
            Event::SaleRecorded(e) => Some((&e.order_id, Input::SaleRecorded)),
            _ => None,
        };
        match answer {
            Some((order_id, input)) => service.on_answer(event, order_id, input).await?,
            None => tracing::warn!(
                r#type = event.event_type().name(),
                "not for the order service; ignored"
            ),
        }
        Ok(())
    }
}

/// The order service's timeline consumer: every event of a saga, as it is seen.
pub struct TimelineConsumer(pub Arc<OrderService>);

#[async_trait]
impl EventHandler for TimelineConsumer {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        Ok(self.0.record(event).await?)
    }

    /// A batch's events of one order in one write.
    async fn handle_all(&self, events: &[(Envelope, u32)]) -> Option<Vec<Outcome>> {
        let events: Vec<&Envelope> = events.iter().map(|(e, _)| e).collect();
        let outcomes = self.0.record_all(&events).await;
        Some(outcomes.into_iter().map(|o| Ok(o?)).collect())
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod timeline_tests;
