use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Event, EventType};

/// The schema version written into every envelope this code produces.
pub const SCHEMA_VERSION: u32 = 1;

/// The seven services. Each owns one table and publishes on one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    User,
    Balance,
    Product,
    CouponSource,
    Coupon,
    Order,
    Payment,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::User,
        Service::Balance,
        Service::Product,
        Service::CouponSource,
        Service::Coupon,
        Service::Order,
        Service::Payment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::User => "user",
            Service::Balance => "balance",
            Service::Product => "product",
            Service::CouponSource => "coupon-source",
            Service::Coupon => "coupon",
            Service::Order => "order",
            Service::Payment => "payment",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who, when and why of one event; the payload and its type come from the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    /// The saga's id: the order id for everything an order causes.
    pub correlation_id: String,
    /// The event that caused this one; absent when an HTTP request did.
    pub causation_id: Option<String>,
}

/// Where an event stands in a distributed trace (X-Ray's model): the trace it belongs to and
/// the segment (hop) that made or last carried it. Optional in the envelope: an event written
/// before traces, or made outside any traced work, has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    /// X-Ray's form: `1-<8 hex digits of epoch seconds>-<24 hex digits>`.
    pub trace_id: String,
    /// The segment that made (or relayed) the event: 16 hex digits. The next hop names it
    /// as its parent.
    pub parent_id: String,
    /// Whether the trace is recorded on AWS (X-Ray's sampling decision, made where the trace
    /// started). Absent reads as sampled.
    #[serde(default = "sampled")]
    pub sampled: bool,
}

fn sampled() -> bool {
    true
}

/// The one envelope every event travels in: on SNS, SQS, in the outbox and in the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub event_id: String,
    pub source: Service,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub version: u32,
    /// The trace the event travels in, from the request that started the saga on.
    pub trace: Option<TraceContext>,
    pub event: Event,
}

/// Why a message could not be read as an event. Every variant makes the message a poison
/// message: retrying cannot help, so it goes to the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is not an event envelope: {0}")]
    Malformed(String),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("the payload of {event_type} does not parse: {reason}")]
    InvalidPayload { event_type: String, reason: String },
    #[error("{event_type} is produced by {expected}, but the envelope says {actual}")]
    WrongSource {
        event_type: String,
        expected: Service,
        actual: Service,
    },
}

/// The wire form. Unknown fields are ignored (forward compatible).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    source: Service,
    aggregate_id: String,
    occurred_at: DateTime<Utc>,
    correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<String>,
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace: Option<TraceContext>,
    payload: serde_json::Value,
}

/// The message attribute saying whether an order event concerns a coupon.
const HAS_COUPON: &str = "hasCoupon";

impl Envelope {
    /// Wraps an event. The source is the event's producer from the catalogue, so a service
    /// cannot publish an event that is not its own.
    pub fn new(meta: EventMeta, aggregate_id: impl Into<String>, event: impl Into<Event>) -> Self {
        let event = event.into();
        Envelope {
            event_id: meta.event_id,
            source: event.event_type().producer(),
            aggregate_id: aggregate_id.into(),
            occurred_at: meta.occurred_at,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            version: SCHEMA_VERSION,
            trace: None,
            event,
        }
    }

    /// The same event, travelling in `trace`.
    pub fn with_trace(self, trace: Option<TraceContext>) -> Self {
        Envelope { trace, ..self }
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    /// The SNS message attributes subscriptions filter on: `type` and `source`, and for the
    /// order events the coupon service undoes or acts on, `hasCoupon` (`"false"` only when
    /// the order surely had none, so an older producer's event still reaches the coupon
    /// service).
    pub fn message_attributes(&self) -> Vec<(&'static str, &'static str)> {
        let mut attributes = vec![
            ("type", self.event_type().name()),
            ("source", self.source.name()),
        ];
        let has_coupon = match &self.event {
            Event::OrderCreated(e) => Some(e.coupon_id.is_some()),
            Event::OrderFailed(e) => Some(e.has_coupon != Some(false)),
            Event::OrderCancelled(e) => Some(e.has_coupon != Some(false)),
            _ => None,
        };
        if let Some(has_coupon) = has_coupon {
            attributes.push((HAS_COUPON, if has_coupon { "true" } else { "false" }));
        }
        attributes
    }

    pub fn to_json(&self) -> String {
        // A Wire holds only strings, numbers and a JSON value: it always serialises.
        serde_json::to_string(&self.to_wire()).unwrap_or_default()
    }

    fn to_wire(&self) -> Wire {
        Wire {
            event_id: self.event_id.clone(),
            event_type: self.event_type().name().to_owned(),
            source: self.source,
            aggregate_id: self.aggregate_id.clone(),
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            version: self.version,
            trace: self.trace.clone(),
            payload: self.event.payload_json(),
        }
    }

    pub fn from_json(body: &str) -> Result<Envelope, DecodeError> {
        let wire: Wire =
            serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let event_type = EventType::from_name(&wire.event_type)
            .ok_or_else(|| DecodeError::UnknownType(wire.event_type.clone()))?;
        if wire.source != event_type.producer() {
            return Err(DecodeError::WrongSource {
                event_type: wire.event_type,
                expected: event_type.producer(),
                actual: wire.source,
            });
        }
        let event = Event::decode_payload(event_type, wire.payload).map_err(|e| {
            DecodeError::InvalidPayload {
                event_type: wire.event_type.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Envelope {
            event_id: wire.event_id,
            source: wire.source,
            aggregate_id: wire.aggregate_id,
            occurred_at: wire.occurred_at,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            version: wire.version,
            trace: wire.trace,
            event,
        })
    }
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}
