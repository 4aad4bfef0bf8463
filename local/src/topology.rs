//! The event topology of the local system: one topic per service, one queue per consuming
//! function with a filter policy on `type`. Consumers are added here with their services.

use contract::Service;
use platform::bus::Topology;

pub fn topology() -> Topology {
    Topology {
        topics: Service::ALL.iter().map(|s| s.name().to_owned()).collect(),
        queues: Vec::new(),
    }
}
