//! What Lambda would bill, counted where the local systems play Lambda: each function's
//! invocations, the records they carried, and how long they ran (Lambda bills every
//! invocation rounded up to the next millisecond).
//!
//! Two durations are kept. The wall time is what the function took here, waiting on the
//! emulator and on two shared cores. The modelled time is what it would take on Lambda: the
//! CPU time the function itself spent (measured per poll of its future, on the thread that
//! polled it) plus, for every AWS request it made, the latency of that request under a stated
//! model ([`RequestLatency`], given by whoever counts the requests; see [`note_request`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use contract::Service;

use crate::batch::SqsFunction;
use crate::telemetry::{Scope, Sinks};

/// One function's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    pub invocations: u64,
    /// Messages, stream records or requests handed over, summed over the invocations.
    pub records: u64,
    /// Wall time spent in the function.
    pub busy: Duration,
    /// Billed duration of the wall time: each invocation rounded up to a whole millisecond.
    pub billed_ms: u64,
    /// CPU time the function's own code spent.
    pub cpu: Duration,
    /// AWS requests the function made (those noted with [`note_request`]).
    pub requests: u64,
    /// Billed duration as modelled: each invocation's CPU time plus its requests' modelled
    /// latency, rounded up to a whole millisecond.
    pub modelled_ms: u64,
}

impl FunctionStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &FunctionStats) -> FunctionStats {
        FunctionStats {
            invocations: self.invocations.saturating_sub(earlier.invocations),
            records: self.records.saturating_sub(earlier.records),
            busy: self.busy.saturating_sub(earlier.busy),
            billed_ms: self.billed_ms.saturating_sub(earlier.billed_ms),
            cpu: self.cpu.saturating_sub(earlier.cpu),
            requests: self.requests.saturating_sub(earlier.requests),
            modelled_ms: self.modelled_ms.saturating_sub(earlier.modelled_ms),
        }
    }
}

/// How long one AWS request (service, operation: `"dynamodb"`, `"GetItem"`) would take
/// from a Lambda function in the same region.
pub type RequestLatency = fn(&str, &str) -> Duration;

/// What one invocation did, as it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Invocation {
    pub records: usize,
    pub wall: Duration,
    pub cpu: Duration,
    pub requests: u64,
    /// The modelled latency of its requests.
    pub waited: Duration,
}

fn whole_ms(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000) as u64
}

/// Every function's totals, by function name.
#[derive(Default)]
pub struct Invocations {
    by_function: Mutex<BTreeMap<String, FunctionStats>>,
    latency: Mutex<Option<RequestLatency>>,
}

impl Invocations {
    pub fn new() -> Self {
        Invocations::default()
    }

    /// From now on, every AWS request of an invocation is charged `latency` in its
    /// modelled duration (until then: nothing, so the modelled time is the CPU time).
    pub fn model_requests(&self, latency: RequestLatency) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = Some(latency);
    }

    fn request_latency(&self) -> Option<RequestLatency> {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, function: &str, invocation: Invocation) {
        let mut all = self.by_function.lock().unwrap_or_else(|p| p.into_inner());
        // Every request and batch passes here: no new key after a function's first call.
        if !all.contains_key(function) {
            all.insert(function.to_owned(), FunctionStats::default());
        }
        let Some(stats) = all.get_mut(function) else {
            return;
        };
        stats.invocations += 1;
        stats.records += invocation.records as u64;
        stats.busy += invocation.wall;
        stats.billed_ms += whole_ms(invocation.wall);
        stats.cpu += invocation.cpu;
        stats.requests += invocation.requests;
        stats.modelled_ms += whole_ms(invocation.cpu + invocation.waited);
    }

    pub fn snapshot(&self) -> BTreeMap<String, FunctionStats> {
        self.by_function
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The requests of the invocation running on this task.
struct Requests {
    latency: Option<RequestLatency>,
    made: Mutex<(u64, Duration)>,
}

tokio::task_local! {
    static CURRENT: Arc<Requests>;
}

/// Notes an AWS request made by the code running now: if that is a metered invocation, it
/// is counted there and charged its modelled latency. Called by an SDK interceptor, which
/// runs on the task that sends the request.
pub fn note_request(service: &str, operation: &str) {
    let _ = CURRENT.try_with(|requests| {
        let latency = requests
            .latency
            .map_or(Duration::ZERO, |f| f(service, operation));
        let mut made = requests.made.lock().unwrap_or_else(|p| p.into_inner());
        made.0 += 1;
        made.1 += latency;
    });
}

/// A future that adds up the CPU time of its polls (each measured on the thread polling it).
struct CpuTimed<F> {
    inner: Pin<Box<F>>,
    cpu: Duration,
}

impl<F: Future> Future for CpuTimed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = cpu_time::ThreadTime::try_now().ok();
        let polled = self.inner.as_mut().poll(cx);
        if let Some(spent) = started.and_then(|t| t.try_elapsed().ok()) {
            self.cpu += spent;
        }
        polled
    }
}

/// One function's meter: the registry and the name it counts under, and where its
/// invocations' telemetry goes (see [`Meter::observed`]).
#[derive(Clone)]
pub struct Meter {
    invocations: Arc<Invocations>,
    function: Arc<str>,
    observed: Option<(Option<Service>, Sinks)>,
}

impl Meter {
    pub fn new(invocations: Arc<Invocations>, function: &str) -> Self {
        Meter {
            invocations,
            function: function.into(),
            observed: None,
        }
    }

    /// Each invocation also runs in a telemetry scope, as Lambda runs a function: its
    /// metrics (under `service`) and trace segments go to `sinks`, its log lines carry its
    /// request id. Inside a scope already (an API's routes within the gateway's request) it
    /// keeps that request's id and trace.
    pub fn observed(mut self, service: Option<Service>, sinks: Sinks) -> Self {
        self.observed = Some((service, sinks));
        self
    }

    /// Runs `work` as one invocation carrying `records`: its wall time, CPU time and AWS
    /// requests are counted (and it is observed, if the meter is).
    pub async fn time<F: Future>(&self, records: usize, work: F) -> F::Output {
        match &self.observed {
            Some((service, sinks)) => {
                let scope = match Scope::current() {
                    Some(outer) => outer.as_function(&self.function, *service),
                    None => Scope::new(&self.function, *service, sinks.clone()),
                };
                scope.run(self.count(records, work)).await
            }
            None => self.count(records, work).await,
        }
    }

    async fn count<F: Future>(&self, records: usize, work: F) -> F::Output {
        let requests = Arc::new(Requests {
            latency: self.invocations.request_latency(),
            made: Mutex::new((0, Duration::ZERO)),
        });
        let started = Instant::now();
        let mut timed = CpuTimed {
            inner: Box::pin(work),
            cpu: Duration::ZERO,
        };
        let output = CURRENT.scope(requests.clone(), &mut timed).await;
        let (made, waited) = *requests.made.lock().unwrap_or_else(|p| p.into_inner());
        self.record(Invocation {
            records,
            wall: started.elapsed(),
            cpu: timed.cpu,
            requests: made,
            waited,
        });
        output
    }

    pub fn record(&self, invocation: Invocation) {
        self.invocations.record(&self.function, invocation)
    }
}

/// An SQS function whose invocations are counted.
pub struct Metered {
    inner: Arc<dyn SqsFunction>,
    meter: Meter,
}

impl Metered {
    pub fn new(inner: Arc<dyn SqsFunction>, meter: Meter) -> Self {
        Metered { inner, meter }
    }
}

#[async_trait]
impl SqsFunction for Metered {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let records = event.records.len();
        self.meter
            .time(records, self.inner.handle_batch(event))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn took(records: usize, wall: Duration) -> Invocation {
        Invocation {
            records,
            wall,
            ..Invocation::default()
        }
    }

    #[test]
    fn billed_time_rounds_each_invocation_up_to_a_millisecond() {
        let invocations = Invocations::new();
        invocations.record("f", took(3, Duration::from_micros(200)));
        invocations.record("f", took(1, Duration::from_micros(1_500)));
        invocations.record("g", took(0, Duration::from_millis(2)));
        let all = invocations.snapshot();
        assert_eq!(
            (
                all["f"].invocations,
                all["f"].records,
                all["f"].busy,
                all["f"].billed_ms
            ),
            (2, 4, Duration::from_micros(1_700), 3)
        );
        assert_eq!(all["g"].billed_ms, 2);
        let earlier = all["f"];
        invocations.record("f", took(2, Duration::from_millis(1)));
        let now = invocations.snapshot()["f"];
        assert_eq!(
            (
                now.since(&earlier).invocations,
                now.since(&earlier).billed_ms
            ),
            (1, 1)
        );
    }

    fn ten_ms(service: &str, _: &str) -> Duration {
        match service {
            "dynamodb" => Duration::from_millis(10),
            _ => Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn the_modelled_time_is_cpu_plus_the_requests_made_inside_the_invocation() {
        let invocations = Arc::new(Invocations::new());
        invocations.model_requests(ten_ms);
        let meter = Meter::new(invocations.clone(), "f");
        // Outside an invocation a request is not charged to anyone.
        note_request("dynamodb", "GetItem");
        meter
            .time(1, async {
                note_request("dynamodb", "GetItem");
                note_request("sns", "PublishBatch");
                // Waiting is not CPU time.
                tokio::time::sleep(Duration::from_millis(30)).await;
            })
            .await;
        let f = invocations.snapshot()["f"];
        assert_eq!(f.requests, 2);
        assert!(f.busy >= Duration::from_millis(30), "{f:?}");
        assert!(f.cpu < f.busy, "the sleep is not CPU time: {f:?}");
        let modelled = Duration::from_millis(10) + f.cpu;
        assert_eq!(f.modelled_ms, whole_ms(modelled), "{f:?}");
    }
}
