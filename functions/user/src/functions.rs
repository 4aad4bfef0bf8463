//! The handler names template.yaml's functions name in their `HANDLER` variable: which
//! of this service's handlers each function runs.

/// The HTTP API (the `user` binary).
pub const API: &str = "user-api";
/// The HTTP API's authorizer, in front of every service's routes (its own binary,
/// `user-authorizer`).
pub const AUTHORIZER: &str = "user-authorizer";

/// Every handler above.
pub const HANDLERS: &[&str] = &[API, AUTHORIZER];
