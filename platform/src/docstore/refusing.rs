//! DynamoDB's refusals under load, where we test: a store that, whenever `refuse` says so,
//! answers a call as DynamoDB does when it throttles (`ThrottlingException`,
//! `ProvisionedThroughputExceededException`) or when a transaction meets another on an item
//! (`TransactionConflict`) — without doing it. The DynamoDB adapter answers those as
//! [`StoreError::Throttled`] too; the simulation injects them as a fault.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Commit, CommitError, DocStore, Item, Key, Page, Query};
use crate::errors::StoreError;

/// What a call asks of the store: DynamoDB throttles any of them, and refuses a
/// transaction that meets another on an item (`TransactionConflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    /// A commit of one item: one `PutItem`/`UpdateItem`/`DeleteItem`.
    Write,
    /// A commit of several items: one `TransactWriteItems`.
    Transaction,
}

/// Decides, call by call, whether the store refuses it.
pub type Refuse = Arc<dyn Fn(Call) -> bool + Send + Sync>;

pub struct Refusing {
    inner: Arc<dyn DocStore>,
    refuse: Refuse,
}

impl Refusing {
    pub fn new(inner: Arc<dyn DocStore>, refuse: Refuse) -> Self {
        Refusing { inner, refuse }
    }

    fn refused(&self, call: Call) -> Result<(), StoreError> {
        if (self.refuse)(call) {
            Err(StoreError::throttled())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl DocStore for Refusing {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.refused(Call::Read)?;
        self.inner.get(key).await
    }

    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.refused(Call::Read)?;
        self.inner.get_eventual(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        self.refused(Call::Read)?;
        self.inner.get_many(keys).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.refused(Call::Read)?;
        self.inner.query(query).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let call = if commit.is_transaction() {
            Call::Transaction
        } else {
            Call::Write
        };
        self.refused(call)?;
        self.inner.commit(commit).await
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.refused(Call::Read)?;
        self.inner.processed(key).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::docstore::memory::MemoryDocStore;
    use crate::docstore::{Decision, Expect, MAX_ATTEMPTS, Write, commit_with_retries};
    use crate::outbox::MemoryOutbox;

    /// A store that refuses its first `n` calls, and counts them all.
    fn refusing_first(n: u32) -> (Arc<MemoryDocStore>, Refusing, Arc<AtomicU32>) {
        let memory = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let refuse: Refuse = Arc::new(move |_| counted.fetch_add(1, Ordering::SeqCst) < n);
        (memory.clone(), Refusing::new(memory, refuse), calls)
    }

    fn add_one(key: &Key, item: Option<Item>) -> Result<Decision<u64>, StoreError> {
        let (count, expect) = match &item {
            Some(item) => (
                item.body.as_u64().unwrap_or(0),
                Expect::Version(item.version),
            ),
            None => (0, Expect::Absent),
        };
        let write = Write::put(key.clone(), &(count + 1), expect)?;
        Ok(Decision::Commit(Commit::new().write(write), count + 1))
    }

    #[tokio::test]
    async fn a_refused_call_does_nothing_and_says_so() {
        let key = Key::new("COUNTER", "C");
        let (memory, store, _) = refusing_first(1);
        let write = Write::put(key.clone(), &1, Expect::Absent).unwrap_or_else(|e| panic!("{e}"));
        let refused = store.commit(Commit::new().write(write)).await;
        assert!(matches!(
            refused,
            Err(CommitError::Store(StoreError::Throttled))
        ));
        assert!(
            memory.items().is_empty(),
            "a refused commit wrote something"
        );
        let (_, store, _) = refusing_first(1);
        assert!(matches!(store.get(&key).await, Err(StoreError::Throttled)));
        let (_, store, _) = refusing_first(1);
        assert!(matches!(
            store.get_eventual(&key).await,
            Err(StoreError::Throttled)
        ));
    }

    #[tokio::test]
    async fn a_refusal_can_pick_transactions_alone() {
        // Given a store that refuses only transactions (a conflict on every one)
        let memory = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        let store = Refusing::new(memory.clone(), Arc::new(|call| call == Call::Transaction));
        let put = |pk: &str| {
            Write::put(Key::new(pk, "S"), &1, Expect::Absent).unwrap_or_else(|e| panic!("{e}"))
        };
        // Then a single write and a read go through, and a two-item commit does nothing
        store
            .commit(Commit::new().write(put("A")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.get(&Key::new("A", "S")).await.is_ok());
        let two = store
            .commit(Commit::new().write(put("B")).write(put("C")))
            .await;
        assert!(matches!(
            two,
            Err(CommitError::Store(StoreError::Throttled))
        ));
        assert_eq!(memory.items().len(), 1);
    }

    #[tokio::test]
    async fn commits_refused_for_a_while_are_decided_again_and_applied_once() {
        let key = Key::new("COUNTER", "C");
        // Only commits go through the refusing store here: the first two are refused.
        let (memory, store, calls) = refusing_first(2);
        let answer: Result<u64, StoreError> =
            commit_with_retries(&store, || async { add_one(&key, memory.get(&key).await?) }).await;
        assert_eq!(answer.ok(), Some(1));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "two refused commits, then one"
        );
        let items = memory.items();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].body, serde_json::json!(1), "applied exactly once");
    }

    #[tokio::test]
    async fn a_store_that_always_refuses_is_given_up_on_after_the_bounded_attempts() {
        let key = Key::new("COUNTER", "C");
        let memory = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        let store = Refusing::new(memory.clone(), Arc::new(|_| true));
        let attempts = AtomicU32::new(0);
        let answer: Result<u64, StoreError> = commit_with_retries(&store, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            add_one(&key, memory.get(&key).await?)
        })
        .await;
        assert!(matches!(answer, Err(StoreError::Throttled)), "{answer:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), MAX_ATTEMPTS);
        assert!(memory.items().is_empty());
    }

    #[tokio::test]
    async fn each_refusal_counts_one_throttle_and_giving_up_counts_none_more() {
        use crate::metrics::{MemoryMetrics, Metric};
        use crate::telemetry::{Scope, Sinks};
        let metrics = Arc::new(MemoryMetrics::new());
        let sinks = Sinks {
            metrics: Some(metrics.clone()),
            segments: None,
        };
        let key = Key::new("COUNTER", "C");
        let memory = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        let store = Refusing::new(memory.clone(), Arc::new(|_| true));
        let scope = Scope::new("order-api", Some(contract::Service::Order), sinks);
        let answer: Result<u64, StoreError> = scope
            .run(commit_with_retries(&store, || async {
                add_one(&key, memory.get(&key).await?)
            }))
            .await;
        assert!(matches!(answer, Err(StoreError::Throttled)), "{answer:?}");
        let count = |metric| metrics.total(metric, contract::Service::Order, None).count;
        assert_eq!(count(Metric::StoreThrottles), u64::from(MAX_ATTEMPTS));
        assert_eq!(count(Metric::StoreRetries), u64::from(MAX_ATTEMPTS - 1));
    }
}
