//! What every DynamoDB adapter shares: the client, error mapping, transaction cancellation
//! reasons, TTL values.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

pub use aws_sdk_dynamodb::Client;

use crate::errors::StoreError;
use crate::packing::{Packed, Packing, Stored};

/// The reason code DynamoDB gives a transaction item whose condition failed.
pub const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

/// A client configured from the environment: region, credentials, and `AWS_ENDPOINT_URL`
/// for an emulator (moto, LocalStack). Makes no network call until first used.
pub async fn client_from_env() -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::new(&config)
}

/// For a cancelled `TransactWriteItems`: the reason code of each item, in request order
/// (`None` where that item was fine). `None` when the error is not a cancellation.
pub fn cancellation_codes<R>(
    error: &SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<Option<String>>> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// The error codes with which DynamoDB refuses a request it did not carry out, for now: it
/// throttled it (the table's, an index's or a partition's rate), or the item was in another
/// transaction. Retrying later is safe.
const THROTTLED: [&str; 4] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
];
/// The same, as a cancelled transaction's reasons for an item.
const THROTTLED_IN_TRANSACTION: [&str; 3] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// A failed request as the store's error: [`StoreError::Throttled`] for a refusal that
/// did nothing (once the SDK's own retries are spent; counted as `StoreThrottles`), otherwise
/// unavailable.
pub fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if error.code().is_some_and(|code| THROTTLED.contains(&code)) {
        return StoreError::throttled();
    }
    StoreError::unavailable(error)
}

/// Whether a cancelled transaction was cancelled because an item was throttled or in
/// another transaction (so nothing was written, and it may be tried again: a refusal to
/// answer as [`StoreError::throttled`], like any other throttled request).
pub fn throttled_in(codes: &[Option<String>]) -> bool {
    codes
        .iter()
        .flatten()
        .any(|code| THROTTLED_IN_TRANSACTION.contains(&code.as_str()))
}

/// Whether item `index` of a cancelled transaction failed its condition.
pub fn condition_failed_at(codes: &[Option<String>], index: usize) -> bool {
    codes.get(index).and_then(|c| c.as_deref()) == Some(CONDITIONAL_CHECK_FAILED)
}

/// JSON text as an attribute value, as `packing` stores it: a string, or binary when
/// deflated ([`crate::packing`]).
pub fn packed(text: String, packing: Packing) -> AttributeValue {
    match packing.pack(text) {
        Packed::Text(text) => AttributeValue::S(text),
        Packed::Deflated(bytes) => AttributeValue::B(bytes.into()),
    }
}

/// The stored form of a [`packed`] value (`None`: neither a string nor binary).
pub fn stored(value: &AttributeValue) -> Option<Stored<'_>> {
    match value {
        AttributeValue::S(text) => Some(Stored::Text(text)),
        AttributeValue::B(bytes) => Some(Stored::Deflated(bytes.as_ref())),
        _ => None,
    }
}

/// [`stored`], of a value as DynamoDB Streams' own client reads it.
pub fn stream_stored(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Option<Stored<'_>> {
    use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
    match value {
        StreamValue::S(text) => Some(Stored::Text(text)),
        StreamValue::B(bytes) => Some(Stored::Deflated(bytes.as_ref())),
        _ => None,
    }
}

/// [`stored`], of a value in a stream record as Lambda delivers it.
pub fn lambda_stored(value: &serde_dynamo::AttributeValue) -> Option<Stored<'_>> {
    match value {
        serde_dynamo::AttributeValue::S(text) => Some(Stored::Text(text)),
        serde_dynamo::AttributeValue::B(bytes) => Some(Stored::Deflated(bytes)),
        _ => None,
    }
}

/// A TTL attribute: epoch seconds as a number.
pub fn epoch_seconds(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp().to_string())
}

/// How long provisioning waits for a new table to be ACTIVE and its stream ENABLED.
const TABLE_READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// What every index of ours projects, as template.yaml spells it: keys only (why: see
/// [`crate::docstore::dynamodb`]'s queries). The template is checked against it.
pub const INDEX_PROJECTION: &str = "KEYS_ONLY";

/// Creates a table shaped like every table of ours, unless it exists: `pk`/`sk`, sparse
/// indexes `gsi1` and `gsi2` on `gsi1pk`/`gsi1sk` and `gsi2pk`/`gsi2sk` (keys only),
/// on demand, a stream of new images, TTL on `ttl`. The same shape as in `template.yaml`.
///
/// Returns once the table is ACTIVE and its stream ENABLED: records written before that
/// may never reach the stream (LocalStack drops them). A table that exists, or that another
/// process is creating at the same moment, is success.
pub async fn create_table(
    client: &Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    name: &str,
) -> Result<(), StoreError> {
    let exists = match client.describe_table().table_name(name).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(e) => return Err(StoreError::unavailable(e)),
    };
    if !exists && create(client, name).await? {
        enable_ttl(client, name).await?;
    }
    wait_until_ready(client, streams, name).await
}

/// Sends CreateTable; `false` when another process created the table first.
async fn create(client: &Client, name: &str) -> Result<bool, StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(StoreError::unavailable)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(StoreError::unavailable)
    };
    let gsi = |index: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(index)
            .key_schema(key(&format!("{index}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{index}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(INDEX_PROJECTION))
                    .build(),
            )
            .build()
            .map_err(StoreError::unavailable)
    };
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1")?)
        .global_secondary_indexes(gsi("gsi2")?)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(StoreError::unavailable)?,
        )
        .send()
        .await;
    match created {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::unavailable(e)),
    }
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::TimeToLiveSpecification;
    // UpdateTimeToLive is refused while the table is CREATING on AWS: wait for ACTIVE first.
    wait_until_active(client, name).await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(StoreError::unavailable)?,
        )
        .send()
        .await
        .map_err(StoreError::unavailable)?;
    Ok(())
}

/// Polls with a growing pause until `ready` answers `Some`, or the deadline passes.
async fn poll_until<T, F, Fut>(what: &str, mut ready: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, StoreError>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        if let Some(value) = ready().await? {
            return Ok(value);
        }
        if started.elapsed() > TABLE_READY_DEADLINE {
            return Err(StoreError::unavailable(format!(
                "{what} after {TABLE_READY_DEADLINE:?}"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
}

/// Waits for the table to be ACTIVE; answers its stream's ARN.
async fn wait_until_active(client: &Client, name: &str) -> Result<Option<String>, StoreError> {
    use aws_sdk_dynamodb::types::TableStatus;
    poll_until(&format!("table {name} is not ACTIVE"), || async {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(StoreError::unavailable)?
            .table;
        Ok(table
            .filter(|t| t.table_status() == Some(&TableStatus::Active))
            .map(|t| t.latest_stream_arn))
    })
    .await
}

async fn wait_until_ready(
    client: &Client,
    streams: &aws_sdk_dynamodbstreams::Client,
    name: &str,
) -> Result<(), StoreError> {
    use aws_sdk_dynamodbstreams::types::StreamStatus;
    let Some(stream_arn) = wait_until_active(client, name).await? else {
        return Err(StoreError::unavailable(format!(
            "table {name} has no stream; it was made by something else"
        )));
    };
    poll_until(
        &format!("the stream of table {name} is not ENABLED"),
        || async {
            let status = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
                .map_err(StoreError::unavailable)?
                .stream_description
                .and_then(|d| d.stream_status);
            Ok((status == Some(StreamStatus::Enabled)).then_some(()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_cancelled_for_a_conflict_or_a_throttle_may_be_tried_again() {
        let codes = |c: &[Option<&str>]| -> Vec<Option<String>> {
            c.iter().map(|c| c.map(str::to_owned)).collect()
        };
        assert!(throttled_in(&codes(&[None, Some("TransactionConflict")])));
        assert!(throttled_in(&codes(&[Some("ThrottlingError"), None])));
        assert!(!throttled_in(&codes(&[
            Some(CONDITIONAL_CHECK_FAILED),
            None
        ])));
        assert!(!throttled_in(&codes(&[Some("ValidationError")])));
    }
}
