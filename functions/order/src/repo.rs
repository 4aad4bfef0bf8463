//! The order table:
//!
//! | pk                | sk              | body          | indexes                                        |
//! |-------------------|-----------------|---------------|------------------------------------------------|
//! | `ORDER#<id>`      | `ORDER`         | [`Order`](crate::domain::Order) | gsi1 `USER#<userId>` / `<createdAt>#<id>` (mine, newest first); gsi2 `SWEEP` / `<dueAt>#<id>` while the sweep has something to do |
//! | `ORDER#<id>`      | `EVENT#<digest of the event ids>` | [`TimelineBatch`] (or, written before, one [`TimelineEntry`]) |                  |
//! | `PRICE#<productId>` | `PRICE`       | [`PriceCopy`](crate::domain::PriceCopy) |                                                |
//! | `COUPON#<couponId>` | `COUPON`      | [`CouponCopy`](crate::domain::CouponCopy) |                                                |
//!
//! The sweep's index (gsi2) is sparse: only orders with something due are in it, so a sweep
//! queries `SWEEP` up to now and reads only due orders, never the whole table.

use chrono::{DateTime, Utc};
use platform::docstore::{IndexKey, Key};
use platform::ports::sortable_time;
use serde::{Deserialize, Serialize};

use crate::domain::Order;

pub fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

pub fn order_key(order_id: &str) -> Key {
    Key::new(order_pk(order_id), "ORDER")
}

pub fn owner_index(order: &Order) -> IndexKey {
    IndexKey::new(
        format!("USER#{}", order.user_id),
        format!("{}#{}", sortable_time(order.created_at), order.order_id),
    )
}

pub const SWEEP: &str = "SWEEP";

pub fn sweep_index(order: &Order) -> Option<IndexKey> {
    order
        .sweep_due_at()
        .map(|due| IndexKey::new(SWEEP, format!("{}#{}", sortable_time(due), order.order_id)))
}

pub const TIMELINE_PREFIX: &str = "EVENT#";

/// The item of these events of an order's timeline, named by a digest of all their ids (a
/// name-based UUID): the same events again are the same item (written once); any other set
/// is another item. A digest, not the ids themselves: the key stays 39 bytes however many
/// events a batch holds, and every byte of an item is billed.
pub fn timeline_key(order_id: &str, event_ids: &[&str]) -> Key {
    let name = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, event_ids.join("+").as_bytes());
    Key::new(
        order_pk(order_id),
        format!("{TIMELINE_PREFIX}{}", name.simple()),
    )
}

/// Events of one order that arrived in one batch, in one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineBatch {
    pub entries: Vec<TimelineEntry>,
}

/// A timeline item as stored: a batch, or one entry as items were written before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredTimeline {
    Batch(TimelineBatch),
    One(TimelineEntry),
}

impl StoredTimeline {
    pub fn into_entries(self) -> Vec<TimelineEntry> {
        match self {
            StoredTimeline::Batch(batch) => batch.entries,
            StoredTimeline::One(entry) => vec![entry],
        }
    }
}

/// One event of an order's saga, as the order service saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
}

pub fn price_key(product_id: &str) -> Key {
    Key::new(format!("PRICE#{product_id}"), "PRICE")
}

pub fn coupon_key(coupon_id: &str) -> Key {
    Key::new(format!("COUPON#{coupon_id}"), "COUPON")
}

pub fn order_business_key(user_id: &str, idempotency_key: &str) -> String {
    format!("order#{user_id}#{idempotency_key}")
}
