//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "order-api";
/// The saga's consumer (`OrderConsumer`) of the `order-catalogue` and `order-step-results`
/// queues.
pub const EVENTS: &str = "order-events";
/// The timeline's consumer (`TimelineConsumer`) of the `order-timeline` queue.
pub const TIMELINE: &str = "order-timeline";
/// The expiry sweep, on an EventBridge schedule.
pub const SWEEP: &str = "order-sweep";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, EVENTS, TIMELINE, SWEEP];
