//! The coupon service's handlers. Written per handler:
//! - `CouponIssued`: one conditional put of the coupon (absent).
//! - use (`OrderCreated` with a coupon): the coupon (version) + the order's use record
//!   (absent) + `CouponUsed`, or the record + `CouponUseFailed`: a transaction. The version
//!   condition keeps a coupon from being used by two orders.
//! - restore (`OrderFailed`/`OrderCancelled`): the coupon (version) + the record +
//!   `CouponRestored`, or a tombstone + `CouponRestored{restored:false}`; nothing at all
//!   for an order that had no coupon (`hasCoupon: false`).
//!
//! Table: `COUPON#<id>`/`COUPON` (gsi1 `USER#<userId>` / `<issuedAt>#<id>`),
//! `ORDER#<orderId>`/`COUPON_USE`.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{CouponIssued, Envelope, Event, OrderCreated};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, ConditionedReads, Decision, Expect, Index, IndexKey, Item, Key, Query, Write,
    commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::{Ports, sortable_time};

use crate::domain::{self, Coupon, CouponUse, Status, Use};

pub struct CouponService {
    ports: Ports,
}

fn coupon_key(coupon_id: &str) -> Key {
    Key::new(format!("COUPON#{coupon_id}"), "COUPON")
}

fn owner_index(coupon: &Coupon) -> IndexKey {
    IndexKey::new(
        format!("USER#{}", coupon.user_id),
        format!("{}#{}", sortable_time(coupon.issued_at), coupon.coupon_id),
    )
}

fn use_key(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "COUPON_USE")
}

pub struct CouponPage {
    pub coupons: Vec<Coupon>,
    pub cursor: Option<String>,
}

impl CouponService {
    pub fn new(ports: Ports) -> Self {
        CouponService { ports }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.ports.clock.now()
    }

    pub async fn mine(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<CouponPage, StoreError> {
        let query = Query::partition(Index::Gsi1, format!("USER#{user_id}"))
            .newest_first()
            .limit(limit)
            .after(cursor);
        let page = self.ports.store.query(query).await?;
        Ok(CouponPage {
            coupons: page.parse()?,
            cursor: page.cursor,
        })
    }

    /// `CouponIssued`: the user's new coupon.
    pub async fn create(
        &self,
        issued: &CouponIssued,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        // Eventual: a coupon is never deleted, so one seen is there; one missed is created
        // only if absent.
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            if reads.get(&coupon_key(&issued.coupon_id)).await?.is_some() {
                return Ok(Decision::Done(()));
            }
            let coupon = Coupon {
                coupon_id: issued.coupon_id.clone(),
                source_id: issued.source_id.clone(),
                user_id: issued.user_id.clone(),
                discount: issued.discount.clone(),
                minimum_order_amount: issued.minimum_order_amount,
                expires_at: issued.expires_at,
                issued_at: at,
                status: Status::Issued,
                order_id: None,
            };
            let write = Write::put(coupon_key(&coupon.coupon_id), &coupon, Expect::Absent)?
                .indexed(Some(owner_index(&coupon)), None);
            Ok(Decision::Commit(Commit::new().write(write), ()))
        })
        .await
    }

    /// `OrderCreated` with a coupon. A coupon not known yet is retried (the message comes
    /// back) until `UNKNOWN_COUPON_ATTEMPTS`, then the use fails.
    pub async fn use_coupon(
        &self,
        cause: &Envelope,
        order: &OrderCreated,
        coupon_id: &str,
        attempt: u32,
    ) -> Result<(), HandlerError> {
        let store = self.ports.store.as_ref();
        let order_id = order.order_id.as_str();
        commit_with_retries(store, || async {
            let record = store
                .get(&use_key(order_id))
                .await?
                .map(|item| item.parse::<CouponUse>())
                .transpose()?;
            let item = match record {
                None => store.get(&coupon_key(coupon_id)).await?,
                Some(_) => None,
            };
            let coupon = item.as_ref().map(Item::parse::<Coupon>).transpose()?;
            let now = self.ports.clock.now();
            let decided = domain::use_coupon(
                record.as_ref(),
                coupon.as_ref(),
                order,
                coupon_id,
                attempt,
                now,
            );
            let Use {
                coupon,
                record,
                answer,
            } = decided.map_err(|e| {
                HandlerError::retry(format!("coupon {coupon_id}: {e} (attempt {attempt})"))
            })?;
            let mut commit = Commit::new();
            if let (Some(after), Some(item)) = (coupon, &item) {
                commit = commit.write(Write::replace(item, &after)?);
            }
            if let Some(record) = record {
                commit = commit.write(Write::put(use_key(order_id), &record, Expect::Absent)?);
            }
            let answer =
                answer.map(|e| self.ports.events.envelope(Cause::Event(cause), order_id, e));
            Ok(Decision::Commit(commit.events(answer), ()))
        })
        .await
    }

    /// `OrderFailed` / `OrderCancelled`: the coupon back to the user, once (decided by
    /// [`domain::restore`]).
    pub async fn restore(&self, cause: &Envelope, order_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            // Eventual: every decision writes the record under the version read (absent:
            // expecting it absent), but on a record already `Restored` or `Tombstone`, which
            // is final: a read that shows one shows it as it is.
            let record_item = reads.get(&use_key(order_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<CouponUse>)
                .transpose()?;
            // Strong: a coupon not held for this order is left alone, with no condition
            // to catch a stale read that missed it being used.
            let item = match &record {
                Some(CouponUse::Used { coupon_id }) => store.get(&coupon_key(coupon_id)).await?,
                _ => None,
            };
            let coupon = item.as_ref().map(Item::parse::<Coupon>).transpose()?;
            let decided = domain::restore(record.as_ref(), coupon.as_ref(), order_id);
            let mut commit = Commit::new();
            if let (Some(after), Some(item)) = (decided.coupon, &item) {
                commit = commit.write(Write::replace(item, &after)?);
            }
            if let Some(next) = decided.record {
                commit = commit.write(Write::put(
                    use_key(order_id),
                    &next,
                    Expect::after_read(record_item.as_ref()),
                )?);
            }
            let answer = self
                .ports
                .events
                .envelope(Cause::Event(cause), order_id, decided.answer);
            Ok(Decision::Commit(commit.event(answer), ()))
        })
        .await
    }
}

/// The coupon service's consuming functions: `CouponIssued`, `OrderCreated`, `OrderFailed`,
/// `OrderCancelled`.
pub struct CouponConsumer(pub Arc<CouponService>);

#[async_trait]
impl EventHandler for CouponConsumer {
    async fn handle(&self, event: &Envelope, attempt: u32) -> Result<(), HandlerError> {
        match &event.event {
            Event::CouponIssued(e) => self.0.create(e, event.occurred_at).await?,
            Event::OrderCreated(e) => {
                if let Some(coupon_id) = &e.coupon_id {
                    self.0.use_coupon(event, e, coupon_id, attempt).await?;
                }
            }
            // An order without a coupon has nothing here to undo, and its order does not
            // wait for this service's answer: no write, no event.
            Event::OrderFailed(e) if e.has_coupon == Some(false) => {}
            Event::OrderCancelled(e) if e.has_coupon == Some(false) => {}
            Event::OrderFailed(e) => self.0.restore(event, &e.order_id).await?,
            Event::OrderCancelled(e) => self.0.restore(event, &e.order_id).await?,
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the coupon service; ignored"
            ),
        }
        Ok(())
    }
}
