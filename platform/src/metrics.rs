//! The metrics the functions write (the contract of docs/operations.md, which the alarms and
//! the dashboard read): on Lambda one CloudWatch embedded metric format (EMF) line per sample on
//! stdout, which CloudWatch Logs turns into the metric; locally the same samples added up in
//! memory and served as Prometheus text (`GET /metrics` of the local gateway).
//!
//! Our own small module rather than a crate: the one EMF crate kept up
//! (`metrics_cloudwatch_embedded`) sits on the `metrics` facade's one global recorder (the local
//! system runs many systems in one test process, each with its own numbers) and publishes a
//! metric under one dimension set, where the contract needs two (`[Service]` and
//! `[Service, Reason]`).
//!
//! Code records a sample with [`emit`] (or [`count`]); it goes where the invocation running
//! now sends its metrics ([`crate::telemetry::Scope`]), under the service running it. Outside
//! an observed invocation (a unit test, the simulation) it goes nowhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use contract::Service;
use serde_json::json;

use crate::config::Env;
use crate::telemetry::Scope;

/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Shop";

/// Every metric of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    OrdersCreated,
    OrdersConfirmed,
    OrdersFailed,
    OrdersCancelled,
    SagaDuration,
    UndoAnswers,
    PoisonMessages,
    RelayLag,
    StoreThrottles,
    StoreRetries,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::OrdersCreated,
        Metric::OrdersConfirmed,
        Metric::OrdersFailed,
        Metric::OrdersCancelled,
        Metric::SagaDuration,
        Metric::UndoAnswers,
        Metric::PoisonMessages,
        Metric::RelayLag,
        Metric::StoreThrottles,
        Metric::StoreRetries,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::OrdersCreated => "OrdersCreated",
            Metric::OrdersConfirmed => "OrdersConfirmed",
            Metric::OrdersFailed => "OrdersFailed",
            Metric::OrdersCancelled => "OrdersCancelled",
            Metric::SagaDuration => "SagaDuration",
            Metric::UndoAnswers => "UndoAnswers",
            Metric::PoisonMessages => "PoisonMessages",
            Metric::RelayLag => "RelayLag",
            Metric::StoreThrottles => "StoreThrottles",
            Metric::StoreRetries => "StoreRetries",
        }
    }

    /// CloudWatch's unit: `Milliseconds` for the durations, `Count` for the rest.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::SagaDuration | Metric::RelayLag => "Milliseconds",
            _ => "Count",
        }
    }

    /// The dimension the metric is also published by, besides `Service`.
    pub fn dimension(self) -> Option<&'static str> {
        match self {
            Metric::OrdersFailed => Some("Reason"),
            Metric::SagaDuration => Some("Outcome"),
            _ => None,
        }
    }

    /// What it counts, as docs/operations.md says.
    pub fn help(self) -> &'static str {
        match self {
            Metric::OrdersCreated => "orders accepted",
            Metric::OrdersConfirmed => "orders whose saga confirmed them",
            Metric::OrdersFailed => "orders whose saga failed them (once their undo completed)",
            Metric::OrdersCancelled => "orders cancelled (once their undo completed)",
            Metric::SagaDuration => {
                "an order's creation to its confirmation or completed failure, in milliseconds"
            }
            Metric::UndoAnswers => "answers to the saga's undo requests the order recorded",
            Metric::PoisonMessages => {
                "messages a consumer could not handle and sent to its dead-letter queue"
            }
            Metric::RelayLag => {
                "a stream record's age when the relay published it, in milliseconds"
            }
            Metric::StoreThrottles => "throttled DynamoDB requests of the store",
            Metric::StoreRetries => "commits the store retried after a lost race or a throttle",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Metric,
    pub value: f64,
    pub service: Service,
    /// The value of the metric's own dimension ([`Metric::dimension`]), when it has one.
    pub dimension: Option<String>,
}

/// Where samples go.
pub trait MetricSink: Send + Sync {
    fn record(&self, sample: Sample);
}

/// Records one of `metric` for the service running now.
pub fn count(metric: Metric) {
    emit(metric, 1.0, None);
}

/// Records `value` of `metric` (with its own dimension's value, if it has one) for the service
/// running now; nothing outside an observed invocation, or one that serves no one service.
pub fn emit(metric: Metric, value: f64, dimension: Option<&str>) {
    Scope::with(|scope| {
        if let Some(service) = scope.service() {
            record(scope, service, metric, value, dimension);
        }
    });
}

/// The same for a service named here (the relay publishes for the table it reads).
pub fn emit_for(service: Service, metric: Metric, value: f64, dimension: Option<&str>) {
    Scope::with(|scope| record(scope, service, metric, value, dimension));
}

/// A duration as a `Milliseconds` metric's value, to the microsecond; 0 for a negative one
/// (or one too long to count in microseconds).
pub fn millis(duration: chrono::Duration) -> f64 {
    duration.num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0
}

/// One sample into `scope`'s metrics, if it sends them anywhere.
fn record(scope: &Scope, service: Service, metric: Metric, value: f64, dimension: Option<&str>) {
    if let Some(sink) = &scope.sinks().metrics {
        sink.record(Sample {
            metric,
            value,
            service,
            dimension: dimension.map(str::to_owned),
        });
    }
}

/// One sample as an EMF document: the value and the dimensions as top-level fields, and
/// `_aws` saying which fields are metrics under which dimension sets.
pub fn emf_document(namespace: &str, sample: &Sample, timestamp_ms: i64) -> serde_json::Value {
    let metric = sample.metric;
    let mut dimensions = vec![vec!["Service"]];
    let mut document = json!({
        "Service": sample.service.name(),
        metric.name(): sample.value,
    });
    if let (Some(name), Some(value)) = (metric.dimension(), &sample.dimension) {
        dimensions.push(vec!["Service", name]);
        document[name] = json!(value);
    }
    document["_aws"] = json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": dimensions,
            "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
        }],
    });
    document
}

/// Lambda: each sample as one EMF line on stdout (CloudWatch Logs extracts the metric).
pub struct EmfStdout {
    namespace: String,
}

impl EmfStdout {
    pub fn new(namespace: impl Into<String>) -> Self {
        EmfStdout {
            namespace: namespace.into(),
        }
    }

    /// The namespace from `METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]).
    pub fn from_env(env: &dyn Env) -> Self {
        EmfStdout::new(
            env.var("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        )
    }

    pub fn line(&self, sample: &Sample, timestamp_ms: i64) -> String {
        emf_document(&self.namespace, sample, timestamp_ms).to_string()
    }
}

impl MetricSink for EmfStdout {
    fn record(&self, sample: Sample) {
        // One `println!` is one write of the whole line under stdout's lock: log lines
        // written by other tasks never land inside it.
        println!(
            "{}",
            self.line(&sample, chrono::Utc::now().timestamp_millis())
        );
    }
}

/// The series a sample belongs to: metric, service, its own dimension's value.
type Series = (Metric, Service, Option<String>);

/// What the samples of one series came to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Total {
    pub count: u64,
    pub sum: f64,
    pub max: f64,
}

/// The local system: every sample added up per series, for `GET /metrics`.
#[derive(Default)]
pub struct MemoryMetrics {
    series: Mutex<BTreeMap<Series, Total>>,
}

impl MemoryMetrics {
    pub fn new() -> Self {
        MemoryMetrics::default()
    }

    /// One series' total (`dimension`: the value of the metric's own dimension).
    pub fn total(&self, metric: Metric, service: Service, dimension: Option<&str>) -> Total {
        let key = (metric, service, dimension.map(str::to_owned));
        self.lock().get(&key).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Series, Total>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prometheus' text format: a count as a counter (`OrdersCreated{Service="order"} 2`), a
    /// duration as a summary (`SagaDuration_sum`, `SagaDuration_count`). Names and labels are
    /// the CloudWatch ones; a series carries every dimension of its sample, so a sum over
    /// `Reason` is the `[Service]` figure.
    pub fn prometheus(&self) -> String {
        let series = self.lock().clone();
        let mut text = String::new();
        for metric in Metric::ALL {
            let of_metric: Vec<_> = series.iter().filter(|((m, ..), _)| *m == metric).collect();
            if of_metric.is_empty() {
                continue;
            }
            let name = metric.name();
            let kind = match metric.unit() {
                "Count" => "counter",
                _ => "summary",
            };
            let _ = writeln!(text, "# HELP {name} {}", metric.help());
            let _ = writeln!(text, "# TYPE {name} {kind}");
            for ((_, service, dimension), total) in of_metric {
                let mut labels = format!("Service=\"{}\"", service.name());
                if let (Some(label), Some(value)) = (metric.dimension(), dimension) {
                    let _ = write!(labels, ",{label}=\"{}\"", escape(value));
                }
                if kind == "counter" {
                    let _ = writeln!(text, "{name}{{{labels}}} {}", total.sum);
                } else {
                    let _ = writeln!(text, "{name}_sum{{{labels}}} {}", total.sum);
                    let _ = writeln!(text, "{name}_count{{{labels}}} {}", total.count);
                }
            }
        }
        text
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl MetricSink for MemoryMetrics {
    fn record(&self, sample: Sample) {
        let mut series = self.lock();
        let total = series
            .entry((sample.metric, sample.service, sample.dimension))
            .or_default();
        total.count += 1;
        total.sum += sample.value;
        total.max = total.max.max(sample.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str) -> Sample {
        Sample {
            metric: Metric::OrdersFailed,
            value: 1.0,
            service: Service::Order,
            dimension: Some(reason.to_owned()),
        }
    }

    #[test]
    fn an_emf_line_is_a_cloudwatch_embedded_metric_document() {
        let line = EmfStdout::new("Shop").line(&failed("PAYMENT_FAILED"), 1_764_000_000_123);
        let document: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_764_000_000_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Shop",
                        "Dimensions": [["Service"], ["Service", "Reason"]],
                        "Metrics": [{"Name": "OrdersFailed", "Unit": "Count"}],
                    }],
                },
                "Service": "order",
                "Reason": "PAYMENT_FAILED",
                "OrdersFailed": 1.0,
            })
        );
        assert!(!line.contains('\n'), "one line: {line}");
    }

    #[test]
    fn a_metric_without_a_dimension_of_its_own_has_only_the_service_set() {
        let lag = Sample {
            metric: Metric::RelayLag,
            value: 42.5,
            service: Service::Product,
            dimension: None,
        };
        let document = emf_document("Custom", &lag, 7);
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Custom"
        );
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Service"]])
        );
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "RelayLag", "Unit": "Milliseconds"}])
        );
        assert_eq!(document["RelayLag"], 42.5);
        assert_eq!(document["Service"], "product");
    }

    #[test]
    fn the_namespace_comes_from_the_environment() {
        use std::collections::HashMap;
        let line = |env: HashMap<&str, &str>| {
            let line = EmfStdout::from_env(&env).line(&failed("EXPIRED"), 0);
            serde_json::from_str::<serde_json::Value>(&line).unwrap()["_aws"]["CloudWatchMetrics"]
                [0]["Namespace"]
                .clone()
        };
        assert_eq!(line(HashMap::new()), "Shop");
        assert_eq!(
            line(HashMap::from([("METRICS_NAMESPACE", "Staging")])),
            "Staging"
        );
    }

    #[test]
    fn in_memory_samples_add_up_and_read_as_prometheus_text() {
        let metrics = MemoryMetrics::new();
        for sample in [
            failed("PAYMENT_FAILED"),
            failed("PAYMENT_FAILED"),
            failed("OUT_OF_STOCK"),
        ] {
            metrics.record(sample);
        }
        for (outcome, ms) in [("confirmed", 120.0), ("confirmed", 80.0), ("failed", 300.0)] {
            metrics.record(Sample {
                metric: Metric::SagaDuration,
                value: ms,
                service: Service::Order,
                dimension: Some(outcome.to_owned()),
            });
        }
        let total = metrics.total(Metric::OrdersFailed, Service::Order, Some("PAYMENT_FAILED"));
        assert_eq!((total.count, total.sum), (2, 2.0));
        let confirmed = metrics.total(Metric::SagaDuration, Service::Order, Some("confirmed"));
        assert_eq!(
            (confirmed.count, confirmed.sum, confirmed.max),
            (2, 200.0, 120.0)
        );
        assert_eq!(
            metrics.prometheus(),
            "# HELP OrdersFailed orders whose saga failed them (once their undo completed)\n\
             # TYPE OrdersFailed counter\n\
             OrdersFailed{Service=\"order\",Reason=\"OUT_OF_STOCK\"} 1\n\
             OrdersFailed{Service=\"order\",Reason=\"PAYMENT_FAILED\"} 2\n\
             # HELP SagaDuration an order's creation to its confirmation or completed failure, in milliseconds\n\
             # TYPE SagaDuration summary\n\
             SagaDuration_sum{Service=\"order\",Outcome=\"confirmed\"} 200\n\
             SagaDuration_count{Service=\"order\",Outcome=\"confirmed\"} 2\n\
             SagaDuration_sum{Service=\"order\",Outcome=\"failed\"} 300\n\
             SagaDuration_count{Service=\"order\",Outcome=\"failed\"} 1\n"
        );
    }

    #[test]
    fn a_duration_is_its_milliseconds_to_the_microsecond_and_never_negative() {
        assert_eq!(millis(chrono::Duration::microseconds(1_234_567)), 1_234.567);
        assert_eq!(millis(chrono::Duration::milliseconds(-5)), 0.0);
        assert_eq!(millis(chrono::Duration::MAX), 0.0);
    }

    #[test]
    fn outside_an_observed_invocation_a_sample_goes_nowhere() {
        // No scope: nothing to record into, and nothing panics.
        count(Metric::StoreRetries);
        emit_for(Service::Order, Metric::RelayLag, 1.0, None);
    }
}
