//! The order service: orders priced from its own copies of prices and coupons, the saga's
//! state machine (PENDING → CONFIRMED | FAILING → FAILED | CANCELLING → CANCELLED), cancel,
//! the expiry sweep, and each order's timeline.
//!
//! - `domain`: the state machine, pricing, validation — pure.
//! - `repo`: keys and item shapes.
//! - `app`: handlers for routes, consumed events and the sweep.
//! - `api`: the HTTP adapter.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
pub mod repo;
