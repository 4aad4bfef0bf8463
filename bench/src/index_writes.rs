//! What a table's global secondary indexes add to the bill. DynamoDB writes an index item
//! whenever a write puts an item into an index, moves it (a delete and a put), takes it out,
//! or changes an attribute the index projects; each of those is billed like a table write
//! (1 unit per KiB of the index item).
//!
//! What an index projects is `platform::dynamo::INDEX_PROJECTION` (the template agrees, or
//! `local` refuses it). Our indexes project keys only (`KEYS_ONLY`): an index item is the
//! table key and the index key, under 1 KiB, and a write that leaves an item's index keys as
//! they were (a counter's update, a replace of the body) writes no index at all. With `ALL`
//! every change of an indexed item is rewritten there, at the item's size; the model bills
//! that too, to compare.
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

/// What an item is, for its indexes: its key in each, and the size of its index item.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Indexed {
    gsi: [Option<String>; 2],
    size: usize,
}

/// What the indexes hold of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    KeysOnly,
    All,
}

impl Projection {
    /// The projection the document store creates and reads.
    pub(crate) fn of_the_store() -> Self {
        if platform::dynamo::INDEX_PROJECTION == "ALL" {
            Self::All
        } else {
            Self::KeysOnly
        }
    }
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

fn indexed(item: &Attributes, projection: Projection) -> Indexed {
    let at = |p: &str, s: &str| Some(format!("{}\u{0}{}", text(item, p)?, text(item, s)?));
    let size = match projection {
        Projection::All => item_size(item),
        Projection::KeysOnly => {
            let keys = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"];
            item_size(
                item.iter()
                    .filter(|(name, _)| keys.contains(&name.as_str())),
            )
        }
    };
    Indexed {
        gsi: [at("gsi1pk", "gsi1sk"), at("gsi2pk", "gsi2sk")],
        size,
    }
}

/// The item changes a DynamoDB request asks for (none for a read).
pub(crate) fn changes(input: &Input, projection: Projection) -> Changes {
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
            Change::Put(item.map(|i| indexed(i, projection)).unwrap_or_default()),
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
                let change = Change::Put(indexed(put.item(), projection));
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
#[derive(Debug)]
pub(crate) struct IndexedItems {
    projection: Projection,
    items: Mutex<HashMap<(String, String, String), Indexed>>,
}

impl Default for IndexedItems {
    fn default() -> Self {
        Self::new(Projection::of_the_store())
    }
}

impl IndexedItems {
    pub(crate) fn new(projection: Projection) -> Self {
        Self {
            projection,
            items: Mutex::default(),
        }
    }

    pub(crate) fn projection(&self) -> Projection {
        self.projection
    }

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
            let cost = index_cost(self.projection, before.as_ref(), after.as_ref());
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
fn index_cost(projection: Projection, before: Option<&Indexed>, after: Option<&Indexed>) -> f64 {
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
            // Same index key: only what the index projects can have changed.
            (Some(a), Some(b)) if a == b => match projection {
                Projection::All => units(old_size.max(new_size)),
                Projection::KeysOnly => 0.0,
            },
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
    fn a_keys_only_index_is_written_when_an_item_enters_moves_or_leaves_it() {
        let cost = |b, a| index_cost(Projection::KeysOnly, b, a);
        let order = item(Some("USER#1"), Some("SWEEP#t1"), 90);
        // Created in both indexes: a 1-unit write to each.
        assert_eq!(cost(None, Some(&order)), 2.0);
        // The body replaced, the keys as they were: no index write.
        let replaced = order.clone();
        assert_eq!(cost(Some(&order), Some(&replaced)), 0.0);
        // Moved in gsi2 (a delete and a put), gsi1 untouched.
        let moved = item(Some("USER#1"), Some("SWEEP#t2"), 90);
        assert_eq!(cost(Some(&order), Some(&moved)), 2.0);
        // Out of gsi2, then deleted.
        let settled = item(Some("USER#1"), None, 80);
        assert_eq!(cost(Some(&moved), Some(&settled)), 1.0);
        assert_eq!(cost(Some(&settled), None), 1.0);
        // An item in no index costs nothing there.
        assert_eq!(cost(None, Some(&item(None, None, 300))), 0.0);
    }

    #[test]
    fn an_index_of_all_attributes_is_rewritten_at_the_items_size() {
        let cost = |b, a| index_cost(Projection::All, b, a);
        let order = item(Some("USER#1"), Some("SWEEP#t1"), 1500);
        assert_eq!(cost(None, Some(&order)), 4.0);
        let moved = item(Some("USER#1"), Some("SWEEP#t2"), 900);
        assert_eq!(cost(Some(&order), Some(&moved)), 2.0 + 2.0 + 1.0);
        let settled = item(Some("USER#1"), None, 900);
        assert_eq!(cost(Some(&moved), Some(&settled)), 1.0 + 1.0);
    }

    #[test]
    fn an_update_rewrites_only_an_index_that_projects_the_changed_attributes() {
        let key = (
            "shop-product".to_owned(),
            "PRODUCT#1".to_owned(),
            "PRODUCT".to_owned(),
        );
        let product = item(Some("PRODUCTS"), None, 200);
        for (projection, update) in [(Projection::All, 1.0), (Projection::KeysOnly, 0.0)] {
            let seen = IndexedItems::new(projection);
            let put = seen.apply(vec![(key.clone(), Change::Put(product.clone()))]);
            assert_eq!(put["shop-product"], 1.0);
            let updated = seen.apply(vec![(key.clone(), Change::Update)]);
            assert_eq!(updated["shop-product"], update, "{projection:?}");
        }
        let unseen = (
            "shop-product".to_owned(),
            "STATS#d".to_owned(),
            "PRODUCT#1".to_owned(),
        );
        let seen = IndexedItems::new(Projection::All);
        assert_eq!(
            seen.apply(vec![(unseen, Change::Update)])["shop-product"],
            0.0
        );
    }

    #[test]
    fn a_keys_only_index_item_is_its_keys() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("ORDER#1".to_owned())),
            ("sk".to_owned(), AttributeValue::S("ORDER".to_owned())),
            ("gsi1pk".to_owned(), AttributeValue::S("USER#1".to_owned())),
            ("gsi1sk".to_owned(), AttributeValue::S("t1".to_owned())),
            ("doc".to_owned(), AttributeValue::S("x".repeat(5000))),
        ]);
        let keys = indexed(&item, Projection::KeysOnly);
        assert!(keys.size < 100, "{}", keys.size);
        assert!(indexed(&item, Projection::All).size > 5000);
    }
}
