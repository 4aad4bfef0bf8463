//! What every DynamoDB adapter shares: the client, error mapping, transaction cancellation
//! reasons, TTL values.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

pub use aws_sdk_dynamodb::Client;

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

/// A store failed for a reason the caller cannot fix. Shown to clients only as "internal
/// error"; the details go to the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item is unreadable: {0}")]
    Corrupt(String),
    /// Too many writers raced for the same items; try again later.
    #[error("too much contention; try again")]
    Contention,
    /// A page cursor that this store did not hand out.
    #[error("the page cursor is not valid")]
    InvalidCursor,
}

impl StoreError {
    pub fn unavailable(error: impl std::error::Error) -> StoreError {
        StoreError::Unavailable(DisplayErrorContext(error).to_string())
    }

    pub fn corrupt(error: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(error.to_string())
    }
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

/// Whether item `index` of a cancelled transaction failed its condition.
pub fn condition_failed_at(codes: &[Option<String>], index: usize) -> bool {
    codes.get(index).and_then(|c| c.as_deref()) == Some(CONDITIONAL_CHECK_FAILED)
}

/// A TTL attribute: epoch seconds as a number.
pub fn epoch_seconds(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp().to_string())
}

/// Creates a table shaped like every table of ours, unless it exists: `pk`/`sk`, sparse
/// indexes `gsi1` and `gsi2` on `gsi1pk`/`gsi1sk` and `gsi2pk`/`gsi2sk` (all attributes),
/// on demand, a stream of new images, TTL on `ttl`. The same shape as in `template.yaml`.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
        TimeToLiveSpecification,
    };
    if client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
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
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(StoreError::unavailable)
    };
    client
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
        .await
        .map_err(StoreError::unavailable)?;
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
