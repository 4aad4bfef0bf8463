//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API.
pub const API: &str = "coupon-source-api";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API];
