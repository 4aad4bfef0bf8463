//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "balance-api";
/// The consumer of the `balance-user-registered`, `balance-payment-requested` and
/// `balance-refund-requested` queues.
pub const EVENTS: &str = "balance-events";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, EVENTS];
