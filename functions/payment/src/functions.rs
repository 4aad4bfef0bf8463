//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "payment-api";
/// The consumer of the `payment-order-created`, `payment-balance-answers` and
/// `payment-order-undo` queues.
pub const EVENTS: &str = "payment-events";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, EVENTS];
