//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "product-api";
/// The consumer of the `product-order-created`, `product-order-confirmed` and
/// `product-order-undo` queues.
pub const EVENTS: &str = "product-events";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, EVENTS];
