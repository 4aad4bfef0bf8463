//! The transactional outbox: a state change and the events it causes are written in one
//! atomic write; the relay later publishes the events. An event therefore exists if and only
//! if its state change committed.
//!
//! In DynamoDB an outbox item is `pk = OUTBOX#<eventId>`, `sk = OUTBOX`, with the envelope as
//! JSON in `event` and a TTL; the table's stream (filtered on the `OUTBOX#` prefix) feeds the
//! relay. In memory, a store appends to a [`MemoryOutbox`] inside the same critical section
//! as its state change, and the relay reads it like a stream.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};
use contract::Envelope;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::dynamo::{StoreError, epoch_seconds};
use crate::relay::OutboxRecord;

pub const OUTBOX_PK_PREFIX: &str = "OUTBOX#";
pub const OUTBOX_SK: &str = "OUTBOX";
/// How long an outbox item stays after it is written. The stream keeps records for 24 hours;
/// a day more leaves room to inspect what was published.
pub const OUTBOX_RETENTION: Duration = Duration::days(2);

/// The outbox item for one event.
pub fn dynamo_item(event: &Envelope, now: DateTime<Utc>) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{OUTBOX_PK_PREFIX}{}", event.event_id)),
        ),
        ("sk".to_owned(), AttributeValue::S(OUTBOX_SK.to_owned())),
        (
            "eventType".to_owned(),
            AttributeValue::S(event.event_type().name().to_owned()),
        ),
        ("event".to_owned(), AttributeValue::S(event.to_json())),
        ("ttl".to_owned(), epoch_seconds(now + OUTBOX_RETENTION)),
    ])
}

/// The outbox item as one element of a `TransactWriteItems`.
pub fn dynamo_put(
    table: &str,
    event: &Envelope,
    now: DateTime<Utc>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(dynamo_item(event, now)))
        // Event ids are unique; the condition makes a duplicate id a loud failure.
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// An append-only in-memory outbox, read by the relay like a stream.
#[derive(Default)]
pub struct MemoryOutbox {
    log: Mutex<Vec<Envelope>>,
    appended: Notify,
}

impl MemoryOutbox {
    pub fn new() -> Self {
        MemoryOutbox::default()
    }

    /// Call while holding the lock of the state the events belong to, so both commit together.
    pub fn append(&self, events: impl IntoIterator<Item = Envelope>) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let before = log.len();
        log.extend(events);
        let grew = log.len() > before;
        drop(log);
        if grew {
            self.appended.notify_waiters();
        }
    }

    /// Up to `max` records from position `from`; the sequence number is the position.
    pub fn read(&self, from: usize, max: usize) -> Vec<OutboxRecord> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .enumerate()
            .skip(from)
            .take(max)
            .map(|(i, e)| OutboxRecord {
                sequence_number: i.to_string(),
                event: Ok(e.clone()),
            })
            .collect()
    }

    /// Every event ever appended, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when events are appended; `enable()` it before reading.
    pub(crate) fn appended(&self) -> Notified<'_> {
        self.appended.notified()
    }
}
