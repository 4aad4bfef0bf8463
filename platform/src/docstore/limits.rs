//! DynamoDB's per-item limits, modelled for the in-memory store (when asked: see
//! [`super::memory::MemoryDocStore::with_limits`]), so that what a hot item costs can be
//! measured where we test. Two limits:
//!
//! - **Write rate.** An item (its partition) takes at most `write_units_per_second`
//!   (DynamoDB: 1,000 write units a second); a write over it is refused as DynamoDB refuses
//!   it (`ThrottlingException` / `ProvisionedThroughputExceededException`) and does nothing.
//!   Each item keeps a bucket of one second's units, refilled continuously.
//! - **Transactions hold their items.** A committed transaction keeps its items for
//!   `transaction_hold` (the time its two phases take on DynamoDB); any write touching one
//!   meanwhile is refused with `TransactionConflict` and does nothing.
//!
//! Both answer [`crate::errors::StoreError::Throttled`], which handlers retry with the
//! bounded, jittered backoff. Write units are counted as DynamoDB bills them (of the items as
//! the DynamoDB adapter stores them, deflated where smaller): per item, one
//! per KiB begun, twice in a transaction; a write refused by its condition is billed too (a
//! throttled one is not).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Commit, Item, Key, Write};
use crate::packing::{Packed, Packing};

/// A monotonic time source: time since some fixed start.
pub type Elapsed = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The limits to enforce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemLimits {
    pub write_units_per_second: f64,
    pub transaction_hold: Duration,
}

impl ItemLimits {
    /// DynamoDB's write limit of one partition.
    pub const DYNAMODB_WRITE_UNITS_PER_SECOND: f64 = 1_000.0;

    /// DynamoDB's write rate, with transactions holding their items for `hold`.
    pub fn dynamodb(hold: Duration) -> ItemLimits {
        ItemLimits {
            write_units_per_second: Self::DYNAMODB_WRITE_UNITS_PER_SECOND,
            transaction_hold: hold,
        }
    }
}

/// What the limits saw, for a benchmark's report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitReport {
    /// Commits that reached the items (written, or refused by a condition).
    pub commits: u64,
    /// Write units billed for them.
    pub write_units: f64,
    /// Commits refused for an item's write rate.
    pub throttled: u64,
    /// Commits refused because a transaction held one of their items.
    pub conflicts: u64,
}

#[derive(Debug, Clone, Copy)]
struct ItemState {
    units: f64,
    refilled_at: Duration,
    held_until: Duration,
}

/// How many bytes `value` takes as JSON, without keeping the text.
fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// The bytes of an item as the DynamoDB adapter stores it by default: `fixed` bytes of names,
/// keys and version, its body and the events it carries, each deflated when that is smaller
/// ([`crate::packing`]). Every write is billed at least one KiB, so an item within it is
/// billed as written and nothing is compressed.
fn stored_bytes(fixed: usize, body: Option<&serde_json::Value>, events: Option<&str>) -> usize {
    let written = fixed + body.map_or(0, json_len) + events.map_or(0, str::len);
    if written <= 1024 {
        return written;
    }
    let packed_len = |text: String| match Packing::Deflate.pack(text) {
        Packed::Text(text) => text.len(),
        Packed::Deflated(bytes) => bytes.len(),
    };
    fixed
        + body.map_or(0, |b| packed_len(b.to_string()))
        + events.map_or(0, |e| packed_len(e.to_owned()))
}

/// Why the limits refused a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Throttled,
    TransactionConflict,
}

/// The limits' state: one bucket per item written.
pub(crate) struct Limiter {
    limits: ItemLimits,
    now: Elapsed,
    items: HashMap<Key, ItemState>,
    report: LimitReport,
}

/// One write's billed units and the item it touches.
pub(crate) struct Cost {
    key: Key,
    units: f64,
}

impl Limiter {
    pub(crate) fn new(limits: ItemLimits, now: Elapsed) -> Limiter {
        Limiter {
            limits,
            now,
            items: HashMap::new(),
            report: LimitReport::default(),
        }
    }

    pub(crate) fn report(&self) -> LimitReport {
        self.report
    }

    /// What each item `commit` writes costs, given the items as they are (`current`).
    pub(crate) fn costs<'a>(
        commit: &Commit,
        current: impl Fn(&Key) -> Option<&'a Item>,
    ) -> Vec<Cost> {
        let factor = if commit.is_transaction() { 2.0 } else { 1.0 };
        let units = |bytes: usize| factor * bytes.div_ceil(1024).max(1) as f64;
        let events = || crate::outbox::encode_events(&commit.events);
        let carrier = commit.carrier();
        let mut costs: Vec<Cost> = commit
            .writes
            .iter()
            .enumerate()
            .map(|(i, write)| {
                let key = write.key();
                let body = match write {
                    Write::Put { body, .. } => Some(body),
                    Write::Add { create, .. } => {
                        current(key).map(|item| &item.body).or(create.as_ref())
                    }
                    Write::Delete { .. } | Write::Check { .. } => {
                        current(key).map(|item| &item.body)
                    }
                };
                let carried = (carrier == Some(i)).then(events);
                // Names and values: the keys, the version, the body, the events carried.
                let fixed = key.pk.len() + key.sk.len() + 16;
                Cost {
                    key: key.clone(),
                    units: units(stored_bytes(fixed, body, carried.as_deref())),
                }
            })
            .collect();
        // The items a commit adds of its own: the processed key, an outbox item.
        if let Some((key, _)) = &commit.processed {
            costs.push(Cost {
                key: Key::new(format!("PROCESSED#{key}"), "PROCESSED"),
                units: factor,
            });
        }
        if commit.needs_outbox_item() {
            let first = commit.events.first().map_or("", |e| &e.event_id);
            costs.push(Cost {
                key: Key::new(format!("OUTBOX#{first}"), "OUTBOX"),
                units: units(stored_bytes(0, None, Some(&events()))),
            });
        }
        costs
    }

    /// Admits a commit of these costs now, or refuses it (nothing taken).
    pub(crate) fn admit(&mut self, costs: &[Cost]) -> Result<(), Refusal> {
        let now = (self.now)();
        let rate = self.limits.write_units_per_second;
        for cost in costs {
            let state = self.state(&cost.key, now);
            if state.held_until > now {
                self.report.conflicts += 1;
                return Err(Refusal::TransactionConflict);
            }
            if state.units < cost.units.min(rate) {
                self.report.throttled += 1;
                return Err(Refusal::Throttled);
            }
        }
        Ok(())
    }

    /// Bills an admitted commit; a committed transaction holds its items.
    pub(crate) fn bill(&mut self, costs: &[Cost], committed: bool) {
        let now = (self.now)();
        let hold = committed && costs.len() > 1;
        self.report.commits += 1;
        for cost in costs {
            self.report.write_units += cost.units;
            let held_until = now + self.limits.transaction_hold;
            let state = self.state(&cost.key, now);
            state.units -= cost.units;
            if hold {
                state.held_until = held_until;
            }
        }
    }

    /// The item's state, its bucket refilled up to `now`.
    fn state(&mut self, key: &Key, now: Duration) -> &mut ItemState {
        let rate = self.limits.write_units_per_second;
        let state = self.items.entry(key.clone()).or_insert(ItemState {
            units: rate,
            refilled_at: now,
            held_until: Duration::ZERO,
        });
        let elapsed = now.saturating_sub(state.refilled_at).as_secs_f64();
        state.units = (state.units + elapsed * rate).min(rate);
        state.refilled_at = now;
        state
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::docstore::memory::MemoryDocStore;
    use crate::docstore::{CommitError, DocStore, Expect};
    use crate::errors::StoreError;
    use crate::outbox::MemoryOutbox;

    /// A store with DynamoDB's limits (hold 10 ms) on a clock the test moves, in µs.
    fn limited() -> (MemoryDocStore, Arc<AtomicU64>) {
        let micros = Arc::new(AtomicU64::new(0));
        let clock = micros.clone();
        let now: Elapsed = Arc::new(move || Duration::from_micros(clock.load(Ordering::SeqCst)));
        let store = MemoryDocStore::new(Arc::new(MemoryOutbox::new()))
            .with_limits(ItemLimits::dynamodb(Duration::from_millis(10)), now);
        (store, micros)
    }

    fn put(key: &Key, body: serde_json::Value) -> Commit {
        let write =
            Write::put(key.clone(), &body, Expect::Absent).unwrap_or_else(|e| panic!("{e}"));
        Commit::new().write(write)
    }

    fn add(key: &Key) -> Write {
        Write::add(key.clone(), [("n", 1)])
            .or_create(&serde_json::json!({}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn committed(store: &MemoryDocStore, commit: Commit) {
        store.commit(commit).await.unwrap_or_else(|e| panic!("{e}"));
    }

    fn throttled(result: Result<(), CommitError>) -> bool {
        matches!(result, Err(CommitError::Store(StoreError::Throttled)))
    }

    #[tokio::test]
    async fn an_item_takes_a_thousand_write_units_a_second_and_no_more() {
        // Given a store with DynamoDB's per-item write rate
        let (store, micros) = limited();
        let hot = Key::new("HOT", "ITEM");
        // When one item takes 1,000 one-unit writes at one instant
        for _ in 0..1_000 {
            committed(&store, Commit::new().write(add(&hot))).await;
        }
        // Then the next is refused and changes nothing, while another item is written
        assert!(throttled(
            store.commit(Commit::new().write(add(&hot))).await
        ));
        let other = Key::new("COLD", "ITEM");
        committed(&store, Commit::new().write(add(&other))).await;
        let count = |item: Option<Item>| item.map(|i| i.body["n"].clone());
        assert_eq!(
            count(store.get(&hot).await.unwrap_or_else(|e| panic!("{e}"))),
            Some(1000.into())
        );
        // And a millisecond later one more unit has come back, and only one
        micros.store(1_000, Ordering::SeqCst);
        committed(&store, Commit::new().write(add(&hot))).await;
        assert!(throttled(
            store.commit(Commit::new().write(add(&hot))).await
        ));
        let report = store.limit_report();
        assert_eq!(
            (report.commits, report.throttled, report.conflicts),
            (1_002, 2, 0)
        );
        assert_eq!(report.write_units, 1_002.0);
    }

    #[tokio::test]
    async fn a_committed_transaction_holds_its_items_for_a_while() {
        // Given a transaction over two items at t = 0
        let (store, micros) = limited();
        let (a, b) = (Key::new("A", "A"), Key::new("B", "B"));
        committed(&store, Commit::new().write(add(&a)).write(add(&b))).await;
        // When another write touches one of them 5 ms later
        micros.store(5_000, Ordering::SeqCst);
        // Then it meets the transaction: refused, nothing written
        assert!(throttled(store.commit(Commit::new().write(add(&b))).await));
        assert!(throttled(
            store
                .commit(Commit::new().write(add(&a)).write(add(&Key::new("C", "C"))))
                .await
        ));
        assert_eq!(store.get(&Key::new("C", "C")).await.ok().flatten(), None);
        // And once the hold is over the same write goes through
        micros.store(10_000, Ordering::SeqCst);
        committed(&store, Commit::new().write(add(&b))).await;
        let report = store.limit_report();
        assert_eq!(
            (report.commits, report.conflicts, report.throttled),
            (2, 2, 0)
        );
        // Two items in a transaction bill twice each; the single add once.
        assert_eq!(report.write_units, 5.0);
    }

    #[tokio::test]
    async fn units_are_billed_per_kib_begun_and_for_refused_conditions_too() {
        let (store, _) = limited();
        let big = Key::new("BIG", "ITEM");
        // About 1.6 KiB of body as stored (3,200 hex digits, deflated to about half): two
        // units.
        let digits: String = (0..100u8)
            .map(|i| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &[i])
                    .simple()
                    .to_string()
            })
            .collect();
        committed(&store, put(&big, serde_json::json!({"text": digits}))).await;
        assert_eq!(store.limit_report().write_units, 2.0);
        // The same put again: refused by its condition, billed all the same.
        let refused = store
            .commit(put(&big, serde_json::json!({"text": "y"})))
            .await;
        assert!(
            matches!(refused, Err(CommitError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(store.limit_report().write_units, 3.0);
        assert_eq!(store.limit_report().commits, 2);
    }
}
