//! The transactional outbox: a state change and the events it causes are written in one
//! atomic write; the relay later publishes the events. An event therefore exists if and only
//! if its state change committed.
//!
//! In DynamoDB the events ride on the item whose change they announce: the item written
//! carries them, as a JSON array in its `events` attribute (deflated when that is smaller:
//! [`crate::packing`]), and the table's stream record of that write (its new image) is what
//! the relay reads. A change that writes no item (only deletes or checks) carries its events
//! on an outbox item, `pk = OUTBOX#<first event id>`, `sk = OUTBOX`, with a TTL. The relay's
//! stream filter passes only records whose new image has `events` (text or binary), so
//! writes without events never invoke it. In memory, a store appends to a
//! [`MemoryOutbox`] inside the same critical section as its state change, and the relay reads
//! it like a stream.

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
#[cfg(feature = "aws")]
use crate::packing::Packing;
use crate::packing::{self, Stored};
use crate::relay::OutboxRecord;

/// The attribute of an item (or outbox item) that carries the events of its write.
pub const EVENTS_ATTRIBUTE: &str = "events";
pub const OUTBOX_PK_PREFIX: &str = "OUTBOX#";
pub const OUTBOX_SK: &str = "OUTBOX";
/// How long an outbox item stays after it is written. The stream keeps records for 24 hours;
/// a day more leaves room to inspect what was published.
pub const OUTBOX_RETENTION: Duration = Duration::days(2);

/// The `events` attribute's text: the envelopes as one JSON array.
pub fn encode_events(events: &[Envelope]) -> String {
    let each: Vec<String> = events.iter().map(Envelope::to_json).collect();
    format!("[{}]", each.join(","))
}

/// The events an item's `events` attribute carries (`None`: absent, or neither text nor
/// binary). The one decoder of carried events: the relay's stream handler, the local stream
/// reader and the tests' stream probe all read through it.
pub fn decode_events(events: Option<Stored<'_>>) -> Result<Vec<Envelope>, String> {
    let stored = events.ok_or("a stream record without readable events")?;
    let json = packing::unpack(stored)
        .map_err(|e| format!("a stream record whose events cannot be read: {e}"))?;
    // Each element as the text it is, parsed once, by the envelope's own decoder.
    let list: Vec<&serde_json::value::RawValue> = serde_json::from_str(&json)
        .map_err(|e| format!("a stream record whose events are not a JSON array: {e}"))?;
    list.iter()
        .map(|event| {
            Envelope::from_json(event.get())
                .map_err(|e| format!("a stream record with an unreadable event: {e}"))
        })
        .collect()
}

#[cfg(feature = "aws")]
/// The outbox item for events whose change writes no item.
pub fn dynamo_item(
    events: &[Envelope],
    now: DateTime<Utc>,
    packing: Packing,
) -> HashMap<String, AttributeValue> {
    let id = events.first().map_or("", |e| e.event_id.as_str());
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("{OUTBOX_PK_PREFIX}{id}")),
        ),
        ("sk".to_owned(), AttributeValue::S(OUTBOX_SK.to_owned())),
        (
            EVENTS_ATTRIBUTE.to_owned(),
            crate::dynamo::packed(encode_events(events), packing),
        ),
        ("ttl".to_owned(), epoch_seconds(now + OUTBOX_RETENTION)),
    ])
}

#[cfg(feature = "aws")]
/// The condition of every outbox item's put. Event ids are unique: a duplicate id is a loud
/// failure, not an overwrite.
pub const NEW_ITEM: &str = "attribute_not_exists(pk)";

#[cfg(feature = "aws")]
/// The outbox item as one element of a `TransactWriteItems`.
pub fn dynamo_put(
    table: &str,
    events: &[Envelope],
    now: DateTime<Utc>,
    packing: Packing,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(dynamo_item(events, now, packing)))
        .condition_expression(NEW_ITEM)
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
                events: Ok(vec![e.clone()]),
                written_at: None,
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
                    r.events
                        .ok()
                        .and_then(|e| e.first().map(|e| e.event_id.clone()))
                        .unwrap_or_default(),
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
