//! What a table's global secondary indexes add to the bill. DynamoDB writes an index item
//! whenever a write puts an item into an index, moves it (a delete and a put), takes it out,
//! or changes any attribute the index projects; each of those is billed like a table write
//! (1 unit per KiB of the index item). Our indexes `gsi1`/`gsi2` project every attribute
//! (`ProjectionType: ALL`, template.yaml and `platform::dynamo`), so any change of an item
//! in an index writes it there too, and the index item is as large as the table item.
//!
//! Whether an item is in an index before a write is not in the request: the bill keeps what
//! every successful write it saw left (index keys and size per item) and compares. An item
//! written before the bill started counting is known too (the counter sees every request);
//! one it never saw counts as not indexed. Index writes are counted once, also inside a
//! transaction (which doubles only the table writes).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::Input;

use crate::bill::item_size;

type Attributes = HashMap<String, AttributeValue>;

/// What an item is, for its indexes: its key in each, and its size.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Indexed {
    gsi: [Option<String>; 2],
    size: usize,
}

/// One item's change, as a request asks for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Put(Indexed),
    /// An update: attributes change, the index keys (ours never move in an update) do not.
    Update,
    Delete,
}

/// The changes a request asks for, by (table, pk, sk).
pub(crate) type Changes = Vec<((String, String, String), Change)>;

fn text(item: &Attributes, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn key_of(table: &str, key: &Attributes) -> Option<(String, String, String)> {
    Some((table.to_owned(), text(key, "pk")?, text(key, "sk")?))
}

fn indexed(item: &Attributes) -> Indexed {
    let at = |p: &str, s: &str| Some(format!("{}\u{0}{}", text(item, p)?, text(item, s)?));
    Indexed {
        gsi: [at("gsi1pk", "gsi1sk"), at("gsi2pk", "gsi2sk")],
        size: item_size(item),
    }
}

/// The item changes a DynamoDB request asks for (none for a read).
pub(crate) fn changes(input: &Input) -> Changes {
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
    use aws_sdk_dynamodb::operation::put_item::PutItemInput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
    let mut out = Changes::new();
    let mut push = |table: &str, key: Option<&Attributes>, change: Change| {
        if let Some(key) = key.and_then(|k| key_of(table, k)) {
            out.push((key, change));
        }
    };
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        let item = put.item();
        push(
            put.table_name().unwrap_or_default(),
            item,
            Change::Put(item.map(indexed).unwrap_or_default()),
        );
    } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
        push(
            update.table_name().unwrap_or_default(),
            update.key(),
            Change::Update,
        );
    } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
        push(
            delete.table_name().unwrap_or_default(),
            delete.key(),
            Change::Delete,
        );
    } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
        for item in transaction.transact_items() {
            if let Some(put) = item.put() {
                let change = Change::Put(indexed(put.item()));
                push(put.table_name(), Some(put.item()), change);
            } else if let Some(update) = item.update() {
                push(update.table_name(), Some(update.key()), Change::Update);
            } else if let Some(delete) = item.delete() {
                push(delete.table_name(), Some(delete.key()), Change::Delete);
            }
        }
    }
    out
}

fn units(size: usize) -> f64 {
    size.max(1).div_ceil(1024) as f64
}

/// What every item the bill saw written is, for its indexes.
#[derive(Debug, Default)]
pub(crate) struct IndexedItems {
    items: Mutex<HashMap<(String, String, String), Indexed>>,
}

impl IndexedItems {
    /// Applies the changes of a request that succeeded; answers the index write units they
    /// cost, by table.
    pub(crate) fn apply(&self, changes: Changes) -> HashMap<String, f64> {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let mut billed: HashMap<String, f64> = HashMap::new();
        for (key, change) in changes {
            let before = items.get(&key).cloned();
            let after = match change {
                Change::Put(new) => Some(new),
                Change::Update => before.clone(),
                Change::Delete => None,
            };
            let cost = index_cost(before.as_ref(), after.as_ref());
            *billed.entry(key.0.clone()).or_default() += cost;
            match after {
                Some(after) => items.insert(key, after),
                None => items.remove(&key),
            };
        }
        billed
    }
}

/// The index writes of one item going from `before` to `after` (`None`: absent).
fn index_cost(before: Option<&Indexed>, after: Option<&Indexed>) -> f64 {
    let none = [None, None];
    let (old, new) = (
        before.map_or(&none, |b| &b.gsi),
        after.map_or(&none, |a| &a.gsi),
    );
    let (old_size, new_size) = (before.map_or(0, |b| b.size), after.map_or(0, |a| a.size));
    old.iter()
        .zip(new)
        .map(|pair| match pair {
            (None, None) => 0.0,
            (None, Some(_)) => units(new_size),
            (Some(_), None) => units(old_size),
            (Some(a), Some(b)) if a == b => units(old_size.max(new_size)),
            (Some(_), Some(_)) => units(old_size) + units(new_size),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(gsi1: Option<&str>, gsi2: Option<&str>, size: usize) -> Indexed {
        Indexed {
            gsi: [gsi1.map(str::to_owned), gsi2.map(str::to_owned)],
            size,
        }
    }

    #[test]
    fn an_index_is_written_when_an_item_enters_moves_leaves_or_changes_in_it() {
        let order = item(Some("USER#1"), Some("SWEEP#t1"), 1500);
        // Created in both indexes: a 2-unit write to each.
        assert_eq!(index_cost(None, Some(&order)), 4.0);
        // Changed in place in gsi1, moved in gsi2 (a delete and a put).
        let moved = item(Some("USER#1"), Some("SWEEP#t2"), 900);
        assert_eq!(index_cost(Some(&order), Some(&moved)), 2.0 + 2.0 + 1.0);
        // Out of gsi2.
        let settled = item(Some("USER#1"), None, 900);
        assert_eq!(index_cost(Some(&moved), Some(&settled)), 1.0 + 1.0);
        // An item in no index costs nothing there.
        let record = item(None, None, 300);
        assert_eq!(index_cost(None, Some(&record)), 0.0);
        assert_eq!(index_cost(Some(&settled), None), 1.0);
    }

    #[test]
    fn an_update_rewrites_the_indexes_the_item_is_in() {
        let seen = IndexedItems::default();
        let key = (
            "shop-product".to_owned(),
            "PRODUCT#1".to_owned(),
            "PRODUCT".to_owned(),
        );
        let product = item(Some("PRODUCTS"), None, 200);
        assert_eq!(
            seen.apply(vec![(key.clone(), Change::Put(product))])["shop-product"],
            1.0
        );
        assert_eq!(
            seen.apply(vec![(key.clone(), Change::Update)])["shop-product"],
            1.0
        );
        let unseen = (
            "shop-product".to_owned(),
            "STATS#d".to_owned(),
            "PRODUCT#1".to_owned(),
        );
        assert_eq!(
            seen.apply(vec![(unseen, Change::Update)])["shop-product"],
            0.0
        );
    }
}
