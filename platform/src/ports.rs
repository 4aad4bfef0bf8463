//! What every service's application layer is given: its store, and the clock and id ports
//! (through which events get their ids and times).

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::clock::Clock;
use crate::docstore::DocStore;
use crate::events::EventFactory;
use crate::ids::IdGenerator;

#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn DocStore>,
    pub events: EventFactory,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl Ports {
    pub fn new(
        store: Arc<dyn DocStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Ports {
        Ports {
            store,
            events: EventFactory::new(ids.clone(), clock.clone()),
            clock,
            ids,
        }
    }
}

/// A time as a fixed-width RFC 3339 string (nanoseconds, `Z`), so that sort keys made of
/// times sort in time order.
pub fn sortable_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A time as the API shows it: RFC 3339 UTC, milliseconds.
pub fn api_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
