//! The document store on DynamoDB. An item is `pk`, `sk`, `v` (version), `body` (the JSON
//! document; deflated, as binary, when that is smaller: [`crate::packing`]), optional
//! `gsi1pk`/`gsi1sk` and `gsi2pk`/`gsi2sk` (sparse indexes `gsi1`, `gsi2`, keys projected
//! only: see [`query`]), an optional `ttl`, and a number `c_<name>` for each counter (kept out of `body`, so that an add is one `UpdateItem … ADD` with no
//! read; a read puts them back into the body).
//!
//! A commit's events ride on the write [`Commit::carrier`] names (its first put, else its
//! first add): that item carries them in `events` (see [`crate::outbox`]), so the stream
//! record of the write is the outbox. A commit with neither carries them on one outbox item
//! instead. When that leaves one item to write — a put or an add with or without events, a
//! delete without — the commit is one conditional `PutItem`/`UpdateItem`/`DeleteItem` (one
//! write unit per KiB); anything else is one `TransactWriteItems`
//! of the writes, then the processed-key record, then the outbox item (every item billed
//! twice).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

use super::{
    Commit, CommitError, ConflictAt, DocStore, Expect, IndexKey, Item, Key, Page, Query, Write,
};
use crate::dynamo::{self, Client, cancellation_codes, condition_failed_at, epoch_seconds};
use crate::errors::StoreError;
use crate::idempotency::{Claim, dynamo_claim, dynamo_put};
use crate::outbox;
use crate::packing::{self, Packing};
use contract::Envelope;

mod query;

pub struct DynamoDocStore {
    client: Client,
    table: String,
    packing: Packing,
}

impl DynamoDocStore {
    /// The store of `table`, deflating long bodies and events ([`Packing::Deflate`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDocStore {
            client,
            table: table.into(),
            packing: Packing::Deflate,
        }
    }

    /// The same, writing long text as `packing` says (reads take either form).
    pub fn packing(mut self, packing: Packing) -> Self {
        self.packing = packing;
        self
    }
}

type Attributes = HashMap<String, AttributeValue>;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn key_attributes(key: &Key) -> Attributes {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

fn text(item: &Attributes, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn item_from(attributes: &Attributes) -> Result<Item, StoreError> {
    let field = |name: &str| {
        text(attributes, name).ok_or_else(|| StoreError::corrupt(format!("item without {name}")))
    };
    let version = attributes
        .get("v")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::corrupt("item without a version"))?;
    let index = |p: &str, s: &str| match (text(attributes, p), text(attributes, s)) {
        (Some(pk), Some(sk)) => Some(IndexKey { pk, sk }),
        _ => None,
    };
    let key = Key::new(field("pk")?, field("sk")?);
    let body = attributes
        .get("body")
        .and_then(dynamo::stored)
        .ok_or_else(|| StoreError::corrupt("item without body"))?;
    let body = packing::unpack(body).map_err(StoreError::corrupt)?;
    let mut body: serde_json::Value = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
    let mut counters = BTreeSet::new();
    for (attribute, value) in attributes {
        let Some(name) = attribute.strip_prefix(COUNTER_PREFIX) else {
            continue;
        };
        let corrupt = || StoreError::corrupt(format!("{}/{}: counter {name}", key.pk, key.sk));
        let count: i64 = value
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(corrupt)?;
        body.as_object_mut()
            .ok_or_else(corrupt)?
            .insert(name.to_owned(), count.into());
        counters.insert(name.to_owned());
    }
    Ok(Item {
        key,
        version,
        body,
        gsi1: index("gsi1pk", "gsi1sk"),
        gsi2: index("gsi2pk", "gsi2sk"),
        counters,
    })
}

/// The attribute of counter `name` is `c_<name>`.
const COUNTER_PREFIX: &str = "c_";

/// The condition expression and its values for an expectation.
fn condition(expect: Expect) -> (String, Option<Attributes>) {
    match expect {
        Expect::Absent => ("attribute_not_exists(pk)".to_owned(), None),
        Expect::Version(v) => (
            "v = :expected".to_owned(),
            Some(HashMap::from([(
                ":expected".to_owned(),
                AttributeValue::N(v.to_string()),
            )])),
        ),
    }
}

/// An add as one update: `ADD` the version and the counters, keep or create the body, set
/// or drop the events (an item must not keep events it carried before: its stream record
/// would publish them again), under the bound.
struct AddUpdate {
    update: String,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Attributes,
}

fn add_update(
    deltas: &BTreeMap<String, i64>,
    create: Option<&serde_json::Value>,
    events: Option<&[Envelope]>,
    packing: Packing,
) -> AddUpdate {
    let mut names = HashMap::from([
        ("#v".to_owned(), "v".to_owned()),
        ("#events".to_owned(), outbox::EVENTS_ATTRIBUTE.to_owned()),
    ]);
    let mut values = HashMap::from([(":one".to_owned(), AttributeValue::N("1".to_owned()))]);
    let mut adds = vec!["#v :one".to_owned()];
    let mut conditions = Vec::new();
    if create.is_none() {
        conditions.push("attribute_exists(pk)".to_owned());
    }
    for (i, (name, delta)) in deltas.iter().enumerate() {
        names.insert(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"));
        values.insert(format!(":d{i}"), AttributeValue::N(delta.to_string()));
        adds.push(format!("#c{i} :d{i}"));
        if *delta < 0 {
            // A missing counter is 0, and fails this as DynamoDB compares it: never below 0.
            values.insert(
                format!(":n{i}"),
                AttributeValue::N(delta.unsigned_abs().to_string()),
            );
            conditions.push(format!("#c{i} >= :n{i}"));
        }
    }
    let mut sets = Vec::new();
    if let Some(body) = create {
        names.insert("#body".to_owned(), "body".to_owned());
        values.insert(
            ":body".to_owned(),
            dynamo::packed(body.to_string(), packing),
        );
        sets.push("#body = if_not_exists(#body, :body)".to_owned());
    }
    let mut update = format!("ADD {}", adds.join(", "));
    match events.filter(|e| !e.is_empty()) {
        Some(events) => {
            values.insert(
                ":events".to_owned(),
                dynamo::packed(outbox::encode_events(events), packing),
            );
            sets.push("#events = :events".to_owned());
        }
        None => update.push_str(" REMOVE #events"),
    }
    if !sets.is_empty() {
        update.push_str(&format!(" SET {}", sets.join(", ")));
    }
    AddUpdate {
        update,
        condition: (!conditions.is_empty()).then(|| conditions.join(" AND ")),
        names,
        values,
    }
}

/// The item a put writes, with the events it carries (`None`: not a put).
fn put_attributes(
    write: &Write,
    events: Option<&[Envelope]>,
    packing: Packing,
) -> Option<Attributes> {
    let Write::Put {
        key,
        body,
        gsi1,
        gsi2,
        expires_at,
        counters,
        expect,
    } = write
    else {
        return None;
    };
    let version = match expect {
        Expect::Absent => 1,
        Expect::Version(v) => v + 1,
    };
    let mut item = key_attributes(key);
    item.insert("v".to_owned(), AttributeValue::N(version.to_string()));
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        for name in counters {
            if let Some(count) = fields.remove(name).and_then(|v| v.as_i64()) {
                item.insert(
                    format!("{COUNTER_PREFIX}{name}"),
                    AttributeValue::N(count.to_string()),
                );
            }
        }
    }
    item.insert("body".to_owned(), dynamo::packed(body.to_string(), packing));
    if let Some(k) = gsi1 {
        item.insert("gsi1pk".to_owned(), s(&k.pk));
        item.insert("gsi1sk".to_owned(), s(&k.sk));
    }
    if let Some(k) = gsi2 {
        item.insert("gsi2pk".to_owned(), s(&k.pk));
        item.insert("gsi2sk".to_owned(), s(&k.sk));
    }
    if let Some(at) = expires_at {
        item.insert("ttl".to_owned(), epoch_seconds(*at));
    }
    if let Some(events) = events.filter(|e| !e.is_empty()) {
        item.insert(
            outbox::EVENTS_ATTRIBUTE.to_owned(),
            dynamo::packed(outbox::encode_events(events), packing),
        );
    }
    Some(item)
}

fn transact_item(
    table: &str,
    write: &Write,
    events: Option<&[Envelope]>,
    packing: Packing,
) -> Result<TransactWriteItem, StoreError> {
    let (expression, values) = write.expect().map(condition).unwrap_or_default();
    let item = match write {
        Write::Add {
            key,
            deltas,
            create,
        } => {
            let add = add_update(deltas, create.as_ref(), events, packing);
            TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key_attributes(key)))
                    .update_expression(add.update)
                    .set_condition_expression(add.condition)
                    .set_expression_attribute_names(Some(add.names))
                    .set_expression_attribute_values(Some(add.values))
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
        }
        Write::Put { .. } => TransactWriteItem::builder().put(
            Put::builder()
                .table_name(table)
                .set_item(put_attributes(write, events, packing))
                .condition_expression(expression)
                .set_expression_attribute_values(values)
                .build()
                .map_err(StoreError::unavailable)?,
        ),
        Write::Delete { key, .. } => TransactWriteItem::builder().delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key_attributes(key)))
                .condition_expression(expression)
                .set_expression_attribute_values(values)
                .build()
                .map_err(StoreError::unavailable)?,
        ),
        Write::Check { key, .. } => TransactWriteItem::builder().condition_check(
            ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key_attributes(key)))
                .condition_expression(expression)
                .set_expression_attribute_values(values)
                .build()
                .map_err(StoreError::unavailable)?,
        ),
    };
    Ok(item.build())
}

/// A single write's answer: its failed condition is a conflict at the commit's one write.
fn single_write_answer<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<(), CommitError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Err(CommitError::Conflict(ConflictAt::Write(0)))
        }
        Err(e) => Err(dynamo::store_error(e).into()),
    }
}

impl DynamoDocStore {
    /// One `GetItem`, strongly consistent or not.
    async fn get_item(&self, key: &Key, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(dynamo::store_error)?;
        out.item.as_ref().map(item_from).transpose()
    }

    /// The cheap path: one conditional single-item write (a put with the events it carries).
    async fn write_one(&self, write: &Write, events: &[Envelope]) -> Result<(), CommitError> {
        let (expression, values) = write.expect().map(condition).unwrap_or_default();
        match write {
            Write::Add {
                key,
                deltas,
                create,
            } => {
                let add = add_update(deltas, create.as_ref(), Some(events), self.packing);
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attributes(key)))
                    .update_expression(add.update)
                    .set_condition_expression(add.condition)
                    .set_expression_attribute_names(Some(add.names))
                    .set_expression_attribute_values(Some(add.values))
                    .send()
                    .await;
                single_write_answer(result)
            }
            Write::Put { .. } => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(put_attributes(write, Some(events), self.packing))
                    .condition_expression(expression)
                    .set_expression_attribute_values(values)
                    .send()
                    .await;
                single_write_answer(result)
            }
            Write::Delete { key, .. } => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attributes(key)))
                    .condition_expression(expression)
                    .set_expression_attribute_values(values)
                    .send()
                    .await;
                single_write_answer(result)
            }
            Write::Check { key, expect } => {
                let current = self.get(key).await?;
                let ok = match expect {
                    Expect::Absent => current.is_none(),
                    Expect::Version(v) => current.is_some_and(|i| i.version == *v),
                };
                if ok {
                    Ok(())
                } else {
                    Err(CommitError::Conflict(ConflictAt::Write(0)))
                }
            }
        }
    }

    /// Events that no write carries, alone: their outbox item is the one write.
    async fn put_outbox_item(&self, events: &[Envelope]) -> Result<(), CommitError> {
        let now = events
            .first()
            .map_or_else(chrono::Utc::now, |e| e.occurred_at);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outbox::dynamo_item(events, now, self.packing)))
            .condition_expression(outbox::NEW_ITEM)
            .send()
            .await
            .map_err(|e| CommitError::Store(dynamo::store_error(e)))?;
        Ok(())
    }
}

#[async_trait]
impl DocStore for DynamoDocStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true).await
    }

    /// Half the read units of a strong read; may be a second or so behind.
    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get_item(key, false).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        query::get_many(self, keys).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        query::query(self, query).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        commit.check()?;
        if commit.is_empty() {
            return Ok(());
        }
        let (carrier, needs_outbox_item) = (commit.carrier(), commit.needs_outbox_item());
        let single = commit.writes.len() == 1 && commit.processed.is_none() && !needs_outbox_item;
        if single {
            return self.write_one(&commit.writes[0], &commit.events).await;
        }
        if commit.writes.is_empty() && commit.processed.is_none() {
            return self.put_outbox_item(&commit.events).await;
        }
        let now = commit
            .events
            .first()
            .map(|e| e.occurred_at)
            .unwrap_or_else(chrono::Utc::now);
        let mut items = Vec::with_capacity(commit.writes.len() + 2);
        for (i, write) in commit.writes.iter().enumerate() {
            let events = (carrier == Some(i)).then_some(commit.events.as_slice());
            items.push(transact_item(&self.table, write, events, self.packing)?);
        }
        if let Some((key, outcome)) = &commit.processed {
            items.push(dynamo_put(&self.table, key, outcome, now)?);
        }
        if needs_outbox_item {
            items.push(outbox::dynamo_put(
                &self.table,
                &commit.events,
                now,
                self.packing,
            )?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let Some(codes) = cancellation_codes(&error) else {
                    return Err(dynamo::store_error(error).into());
                };
                if let Some(i) = (0..commit.writes.len()).find(|&i| condition_failed_at(&codes, i))
                {
                    return Err(CommitError::Conflict(ConflictAt::Write(i)));
                }
                if commit.processed.is_some() && condition_failed_at(&codes, commit.writes.len()) {
                    return Err(CommitError::Conflict(ConflictAt::Processed));
                }
                if dynamo::throttled_in(&codes) {
                    return Err(StoreError::throttled().into());
                }
                Err(StoreError::unavailable(error).into())
            }
        }
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(match dynamo_claim(&self.client, &self.table, key).await? {
            Claim::Fresh => None,
            Claim::Done(outcome) => Some(outcome),
        })
    }
}
