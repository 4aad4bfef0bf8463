//! Test support shared by every crate's tests (feature `testing`).

pub mod aws;

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

/// The outbox items of a test's DynamoDB table (a scan: for tests only). Holds the table,
/// which is deleted when the probe goes.
pub struct DynamoOutboxProbe {
    pub client: Client,
    pub table: aws::TestTable,
}

#[async_trait]
impl OutboxProbe for DynamoOutboxProbe {
    async fn events(&self) -> Vec<Envelope> {
        let out = self
            .client
            .scan()
            .table_name(&self.table.name)
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

/// A document store that also hands every committed event to an in-memory outbox, so a
/// test can run the in-memory relay and bus over DynamoDB tables (the stream reader that
/// does this for real belongs to the AWS runtime). The events are still written to the
/// table's outbox as well.
pub struct TeeStore {
    pub inner: std::sync::Arc<dyn crate::docstore::DocStore>,
    pub outbox: std::sync::Arc<MemoryOutbox>,
}

#[async_trait]
impl crate::docstore::DocStore for TeeStore {
    async fn get(
        &self,
        key: &crate::docstore::Key,
    ) -> Result<Option<crate::docstore::Item>, crate::dynamo::StoreError> {
        self.inner.get(key).await
    }

    async fn query(
        &self,
        query: crate::docstore::Query,
    ) -> Result<crate::docstore::Page, crate::dynamo::StoreError> {
        self.inner.query(query).await
    }

    async fn commit(
        &self,
        commit: crate::docstore::Commit,
    ) -> Result<(), crate::docstore::CommitError> {
        let events = commit.events.clone();
        self.inner.commit(commit).await?;
        self.outbox.append(events);
        Ok(())
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, crate::dynamo::StoreError> {
        self.inner.processed(key).await
    }
}
