//! Idempotent consume by business key.
//!
//! A handler names the work it does with a business key (e.g. `reserve#<orderId>`) and
//! records the key with its outcome in the same atomic write as the effect. A repeat — a
//! duplicate delivery, or a client retrying a request — finds the record and answers with the
//! recorded outcome instead of doing the work again, so a lost answer is recovered by asking
//! again.

use std::collections::HashMap;

#[cfg(feature = "aws")]
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Duration;
#[cfg(feature = "aws")]
use chrono::{DateTime, Utc};

#[cfg(feature = "aws")]
use crate::dynamo::{Client, epoch_seconds};
#[cfg(feature = "aws")]
use crate::errors::StoreError;

pub const DEDUP_PK_PREFIX: &str = "DEDUP#";
pub const DEDUP_SK: &str = "DEDUP";
/// How long a processed key is remembered. Far longer than any redelivery (SQS keeps a
/// message at most 14 days, and our DLQs are redriven sooner).
pub const DEDUP_RETENTION: Duration = Duration::days(15);

/// The answer to "has this work been done?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<T> {
    /// Not yet: do it, and record the outcome with the effect.
    Fresh,
    /// Done before, with this outcome: answer it again.
    Done(T),
}

/// Processed keys kept inside an in-memory store's state, so they commit with the effect.
#[derive(Debug, Clone)]
pub struct ProcessedKeys<T> {
    done: HashMap<String, T>,
}

impl<T> Default for ProcessedKeys<T> {
    fn default() -> Self {
        ProcessedKeys {
            done: HashMap::new(),
        }
    }
}

impl<T: Clone> ProcessedKeys<T> {
    pub fn claim(&self, key: &str) -> Claim<T> {
        match self.done.get(key) {
            Some(outcome) => Claim::Done(outcome.clone()),
            None => Claim::Fresh,
        }
    }

    /// Records the outcome. Returns the earlier one, unchanged, if the key was already done.
    pub fn record(&mut self, key: &str, outcome: T) -> Result<(), T> {
        match self.done.get(key) {
            Some(earlier) => Err(earlier.clone()),
            None => {
                self.done.insert(key.to_owned(), outcome);
                Ok(())
            }
        }
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

#[cfg(feature = "aws")]
fn dedup_pk(key: &str) -> String {
    format!("{DEDUP_PK_PREFIX}{key}")
}

#[cfg(feature = "aws")]
/// The de-duplication item, to go in the same `TransactWriteItems` as the effect. The
/// transaction is cancelled (`ConditionalCheckFailed` at this item) if the key was done.
pub fn dynamo_put(
    table: &str,
    key: &str,
    outcome_json: &str,
    now: DateTime<Utc>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .item("pk", AttributeValue::S(dedup_pk(key)))
        .item("sk", AttributeValue::S(DEDUP_SK.to_owned()))
        .item("outcome", AttributeValue::S(outcome_json.to_owned()))
        .item("ttl", epoch_seconds(now + DEDUP_RETENTION))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[cfg(feature = "aws")]
/// The outcome recorded for `key`, if any (a strongly consistent read).
pub async fn dynamo_claim(
    client: &Client,
    table: &str,
    key: &str,
) -> Result<Claim<String>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(dedup_pk(key)))
        .key("sk", AttributeValue::S(DEDUP_SK.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(crate::dynamo::store_error)?;
    match out.item().and_then(|i| i.get("outcome")) {
        None => Ok(Claim::Fresh),
        Some(AttributeValue::S(outcome)) => Ok(Claim::Done(outcome.clone())),
        Some(_) => Err(StoreError::corrupt(format!(
            "de-duplication record {key:?} has no text outcome"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_answers_the_first_outcome() {
        let mut keys = ProcessedKeys::default();
        assert_eq!(keys.claim("reserve#o-1"), Claim::Fresh);
        assert_eq!(keys.record("reserve#o-1", "reserved"), Ok(()));
        assert_eq!(keys.claim("reserve#o-1"), Claim::Done("reserved"));
        // A second outcome for the same work is refused and the first one kept.
        assert_eq!(keys.record("reserve#o-1", "out of stock"), Err("reserved"));
        assert_eq!(keys.claim("reserve#o-1"), Claim::Done("reserved"));
        assert_eq!(keys.claim("release#o-1"), Claim::Fresh);
        assert_eq!(keys.len(), 1);
    }
}

/// What a client's `Idempotency-Key` recorded: the request it was first used with (its
/// fingerprint: the request's meaningful fields in a canonical form) and that request's
/// outcome. The same key with another request is refused instead of answered with the first
/// request's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyedRequest {
    pub fingerprint: String,
    pub outcome: String,
}

/// The same `Idempotency-Key` was used before for a different request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this Idempotency-Key was used for a different request")]
pub struct KeyReused;

impl KeyedRequest {
    /// The value to record with the key.
    pub fn record(fingerprint: &str, outcome: &str) -> String {
        serde_json::to_string(&KeyedRequest {
            fingerprint: fingerprint.to_owned(),
            outcome: outcome.to_owned(),
        })
        .unwrap_or_default()
    }

    /// The recorded outcome if `fingerprint` is the request the key was first used with. A
    /// record from before fingerprints (a bare outcome) is taken as the same request.
    pub fn recall(recorded: &str, fingerprint: &str) -> Result<String, KeyReused> {
        match serde_json::from_str::<KeyedRequest>(recorded) {
            Ok(first) if first.fingerprint == fingerprint => Ok(first.outcome),
            Ok(_) => Err(KeyReused),
            Err(_) => Ok(recorded.to_owned()),
        }
    }
}

#[cfg(test)]
mod keyed_request_tests {
    use super::*;

    #[test]
    fn a_key_answers_again_only_for_the_request_it_was_first_used_with() {
        let recorded = KeyedRequest::record("amount=100", "1100");
        assert_eq!(
            KeyedRequest::recall(&recorded, "amount=100"),
            Ok("1100".to_owned())
        );
        assert_eq!(
            KeyedRequest::recall(&recorded, "amount=5000"),
            Err(KeyReused)
        );
        // Recorded before fingerprints: the outcome alone.
        assert_eq!(
            KeyedRequest::recall("1100", "amount=5000"),
            Ok("1100".to_owned())
        );
    }
}
