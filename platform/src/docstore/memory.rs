//! The in-memory document store: one lock over the table, so every commit is atomic and
//! every condition is checked against the latest state, as DynamoDB transactions are.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Commit, CommitError, ConflictAt, DocStore, Expect, Index, IndexKey, Item, Key, Page, Query,
    Write, decode_cursor, encode_cursor,
};
use crate::errors::StoreError;
use crate::outbox::MemoryOutbox;

#[derive(Default)]
struct Table {
    items: BTreeMap<Key, Item>,
    processed: HashMap<String, String>,
}

pub struct MemoryDocStore {
    table: Mutex<Table>,
    outbox: Arc<MemoryOutbox>,
}

impl MemoryDocStore {
    pub fn new(outbox: Arc<MemoryOutbox>) -> Self {
        MemoryDocStore {
            table: Mutex::new(Table::default()),
            outbox,
        }
    }

    pub fn outbox(&self) -> &Arc<MemoryOutbox> {
        &self.outbox
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every item, in key order: for tests and invariant checks.
    pub fn items(&self) -> Vec<Item> {
        self.lock().items.values().cloned().collect()
    }
}

fn satisfied(current: Option<&Item>, expect: Expect) -> bool {
    match (expect, current) {
        (Expect::Absent, None) => true,
        (Expect::Version(v), Some(item)) => item.version == v,
        _ => false,
    }
}

fn index_key(item: &Item, index: Index) -> Option<IndexKey> {
    match index {
        Index::Table => Some(IndexKey::new(item.key.pk.clone(), item.key.sk.clone())),
        Index::Gsi1 => item.gsi1.clone(),
        Index::Gsi2 => item.gsi2.clone(),
    }
}

/// The total order of a query's results: the index's sort key, then the table key.
fn position(item: &Item, index: Index) -> (String, String, String) {
    let sort = index_key(item, index).map(|k| k.sk).unwrap_or_default();
    (sort, item.key.pk.clone(), item.key.sk.clone())
}

#[async_trait]
impl DocStore for MemoryDocStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self.lock().items.get(key).cloned())
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let after = match &query.cursor {
            Some(cursor) => {
                let v = decode_cursor(cursor)?;
                let field = |name: &str| v.get(name).and_then(|s| s.as_str()).map(str::to_owned);
                // As DynamoDB's: the index key and the table key, inside this query.
                match (field("p"), field("s"), field("pk"), field("sk")) {
                    (Some(p), Some(s), Some(pk), Some(sk))
                        if v.as_object().is_some_and(|o| o.len() == 4)
                            && super::cursor_within(&query, &p, &s)
                            && super::key_fits(&pk, &sk) =>
                    {
                        Some((s, pk, sk))
                    }
                    _ => return Err(StoreError::InvalidCursor),
                }
            }
            None => None,
        };
        let table = self.lock();
        let mut matching: Vec<&Item> = table
            .items
            .values()
            .filter(|item| {
                index_key(item, query.index).is_some_and(|k| {
                    k.pk == query.pk
                        && k.sk.starts_with(&query.sk_prefix)
                        && query.sk_max.as_ref().is_none_or(|max| k.sk <= *max)
                })
            })
            .collect();
        matching.sort_by_key(|item| position(item, query.index));
        if query.descending {
            matching.reverse();
        }
        let rest: Vec<&Item> = matching
            .into_iter()
            .filter(|item| match &after {
                None => true,
                Some(after) if query.descending => position(item, query.index) < *after,
                Some(after) => position(item, query.index) > *after,
            })
            .collect();
        let limit = query.limit.max(1);
        let items: Vec<Item> = rest.iter().take(limit).map(|i| (*i).clone()).collect();
        let cursor = (rest.len() > limit).then(|| {
            let last = &items[items.len() - 1];
            let (s, pk, sk) = position(last, query.index);
            encode_cursor(&serde_json::json!({"p": query.pk, "s": s, "pk": pk, "sk": sk}))
        });
        Ok(Page { items, cursor })
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        commit.check_size()?;
        let mut table = self.lock();
        for (i, write) in commit.writes.iter().enumerate() {
            if !satisfied(table.items.get(write.key()), write.expect()) {
                return Err(CommitError::Conflict(ConflictAt::Write(i)));
            }
            if commit.writes[..i].iter().any(|w| w.key() == write.key()) {
                return Err(StoreError::Refused("a commit may touch each item once".into()).into());
            }
        }
        if let Some((key, _)) = &commit.processed
            && table.processed.contains_key(key)
        {
            return Err(CommitError::Conflict(ConflictAt::Processed));
        }
        for write in commit.writes {
            match write {
                Write::Put {
                    key,
                    body,
                    gsi1,
                    gsi2,
                    expect,
                    ..
                } => {
                    let version = match expect {
                        Expect::Absent => 1,
                        Expect::Version(v) => v + 1,
                    };
                    table.items.insert(
                        key.clone(),
                        Item {
                            key,
                            version,
                            body,
                            gsi1,
                            gsi2,
                        },
                    );
                }
                Write::Delete { key, .. } => {
                    table.items.remove(&key);
                }
                Write::Check { .. } => {}
            }
        }
        if let Some((key, outcome)) = commit.processed {
            table.processed.insert(key, outcome);
        }
        // Under the table's lock: the events exist if and only if the writes do.
        self.outbox.append(commit.events);
        Ok(())
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().processed.get(key).cloned())
    }
}
