//! Telemetry: logs, and where an invocation's metrics and trace segments go.
//!
//! Logs are JSON lines (level from `RUST_LOG`, default `info`). A line logged while a request
//! or an event is handled carries its span: `function`, `requestId` (the invocation's: Lambda's
//! request id, or one made locally), `traceId`, `correlationId`, and the request's `method`,
//! `route`, `status` and `latency_ms`, or the event's `type`, `eventId` and `messageId`.
//!
//! Every invocation runs in a [`Scope`]: the function, the service it serves, the invocation's
//! request id, where its metrics and segments go ([`Sinks`]) and the trace segments open now,
//! so that code deep inside (a commit's retries, an order's outcome, an event being made)
//! reaches them without being handed them. The Lambda entry points (`platform::lambda`) set it
//! per invocation; locally the meter of each function does (`invocations::Meter`). Outside any
//! scope (unit tests, the simulation) metrics and segments go nowhere and no trace is made up.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use contract::{Envelope, Service, TraceContext};
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::Env;
use crate::metrics::{EmfStdout, MetricSink};
use crate::xray::{Segment, SegmentSink, XRayDaemon};

/// Where log lines go.
#[derive(Debug, Clone, Copy)]
pub enum LogTarget {
    /// Lambda: stdout, which CloudWatch Logs collects.
    Stdout,
    /// The local system: stderr, so stdout stays for what the program tells its user.
    Stderr,
}

/// Installs the JSON subscriber (level from `RUST_LOG`, default `info`). A second call
/// does nothing.
pub fn init(target: LogTarget) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    let _ = match target {
        LogTarget::Stdout => builder.with_writer(std::io::stdout).try_init(),
        LogTarget::Stderr => builder.with_writer(std::io::stderr).try_init(),
    };
}

/// Where metrics and finished trace segments go (nowhere, by default).
#[derive(Clone, Default)]
pub struct Sinks {
    pub metrics: Option<Arc<dyn MetricSink>>,
    pub segments: Option<Arc<dyn SegmentSink>>,
}

impl Sinks {
    /// Lambda's: metrics as EMF lines on stdout (`METRICS_NAMESPACE`), segments to the X-Ray
    /// daemon when `AWS_XRAY_DAEMON_ADDRESS` is set (active tracing).
    pub fn from_env(env: &dyn Env) -> Sinks {
        Sinks {
            metrics: Some(Arc::new(EmfStdout::from_env(env))),
            segments: XRayDaemon::from_env(env).map(|d| Arc::new(d) as Arc<dyn SegmentSink>),
        }
    }
}

/// A trace segment open now, and the event it handles (none: a request's, a schedule's).
#[derive(Clone)]
struct Open {
    event_id: Option<String>,
    trace: TraceContext,
}

/// The invocation running now, as telemetry needs it.
#[derive(Clone)]
pub struct Scope {
    function: Arc<str>,
    service: Option<Service>,
    request_id: Arc<str>,
    sinks: Sinks,
    open: Arc<[Open]>,
    /// The saga a request served now started or continued (see [`correlated`]).
    saga: Arc<OnceLock<String>>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// A new request id, as Lambda and API Gateway make them.
fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Scope {
    /// An invocation of `function` (serving `service`), with a new request id.
    pub fn new(function: &str, service: Option<Service>, sinks: Sinks) -> Scope {
        Scope {
            function: function.into(),
            service,
            request_id: new_request_id().into(),
            sinks,
            open: Arc::new([]),
            saga: Arc::default(),
        }
    }

    /// The scope of the invocation running now, if any.
    pub fn current() -> Option<Scope> {
        Scope::with(Scope::clone)
    }

    /// What `read` finds in the scope of the invocation running now, read where it is, not
    /// copied (`None` outside any scope). Meanwhile that scope is borrowed: `read` cannot
    /// enter another.
    pub fn with<R>(read: impl FnOnce(&Scope) -> R) -> Option<R> {
        SCOPE.try_with(read).ok()
    }

    /// Runs `work` in this scope.
    pub async fn run<F: Future>(self, work: F) -> F::Output {
        SCOPE.scope(self, work).await
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    pub fn service(&self) -> Option<Service> {
        self.service
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    /// The same invocation under the request id Lambda (or API Gateway) gave it.
    pub fn with_request_id(mut self, request_id: &str) -> Scope {
        self.request_id = request_id.into();
        self
    }

    /// `function` of `service` running inside this invocation (locally, an API's routes
    /// inside the gateway's request): its request id, sinks and open segments stay.
    pub fn as_function(&self, function: &str, service: Option<Service>) -> Scope {
        Scope {
            function: function.into(),
            service,
            ..self.clone()
        }
    }

    /// With `segment` open for the request (or schedule) being served.
    pub fn serving(mut self, segment: &Segment) -> Scope {
        self.saga = Arc::default();
        self.handling([(None, segment)])
    }

    /// The saga the request being served started or continued, if it did.
    pub fn saga(&self) -> Option<&str> {
        self.saga.get().map(String::as_str)
    }

    /// With a segment open per event being handled: what is done for one of them belongs
    /// to its segment.
    pub fn handling<'a>(
        mut self,
        segments: impl IntoIterator<Item = (Option<&'a str>, &'a Segment)>,
    ) -> Scope {
        self.open = segments
            .into_iter()
            .map(|(event_id, segment)| Open {
                event_id: event_id.map(str::to_owned),
                trace: segment.context(),
            })
            .collect();
        self
    }

    /// Sends a finished segment where this invocation's go.
    pub fn record(&self, segment: Segment) {
        if let Some(sink) = &self.sinks.segments {
            sink.record(segment);
        }
    }
}

/// Runs `work` as a hop that starts a trace of its own (a scheduled run: nothing carried a
/// trace to it), so the events it makes are traced from it.
pub async fn in_new_trace<F: Future>(operation: &str, work: F) -> F::Output {
    let scope = Scope::current().unwrap_or_else(|| Scope::new("schedule", None, Sinks::default()));
    let mut segment = Segment::begin(scope.function(), None);
    segment.annotate("operation", operation);
    segment.annotate("requestId", scope.request_id());
    let output = scope.clone().serving(&segment).run(work).await;
    segment.end();
    scope.record(segment);
    output
}

/// The request served now starts or continues the saga `correlation_id`: its log lines name
/// it from here on (the span's `correlationId`), and so does its segment.
pub fn correlated(correlation_id: &str) {
    Span::current().record("correlationId", correlation_id);
    Scope::with(|scope| {
        // Set once per request served: the first saga named stays.
        let _ = scope.saga.set(correlation_id.to_owned());
    });
}

/// The trace an event made now travels in. Made because of `cause`: the segment handling that
/// event, or else the trace the cause came in. Made for a request (or a schedule): the
/// segment serving it. `None` outside traced work.
pub fn trace_for(cause: Option<&Envelope>) -> Option<TraceContext> {
    let wanted = cause.map(|e| e.event_id.as_str());
    Scope::with(|scope| {
        let open = scope.open.iter().find(|o| o.event_id.as_deref() == wanted);
        open.map(|o| o.trace.clone())
    })
    .flatten()
    .or_else(|| cause.and_then(|e| e.trace.clone()))
}

/// The span for handling (or relaying) one event in one function; `message_id`: the SQS
/// message it came in, when it came in one.
pub fn event_span(
    scope: &Scope,
    message_id: Option<&str>,
    trace_id: &str,
    event: &Envelope,
) -> Span {
    let span = tracing::info_span!(
        "event",
        function = scope.function(),
        requestId = scope.request_id(),
        traceId = trace_id,
        correlationId = %event.correlation_id,
        eventId = %event.event_id,
        messageId = tracing::field::Empty,
        r#type = event.event_type().name(),
    );
    if let Some(id) = message_id {
        span.record("messageId", id);
    }
    span
}

/// The span for a long-running function, e.g. a relay: its log lines carry its name.
pub fn function_span(function: &str) -> Span {
    tracing::info_span!("function", function)
}

/// The span for one HTTP request served by one function. `correlationId` starts as the
/// request's id and becomes the saga's when the request starts or continues one (the event
/// factory records it); `route`, `status` and `latency_ms` are recorded as they are known.
pub fn request_span(scope: &Scope, trace_id: &str, method: &str) -> Span {
    tracing::info_span!(
        "request",
        function = scope.function(),
        requestId = scope.request_id(),
        traceId = trace_id,
        correlationId = scope.request_id(),
        method,
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MemoryMetrics, Metric};
    use contract::EventMeta;

    fn event(id: &str, trace: Option<TraceContext>) -> Envelope {
        let meta = EventMeta {
            event_id: id.into(),
            occurred_at: chrono::Utc::now(),
            correlation_id: "o-1".into(),
            causation_id: None,
        };
        let payload = contract::StockReserved {
            order_id: "o-1".into(),
        };
        Envelope::new(meta, "o-1", payload).with_trace(trace)
    }

    #[tokio::test]
    async fn an_event_made_inside_a_segment_names_it_as_parent() {
        let request = Segment::begin("order-api", None);
        let scope = Scope::new("order-api", Some(Service::Order), Sinks::default());
        let made = scope
            .clone()
            .serving(&request)
            .run(async { trace_for(None) })
            .await;
        assert_eq!(made, Some(request.context()));
        // Handling events: each one's consequences belong to its own segment.
        let carried = Segment::begin("order-relay", None).context();
        let (a, b) = (event("e-a", Some(carried.clone())), event("e-b", None));
        let (for_a, for_b) = (
            Segment::after("f", a.trace.as_ref()),
            Segment::after("f", None),
        );
        let scope = scope.handling([(Some("e-a"), &for_a), (Some("e-b"), &for_b)]);
        let (ta, tb) = scope
            .run(async { (trace_for(Some(&a)), trace_for(Some(&b))) })
            .await;
        assert_eq!(ta, Some(for_a.context()));
        assert_eq!(ta.map(|t| t.trace_id), Some(carried.trace_id.clone()));
        assert_eq!(tb, Some(for_b.context()));
        // Outside any scope an event keeps its cause's trace, and a request's has none.
        assert_eq!(trace_for(Some(&a)), Some(carried));
        assert_eq!(trace_for(None), None);
    }

    #[tokio::test]
    async fn metrics_go_to_the_scopes_sink_under_its_service() {
        let metrics = Arc::new(MemoryMetrics::new());
        let sinks = Sinks {
            metrics: Some(metrics.clone()),
            segments: None,
        };
        let scope = Scope::new("order-events", Some(Service::Order), sinks);
        scope
            .clone()
            .run(async {
                crate::metrics::count(Metric::StoreRetries);
                crate::metrics::emit(Metric::OrdersFailed, 1.0, Some("EXPIRED"));
            })
            .await;
        // A scope serving no one service counts nothing of its own.
        scope
            .as_function("gateway", None)
            .run(async { crate::metrics::count(Metric::StoreRetries) })
            .await;
        assert_eq!(
            metrics
                .total(Metric::StoreRetries, Service::Order, None)
                .count,
            1
        );
        let failed = metrics.total(Metric::OrdersFailed, Service::Order, Some("EXPIRED"));
        assert_eq!(failed.count, 1);
    }
}
