//! Test support shared by every crate's tests (feature `testing`).

pub mod emulator;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use contract::Envelope;

use crate::dynamo::Client;
use crate::outbox::{MemoryOutbox, OUTBOX_PK_PREFIX};

/// Reads back what a store wrote to its outbox, so a store's conformance suite can check
/// that events are written with their state change, and only then.
#[async_trait]
pub trait OutboxProbe: Send + Sync {
    async fn events(&self) -> Vec<Envelope>;
}

#[async_trait]
impl OutboxProbe for std::sync::Arc<MemoryOutbox> {
    async fn events(&self) -> Vec<Envelope> {
        MemoryOutbox::events(self)
    }
}

/// The outbox items of a DynamoDB table (a scan: for tests only).
pub struct DynamoOutboxProbe {
    pub client: Client,
    pub table: String,
}

#[async_trait]
impl OutboxProbe for DynamoOutboxProbe {
    async fn events(&self) -> Vec<Envelope> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S(OUTBOX_PK_PREFIX.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("scan the outbox");
        let mut events: Vec<Envelope> = out
            .items()
            .iter()
            .map(|item| {
                let json = item
                    .get("event")
                    .and_then(|v| v.as_s().ok())
                    .expect("outbox item has an event");
                Envelope::from_json(json).expect("outbox event decodes")
            })
            .collect();
        events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        events
    }
}
