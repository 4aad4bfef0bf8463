//! Rate limits kept in a service's own table, so that every Lambda instance counts against
//! the same number: a fixed-window counter per `(scope, key)` — a login failure per account,
//! a sign-up per client address — that expires with its window (the table's TTL deletes it).
//!
//! A counter is one small item, counted up with the same version-conditioned write (and the
//! same bounded, jittered retries) as every other contested value. A limit of 0 turns a
//! check off.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::docstore::{Commit, Decision, DocStore, Expect, Item, Key, Write, commit_with_retries};
use crate::errors::StoreError;

/// At most `max` events per `window` (`max` 0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub fn new(max: u32, window: Duration) -> Limit {
        Limit { max, window }
    }
}

/// Over the limit: try again in `retry_after_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Throttled {
    pub retry_after_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    started_at: DateTime<Utc>,
    count: u32,
}

#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn DocStore>,
    clock: Arc<dyn Clock>,
}

fn key(scope: &str, subject: &str) -> Key {
    Key::new(format!("THROTTLE#{scope}#{subject}"), "WINDOW")
}

impl Throttle {
    pub fn new(store: Arc<dyn DocStore>, clock: Arc<dyn Clock>) -> Throttle {
        Throttle { store, clock }
    }

    /// The window a counter item holds, if it is still open.
    fn open_window(&self, item: Option<&Item>, limit: Limit) -> Result<Option<Window>, StoreError> {
        let Some(item) = item else {
            return Ok(None);
        };
        let window: Window = item.parse()?;
        let open = window.started_at + limit.window > self.clock.now();
        Ok(open.then_some(window))
    }

    /// Whole seconds until the window ends, rounded up (40.2 s left is 41: a client that
    /// waits as told is not refused again).
    fn retry_after(&self, window: &Window, limit: Limit) -> Throttled {
        let left = (window.started_at + limit.window - self.clock.now()).num_milliseconds();
        Throttled {
            retry_after_seconds: (left.max(1) as u64).div_ceil(1000),
        }
    }

    /// Whether `subject` is over `limit` now, without counting anything.
    pub async fn check(
        &self,
        scope: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<Result<(), Throttled>, StoreError> {
        if limit.max == 0 {
            return Ok(Ok(()));
        }
        let item = self.store.get(&key(scope, subject)).await?;
        Ok(match self.open_window(item.as_ref(), limit)? {
            Some(window) if window.count >= limit.max => Err(self.retry_after(&window, limit)),
            _ => Ok(()),
        })
    }

    /// Counts one event for `subject`, unless that would go over `limit` (then nothing is
    /// counted and the answer says when to try again).
    pub async fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<Result<(), Throttled>, StoreError> {
        if limit.max == 0 {
            return Ok(Ok(()));
        }
        let key = key(scope, subject);
        commit_with_retries(self.store.as_ref(), || async {
            let item = self.store.get(&key).await?;
            let expect = Expect::after_read(item.as_ref());
            let next = match self.open_window(item.as_ref(), limit)? {
                Some(window) if window.count >= limit.max => {
                    return Ok(Decision::Done(Err(self.retry_after(&window, limit))));
                }
                Some(window) => Window {
                    count: window.count + 1,
                    ..window
                },
                None => Window {
                    started_at: self.clock.now(),
                    count: 1,
                },
            };
            let expires = next.started_at + limit.window;
            let write = Write::put(key.clone(), &next, expect)?.expiring(expires);
            Ok(Decision::Commit(Commit::new().write(write), Ok(())))
        })
        .await
    }

    /// Takes one event back from `subject`'s open window (an attempt counted beforehand that
    /// turned out fine); nothing when there is none.
    pub async fn refund(&self, scope: &str, subject: &str, limit: Limit) -> Result<(), StoreError> {
        if limit.max == 0 {
            return Ok(());
        }
        let key = key(scope, subject);
        commit_with_retries(self.store.as_ref(), || async {
            let item = self.store.get(&key).await?;
            let Some(window) = self.open_window(item.as_ref(), limit)? else {
                return Ok(Decision::Done(()));
            };
            if window.count == 0 {
                return Ok(Decision::Done(()));
            }
            let expires = window.started_at + limit.window;
            let next = Window {
                count: window.count - 1,
                ..window
            };
            let write = Write::put(key.clone(), &next, Expect::after_read(item.as_ref()))?;
            Ok(Decision::Commit(
                Commit::new().write(write.expiring(expires)),
                (),
            ))
        })
        .await
    }

    /// Forgets `subject`'s count (a successful login clears the account's failures).
    pub async fn clear(&self, scope: &str, subject: &str) -> Result<(), StoreError> {
        let key = key(scope, subject);
        commit_with_retries(self.store.as_ref(), || async {
            Ok(match self.store.get(&key).await? {
                Some(item) => Decision::Commit(
                    Commit::new().write(Write::Delete {
                        key: key.clone(),
                        expect: Expect::Version(item.version),
                    }),
                    (),
                ),
                None => Decision::Done(()),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::docstore::memory::MemoryDocStore;
    use crate::outbox::MemoryOutbox;

    fn throttle() -> (Throttle, ManualClock) {
        let clock = ManualClock::starting_at(DateTime::UNIX_EPOCH + Duration::days(20_000));
        let store = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        (Throttle::new(store, Arc::new(clock.clone())), clock)
    }

    const THREE_A_MINUTE: Limit = Limit {
        max: 3,
        window: Duration::minutes(1),
    };

    #[tokio::test]
    async fn given_a_subject_at_its_limit_when_it_tries_again_then_it_waits_for_the_window() {
        let (throttle, clock) = throttle();
        for _ in 0..3 {
            assert_eq!(
                throttle.hit("s", "a", THREE_A_MINUTE).await.unwrap(),
                Ok(())
            );
        }
        clock.advance(Duration::seconds(20));
        let refused = Err(Throttled {
            retry_after_seconds: 40,
        });
        assert_eq!(
            throttle.hit("s", "a", THREE_A_MINUTE).await.unwrap(),
            refused
        );
        assert_eq!(
            throttle.check("s", "a", THREE_A_MINUTE).await.unwrap(),
            refused
        );
        // Another subject, or another scope, has its own count.
        assert_eq!(
            throttle.hit("s", "b", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            throttle.hit("t", "a", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
        clock.advance(Duration::seconds(40));
        assert_eq!(
            throttle.hit("s", "a", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_cleared_subject_starts_again_and_a_zero_limit_never_refuses() {
        let (throttle, _) = throttle();
        for _ in 0..3 {
            throttle
                .hit("s", "a", THREE_A_MINUTE)
                .await
                .unwrap()
                .unwrap();
        }
        assert!(
            throttle
                .check("s", "a", THREE_A_MINUTE)
                .await
                .unwrap()
                .is_err()
        );
        throttle.clear("s", "a").await.unwrap();
        assert_eq!(
            throttle.check("s", "a", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
        let off = Limit::new(0, Duration::minutes(1));
        for _ in 0..10 {
            assert_eq!(throttle.hit("s", "c", off).await.unwrap(), Ok(()));
        }
    }

    #[tokio::test]
    async fn a_refund_takes_one_back_and_retry_after_is_rounded_up() {
        let (throttle, clock) = throttle();
        for _ in 0..3 {
            throttle
                .hit("s", "a", THREE_A_MINUTE)
                .await
                .unwrap()
                .unwrap();
        }
        throttle.refund("s", "a", THREE_A_MINUTE).await.unwrap();
        assert_eq!(
            throttle.hit("s", "a", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
        clock.advance(chrono::Duration::milliseconds(19_800));
        // 40.2 s are left: wait 41, not 40.
        assert_eq!(
            throttle.check("s", "a", THREE_A_MINUTE).await.unwrap(),
            Err(Throttled {
                retry_after_seconds: 41
            })
        );
        // Nothing to take back from a subject never counted.
        throttle.refund("s", "b", THREE_A_MINUTE).await.unwrap();
        assert_eq!(
            throttle.check("s", "b", THREE_A_MINUTE).await.unwrap(),
            Ok(())
        );
    }

    /// A memory store that yields between a read and what follows, so racing hits interleave.
    struct Yielding(MemoryDocStore);

    #[async_trait::async_trait]
    impl DocStore for Yielding {
        async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
            let item = self.0.get(key).await;
            tokio::task::yield_now().await;
            item
        }
        async fn query(
            &self,
            query: crate::docstore::Query,
        ) -> Result<crate::docstore::Page, StoreError> {
            self.0.query(query).await
        }
        async fn commit(&self, commit: Commit) -> Result<(), crate::docstore::CommitError> {
            self.0.commit(commit).await
        }
        async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.0.processed(key).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_hits_are_counted_exactly() {
        let store = Yielding(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
        let clock = ManualClock::starting_at(DateTime::UNIX_EPOCH + Duration::days(20_000));
        let throttle = Throttle::new(Arc::new(store), Arc::new(clock));
        let limit = Limit::new(5, Duration::minutes(1));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.hit("s", "a", limit).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap().is_ok());
        }
        assert_eq!(allowed, 5);
    }
}
