//! Queries. The table answers whole items. The indexes project keys only
//! (`ProjectionType: KEYS_ONLY`, template.yaml and [`crate::dynamo::INDEX_PROJECTION`]), so an
//! index answers where the items are, and one `BatchGetItem` reads them.
//!
//! Why keys only: an index that projects the item is written again, at the item's size,
//! by every write that changes the item, and our items change at every step (an order about
//! five times, a product at every reservation). An index of keys is written only when an item
//! enters it, leaves it or moves in it. Reading the page's items costs about what projecting
//! them did, and only lists read them.
//!
//! Like the index itself, the items are read eventually consistent. One that has left the
//! index range since (deleted, or its index key moved) is left out of the page, as the index
//! would have a moment later: a page may hold fewer items than its limit, and still have a
//! cursor.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::{Attributes, DynamoDocStore, item_from, s, text};
use crate::docstore::{
    Index, Page, Query, cursor_within, decode_cursor, encode_cursor, key_fits, pause_before_retry,
};
use crate::dynamo;
use crate::errors::StoreError;

/// DynamoDB's most keys in one `BatchGetItem`.
const BATCH_GET_KEYS: usize = 100;
/// How many times keys DynamoDB left unprocessed (throttling) are asked again.
const BATCH_GET_ATTEMPTS: u32 = 5;

pub(super) async fn query(store: &DynamoDocStore, query: Query) -> Result<Page, StoreError> {
    let (index_name, pk_name, sk_name) = match query.index {
        Index::Table => (None, "pk", "sk"),
        Index::Gsi1 => (Some("gsi1"), "gsi1pk", "gsi1sk"),
        Index::Gsi2 => (Some("gsi2"), "gsi2pk", "gsi2sk"),
    };
    let mut expression = "#pk = :pk".to_owned();
    let mut values = HashMap::from([(":pk".to_owned(), s(&query.pk))]);
    match (&query.sk_max, query.sk_prefix.is_empty()) {
        (Some(max), true) => {
            expression.push_str(" AND #sk <= :max");
            values.insert(":max".to_owned(), s(max));
        }
        (Some(max), false) => {
            expression.push_str(" AND #sk BETWEEN :low AND :max");
            values.insert(":low".to_owned(), s(&query.sk_prefix));
            values.insert(":max".to_owned(), s(max));
        }
        (None, false) => {
            expression.push_str(" AND begins_with(#sk, :prefix)");
            values.insert(":prefix".to_owned(), s(&query.sk_prefix));
        }
        (None, true) => {}
    }
    let start = match &query.cursor {
        None => None,
        Some(cursor) => Some(start_key(&query, cursor, pk_name, sk_name)?),
    };
    let limit = query.limit.max(1);
    let mut names = HashMap::from([("#pk".to_owned(), pk_name.to_owned())]);
    if expression.contains("#sk") {
        names.insert("#sk".to_owned(), sk_name.to_owned());
    }
    let out = store
        .client
        .query()
        .table_name(&store.table)
        .set_index_name(index_name.map(str::to_owned))
        .key_condition_expression(expression)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .scan_index_forward(!query.descending)
        // One more than asked, to know whether a next page exists.
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .set_consistent_read(index_name.is_none().then_some(true))
        .send()
        .await
        .map_err(dynamo::store_error)?;
    let raw = out.items.unwrap_or_default();
    let more = raw.len() > limit;
    let page = &raw[..raw.len().min(limit)];
    let items = match index_name {
        None => page.iter().map(item_from).collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            let mut current = batch_get(store, page).await?;
            let mut items = Vec::with_capacity(page.len());
            for entry in page {
                let key = (text(entry, "pk"), text(entry, "sk"));
                let Some(item) = current.remove(&key) else {
                    continue;
                };
                let still_there = [pk_name, sk_name]
                    .iter()
                    .all(|name| text(&item, name) == text(entry, name));
                if still_there {
                    items.push(item_from(&item)?);
                }
            }
            items
        }
    };
    let cursor = match (more, page.last()) {
        (true, Some(last)) => {
            let mut position = serde_json::Map::new();
            for name in ["pk", "sk", pk_name, sk_name] {
                if let Some(v) = text(last, name) {
                    position.insert(name.to_owned(), serde_json::Value::String(v));
                }
            }
            Some(encode_cursor(&serde_json::Value::Object(position)))
        }
        _ => None,
    };
    Ok(Page { items, cursor })
}

/// The items at `keys`, in their order, read in `BatchGetItem`s (see [`batch_get`]).
pub(super) async fn get_many(
    store: &DynamoDocStore,
    keys: &[crate::docstore::Key],
) -> Result<Vec<Option<crate::docstore::Item>>, StoreError> {
    // DynamoDB refuses a batch naming a key twice.
    let distinct: BTreeSet<&crate::docstore::Key> = keys.iter().collect();
    let entries: Vec<Attributes> = distinct.into_iter().map(super::key_attributes).collect();
    let found = batch_get(store, &entries).await?;
    keys.iter()
        .map(|k| {
            found
                .get(&(Some(k.pk.clone()), Some(k.sk.clone())))
                .map(item_from)
                .transpose()
        })
        .collect()
}

/// The start key a cursor names: the last item's whole key, table and index, and nothing
/// else, inside this query's partition and range, or it is not ours.
fn start_key(
    query: &Query,
    cursor: &str,
    pk_name: &str,
    sk_name: &str,
) -> Result<Attributes, StoreError> {
    let map: HashMap<String, String> =
        serde_json::from_value(decode_cursor(cursor)?).map_err(|_| StoreError::InvalidCursor)?;
    let names: BTreeSet<&str> = ["pk", "sk", pk_name, sk_name].into_iter().collect();
    let exact = map.len() == names.len() && names.iter().all(|k| map.contains_key(*k));
    if !exact
        || !cursor_within(query, &map[pk_name], &map[sk_name])
        || !key_fits(&map["pk"], &map["sk"])
    {
        return Err(StoreError::InvalidCursor);
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

type TableKey = (Option<String>, Option<String>);

/// The items at the keys of `entries`, as they are now, by (`pk`, `sk`); absent ones are not
/// in the answer. Keys DynamoDB leaves unprocessed are asked again, a bounded number of
/// times with jittered backoff, then the read fails as throttled.
async fn batch_get(
    store: &DynamoDocStore,
    entries: &[Attributes],
) -> Result<HashMap<TableKey, Attributes>, StoreError> {
    let mut found = HashMap::with_capacity(entries.len());
    for chunk in entries.chunks(BATCH_GET_KEYS) {
        let keys: Vec<Attributes> = chunk
            .iter()
            .map(|entry| {
                ["pk", "sk"]
                    .iter()
                    .filter_map(|name| Some((name.to_string(), entry.get(*name)?.clone())))
                    .collect()
            })
            .collect();
        let mut wanted = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(false)
                .build()
                .map_err(StoreError::unavailable)?,
        );
        let mut attempt = 0;
        while let Some(keys) = wanted.take() {
            if attempt == BATCH_GET_ATTEMPTS {
                return Err(StoreError::throttled());
            }
            if attempt > 0 {
                pause_before_retry(attempt - 1).await;
            }
            attempt += 1;
            let out = store
                .client
                .batch_get_item()
                .request_items(&store.table, keys)
                .send()
                .await
                .map_err(dynamo::store_error)?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(&store.table))
                .unwrap_or_default()
            {
                found.insert((text(&item, "pk"), text(&item, "sk")), item);
            }
            wanted = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&store.table))
                .filter(|k| !k.keys().is_empty());
        }
    }
    Ok(found)
}
