//! Reads that feed a conditional write, at half the price: see [`ConditionedReads`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{DocStore, Item, Key};
use crate::errors::StoreError;

/// The reads of one handler's read-decide-commit attempts (inside [`super::commit_with_retries`]
/// or a loop of its own), for items whose decision is committed under a condition on the
/// item read (see [`DocStore::get_eventual`]).
///
/// The first read of a key is eventually consistent: half the read units, and usually what
/// a strong read would have answered. Every later read of that key is strong. A handler reads
/// a key again when an attempt was refused — its condition failed, as after a stale read, or
/// the store throttled it — so the retry decides from the item as it is now: a stale read
/// costs one more attempt, never a second stale decision, and the bounded attempts are not
/// spent on reads that keep lagging. [`ConditionedReads::decide`] also reads it again before
/// a decision that no condition would catch.
pub struct ConditionedReads<'a> {
    store: &'a dyn DocStore,
    /// How many times each key was read so far (a lock for `&self` reads; never held across
    /// an await).
    read: Mutex<BTreeMap<Key, u32>>,
}

impl<'a> ConditionedReads<'a> {
    pub fn new(store: &'a dyn DocStore) -> ConditionedReads<'a> {
        ConditionedReads {
            store,
            read: Mutex::new(BTreeMap::new()),
        }
    }

    /// The item at `key`: eventually consistent the first time, strongly after.
    pub async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let first = {
            let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
            let times = read.entry(key.clone()).or_default();
            *times += 1;
            *times == 1
        };
        if first {
            self.store.get_eventual(key).await
        } else {
            self.store.get(key).await
        }
    }

    /// Reads `key` ([`ConditionedReads::get`]) and decides on the item. A decision made on an
    /// eventual read stands only if `conditioned` says it is committed under a condition on
    /// that item (a stale read is then refused, and the retry reads strongly). Any other — to
    /// write nothing, an answer alone, a refusal (`Err`) — could stand on a stale item with
    /// nothing to catch it, so it is made again on a strong read. Answers the item decided
    /// on, and the decision.
    pub async fn decide<T, E>(
        &self,
        key: &Key,
        decide: impl Fn(Option<&Item>) -> Result<T, E>,
        conditioned: impl Fn(&T) -> bool,
    ) -> Result<(Option<Item>, T), E>
    where
        E: From<StoreError>,
    {
        let item = self.get(key).await?;
        let decided = decide(item.as_ref());
        let read_eventually = self
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .is_some_and(|times| *times == 1);
        if !read_eventually || matches!(&decided, Ok(d) if conditioned(d)) {
            return decided.map(|d| (item, d));
        }
        let item = self.get(key).await?;
        let decided = decide(item.as_ref())?;
        Ok((item, decided))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::docstore::memory::MemoryDocStore;
    use crate::docstore::{
        Commit, CommitError, Decision, Expect, Page, Query, Write, commit_with_retries,
    };
    use crate::outbox::MemoryOutbox;

    /// A store whose eventual reads lag: they answer the items as they were when
    /// [`Lagging::freeze`] was last called. Counts both kinds of read.
    struct Lagging {
        now: MemoryDocStore,
        then: Mutex<Vec<Item>>,
        strong: AtomicU32,
        eventual: AtomicU32,
    }

    impl Lagging {
        fn new() -> Lagging {
            Lagging {
                now: MemoryDocStore::new(Arc::new(MemoryOutbox::new())),
                then: Mutex::new(Vec::new()),
                strong: AtomicU32::new(0),
                eventual: AtomicU32::new(0),
            }
        }

        fn freeze(&self) {
            *self.then.lock().unwrap_or_else(|p| p.into_inner()) = self.now.items();
        }

        fn reads(&self) -> (u32, u32) {
            (
                self.eventual.load(Ordering::SeqCst),
                self.strong.load(Ordering::SeqCst),
            )
        }
    }

    #[async_trait]
    impl DocStore for Lagging {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.strong.fetch_add(1, Ordering::SeqCst);
            self.now.get(key).await
        }

        async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            self.eventual.fetch_add(1, Ordering::SeqCst);
            let then = self.then.lock().unwrap_or_else(|p| p.into_inner());
            Ok(then.iter().find(|item| item.key == *key).cloned())
        }

        async fn query(&self, query: Query) -> Result<Page, StoreError> {
            self.now.query(query).await
        }

        async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
            self.now.commit(commit).await
        }

        async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.now.processed(key).await
        }
    }

    /// Adds one to the counter at `key` under the version read (absent: creates it at 1).
    async fn add_one(store: &dyn DocStore, reads: &ConditionedReads<'_>, key: &Key) -> u64 {
        let answer: Result<u64, StoreError> = commit_with_retries(store, || async {
            let item = reads.get(key).await?;
            let count = item.as_ref().and_then(|i| i.body.as_u64()).unwrap_or(0) + 1;
            let write = Write::put(key.clone(), &count, Expect::after_read(item.as_ref()))?;
            Ok(Decision::Commit(Commit::new().write(write), count))
        })
        .await;
        answer.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn the_first_read_of_a_key_is_eventual_and_every_later_one_strong() {
        let store = Lagging::new();
        let reads = ConditionedReads::new(&store);
        let (a, b) = (Key::new("A", "A"), Key::new("B", "B"));
        for key in [&a, &a, &b, &a] {
            reads.get(key).await.unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(store.reads(), (2, 2), "(eventual, strong)");
    }

    #[tokio::test]
    async fn a_stale_read_fails_its_condition_and_the_retry_reads_strongly_and_applies_once() {
        // Given a counter at 2 whose eventual reads still see it at 1
        let store = Lagging::new();
        let key = Key::new("COUNTER", "C");
        add_one(&store, &ConditionedReads::new(&store), &key).await;
        store.freeze();
        add_one(&store, &ConditionedReads::new(&store), &key).await;
        // When one more is added through reads that start stale
        let reads = ConditionedReads::new(&store);
        let counted = add_one(&store, &reads, &key).await;
        // Then it lands once, on the fresh value, after one stale attempt
        assert_eq!(counted, 3);
        let item = store.now.get(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(item.map(|i| (i.version, i.body)), Some((3, 3.into())));
        // Each handler read once eventually; the stale one was read again, strongly.
        assert_eq!(store.reads(), (3, 1), "(eventual, strong)");

        // And an item that eventual reads still answer absent is not created twice
        let fresh = Key::new("NEW", "N");
        add_one(&store, &ConditionedReads::new(&store), &fresh).await;
        assert_eq!(
            add_one(&store, &ConditionedReads::new(&store), &fresh).await,
            2
        );
    }

    /// What a handler decides on a counter's item: to write (a conditioned decision), or to
    /// write nothing, which no condition catches.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Write(u64),
        Nothing(u64),
    }

    fn version(item: Option<&Item>) -> u64 {
        item.map_or(0, |i| i.version)
    }

    #[tokio::test]
    async fn a_decision_no_condition_would_catch_is_made_again_on_a_strong_read() {
        // Given a counter at version 2 whose eventual reads still see version 1
        let store = Lagging::new();
        let key = Key::new("COUNTER", "C");
        add_one(&store, &ConditionedReads::new(&store), &key).await;
        store.freeze();
        add_one(&store, &ConditionedReads::new(&store), &key).await;
        let conditioned = |seen: &Seen| matches!(seen, Seen::Write(_));
        let reads_made = |before: (u32, u32)| {
            let after = store.reads();
            (after.0 - before.0, after.1 - before.1)
        };
        let write = |item: Option<&Item>| Ok::<_, StoreError>(Seen::Write(version(item)));
        let nothing = |item: Option<&Item>| Ok::<_, StoreError>(Seen::Nothing(version(item)));
        let refuse =
            |item: Option<&Item>| Err::<Seen, _>(StoreError::Refused(version(item).to_string()));
        let fail = |e: StoreError| panic!("{e}");

        // When a handler would write: the eventual read stands (its condition catches it)
        let before = store.reads();
        let reads = ConditionedReads::new(&store);
        let (_, seen) = reads
            .decide(&key, write, conditioned)
            .await
            .unwrap_or_else(fail);
        assert_eq!((seen, reads_made(before)), (Seen::Write(1), (1, 0)));

        // When it would write nothing: decided again on the item as it is now
        let before = store.reads();
        let reads = ConditionedReads::new(&store);
        let (item, seen) = reads
            .decide(&key, nothing, conditioned)
            .await
            .unwrap_or_else(fail);
        assert_eq!((seen, reads_made(before)), (Seen::Nothing(2), (1, 1)));
        assert_eq!(version(item.as_ref()), 2);

        // When it would refuse: the refusal too is made again, on the strong read
        let before = store.reads();
        let reads = ConditionedReads::new(&store);
        let refused = reads.decide(&key, refuse, conditioned).await.err();
        let said = refused.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            (said.ends_with('2'), reads_made(before)),
            (true, (1, 1)),
            "{said}"
        );

        // And a key already read strongly is read strongly once more, not twice
        let before = store.reads();
        let (_, seen) = reads
            .decide(&key, nothing, conditioned)
            .await
            .unwrap_or_else(fail);
        assert_eq!((seen, reads_made(before)), (Seen::Nothing(2), (0, 1)));
    }
}
