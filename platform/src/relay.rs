//! The stream relay: reads the stream records that carry events, in stream order, and
//! publishes each event.
//!
//! On the first record that cannot be published (all of its events) it stops and reports
//! that record's sequence number, so the stream is retried from there (records before it are
//! done). Duplicates that this causes are fine: every consumer is idempotent.
//!
//! Each event relayed is one hop of its trace: a segment continuing the trace the event
//! carries, and the event goes on naming that segment as its parent. Its age when published is
//! the `RelayLag` of the service whose table it came from.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "aws")]
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
#[cfg(feature = "aws")]
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use contract::Envelope;
use tokio::sync::watch;

use crate::invocations::Meter;
use crate::metrics::{self, Metric};
use crate::outbox::MemoryOutbox;
#[cfg(feature = "aws")]
use crate::outbox::{self, EVENTS_ATTRIBUTE};
use crate::publish::EventPublisher;
use crate::telemetry::{self, Scope, Sinks};
use crate::xray::Segment;

/// One stream record that carries events: its sequence number and its events, in the order
/// they were committed (or why they are unreadable).
#[derive(Debug)]
pub struct OutboxRecord {
    pub sequence_number: String,
    pub events: Result<Vec<Envelope>, String>,
    /// When the stream says the record was written (`ApproximateCreationDateTime`, rounded
    /// down to the second); `None` in memory, where the event's own time stands for it.
    pub written_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("record {sequence_number} was not published: {reason}")]
pub struct RelayFailure {
    pub sequence_number: String,
    pub reason: String,
}

/// Publishes the records' events in order, in as few requests as the publisher takes;
/// returns how many events were published.
pub async fn relay(
    records: impl IntoIterator<Item = OutboxRecord>,
    publisher: &dyn EventPublisher,
) -> Result<usize, RelayFailure> {
    let mut records: Vec<OutboxRecord> = records.into_iter().collect();
    // An unreadable record is reported, not skipped: after bounded retries the stream's
    // on-failure destination keeps it for inspection. What comes before it goes.
    let readable_count = records.iter().take_while(|r| r.events.is_ok()).count();
    let scope = Scope::current().unwrap_or_else(|| Scope::new("relay", None, Sinks::default()));
    // Each event's segment (with when its record was written); the event itself, set in
    // place, goes on naming that segment as its parent.
    let mut hops: Vec<(Segment, Option<DateTime<Utc>>)> = Vec::new();
    for record in &mut records[..readable_count] {
        for event in record.events.iter_mut().flatten() {
            // Named as the template names a table's relay: one relay binary serves them all.
            let name = format!("{}-relay", event.source.name());
            let mut segment = Segment::after(&name, event.trace.as_ref());
            segment.annotate("operation", event.event_type().name());
            segment.annotate("correlationId", &event.correlation_id);
            segment.annotate("eventId", &event.event_id);
            segment.annotate("requestId", scope.request_id());
            event.trace = Some(segment.context());
            hops.push((segment, record.written_at));
        }
    }
    let readable = &records[..readable_count];
    let events: Vec<&Envelope> = readable
        .iter()
        .flat_map(|r| r.events.iter().flatten())
        .collect();
    let published = publisher.publish_all(&events).await;
    let done = match &published {
        Ok(()) => events.len(),
        Err(e) => e.index,
    };
    let now = Utc::now();
    for (i, ((mut segment, written_at), event)) in hops.into_iter().zip(&events).enumerate() {
        segment.end();
        if i < done {
            // The stream's time is rounded down to the second; the event was made just
            // before its write, so the later of the two is the nearer.
            let written = written_at.map_or(event.occurred_at, |w| w.max(event.occurred_at));
            let lag_ms = metrics::millis(now - written);
            metrics::emit_for(event.source, Metric::RelayLag, lag_ms, None);
            segment.annotate("outcome", "published");
            telemetry::event_span(&scope, None, &segment.trace_id, event)
                .in_scope(|| tracing::info!(lag_ms, "published"));
        } else {
            segment.annotate("outcome", "not published");
            segment.fault = true;
        }
        scope.record(segment);
    }
    // The record holding the first event not published; its events are all sent again.
    let mut before = 0;
    let failed_record = readable.iter().position(|record| {
        before += record.events.as_ref().map_or(0, Vec::len);
        before > done
    });
    let fail = |index: usize, reason: String| RelayFailure {
        sequence_number: records[index].sequence_number.clone(),
        reason,
    };
    if let Err(e) = published {
        return Err(fail(failed_record.unwrap_or(0), e.error.to_string()));
    }
    if let Some(Err(reason)) = records.get(readable.len()).map(|r| &r.events) {
        return Err(fail(readable.len(), reason.clone()));
    }
    Ok(done)
}

#[cfg(feature = "aws")]
/// The records of a DynamoDB stream batch that carry events: inserts and modifications whose
/// new image has `events` (on AWS the event source mapping's filter already drops the rest).
pub fn outbox_records(event: &StreamEvent) -> Vec<OutboxRecord> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT" || r.event_name == "MODIFY")
        .filter(|r| r.change.new_image.get(EVENTS_ATTRIBUTE).is_some())
        .map(|r| OutboxRecord {
            sequence_number: r.change.sequence_number.clone().unwrap_or_default(),
            events: outbox::decode_events(
                r.change
                    .new_image
                    .get(EVENTS_ATTRIBUTE)
                    .and_then(crate::dynamo::lambda_stored),
            ),
            // Absent from the record reads as the epoch: then not known.
            written_at: Some(r.change.approximate_creation_date_time)
                .filter(|at| at.timestamp() > 0),
        })
        .collect()
}

#[cfg(feature = "aws")]
/// The relay as a DynamoDB stream handler: partial failure by sequence number.
pub async fn handle_stream(
    event: StreamEvent,
    publisher: &dyn EventPublisher,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Err(failure) = relay(outbox_records(&event), publisher).await {
        tracing::warn!(sequence_number = %failure.sequence_number, reason = %failure.reason, "relay stopped; the stream retries from this record");
        let mut item = DynamoDbBatchItemFailure::default();
        item.item_identifier = Some(failure.sequence_number);
        response.batch_item_failures.push(item);
    }
    response
}

/// Pause before retrying after a failed publish.
const RETRY_AFTER: Duration = Duration::from_millis(500);
const BATCH: usize = 100;

/// The relay over an in-memory outbox, running until `shutdown` turns true. Each batch it
/// relays counts as one invocation on `meter`, as a stream batch invokes the relay function.
pub async fn run_memory_relay(
    outbox: Arc<MemoryOutbox>,
    publisher: Arc<dyn EventPublisher>,
    meter: Meter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut position = 0usize;
    while !*shutdown.borrow() {
        let appended = outbox.appended();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let records = outbox.read(position, BATCH);
        if records.is_empty() {
            tokio::select! {
                _ = &mut appended => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let count = records.len();
        match meter.time(count, relay(records, publisher.as_ref())).await {
            Ok(_) => {
                position += count;
                outbox.relayed(position);
            }
            Err(failure) => {
                tracing::warn!(reason = %failure.reason, "relay failed; retrying");
                position = failure.sequence_number.parse().unwrap_or(position);
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}
