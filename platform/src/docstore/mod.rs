//! The versioned document store: the one storage port every service's repository sits on.
//!
//! A table holds items under a `(pk, sk)` key, each with a JSON body, a version, up to two
//! secondary index keys and an optional expiry. Some top-level integers of a body may be
//! *counters*, which [`Write::Add`] changes in place without a read (a contested stock or
//! count loses no race). Reads are by key or by a query on the table
//! or an index (one partition, a sort-key prefix, either direction, paged). Writes happen
//! only through [`DocStore::commit`]: several conditional writes, the events they cause
//! (the outbox: on DynamoDB they ride on the first item written) and the business key of the
//! work (idempotency), all or nothing. Every
//! conditional write names what it expects — the item absent, or at a version — so every
//! contested value is protected by a condition and a lost race is a [`CommitError::Conflict`]
//! the caller retries from a fresh read.
//!
//! Adapters: [`memory::MemoryDocStore`] and [`dynamodb::DynamoDocStore`]; both pass
//! [`conformance`] (the DynamoDB one on the emulator).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contract::Envelope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::StoreError;

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod limits;
pub mod memory;
mod reads;
pub mod refusing;
pub mod shards;

pub use reads::ConditionedReads;

#[cfg(feature = "testing")]
pub mod conformance;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Key {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A secondary index's key for an item (absent: the item is not in that index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexKey {
    pub pk: String,
    pub sk: String,
}

impl IndexKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> IndexKey {
        IndexKey {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Table,
    Gsi1,
    Gsi2,
}

/// A stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    /// 1 when first written; each put adds one.
    pub version: u64,
    pub body: serde_json::Value,
    pub gsi1: Option<IndexKey>,
    pub gsi2: Option<IndexKey>,
    /// The body's fields that are counters (see [`Write::Add`]); the body holds their values.
    pub counters: BTreeSet<String>,
}

impl Item {
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| StoreError::corrupt(format!("{}/{}: {e}", self.key.pk, self.key.sk)))
    }
}

/// What a conditional write expects of the item it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// It does not exist (create).
    Absent,
    /// It exists at exactly this version (update after read).
    Version(u64),
}

impl Expect {
    /// `Absent` for an item not read, `Version(v)` for one read at `v`.
    pub fn after_read(item: Option<&Item>) -> Expect {
        item.map_or(Expect::Absent, |i| Expect::Version(i.version))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        key: Key,
        body: serde_json::Value,
        gsi1: Option<IndexKey>,
        gsi2: Option<IndexKey>,
        expires_at: Option<DateTime<Utc>>,
        /// Top-level integer fields of `body` kept as counters, which [`Write::Add`] changes.
        counters: BTreeSet<String>,
        expect: Expect,
    },
    /// Adds to counters of an item without reading it: each delta is applied in place (a
    /// counter the item does not have counts from 0) and the version goes up by one. The
    /// commit fails if a counter would go below zero, or if the item is absent and `create`
    /// gives no body for it. The one condition is the bound, so concurrent adds never
    /// conflict with each other; a put after read of the item does (its version moved).
    Add {
        key: Key,
        deltas: BTreeMap<String, i64>,
        create: Option<serde_json::Value>,
    },
    Delete {
        key: Key,
        expect: Expect,
    },
    /// Writes nothing; fails the commit unless the item is as expected.
    Check {
        key: Key,
        expect: Expect,
    },
}

impl Write {
    pub fn put<T: Serialize>(key: Key, body: &T, expect: Expect) -> Result<Write, StoreError> {
        Ok(Write::Put {
            key,
            body: serde_json::to_value(body).map_err(StoreError::corrupt)?,
            gsi1: None,
            gsi2: None,
            expires_at: None,
            counters: BTreeSet::new(),
            expect,
        })
    }

    /// Adds `deltas` to the counters of the item at `key`, which must exist.
    pub fn add<'a>(key: Key, deltas: impl IntoIterator<Item = (&'a str, i64)>) -> Write {
        Write::Add {
            key,
            deltas: deltas
                .into_iter()
                .map(|(name, delta)| (name.to_owned(), delta))
                .collect(),
            create: None,
        }
    }

    /// An add that creates the item with `body` (its counters then start from 0) if absent.
    pub fn or_create<T: Serialize>(mut self, body: &T) -> Result<Write, StoreError> {
        if let Write::Add { create, .. } = &mut self {
            *create = Some(serde_json::to_value(body).map_err(StoreError::corrupt)?);
        }
        Ok(self)
    }

    /// Makes these top-level fields of a put's body counters (no effect on other writes).
    pub fn counting<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Write {
        if let Write::Put { counters, .. } = &mut self {
            counters.extend(names.into_iter().map(str::to_owned));
        }
        self
    }

    /// `body` in place of `item`, as read: the same key, index keys and counters, written only
    /// if the item is still at the version read (an update after read that moves no index).
    pub fn replace<T: Serialize>(item: &Item, body: &T) -> Result<Write, StoreError> {
        Ok(
            Write::put(item.key.clone(), body, Expect::Version(item.version))?
                .indexed(item.gsi1.clone(), item.gsi2.clone())
                .counting(item.counters.iter().map(String::as_str)),
        )
    }

    /// Adds index keys or an expiry to a put (no effect on other writes).
    pub fn indexed(mut self, index1: Option<IndexKey>, index2: Option<IndexKey>) -> Write {
        if let Write::Put { gsi1, gsi2, .. } = &mut self {
            *gsi1 = index1;
            *gsi2 = index2;
        }
        self
    }

    pub fn expiring(mut self, at: DateTime<Utc>) -> Write {
        if let Write::Put { expires_at, .. } = &mut self {
            *expires_at = Some(at);
        }
        self
    }

    pub fn key(&self) -> &Key {
        match self {
            Write::Put { key, .. }
            | Write::Add { key, .. }
            | Write::Delete { key, .. }
            | Write::Check { key, .. } => key,
        }
    }

    /// What the write expects of the item; `None` for an add, whose condition is its bound.
    pub fn expect(&self) -> Option<Expect> {
        match self {
            Write::Put { expect, .. }
            | Write::Delete { expect, .. }
            | Write::Check { expect, .. } => Some(*expect),
            Write::Add { .. } => None,
        }
    }
}

/// One atomic write: state changes, the events they cause, and the business key of the work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    pub writes: Vec<Write>,
    pub events: Vec<Envelope>,
    /// `(business key, outcome)`: refused if the key was already processed.
    pub processed: Option<(String, String)>,
}

impl Commit {
    pub fn new() -> Commit {
        Commit::default()
    }

    pub fn write(mut self, write: Write) -> Commit {
        self.writes.push(write);
        self
    }

    pub fn event(mut self, event: Envelope) -> Commit {
        self.events.push(event);
        self
    }

    pub fn events(mut self, events: impl IntoIterator<Item = Envelope>) -> Commit {
        self.events.extend(events);
        self
    }

    pub fn processed(mut self, key: impl Into<String>, outcome: impl Into<String>) -> Commit {
        self.processed = Some((key.into(), outcome.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty() && self.processed.is_none()
    }

    /// How many items the commit writes or checks: its writes, the processed key, and an
    /// outbox item when no put carries the events (they ride on the first put).
    pub fn size(&self) -> usize {
        self.writes.len()
            + usize::from(self.processed.is_some())
            + usize::from(self.needs_outbox_item())
    }

    /// Whether DynamoDB writes it as one `TransactWriteItems` (more than one item: every
    /// item billed twice, and held while it runs) rather than one single-item write.
    pub fn is_transaction(&self) -> bool {
        self.size() > 1
    }

    /// The write that carries the commit's events: its first put, else its first add.
    ///
    /// A put first, because a put's stream image is its request: LocalStack (2026.3) makes
    /// an update's image by reading the item after writing it, so two updates racing on one
    /// hot item (a coupon source, a product's stock) can both show the second one's events,
    /// and the first one's are never published. DynamoDB itself has no such race; the put
    /// is also the smaller, uncontested item (the issue record, the reservation).
    pub fn carrier(&self) -> Option<usize> {
        let first = |put: bool| {
            self.writes.iter().position(|w| match w {
                Write::Put { .. } => put,
                Write::Add { .. } => !put,
                _ => false,
            })
        };
        first(true).or_else(|| first(false))
    }

    /// Whether the events need an item of their own: there are some, and no write carries them.
    pub fn needs_outbox_item(&self) -> bool {
        !self.events.is_empty() && self.carrier().is_none()
    }

    /// Refuses, in every adapter, a commit over [`MAX_COMMIT_ITEMS`] (as DynamoDB would) and
    /// counters that cannot be: on a body that is not an object, or not holding an integer.
    pub fn check(&self) -> Result<(), StoreError> {
        for write in &self.writes {
            let (body, names): (Option<&serde_json::Value>, Vec<&String>) = match write {
                Write::Put { body, counters, .. } => (Some(body), counters.iter().collect()),
                Write::Add { create, .. } => (create.as_ref(), Vec::new()),
                _ => (None, Vec::new()),
            };
            let Some(body) = body else { continue };
            let counted = matches!(write, Write::Add { .. }) || !names.is_empty();
            let Some(fields) = body.as_object() else {
                if counted {
                    return Err(StoreError::Refused(format!(
                        "{}/{}: counters need a body that is an object",
                        write.key().pk,
                        write.key().sk
                    )));
                }
                continue;
            };
            if let Some(name) = names
                .into_iter()
                .find(|n| fields.get(n.as_str()).is_some_and(|v| v.as_i64().is_none()))
            {
                return Err(StoreError::Refused(format!(
                    "{}/{}: counter {name} is not an integer",
                    write.key().pk,
                    write.key().sk
                )));
            }
        }
        let size = self.size();
        if size > MAX_COMMIT_ITEMS {
            return Err(StoreError::Refused(format!(
                "a commit of {size} items is over the limit of {MAX_COMMIT_ITEMS}"
            )));
        }
        // Events ride on one item, which DynamoDB keeps under 400 KB; an envelope is well
        // under 1 KB, so this many always fit.
        if self.events.len() > MAX_COMMIT_ITEMS {
            return Err(StoreError::Refused(format!(
                "a commit of {} events is over the limit of {MAX_COMMIT_ITEMS}",
                self.events.len()
            )));
        }
        Ok(())
    }
}

/// Which part of a commit found the table not as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictAt {
    /// The write at this position.
    Write(usize),
    /// The business key was already processed.
    Processed,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the commit conflicts at {0:?}")]
    Conflict(ConflictAt),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The most items one commit may hold (DynamoDB's transaction limit).
pub const MAX_COMMIT_ITEMS: usize = 100;

/// A query of one partition of the table or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    /// Only sort keys starting with this.
    pub sk_prefix: String,
    /// Only sort keys up to and including this.
    pub sk_max: Option<String>,
    pub descending: bool,
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(index: Index, pk: impl Into<String>) -> Query {
        Query {
            index,
            pk: pk.into(),
            sk_prefix: String::new(),
            sk_max: None,
            descending: false,
            limit: 100,
            cursor: None,
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Query {
        self.sk_prefix = prefix.into();
        self
    }

    pub fn up_to(mut self, max: impl Into<String>) -> Query {
        self.sk_max = Some(max.into());
        self
    }

    pub fn newest_first(mut self) -> Query {
        self.descending = true;
        self
    }

    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Query {
        self.cursor = cursor;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when there may be more.
    pub cursor: Option<String>,
}

impl Page {
    /// Every item's body as a `T`; an item that is not one is a corrupt store.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.items.iter().map(Item::parse).collect()
    }
}

#[async_trait]
pub trait DocStore: Send + Sync {
    /// The item at `key` as it is now: every write committed before is seen (DynamoDB: a
    /// strongly consistent `GetItem`, one read unit per 4 KiB).
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// The item at `key` as it was a moment ago: DynamoDB reads it eventually consistent,
    /// for half the read units of [`DocStore::get`], and may miss writes of the last second
    /// or so — even answer absent an item written that recently.
    ///
    /// Only for a read whose decision is committed under a condition on that same item: its
    /// version ([`Expect::after_read`] of what was read) or [`Expect::Absent`] on that key.
    /// A stale read then fails the condition, and the retry reads again; read through
    /// [`ConditionedReads`], that retry reads strongly. Never for what is answered to a
    /// client, nor for a decision that writes nothing to the item read, unless that is made
    /// again on a strong read ([`ConditionedReads::decide`]).
    ///
    /// By default a [`DocStore::get`]: the memory store is always consistent.
    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get(key).await
    }

    /// The items at `keys`, in their order (`None`: absent), as they were a moment ago:
    /// DynamoDB reads them in `BatchGetItem`s, eventually consistent. For a sum over shards,
    /// never for a write's condition.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            items.push(self.get(key).await?);
        }
        Ok(items)
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError>;

    async fn commit(&self, commit: Commit) -> Result<(), CommitError>;

    /// The outcome recorded for a business key, if it was processed.
    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError>;
}

/// An opaque page cursor: the position after the last item of a page, as hex-encoded JSON
/// (safe in a query string).
pub(crate) fn encode_cursor(position: &serde_json::Value) -> String {
    position
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<serde_json::Value, StoreError> {
    let invalid = || StoreError::InvalidCursor;
    // Hex is ASCII: anything else is refused before it is cut in two-byte pieces, which
    // would split a multi-byte character.
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) || cursor.len() > 4096 {
        return Err(invalid());
    }
    let bytes = cursor
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// Whether a cursor's position (`pk`, `sk` of the index queried) lies inside the query: a
/// cursor handed out for another partition or range is refused rather than sent to DynamoDB,
/// which would answer a `ValidationException`.
pub(crate) fn cursor_within(query: &Query, pk: &str, sk: &str) -> bool {
    let in_range = match &query.sk_max {
        Some(max) => sk >= query.sk_prefix.as_str() && sk <= max.as_str(),
        None => sk.starts_with(&query.sk_prefix),
    };
    pk == query.pk && in_range && key_fits(pk, sk)
}

/// Whether `(pk, sk)` can be a DynamoDB key at all: non-empty, at most 2,048 bytes of
/// partition key and 1,024 of sort key.
pub(crate) fn key_fits(pk: &str, sk: &str) -> bool {
    (1..=2048).contains(&pk.len()) && (1..=1024).contains(&sk.len())
}

/// How many times a handler reads, decides and commits before giving up on a contested
/// item (an SQS message then comes back later; an HTTP request answers 503 with
/// `Retry-After`). Bounded, so a hot item cannot turn into a storm of billed transactions.
pub const MAX_ATTEMPTS: u32 = 10;
/// The first retry waits up to this; each later one up to twice as long, at most [`MAX_BACKOFF`].
pub const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_millis(1_000);

/// How long to wait before retry number `retry` (0 for the first): "full jitter", a uniform
/// random time up to the exponential bound, so racing writers spread out instead of
/// colliding again in step.
pub fn backoff(retry: u32) -> std::time::Duration {
    let bound = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(retry))
        .min(MAX_BACKOFF);
    bound.mul_f64(rand::random::<f64>())
}

/// Set by the deterministic simulation: a lost race is retried at once (after a yield), as
/// its single-threaded, timer-less runtime needs and so that a run depends on its seed alone.
static WITHOUT_BACKOFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every retry in this process immediate (see [`WITHOUT_BACKOFF`]); for the simulation.
pub fn retry_without_backoff() {
    WITHOUT_BACKOFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Waits [`backoff`] before retry number `retry` (a yield only in the simulation).
pub(crate) async fn pause_before_retry(retry: u32) {
    if WITHOUT_BACKOFF.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(backoff(retry)).await;
    }
}

/// What one attempt of a handler decided, from what it read.
pub enum Decision<T> {
    /// Write this, then answer that.
    Commit(Commit, T),
    /// Nothing to write (already done, or nothing to do): answer this.
    Done(T),
}

/// Runs `attempt` (read, decide) and commits what it decided; when another writer won the
/// race, or the store throttled the commit (which then wrote nothing), waits a jittered
/// [`backoff`] and reads and decides again, [`MAX_ATTEMPTS`] times in all, then answers
/// [`StoreError::Contention`] (or [`StoreError::Throttled`] if the last refusal was that).
/// Each retry counts one `StoreRetries` for the service running it.
pub async fn commit_with_retries<T, E, F, Fut>(store: &dyn DocStore, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Decision<T>, E>>,
    E: From<StoreError>,
{
    let mut retries = Retries::new();
    loop {
        let last = match attempt().await? {
            Decision::Done(answer) => return Ok(answer),
            Decision::Commit(commit, answer) => match store.commit(commit).await {
                Ok(()) => return Ok(answer),
                Err(CommitError::Conflict(_)) => StoreError::Contention,
                Err(CommitError::Store(StoreError::Throttled)) => StoreError::Throttled,
                Err(CommitError::Store(e)) => return Err(e.into()),
            },
        };
        if !retries.wait().await {
            tracing::warn!(attempts = MAX_ATTEMPTS, error = %last, "gave up on a contested item");
            return Err(last.into());
        }
    }
}

/// The retries of a handler that looks at each refusal itself (which write of its commit
/// failed, say), under the same bound and backoff as [`commit_with_retries`]: after a
/// refusal worth waiting for, [`Retries::wait`] says whether to try again.
#[derive(Debug, Default)]
pub struct Retries {
    made: u32,
}

impl Retries {
    pub fn new() -> Retries {
        Retries::default()
    }

    /// One more attempt was refused: waits the jittered [`backoff`] and answers `true`, or
    /// `false` once [`MAX_ATTEMPTS`] were made. Each retry counts one `StoreRetries`.
    pub async fn wait(&mut self) -> bool {
        self.made += 1;
        if self.made >= MAX_ATTEMPTS {
            return false;
        }
        crate::metrics::count(crate::metrics::Metric::StoreRetries);
        pause_before_retry(self.made - 1).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::outbox::MemoryOutbox;

    #[test]
    fn a_replace_keeps_the_key_indexes_and_counters_of_the_item_read_and_expects_its_version() {
        let item = Item {
            key: Key::new("P#1", "P"),
            version: 7,
            body: serde_json::json!({"stock": 1}),
            gsi1: Some(IndexKey::new("PRODUCTS", "t#1")),
            gsi2: None,
            counters: BTreeSet::from(["stock".to_owned()]),
        };
        let write = Write::replace(&item, &serde_json::json!({"stock": 0})).unwrap();
        let expected = Write::put(
            item.key.clone(),
            &serde_json::json!({"stock": 0}),
            Expect::Version(7),
        )
        .unwrap()
        .indexed(item.gsi1.clone(), None)
        .counting(["stock"]);
        assert_eq!(write, expected);
    }

    #[test]
    fn backoff_is_jittered_under_an_exponential_bound() {
        for retry in 0..20 {
            let bound = BASE_BACKOFF
                .saturating_mul(2u32.saturating_pow(retry))
                .min(MAX_BACKOFF);
            let waits: Vec<_> = (0..50).map(|_| backoff(retry)).collect();
            assert!(waits.iter().all(|w| *w <= bound), "retry {retry}");
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "retry {retry}: the waits are random"
            );
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_race_lost_every_time_gives_up_after_the_bounded_attempts() {
        let store = memory::MemoryDocStore::new(Arc::new(MemoryOutbox::new()));
        let key = Key::new("HOT", "ITEM");
        let create = || Write::put(key.clone(), &1, Expect::Absent).unwrap();
        store.commit(Commit::new().write(create())).await.unwrap();
        // Every attempt expects the item absent, as a writer that always read too early.
        let attempts = AtomicU32::new(0);
        let result: Result<(), StoreError> = commit_with_retries(&store, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Ok(Decision::Commit(Commit::new().write(create()), ()))
        })
        .await;
        assert!(matches!(result, Err(StoreError::Contention)), "{result:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), MAX_ATTEMPTS);
    }
}
