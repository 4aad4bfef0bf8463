//! Traces as AWS X-Ray has them: trace and segment ids, the `X-Amzn-Trace-Id` header, segment
//! documents, and where finished segments go — the X-Ray daemon over UDP on Lambda
//! ([`XRayDaemon`], when `AWS_XRAY_DAEMON_ADDRESS` is set), an in-memory collector locally
//! ([`MemoryTraces`], which prints one trace as text).
//!
//! A segment is one hop of a saga: an HTTP request served, a stream record relayed, a message
//! consumed. Each names the hop before it as its parent (from the header or from the event's
//! envelope), so one order's trace links every hop from the API to the last consumer. No
//! OpenTelemetry stack: the documents are small and sent directly, as X-Ray's own SDKs do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use contract::TraceContext;
use serde::Serialize;

use crate::config::Env;

/// A new trace id: `1-`, the time in epoch seconds as 8 hex digits, `-`, 96 random bits.
pub fn new_trace_id(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let random: u128 = rand::random::<u128>() >> 32;
    format!("1-{:08x}-{random:024x}", seconds as u32)
}

/// A new segment id: 64 random bits as 16 hex digits.
pub fn new_segment_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `id` is a trace id of X-Ray's form.
pub fn is_trace_id(id: &str) -> bool {
    let mut parts = id.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(random), None) if is_hex(time, 8) && is_hex(random, 24)
    )
}

pub fn is_segment_id(id: &str) -> bool {
    is_hex(id, 16)
}

/// What an `X-Amzn-Trace-Id` header says: the trace, maybe the hop before, maybe the sampling
/// decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: Option<String>,
    pub sampled: Option<bool>,
}

impl TraceHeader {
    /// `Root=1-…;Parent=…;Sampled=1` (in any order, other keys ignored); `None` unless the
    /// root is a well-formed trace id. A malformed parent is dropped.
    pub fn parse(value: &str) -> Option<TraceHeader> {
        let mut header = TraceHeader {
            root: String::new(),
            parent: None,
            sampled: None,
        };
        for part in value.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", root)) => header.root = root.to_owned(),
                Some(("Parent", parent)) if is_segment_id(parent) => {
                    header.parent = Some(parent.to_owned())
                }
                Some(("Sampled", "1")) => header.sampled = Some(true),
                Some(("Sampled", "0")) => header.sampled = Some(false),
                _ => {}
            }
        }
        is_trace_id(&header.root).then_some(header)
    }

    /// The header for the next hop after `trace`.
    pub fn of(trace: &TraceContext) -> String {
        format!(
            "Root={};Parent={};Sampled={}",
            trace.trace_id,
            trace.parent_id,
            u8::from(trace.sampled)
        )
    }
}

/// `http` of a segment: the request served and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Http {
    pub request: HttpRequest,
    pub response: HttpResponse,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResponse {
    pub status: u16,
}

/// One segment document, as X-Ray takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// The function that did the work.
    pub name: String,
    pub id: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Epoch seconds, to the microsecond.
    pub start_time: f64,
    pub end_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    /// A client error (4xx) or a message that will come back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    /// A server error (5xx) or a message sent to its dead-letter queue.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fault: bool,
    /// Indexed by X-Ray for filters: `operation`, `outcome`, `correlationId`, `eventId`,
    /// `requestId`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Whether the trace is recorded on AWS (not part of the document).
    #[serde(skip)]
    pub sampled: bool,
}

fn epoch_seconds(at: SystemTime) -> f64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Microseconds: X-Ray's precision, and exact in an f64 for centuries.
    since.as_micros() as f64 / 1e6
}

/// The first line of every datagram to the daemon.
const DAEMON_HEADER: &str = r#"{"format":"json","version":1}"#;
/// A UDP datagram's limit; a larger document is not sent.
const MAX_DATAGRAM: usize = 64 * 1024;

impl Segment {
    /// A segment of `name` starting now: the next hop of `parent`'s trace (`trace`: the trace
    /// and the hop before, as an envelope or a header carries them), or the first of a new
    /// trace.
    pub fn begin(name: &str, trace: Option<(&str, Option<&str>, bool)>) -> Segment {
        let now = SystemTime::now();
        let (trace_id, parent_id, sampled) = match trace {
            Some((trace_id, parent, sampled)) => {
                (trace_id.to_owned(), parent.map(str::to_owned), sampled)
            }
            None => (new_trace_id(now), None, true),
        };
        let start = epoch_seconds(now);
        Segment {
            name: name.to_owned(),
            id: new_segment_id(),
            trace_id,
            parent_id,
            start_time: start,
            end_time: start,
            http: None,
            error: false,
            fault: false,
            annotations: BTreeMap::new(),
            sampled,
        }
    }

    /// The next hop after `trace`, as an envelope carries it.
    pub fn after(name: &str, trace: Option<&TraceContext>) -> Segment {
        Segment::begin(
            name,
            trace.map(|t| (t.trace_id.as_str(), Some(t.parent_id.as_str()), t.sampled)),
        )
    }

    /// What work done in this segment passes on: its trace, with this segment as the parent.
    pub fn context(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            parent_id: self.id.clone(),
            sampled: self.sampled,
        }
    }

    pub fn annotate(&mut self, key: &str, value: impl Into<String>) {
        self.annotations.insert(key.to_owned(), value.into());
    }

    /// Ends it now.
    pub fn end(&mut self) {
        self.end_time = epoch_seconds(SystemTime::now()).max(self.start_time);
    }

    pub fn duration_ms(&self) -> f64 {
        (self.end_time - self.start_time) * 1000.0
    }

    /// The segment document (JSON).
    pub fn document(&self) -> String {
        // Strings and numbers only: it always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What is sent to the daemon: its header line, then the document.
    pub fn datagram(&self) -> Vec<u8> {
        format!("{DAEMON_HEADER}\n{}", self.document()).into_bytes()
    }
}

/// Where finished segments go, each handed over whole (the local collector keeps it).
pub trait SegmentSink: Send + Sync {
    fn record(&self, segment: Segment);
}

/// Lambda (with active tracing): sampled segments to the X-Ray daemon over UDP, at the
/// address Lambda gives in `AWS_XRAY_DAEMON_ADDRESS`.
pub struct XRayDaemon {
    socket: std::net::UdpSocket,
    address: std::net::SocketAddr,
}

impl XRayDaemon {
    /// `None` when the variable is unset or unusable (then no segment is sent; tracing is
    /// not worth failing a function for).
    pub fn from_env(env: &dyn Env) -> Option<XRayDaemon> {
        let address = daemon_udp_address(&env.var("AWS_XRAY_DAEMON_ADDRESS")?)?;
        let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(XRayDaemon { socket, address })
    }
}

/// The UDP address of `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or `tcp:… udp:host:port`.
fn daemon_udp_address(value: &str) -> Option<std::net::SocketAddr> {
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.parse().ok()
}

impl SegmentSink for XRayDaemon {
    fn record(&self, segment: Segment) {
        if !segment.sampled {
            return;
        }
        let datagram = segment.datagram();
        if datagram.len() > MAX_DATAGRAM {
            tracing::warn!(
                bytes = datagram.len(),
                "segment too large for the daemon; not sent"
            );
            return;
        }
        if let Err(e) = self.socket.send_to(&datagram, self.address) {
            tracing::debug!(error = %e, "segment not sent to the X-Ray daemon");
        }
    }
}

/// How many segments the local collector keeps (the oldest go first).
pub const KEPT_SEGMENTS: usize = 50_000;

/// The local system's collector: the latest segments, for `GET /traces/{id}`.
#[derive(Default)]
pub struct MemoryTraces {
    segments: Mutex<VecDeque<Segment>>,
}

impl MemoryTraces {
    pub fn new() -> Self {
        MemoryTraces::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Segment>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A trace's segments, in the order they started.
    pub fn trace(&self, trace_id: &str) -> Vec<Segment> {
        let mut segments: Vec<Segment> = self
            .lock()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        segments.sort_by(|a, b| a.start_time.total_cmp(&b.start_time));
        segments
    }

    /// The traces with a segment for `correlation_id` (an order's id), oldest first.
    pub fn traces_of(&self, correlation_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for segment in self.lock().iter() {
            if segment.annotations.get("correlationId").map(String::as_str) == Some(correlation_id)
                && !ids.contains(&segment.trace_id)
            {
                ids.push(segment.trace_id.clone());
            }
        }
        ids
    }

    /// The trace `id` as text, or every trace of the order (correlation id) `id`; `None` when
    /// none is kept.
    pub fn render(&self, id: &str) -> Option<String> {
        let ids = if is_trace_id(id) {
            vec![id.to_owned()]
        } else {
            self.traces_of(id)
        };
        let texts: Vec<String> = ids
            .iter()
            .map(|id| render(id, &self.trace(id)))
            .filter(|t| !t.is_empty())
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    }
}

impl SegmentSink for MemoryTraces {
    fn record(&self, segment: Segment) {
        let mut segments = self.lock();
        if segments.len() >= KEPT_SEGMENTS {
            segments.pop_front();
        }
        segments.push_back(segment);
    }
}

/// One trace as text: a line per hop in the order they started, indented under its parent,
/// with its start (from the trace's first), its duration, what it did, and its id and parent.
pub fn render(trace_id: &str, segments: &[Segment]) -> String {
    let Some(first) = segments.first() else {
        return String::new();
    };
    let by_id: HashMap<&str, &Segment> = segments.iter().map(|s| (s.id.as_str(), s)).collect();
    let depth = |segment: &Segment| {
        let mut depth = 0;
        let mut at = segment;
        while let Some(parent) = at.parent_id.as_deref().and_then(|p| by_id.get(p)) {
            depth += 1;
            at = parent;
            if depth > segments.len() {
                break;
            }
        }
        depth
    };
    let end = segments
        .iter()
        .map(|s| s.end_time)
        .fold(first.start_time, f64::max);
    let mut text = format!(
        "trace {trace_id}: {} segments over {:.1} ms\n",
        segments.len(),
        (end - first.start_time) * 1000.0
    );
    for segment in segments {
        let what = segment
            .annotations
            .get("operation")
            .map_or("", String::as_str);
        let outcome = match (&segment.http, segment.annotations.get("outcome")) {
            (Some(http), _) => format!(" → {}", http.response.status),
            (None, Some(outcome)) => format!(" → {outcome}"),
            (None, None) => String::new(),
        };
        let label = format!(
            "{}{}  {what}{outcome}",
            "  ".repeat(depth(segment)),
            segment.name
        );
        let _ = writeln!(
            text,
            "{:>9.1} ms {:>8.1} ms  {label:<72} id {} parent {}",
            (segment.start_time - first.start_time) * 1000.0,
            segment.duration_ms(),
            segment.id,
            segment.parent_id.as_deref().unwrap_or("-"),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> Segment {
        Segment {
            name: "order-api".into(),
            id: "70de5b6f19ff9a0a".into(),
            trace_id: "1-581cf771-a006649127e371903a2de979".into(),
            parent_id: Some("53995c3f42cd8ad8".into()),
            start_time: 1_478_293_361.271,
            end_time: 1_478_293_361.449,
            http: Some(Http {
                request: HttpRequest {
                    method: "POST".into(),
                    url: "/orders".into(),
                },
                response: HttpResponse { status: 201 },
            }),
            error: false,
            fault: false,
            annotations: BTreeMap::from([
                ("operation".to_owned(), "POST /orders".to_owned()),
                ("correlationId".to_owned(), "o-1".to_owned()),
            ]),
            sampled: true,
        }
    }

    #[test]
    fn the_datagram_is_the_daemon_header_and_the_segment_document() {
        let bytes = segment().datagram();
        let text = String::from_utf8(bytes).unwrap();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        let document: serde_json::Value = serde_json::from_str(document).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "name": "order-api",
                "id": "70de5b6f19ff9a0a",
                "trace_id": "1-581cf771-a006649127e371903a2de979",
                "parent_id": "53995c3f42cd8ad8",
                "start_time": 1_478_293_361.271,
                "end_time": 1_478_293_361.449,
                "http": {"request": {"method": "POST", "url": "/orders"}, "response": {"status": 201}},
                "annotations": {"correlationId": "o-1", "operation": "POST /orders"},
            })
        );
        // A failure says so; a root segment has no parent.
        let failed = Segment {
            fault: true,
            parent_id: None,
            http: None,
            ..segment()
        };
        let document: serde_json::Value = serde_json::from_str(&failed.document()).unwrap();
        assert_eq!(document["fault"], true);
        assert!(document.get("parent_id").is_none() && document.get("error").is_none());
    }

    #[test]
    fn ids_have_x_rays_shapes() {
        let trace = new_trace_id(UNIX_EPOCH + std::time::Duration::from_secs(0x6761_a2b0));
        assert!(is_trace_id(&trace), "{trace}");
        assert!(trace.starts_with("1-6761a2b0-"), "{trace}");
        assert_ne!(trace, new_trace_id(SystemTime::now()));
        assert!(is_segment_id(&new_segment_id()));
        for bad in [
            "",
            "1-6761a2b0",
            "2-6761a2b0-0123456789abcdef01234567",
            "1-xyz-1",
        ] {
            assert!(!is_trace_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_trace_header_is_read_leniently_and_written_whole() {
        let header =
            TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1")
                .unwrap();
        assert_eq!(header.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(header.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert_eq!(header.sampled, Some(true));
        let root_only = TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!((root_only.parent, root_only.sampled), (None, None));
        assert_eq!(
            TraceHeader::parse("Root=nonsense;Parent=53995c3f42cd8ad8"),
            None
        );
        let trace = TraceContext {
            trace_id: "1-5759e988-bd862e3fe1be46a994272793".into(),
            parent_id: "53995c3f42cd8ad8".into(),
            sampled: false,
        };
        assert_eq!(
            TraceHeader::of(&trace),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        );
    }

    #[test]
    fn a_segment_continues_the_trace_it_is_given_and_passes_itself_on_as_parent() {
        let first = Segment::begin("order-api", None);
        assert!(is_trace_id(&first.trace_id) && first.parent_id.is_none());
        let next = Segment::after("order-relay", Some(&first.context()));
        assert_eq!(next.trace_id, first.trace_id);
        assert_eq!(next.parent_id.as_deref(), Some(first.id.as_str()));
        assert_ne!(next.id, first.id);
    }

    #[test]
    fn the_daemon_address_is_lambdas_either_form() {
        assert_eq!(
            daemon_udp_address("169.254.79.129:2000"),
            "169.254.79.129:2000".parse().ok()
        );
        assert_eq!(
            daemon_udp_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            "127.0.0.2:2001".parse().ok()
        );
        assert_eq!(daemon_udp_address("not an address"), None);
    }

    #[test]
    fn a_trace_reads_as_its_hops_in_time_order_under_their_parents() {
        let traces = MemoryTraces::new();
        let api = segment();
        let mut relay = Segment {
            name: "order-relay".into(),
            id: "1111111111111111".into(),
            parent_id: Some(api.id.clone()),
            start_time: api.end_time + 0.002,
            end_time: api.end_time + 0.003,
            http: None,
            ..segment()
        };
        relay.annotate("operation", "OrderCreated");
        relay.annotate("outcome", "published");
        traces.record(relay);
        traces.record(api.clone());
        let text = traces.render(&api.trace_id).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("trace 1-581cf771-a006649127e371903a2de979: 2 segments"));
        assert!(lines[1].contains("order-api  POST /orders → 201"), "{text}");
        assert!(
            lines[2].contains("  order-relay  OrderCreated → published"),
            "{text}"
        );
        assert!(lines[2].contains("parent 70de5b6f19ff9a0a"), "{text}");
        // By the order's id too.
        assert_eq!(traces.render("o-1"), Some(text));
        assert_eq!(traces.render("o-2"), None);
    }
}
