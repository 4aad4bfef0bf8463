//! Stale eventual reads, as a fault. DynamoDB's eventually consistent read may answer an item
//! as it was up to a second or so ago: at an older version, or absent if it was first written
//! that recently. While the rate is set, each [`DocStore::get_eventual`] is, with that
//! probability, answered with a version of the item that was current at some moment of the
//! last simulated second, drawn by the run's seed. A strong read is always fresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use platform::clock::{Clock, ManualClock};
use platform::docstore::memory::MemoryDocStore;
use platform::docstore::{Commit, CommitError, DocStore, Item, Key, Page, Query};
use platform::errors::StoreError;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How far behind an eventual read may be.
pub const LAG: Duration = Duration::seconds(1);

/// The fault's rate and count, shared by every service's store: one generator seeded by the
/// run's seed, so the run stays a function of it.
pub struct StaleReads {
    rng: Mutex<ChaCha8Rng>,
    /// The probability per eventual read, in millionths (an atomic, so it can change while
    /// the stores hold this).
    rate: AtomicU64,
    /// Eventual reads answered with something else than the item as it is.
    served: AtomicU64,
}

impl StaleReads {
    pub fn new(seed: u64) -> StaleReads {
        StaleReads {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x57a1_e5ad)),
            rate: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    pub fn set_rate(&self, rate: f64) {
        let millionths = (rate.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        self.rate.store(millionths, Ordering::Relaxed);
    }

    /// How many eventual reads were answered stale so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this read lags.
    fn lags(&self) -> bool {
        let rate = self.rate.load(Ordering::Relaxed);
        rate > 0 && self.rng().random_range(0..1_000_000) < rate
    }
}

/// One version of an item and when it was written (`None`: absent from then on).
type Version = (DateTime<Utc>, Option<Item>);

/// A service's memory store whose eventual reads may lag (see the module).
pub struct LaggingStore {
    inner: Arc<MemoryDocStore>,
    /// The world's clock, unskewed: how long ago a write was is the same for every reader.
    clock: ManualClock,
    fault: Arc<StaleReads>,
    /// Per key written, its versions: the one current [`LAG`] ago, and every one since.
    history: Mutex<HashMap<Key, Vec<Version>>>,
}

impl LaggingStore {
    pub fn new(inner: Arc<MemoryDocStore>, clock: ManualClock, fault: Arc<StaleReads>) -> Self {
        LaggingStore {
            inner,
            clock,
            fault,
            history: Mutex::new(HashMap::new()),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Version>>> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every state of the item at `key` within the last [`LAG`], oldest first: what it was
    /// `LAG` ago (absent if it was first written since), then each version written since.
    /// Empty for a key never written, which is absent, and was.
    fn recent_versions(&self, key: &Key) -> Vec<Option<Item>> {
        let since = self.clock.now() - LAG;
        let history = self.history();
        let Some(versions) = history.get(key) else {
            return Vec::new();
        };
        let then = versions
            .iter()
            .rev()
            .find(|(at, _)| *at <= since)
            .and_then(|(_, item)| item.clone());
        let after = versions.iter().filter(|(at, _)| *at > since);
        std::iter::once(then)
            .chain(after.map(|(_, item)| item.clone()))
            .collect()
    }

    /// Keeps the item `key` is now, and forgets versions no read can see any more.
    fn remember(&self, key: Key, item: Option<Item>) {
        let now = self.clock.now();
        let mut history = self.history();
        let versions = history.entry(key).or_default();
        versions.push((now, item));
        let since = now - LAG;
        if let Some(then) = versions.iter().rposition(|(at, _)| *at <= since) {
            versions.drain(..then);
        }
    }
}

#[async_trait]
impl DocStore for LaggingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }

    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let fresh = self.inner.get(key).await?;
        if !self.fault.lags() {
            return Ok(fresh);
        }
        let mut versions = self.recent_versions(key);
        if versions.is_empty() {
            return Ok(fresh);
        }
        let lagging = versions.swap_remove(self.fault.rng().random_range(0..versions.len()));
        if lagging != fresh {
            self.fault.served.fetch_add(1, Ordering::Relaxed);
        }
        Ok(lagging)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let written: Vec<Key> = commit.writes.iter().map(|w| w.key().clone()).collect();
        self.inner.commit(commit).await?;
        // The memory store never waits: nothing else ran between the commit and these reads,
        // so they see what it left.
        for key in written {
            let item = self.inner.get(&key).await?;
            self.remember(key, item);
        }
        Ok(())
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.processed(key).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use platform::docstore::{Expect, Write};
    use platform::outbox::MemoryOutbox;

    use super::*;

    fn store() -> (LaggingStore, ManualClock, Arc<StaleReads>) {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).single();
        let clock = ManualClock::starting_at(start.unwrap_or_default());
        let fault = Arc::new(StaleReads::new(7));
        let memory = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        (
            LaggingStore::new(memory, clock.clone(), fault.clone()),
            clock,
            fault,
        )
    }

    async fn write(store: &LaggingStore, key: &Key, value: u64, expect: Expect) {
        let put = Write::put(key.clone(), &value, expect).unwrap_or_else(|e| panic!("{e}"));
        let committed = store.commit(Commit::new().write(put)).await;
        committed.unwrap_or_else(|e| panic!("{e}"));
    }

    /// The values eventual reads of `key` answer, over many reads.
    async fn answers(store: &LaggingStore, key: &Key) -> std::collections::BTreeSet<Option<u64>> {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let item = store
                .get_eventual(key)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            seen.insert(item.and_then(|i| i.body.as_u64()));
        }
        seen
    }

    #[tokio::test]
    async fn an_eventual_read_lags_at_most_a_second_and_a_strong_one_never() {
        let (store, clock, fault) = store();
        fault.set_rate(0.5);
        let key = Key::new("K", "K");
        write(&store, &key, 1, Expect::Absent).await;
        write(&store, &key, 2, Expect::Version(1)).await;
        // Written this second: absent, either version, or as it is.
        assert_eq!(answers(&store, &key).await, [None, Some(1), Some(2)].into());
        let strong = store.get(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(strong.map(|i| i.body), Some(2.into()));
        assert!(fault.served() > 0);
        // A second later: as it was a second ago (the second version) or as it is.
        clock.advance(Duration::milliseconds(1_500));
        write(&store, &key, 3, Expect::Version(2)).await;
        assert_eq!(answers(&store, &key).await, [Some(2), Some(3)].into());
        // Longer: only as it is, and at no rate at all, always.
        clock.advance(LAG);
        assert_eq!(answers(&store, &key).await, [Some(3)].into());
        write(&store, &key, 4, Expect::Version(3)).await;
        fault.set_rate(0.0);
        assert_eq!(answers(&store, &key).await, [Some(4)].into());
    }
}
