//! Making envelopes: ids and times come from the ports, correlation from what caused the event,
//! the trace from the work making it (`telemetry::trace_for`).

use std::sync::Arc;

use contract::{Envelope, Event, EventMeta};

use crate::clock::Clock;
use crate::ids::IdGenerator;
use crate::telemetry;

/// What an event is caused by: an HTTP request starting (or continuing) a saga, or an event.
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    /// A request; the correlation id is the saga's id (e.g. the new order's id).
    Request { correlation_id: &'a str },
    /// Another event: the new one inherits its correlation id and names it as its cause.
    Event(&'a Envelope),
}

#[derive(Clone)]
pub struct EventFactory {
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
}

impl EventFactory {
    pub fn new(ids: Arc<dyn IdGenerator>, clock: Arc<dyn Clock>) -> Self {
        EventFactory { ids, clock }
    }

    pub fn envelope(
        &self,
        cause: Cause<'_>,
        aggregate_id: impl Into<String>,
        event: impl Into<Event>,
    ) -> Envelope {
        let (correlation_id, causation_id, trace) = match cause {
            Cause::Request { correlation_id } => {
                telemetry::correlated(correlation_id);
                (correlation_id.to_owned(), None, telemetry::trace_for(None))
            }
            Cause::Event(e) => (
                e.correlation_id.clone(),
                Some(e.event_id.clone()),
                telemetry::trace_for(Some(e)),
            ),
        };
        let meta = EventMeta {
            event_id: self.ids.next_id(),
            occurred_at: self.clock.now(),
            correlation_id,
            causation_id,
        };
        Envelope::new(meta, aggregate_id, event).with_trace(trace)
    }
}
