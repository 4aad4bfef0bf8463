//! The transactional outbox: a state change and the events it causes are written in one
//! atomic write; the relay later publishes the events. An event therefore exists if and only
//! if its state change committed.
//!
//! In DynamoDB an outbox item is `pk = OUTBOX#<eventId>`, `sk = OUTBOX`, with the envelope as
//! JSON in `event` and a TTL; the table's stream (filtered on the `OUTBOX#` prefix) feeds the
//! relay. In memory, a store appends to a [`MemoryOutbox`] inside the same critical section
//! as its state change, and the relay reads it like a stream.

#[cfg(feature = "aws")]
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Mutex;

#[cfg(feature = "aws")]
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Duration;
#[cfg(feature = "aws")]
use chrono::{DateTime, Utc};
use contract::Envelope;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

#[cfg(feature = "aws")]
use crate::dynamo::epoch_seconds;
#[cfg(feature = "aws")]
use crate::errors::StoreError;
use crate::relay::OutboxRecord;

pub const OUTBOX_PK_PREFIX: &str = "OUTBOX#";
pub const OUTBOX_SK: &str = "OUTBOX";
/// How long an outbox item stays after it is written. The stream keeps records for 24 hours;
/// a day more leaves room to inspect what was published.
pub const OUTBOX_RETENTION: Duration = Duration::days(2);

#[cfg(feature = "aws")]
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

/// The event an outbox item carries, from its `event` attribute (`None`: absent or not a
/// string). The one decoder of outbox items: the relay's stream handler, the local stream
/// reader and the tests' outbox scan all read through it.
pub fn decode_event(event: Option<&str>) -> Result<Envelope, String> {
    let json = event.ok_or("an outbox item without a readable event")?;
    Envelope::from_json(json).map_err(|e| format!("an outbox item with an unreadable event: {e}"))
}

#[cfg(feature = "aws")]
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

/// An append-only in-memory outbox, read by the relay like a stream. Positions are
/// absolute: what the relay has published can be dropped ([`MemoryOutbox::relayed`]) without
/// moving the rest, as a stream's records expire.
#[derive(Default)]
pub struct MemoryOutbox {
    log: Mutex<Log>,
    appended: Notify,
}

#[derive(Default)]
struct Log {
    /// The position of `events[0]`: how many were dropped before it.
    base: usize,
    events: VecDeque<Envelope>,
}

impl MemoryOutbox {
    pub fn new() -> Self {
        MemoryOutbox::default()
    }

    /// Call while holding the lock of the state the events belong to, so both commit together.
    pub fn append(&self, events: impl IntoIterator<Item = Envelope>) {
        let mut log = self.lock();
        let before = log.events.len();
        log.events.extend(events);
        let grew = log.events.len() > before;
        drop(log);
        if grew {
            self.appended.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `max` records from position `from` (or from the oldest still kept); the
    /// sequence number is the position.
    pub fn read(&self, from: usize, max: usize) -> Vec<OutboxRecord> {
        let log = self.lock();
        let skip = from.saturating_sub(log.base);
        log.events
            .iter()
            .enumerate()
            .skip(skip)
            .take(max)
            .map(|(i, e)| OutboxRecord {
                sequence_number: (log.base + i).to_string(),
                event: Ok(e.clone()),
            })
            .collect()
    }

    /// Drops the events before position `upto`: the relay published them. A long-running
    /// local system would otherwise keep every event it ever wrote.
    pub fn relayed(&self, upto: usize) {
        let mut log = self.lock();
        let drop = upto.saturating_sub(log.base).min(log.events.len());
        log.events.drain(..drop);
        log.base += drop;
    }

    /// Every event appended and not dropped as relayed, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.lock().events.iter().cloned().collect()
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when events are appended; `enable()` it before reading.
    pub(crate) fn appended(&self) -> Notified<'_> {
        self.appended.notified()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use contract::{EventMeta, StockReserved};

    use super::*;

    fn event(n: u32) -> Envelope {
        let meta = EventMeta {
            event_id: format!("e-{n}"),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
            correlation_id: format!("o-{n}"),
            causation_id: None,
        };
        Envelope::new(
            meta,
            format!("o-{n}"),
            StockReserved {
                order_id: format!("o-{n}"),
            },
        )
    }

    fn ids(records: Vec<OutboxRecord>) -> Vec<(String, String)> {
        records
            .into_iter()
            .map(|r| {
                (
                    r.sequence_number,
                    r.event.map(|e| e.event_id).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn relayed_events_are_dropped_and_positions_stay() {
        let outbox = MemoryOutbox::new();
        outbox.append((1..=4).map(event));
        outbox.relayed(2);
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            ids(outbox.read(2, 10)),
            [("2".into(), "e-3".into()), ("3".into(), "e-4".into())]
        );
        // A position already dropped reads from the oldest kept.
        assert_eq!(ids(outbox.read(0, 1)), [("2".into(), "e-3".into())]);
        outbox.append([event(5)]);
        assert_eq!(ids(outbox.read(4, 10)), [("4".into(), "e-5".into())]);
        // Dropping is idempotent and never past the end.
        outbox.relayed(1);
        outbox.relayed(99);
        assert!(outbox.is_empty());
        outbox.append([event(6)]);
        assert_eq!(ids(outbox.read(5, 10)), [("5".into(), "e-6".into())]);
    }
}
