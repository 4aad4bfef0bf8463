//! What Lambda would bill, counted where the local systems play Lambda: each function's
//! invocations, the records they carried, and how long they ran (Lambda bills every
//! invocation rounded up to the next millisecond).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::batch::SqsFunction;

/// One function's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    pub invocations: u64,
    /// Messages, stream records or requests handed over, summed over the invocations.
    pub records: u64,
    /// Wall time spent in the function.
    pub busy: Duration,
    /// Billed duration: each invocation rounded up to a whole millisecond.
    pub billed_ms: u64,
}

impl FunctionStats {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &FunctionStats) -> FunctionStats {
        FunctionStats {
            invocations: self.invocations.saturating_sub(earlier.invocations),
            records: self.records.saturating_sub(earlier.records),
            busy: self.busy.saturating_sub(earlier.busy),
            billed_ms: self.billed_ms.saturating_sub(earlier.billed_ms),
        }
    }
}

/// Every function's totals, by function name.
#[derive(Default)]
pub struct Invocations {
    by_function: Mutex<BTreeMap<String, FunctionStats>>,
}

impl Invocations {
    pub fn new() -> Self {
        Invocations::default()
    }

    pub fn record(&self, function: &str, records: usize, took: Duration) {
        let mut all = self.by_function.lock().unwrap_or_else(|p| p.into_inner());
        // Every request and batch passes here: no new key after a function's first call.
        if !all.contains_key(function) {
            all.insert(function.to_owned(), FunctionStats::default());
        }
        let Some(stats) = all.get_mut(function) else {
            return;
        };
        stats.invocations += 1;
        stats.records += records as u64;
        stats.busy += took;
        stats.billed_ms += took.as_nanos().div_ceil(1_000_000) as u64;
    }

    pub fn snapshot(&self) -> BTreeMap<String, FunctionStats> {
        self.by_function
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One function's meter: the registry and the name it counts under.
#[derive(Clone)]
pub struct Meter {
    invocations: Arc<Invocations>,
    function: Arc<str>,
}

impl Meter {
    pub fn new(invocations: Arc<Invocations>, function: &str) -> Self {
        Meter {
            invocations,
            function: function.into(),
        }
    }

    /// Runs `work` as one invocation carrying `records`.
    pub async fn time<F: Future>(&self, records: usize, work: F) -> F::Output {
        let started = Instant::now();
        let output = work.await;
        self.record(records, started.elapsed());
        output
    }

    pub fn record(&self, records: usize, took: Duration) {
        self.invocations.record(&self.function, records, took)
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

    #[test]
    fn billed_time_rounds_each_invocation_up_to_a_millisecond() {
        let invocations = Invocations::new();
        invocations.record("f", 3, Duration::from_micros(200));
        invocations.record("f", 1, Duration::from_micros(1_500));
        invocations.record("g", 0, Duration::from_millis(2));
        let all = invocations.snapshot();
        assert_eq!(
            all["f"],
            FunctionStats {
                invocations: 2,
                records: 4,
                busy: Duration::from_micros(1_700),
                billed_ms: 3,
            }
        );
        assert_eq!(all["g"].billed_ms, 2);
        let earlier = all["f"];
        invocations.record("f", 2, Duration::from_millis(1));
        let now = invocations.snapshot()["f"];
        assert_eq!(
            now.since(&earlier),
            FunctionStats {
                invocations: 1,
                records: 2,
                busy: Duration::from_millis(1),
                billed_ms: 1,
            }
        );
    }
}
