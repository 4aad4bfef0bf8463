//! Publishing to SNS: the domain's topic (`TOPIC_ARN`), with the `type` and `source`
//! message attributes that subscriptions filter on.

use async_trait::async_trait;
use aws_sdk_sns::error::DisplayErrorContext;
use std::collections::HashMap;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use contract::Envelope;

use crate::publish::{BatchError, EventPublisher, PublishError};

pub use aws_sdk_sns::Client;

/// A client configured from the environment (`AWS_ENDPOINT_URL` for an emulator).
pub async fn client_from_env() -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::new(&config)
}

/// Publishes a service's events to its one topic.
pub struct SnsPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// `PublishBatch` takes at most 10 messages and 256 KiB in all.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;

fn attributes(event: &Envelope) -> Result<HashMap<String, MessageAttributeValue>, PublishError> {
    event
        .message_attributes()
        .into_iter()
        .map(|(name, value)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map(|a| (name.to_owned(), a))
                .map_err(|e| PublishError(e.to_string()))
        })
        .collect()
}

/// Consecutive runs of `events` that fit one `PublishBatch`: (first index, bodies).
fn batches(events: &[&Envelope]) -> Vec<(usize, Vec<String>)> {
    let mut batches: Vec<(usize, Vec<String>)> = Vec::new();
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let body = event.to_json();
        match batches.last_mut() {
            Some((_, bodies))
                if bodies.len() < BATCH_ENTRIES && bytes + body.len() <= BATCH_BYTES =>
            {
                bytes += body.len();
                bodies.push(body);
            }
            _ => {
                bytes = body.len();
                batches.push((i, vec![body]));
            }
        }
    }
    batches
}

#[async_trait]
impl EventPublisher for SnsPublisher {
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(event.to_json())
            .set_message_attributes(Some(attributes(event)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PublishError(DisplayErrorContext(e).to_string()))
    }

    /// Up to 10 events a request (`PublishBatch`): SNS bills each request, not each message.
    async fn publish_all(&self, events: &[&Envelope]) -> Result<(), BatchError> {
        for (first, bodies) in batches(events) {
            let fail = |index: usize, error: String| BatchError {
                index,
                error: PublishError(error),
            };
            let mut entries = Vec::with_capacity(bodies.len());
            for (offset, body) in bodies.into_iter().enumerate() {
                let index = first + offset;
                let entry = PublishBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message(body)
                    .set_message_attributes(Some(
                        attributes(events[index]).map_err(|e| fail(index, e.0))?,
                    ))
                    .build()
                    .map_err(|e| fail(index, e.to_string()))?;
                entries.push(entry);
            }
            let out = self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| fail(first, DisplayErrorContext(e).to_string()))?;
            // Entries are answered one by one: the earliest failed one stops the batch.
            let failed = out
                .failed()
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok().map(|i| (i, f)))
                .min_by_key(|(i, _)| *i);
            if let Some((index, entry)) = failed {
                return Err(fail(
                    index,
                    format!(
                        "{}: {}",
                        entry.code(),
                        entry.message().unwrap_or("no message")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use contract::{EventMeta, StockReserved};

    use super::*;

    fn event(n: usize, padding: usize) -> Envelope {
        let meta = EventMeta {
            event_id: format!("e-{n}"),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
            correlation_id: "x".repeat(padding),
            causation_id: None,
        };
        Envelope::new(
            meta,
            "o-1",
            StockReserved {
                order_id: "o-1".into(),
            },
        )
    }

    #[test]
    fn batches_hold_at_most_ten_events_and_256_kib() {
        let small: Vec<Envelope> = (0..23).map(|n| event(n, 0)).collect();
        let refs: Vec<&Envelope> = small.iter().collect();
        let sizes: Vec<(usize, usize)> = batches(&refs)
            .into_iter()
            .map(|(first, bodies)| (first, bodies.len()))
            .collect();
        assert_eq!(sizes, [(0, 10), (10, 10), (20, 3)]);

        let big: Vec<Envelope> = (0..5).map(|n| event(n, 100 * 1024)).collect();
        let refs: Vec<&Envelope> = big.iter().collect();
        let sizes: Vec<(usize, usize)> = batches(&refs)
            .into_iter()
            .map(|(first, bodies)| (first, bodies.len()))
            .collect();
        assert_eq!(sizes, [(0, 2), (2, 2), (4, 1)]);
        assert!(batches(&[]).is_empty());
    }
}
