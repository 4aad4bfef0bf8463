//! The in-memory document store: one lock over the table, so every commit is atomic and
//! every condition is checked against the latest state, as DynamoDB transactions are. When
//! asked ([`MemoryDocStore::with_limits`]) it also enforces DynamoDB's per-item write rate
//! and refuses writes to items a transaction holds ([`super::limits`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::limits::{Cost, Elapsed, ItemLimits, LimitReport, Limiter};
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
    limiter: Option<Limiter>,
}

impl Table {
    /// Bills a commit that reached the items, when limits are enforced.
    fn bill(&mut self, costs: Option<&[Cost]>, committed: bool) {
        if let (Some(limiter), Some(costs)) = (&mut self.limiter, costs) {
            limiter.bill(costs, committed);
        }
    }
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

    /// The same store, enforcing `limits` with time from `now` (see [`super::limits`]).
    pub fn with_limits(self, limits: ItemLimits, now: Elapsed) -> Self {
        self.lock().limiter = Some(Limiter::new(limits, now));
        self
    }

    /// What the limits saw so far (all zero without limits).
    pub fn limit_report(&self) -> LimitReport {
        self.lock()
            .limiter
            .as_ref()
            .map(Limiter::report)
            .unwrap_or_default()
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

/// The item an add leaves, or `None` if its bound refuses it (see [`Write::Add`]).
fn added(
    current: Option<&Item>,
    key: &Key,
    deltas: &BTreeMap<String, i64>,
    create: Option<&serde_json::Value>,
) -> Option<Item> {
    let mut item = match (current, create) {
        (Some(item), _) => item.clone(),
        (None, Some(body)) => Item {
            key: key.clone(),
            version: 0,
            body: body.clone(),
            gsi1: None,
            gsi2: None,
            counters: BTreeSet::new(),
        },
        (None, None) => return None,
    };
    item.version += 1;
    let fields = item.body.as_object_mut()?;
    for (name, delta) in deltas {
        let before = if item.counters.contains(name) {
            fields
                .get(name)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        } else {
            0
        };
        let after = before.checked_add(*delta)?;
        if *delta < 0 && after < 0 {
            return None;
        }
        fields.insert(name.clone(), after.into());
        item.counters.insert(name.clone());
    }
    Some(item)
}

/// The item a write leaves (`Ok(None)`: none), or `Err(())` if its condition refuses it.
fn written(current: Option<&Item>, write: &Write) -> Result<Option<Item>, ()> {
    if let Write::Add {
        key,
        deltas,
        create,
    } = write
    {
        return added(current, key, deltas, create.as_ref())
            .map(Some)
            .ok_or(());
    }
    if !write.expect().is_some_and(|e| satisfied(current, e)) {
        return Err(());
    }
    Ok(match write {
        Write::Put {
            key,
            body,
            gsi1,
            gsi2,
            counters,
            expect,
            ..
        } => Some(Item {
            key: key.clone(),
            version: match expect {
                Expect::Absent => 1,
                Expect::Version(v) => v + 1,
            },
            body: body.clone(),
            gsi1: gsi1.clone(),
            gsi2: gsi2.clone(),
            counters: counters.clone(),
        }),
        Write::Check { .. } => current.cloned(),
        Write::Add { .. } | Write::Delete { .. } => None,
    })
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
        commit.check()?;
        let mut guard = self.lock();
        let table = &mut *guard;
        for (i, write) in commit.writes.iter().enumerate() {
            if commit.writes[..i].iter().any(|w| w.key() == write.key()) {
                return Err(StoreError::Refused("a commit may touch each item once".into()).into());
            }
        }
        let costs = match &mut table.limiter {
            Some(limiter) => {
                let costs = Limiter::costs(&commit, |key| table.items.get(key));
                limiter
                    .admit(&costs)
                    .map_err(|_| CommitError::Store(StoreError::throttled()))?;
                Some(costs)
            }
            None => None,
        };
        let refused = |table: &mut Table, at: ConflictAt| {
            table.bill(costs.as_deref(), false);
            CommitError::Conflict(at)
        };
        // Every condition against the table as it is, before anything is written.
        let mut after = Vec::with_capacity(commit.writes.len());
        for (i, write) in commit.writes.iter().enumerate() {
            match written(table.items.get(write.key()), write) {
                Ok(item) => after.push((write.key().clone(), item)),
                Err(()) => return Err(refused(table, ConflictAt::Write(i))),
            }
        }
        if let Some((key, _)) = &commit.processed
            && table.processed.contains_key(key)
        {
            return Err(refused(table, ConflictAt::Processed));
        }
        table.bill(costs.as_deref(), true);
        for (key, item) in after {
            match item {
                Some(item) => {
                    table.items.insert(key, item);
                }
                None => {
                    table.items.remove(&key);
                }
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
