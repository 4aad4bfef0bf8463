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
        outbox_events(&self.client, &self.table.name).await
    }
}

/// Every event in a DynamoDB table's outbox items, oldest first (a paged, consistent scan:
/// for tests only).
pub async fn outbox_events(client: &Client, table: &str) -> Vec<Envelope> {
    let mut events = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(":p", AttributeValue::S(OUTBOX_PK_PREFIX.to_owned()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan the outbox of {table}: {e}"));
        for item in page.items() {
            let event = crate::outbox::decode_event(
                item.get("event")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str),
            );
            events.push(event.unwrap_or_else(|e| panic!("the outbox of {table}: {e}")));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
    events
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
    ) -> Result<Option<crate::docstore::Item>, crate::errors::StoreError> {
        self.inner.get(key).await
    }

    async fn query(
        &self,
        query: crate::docstore::Query,
    ) -> Result<crate::docstore::Page, crate::errors::StoreError> {
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

    async fn processed(&self, key: &str) -> Result<Option<String>, crate::errors::StoreError> {
        self.inner.processed(key).await
    }
}
