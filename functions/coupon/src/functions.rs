//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "coupon-api";
/// The consumer of the `coupon-coupon-issued`, `coupon-order-created` and
/// `coupon-order-undo` queues.
pub const EVENTS: &str = "coupon-events";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, EVENTS];
