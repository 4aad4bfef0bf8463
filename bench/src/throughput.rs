//! Whole-system throughput in memory: every service, the relays, the in-memory SNS/SQS and
//! the event source mappings in this process (the local system), orders placed through the
//! gateway router and followed to their end by a subscriber to the order topic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::Service;
use local::config::{LocalConfig, NO_CLIENT_LIMITS};
use local::system::LocalSystem;
use platform::bus::{FilterPolicy, MemoryBus, QueueSpec};
use platform::invocations::FunctionStats;
use tokio::sync::watch;

use crate::measure::{self, ms};
use crate::shop::{self, BenchResult, OUTCOME_EVENTS, Outcome, Outcomes, Placed, Scenario, Shop};

/// How long one order may take before it is counted as timed out.
const ORDER_TIMEOUT: Duration = Duration::from_secs(60);
const OUTCOME_QUEUE: &str = "bench-outcomes";

pub struct Settings {
    pub orders: usize,
    pub clients: usize,
}

/// One run's figures.
struct Run {
    placed: Vec<Placed>,
    elapsed: Duration,
    cpu: Duration,
    peak_memory: Option<f64>,
    memory_before: Option<f64>,
    invocations: BTreeMap<String, FunctionStats>,
}

impl Run {
    fn count(&self, outcome: Option<Outcome>) -> usize {
        self.placed.iter().filter(|p| p.outcome == outcome).count()
    }

    fn rate(&self, outcome: Option<Outcome>) -> f64 {
        self.count(outcome) as f64 / self.elapsed.as_secs_f64()
    }

    fn completed_rate(&self) -> f64 {
        (self.count(Some(Outcome::Confirmed)) + self.count(Some(Outcome::Failed))) as f64
            / self.elapsed.as_secs_f64()
    }

    fn latencies(&self, outcome: Outcome) -> Vec<Duration> {
        let mut l: Vec<Duration> = self
            .placed
            .iter()
            .filter(|p| p.outcome == Some(outcome))
            .map(|p| p.latency)
            .collect();
        l.sort();
        l
    }

    fn report(&self, title: &str, out: &mut String) {
        let n = self.placed.len().max(1);
        let confirmed = self.latencies(Outcome::Confirmed);
        let failed = self.latencies(Outcome::Failed);
        let p = |l: &[Duration], q: f64| ms(measure::percentile(l, q));
        let _ = writeln!(out, "### {title}\n");
        let _ = writeln!(
            out,
            "- {} orders in {:.2} s: {} confirmed, {} failed, {} without an outcome in {} s",
            self.placed.len(),
            self.elapsed.as_secs_f64(),
            confirmed.len(),
            failed.len(),
            self.count(None),
            ORDER_TIMEOUT.as_secs()
        );
        let _ = writeln!(
            out,
            "- **{:.0} orders/s confirmed** ({:.0} sagas/s ended, confirmed or failed)",
            self.rate(Some(Outcome::Confirmed)),
            self.completed_rate()
        );
        let _ = writeln!(
            out,
            "- create → CONFIRMED: p50 {}, p95 {}, p99 {}, max {}",
            p(&confirmed, 50.0),
            p(&confirmed, 95.0),
            p(&confirmed, 99.0),
            p(&confirmed, 100.0)
        );
        let _ = writeln!(
            out,
            "- create → FAILED (compensated): p50 {}, p95 {}, p99 {}",
            p(&failed, 50.0),
            p(&failed, 95.0),
            p(&failed, 99.0)
        );
        let _ = writeln!(
            out,
            "- CPU time per order: {:.0} µs ({:.2} s of CPU in {:.2} s: {:.2} cores busy)",
            self.cpu.as_secs_f64() * 1e6 / n as f64,
            self.cpu.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "- memory: {} resident before the orders, peak {} during them",
            measure::mib(self.memory_before),
            measure::mib(self.peak_memory)
        );
        let invocations: u64 = self.invocations.values().map(|s| s.invocations).sum();
        let records: u64 = self.invocations.values().map(|s| s.records).sum();
        let _ = writeln!(
            out,
            "- function invocations per order: {:.2} (carrying {:.2} messages, records or requests)\n",
            invocations as f64 / n as f64,
            records as f64 / n as f64
        );
    }
}

fn config() -> BenchResult<LocalConfig> {
    let mut env =
        std::collections::HashMap::from([("JWT_SECRET", "benchmark-secret-of-at-least-32-bytes!")]);
    env.extend(NO_CLIENT_LIMITS);
    LocalConfig::from_env(&env).map_err(|e| e.to_string())
}

/// A started system with a subscriber for the outcomes.
struct Started {
    system: LocalSystem,
    shop: Shop,
    outcomes: Outcomes,
    stop: watch::Sender<bool>,
}

async fn start() -> BenchResult<Started> {
    let system = LocalSystem::start(config()?).map_err(|e| e.to_string())?;
    system
        .bus
        .add_queue(
            QueueSpec::new(OUTCOME_QUEUE)
                .subscribe(Service::Order.name(), FilterPolicy::types(OUTCOME_EVENTS))
                .batch_size(100),
        )
        .map_err(|e| e.to_string())?;
    let outcomes = Outcomes::default();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(listen(system.bus.clone(), outcomes.clone(), stopped));
    Ok(Started {
        shop: Shop::new(system.router(), system.services.users.clone()),
        system,
        outcomes,
        stop,
    })
}

/// The outcome subscriber: hears each outcome as soon as it is published.
async fn listen(bus: Arc<MemoryBus>, outcomes: Outcomes, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let arrival = bus.arrival();
        tokio::pin!(arrival);
        arrival.as_mut().enable();
        let Ok(messages) = bus.receive(OUTCOME_QUEUE, 100) else {
            return;
        };
        if messages.is_empty() {
            tokio::select! {
                _ = &mut arrival => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let now = Instant::now();
        for m in messages {
            outcomes.heard(&m.body, now);
            let _ = bus.delete(OUTCOME_QUEUE, &m.receipt_handle);
        }
    }
}

/// Waits until no queue holds a message, three looks in a row.
async fn settle(bus: &MemoryBus) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while quiet < 3 {
        if Instant::now() > deadline {
            return Err("the system did not settle within 60 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let busy = bus.queue_names().iter().any(|q| {
            bus.depth(q)
                .is_ok_and(|d| d.visible + d.in_flight + d.dead > 0)
        });
        quiet = if busy { 0 } else { quiet + 1 };
    }
    Ok(())
}

async fn prepared(settings: &Settings) -> BenchResult<(Started, Arc<Scenario>)> {
    let started = start().await?;
    let scenario = shop::set_up(&started.shop, settings.clients, settings.orders).await?;
    settle(&started.system.bus).await?;
    Ok((started, Arc::new(scenario)))
}

/// How the orders arrive.
enum Arrivals {
    /// Each client places its next order as soon as its last one ended.
    ClosedLoop,
    /// One order every 1/rate seconds, whatever happens to the others.
    OpenLoop { per_second: f64 },
}

async fn run(settings: &Settings, arrivals: Arrivals) -> BenchResult<Run> {
    let (started, scenario) = prepared(settings).await?;
    let before = started.system.invocations.snapshot();
    measure::release_free_memory();
    let memory_before = measure::memory_mib();
    let peak_resettable = measure::reset_peak_memory();
    let cpu_before = measure::cpu_time();
    let t0 = Instant::now();
    let placed = match arrivals {
        Arrivals::ClosedLoop => {
            shop::closed_loop(
                &started.shop,
                &started.outcomes,
                &scenario,
                settings.clients,
                settings.orders,
                ORDER_TIMEOUT,
            )
            .await?
        }
        Arrivals::OpenLoop { per_second } => {
            open_loop(&started, &scenario, settings, per_second, t0).await?
        }
    };
    let elapsed = t0.elapsed();
    let cpu = measure::cpu_time().saturating_sub(cpu_before);
    let peak_memory = if peak_resettable {
        measure::peak_memory_mib()
    } else {
        None
    };
    // Counted once everything the orders caused has run (sales statistics and the like).
    settle(&started.system.bus).await?;
    let after = started.system.invocations.snapshot();
    let invocations = after
        .iter()
        .map(|(f, s)| {
            let earlier = before.get(f).copied().unwrap_or_default();
            (f.clone(), s.since(&earlier))
        })
        .collect();
    let _ = started.stop.send(true);
    started.system.shutdown().await;
    Ok(Run {
        placed,
        elapsed,
        cpu,
        peak_memory,
        memory_before,
        invocations,
    })
}

/// One order every 1/`per_second` seconds from `t0`, by the customers in turn, whatever
/// happens to the others.
async fn open_loop(
    started: &Started,
    scenario: &Arc<Scenario>,
    settings: &Settings,
    per_second: f64,
    t0: Instant,
) -> BenchResult<Vec<Placed>> {
    let customers = scenario.customers.len().max(1);
    let gap = Duration::from_secs_f64(1.0 / per_second.max(1.0));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..settings.orders {
        tokio::time::sleep_until((t0 + gap * n as u32).into()).await;
        let (shop, outcomes, scenario) = (
            started.shop.clone(),
            started.outcomes.clone(),
            scenario.clone(),
        );
        tasks.spawn(async move {
            let Some(customer) = scenario.customers.get(n % customers) else {
                return Ok(None);
            };
            let body = scenario.order(customer, n, n / customers);
            shop::place(&shop, &outcomes, customer, body, ORDER_TIMEOUT)
                .await
                .map(Some)
        });
    }
    let mut placed = Vec::with_capacity(settings.orders);
    while let Some(joined) = tasks.join_next().await {
        placed.extend(joined.map_err(|e| e.to_string())??);
    }
    Ok(placed)
}

/// Both runs, as a Markdown section.
pub async fn throughput(settings: Settings) -> BenchResult<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Whole-system throughput, in memory\n\n{} orders from {} clients through the whole saga in one process (`bench throughput --orders {} --clients {}`).\n",
        settings.orders, settings.clients, settings.orders, settings.clients
    );
    eprintln!(
        "throughput: {} orders, {} clients, as fast as they go…",
        settings.orders, settings.clients
    );
    let peak = run(&settings, Arrivals::ClosedLoop).await?;
    peak.report(
        &format!(
            "Peak: {} clients, each ordering again when its order ended",
            settings.clients
        ),
        &mut out,
    );
    let half = peak.completed_rate() / 2.0;
    eprintln!("throughput: the same at half that rate ({half:.0} orders/s)…");
    let normal = run(&settings, Arrivals::OpenLoop { per_second: half }).await?;
    normal.report(
        &format!(
            "Half the peak rate: one order every {:.2} ms",
            1000.0 / half
        ),
        &mut out,
    );
    let _ = writeln!(out, "Invocations per order by function (peak run):\n");
    let _ = writeln!(out, "| function | invocations | records per invocation |");
    let _ = writeln!(out, "| --- | ---: | ---: |");
    let n = peak.placed.len().max(1) as f64;
    for (function, stats) in &peak.invocations {
        if stats.invocations == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "| {function} | {:.2} | {:.1} |",
            stats.invocations as f64 / n,
            stats.records as f64 / stats.invocations as f64
        );
    }
    let _ = writeln!(out);
    Ok(out)
}
