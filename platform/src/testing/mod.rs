//! Test support shared by every crate's tests (feature `testing`).

pub mod aws;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use contract::Envelope;

use crate::dynamo::Client;
use crate::outbox::MemoryOutbox;

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

/// The events a test's DynamoDB table's stream carries. Holds the table, which is deleted
/// when the probe goes.
pub struct DynamoOutboxProbe {
    pub sdk: aws_config::SdkConfig,
    pub table: aws::TestTable,
}

#[async_trait]
impl OutboxProbe for DynamoOutboxProbe {
    async fn events(&self) -> Vec<Envelope> {
        stream_events(&self.sdk, &self.table.name).await
    }
}

/// How long [`stream_events`] waits for its marker to reach the stream.
const STREAM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Every event a DynamoDB table's stream carries, as the relay reads them (records whose new
/// image has `events`), oldest first: for tests only. It first writes a marker item and
/// reads until the marker's record is there, so everything committed before the call is in
/// what it returns.
pub async fn stream_events(sdk: &aws_config::SdkConfig, table: &str) -> Vec<Envelope> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let dynamodb = Client::new(sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
    let marker = format!("PROBE#{}", uuid::Uuid::new_v4().simple());
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(marker.clone()))
        .item("sk", AttributeValue::S("PROBE".into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("write a marker to {table}: {e}"));
    let stream_arn = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .ok()
        .and_then(|d| d.table?.latest_stream_arn)
        .unwrap_or_else(|| panic!("{table} has no stream"));
    let deadline = std::time::Instant::now() + STREAM_DEADLINE;
    loop {
        let shards = streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe the stream of {table}: {e}"))
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut marked = false;
        for shard in shards.iter().filter_map(|s| s.shard_id()) {
            let mut iterator = streams
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap_or_else(|e| panic!("a shard iterator of {table}: {e}"))
                .shard_iterator;
            while let Some(at) = iterator {
                let page = streams
                    .get_records()
                    .shard_iterator(at)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("read the stream of {table}: {e}"));
                let records = page.records.unwrap_or_default();
                for image in records.iter().filter_map(|r| r.dynamodb()?.new_image()) {
                    let text = |name: &str| image.get(name).and_then(|v| v.as_s().ok());
                    marked |= text("pk").is_some_and(|pk| *pk == marker);
                    let carried = image
                        .get(crate::outbox::EVENTS_ATTRIBUTE)
                        .and_then(crate::dynamo::stream_stored);
                    if carried.is_some() {
                        let decoded = crate::outbox::decode_events(carried);
                        events.extend(
                            decoded.unwrap_or_else(|e| panic!("the stream of {table}: {e}")),
                        );
                    }
                }
                iterator = if records.is_empty() {
                    None
                } else {
                    page.next_shard_iterator
                };
            }
        }
        if marked {
            events.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream of {table} did not show a write within {STREAM_DEADLINE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A document store that also hands every committed event to an in-memory outbox, so a
/// test can run the in-memory relay and bus over DynamoDB tables (the stream reader that
/// does this for real belongs to the AWS runtime). The events are still written to the
/// table (and so its stream) as well.
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

    async fn get_eventual(
        &self,
        key: &crate::docstore::Key,
    ) -> Result<Option<crate::docstore::Item>, crate::errors::StoreError> {
        self.inner.get_eventual(key).await
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
