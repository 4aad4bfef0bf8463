//! The simulated world: the local system's wiring on in-memory stores, a manual clock
//! skewed per service, stores that yield before every call so that concurrent requests
//! really interleave (whose eventual reads may lag: [`crate::stale`]), and a relay cursor
//! per outbox.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use contract::Service;
use local::config::LocalConfig;
use local::system::World;
use platform::batch::EventHandler;
use platform::clock::{Clock, ManualClock};
use platform::docstore::memory::MemoryDocStore;
use platform::docstore::refusing::{Call, Refusing};
use platform::docstore::{Commit, CommitError, DocStore, Item, Key, Page, Query};
use platform::errors::StoreError;
use platform::ids::SequentialIds;
use platform::ports::Ports;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::stale::{LaggingStore, StaleReads};

/// A clock `offset` away from the world's.
struct SkewedClock {
    base: ManualClock,
    offset: Duration,
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        self.base.now() + self.offset
    }
}

/// Yields to the scheduler before every call, so two requests run together interleave
/// their reads and writes (on one thread, in an order fixed by the seed).
struct YieldingStore(Arc<dyn DocStore>);

#[async_trait]
impl DocStore for YieldingStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }

    async fn get_eventual(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        tokio::task::yield_now().await;
        self.0.get_eventual(key).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        tokio::task::yield_now().await;
        self.0.query(query).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        tokio::task::yield_now().await;
        self.0.commit(commit).await
    }

    async fn processed(&self, key: &str) -> Result<Option<String>, StoreError> {
        tokio::task::yield_now().await;
        self.0.processed(key).await
    }
}

/// DynamoDB refusing calls under load, as faults: while the rates are set, any store call
/// is throttled with one probability, and a transaction (a commit of several items) meets
/// another on an item (`TransactionConflict`) with another, drawn from a generator seeded
/// by the run's seed.
pub struct StoreRefusals {
    rng: Mutex<ChaCha8Rng>,
    /// The probabilities per call, in millionths (atomics, so the hook stays `Fn`).
    throttle: AtomicU64,
    conflict: AtomicU64,
    throttled: AtomicU64,
    conflicts: AtomicU64,
}

impl StoreRefusals {
    fn new(seed: u64) -> StoreRefusals {
        StoreRefusals {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x7412_0771)),
            throttle: AtomicU64::new(0),
            conflict: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    pub fn set_rates(&self, throttle: f64, conflict: f64) {
        let millionths = |rate: f64| (rate.clamp(0.0, 1.0) * 1_000_000.0) as u64;
        self.throttle.store(millionths(throttle), Ordering::Relaxed);
        self.conflict.store(millionths(conflict), Ordering::Relaxed);
    }

    /// How many calls were throttled, and how many transactions met a conflict, so far.
    pub fn refused(&self) -> (u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.conflicts.load(Ordering::Relaxed),
        )
    }

    fn draw(&self, rate: &AtomicU64, count: &AtomicU64) -> bool {
        let rate = rate.load(Ordering::Relaxed);
        if rate == 0 {
            return false;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let refused = rng.random_range(0..1_000_000) < rate;
        if refused {
            count.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    fn refuse(&self, call: Call) -> bool {
        self.draw(&self.throttle, &self.throttled)
            || (call == Call::Transaction && self.draw(&self.conflict, &self.conflicts))
    }
}

pub const ORDER_TTL_SECONDS: i64 = 60;
pub const UNDO_GRACE_SECONDS: i64 = 10;

pub struct SimWorld {
    pub world: World,
    pub clock: ManualClock,
    /// Each service's table, to check the invariants against.
    pub stores: BTreeMap<Service, Arc<MemoryDocStore>>,
    /// How far each outbox has been relayed.
    pub relayed: BTreeMap<Service, usize>,
    pub handlers: HashMap<String, Arc<dyn EventHandler>>,
    pub refusals: Arc<StoreRefusals>,
    pub stale_reads: Arc<StaleReads>,
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

impl SimWorld {
    /// Service clocks are off by up to `max_skew_seconds` either way, chosen by `seed`.
    pub fn build(seed: u64, max_skew_seconds: i64) -> SimWorld {
        let clock = ManualClock::starting_at(start_time());
        let ids = Arc::new(SequentialIds::new("id"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let skews: BTreeMap<Service, Duration> = Service::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    Duration::milliseconds(
                        rng.random_range(-max_skew_seconds * 1000..=max_skew_seconds * 1000),
                    ),
                )
            })
            .collect();
        let mut env: HashMap<&str, &str> = HashMap::from([
            ("JWT_SECRET", "simulation-secret-at-least-32-bytes-long"),
            ("ORDER_TTL_SECONDS", "60"),
            ("UNDO_GRACE_SECONDS", "10"),
        ]);
        env.extend(local::config::NO_CLIENT_LIMITS);
        let config = LocalConfig::from_env(&env).expect("the simulation's configuration is valid");
        let stores = RefCell::new(BTreeMap::new());
        let refusals = Arc::new(StoreRefusals::new(seed));
        let stale_reads = Arc::new(StaleReads::new(seed));
        let world = World::build(
            config,
            Arc::new(clock.clone()),
            ids.clone(),
            |service, outbox| {
                let store = Arc::new(MemoryDocStore::new(outbox));
                stores.borrow_mut().insert(service, store.clone());
                let skewed = SkewedClock {
                    base: clock.clone(),
                    offset: skews[&service],
                };
                let hook = refusals.clone();
                let lagging = LaggingStore::new(store, clock.clone(), stale_reads.clone());
                let refusing = Refusing::new(
                    Arc::new(YieldingStore(Arc::new(lagging))),
                    Arc::new(move |call| hook.refuse(call)),
                );
                Ports::new(Arc::new(refusing), Arc::new(skewed), ids.clone())
            },
        )
        .expect("the topology is valid");
        let handlers = world
            .consumers
            .iter()
            .map(|c| (c.queue.clone(), c.handler.clone()))
            .collect();
        SimWorld {
            world,
            clock,
            stores: stores.into_inner(),
            relayed: Service::ALL.iter().map(|s| (*s, 0)).collect(),
            handlers,
            refusals,
            stale_reads,
        }
    }

    /// Every item of a service's table.
    pub fn items(&self, service: Service) -> Vec<Item> {
        self.stores
            .get(&service)
            .map(|s| s.items())
            .unwrap_or_default()
    }

    /// Services whose outbox has events not yet relayed.
    pub fn unrelayed(&self) -> Vec<Service> {
        self.world
            .outboxes
            .iter()
            .filter(|(s, o)| o.len() > self.relayed[s])
            .map(|(s, _)| *s)
            .collect()
    }
}
