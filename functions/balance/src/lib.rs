//! The balance service: an account per user (opened on `UserRegistered` or the first charge),
//! charges with `Idempotency-Key`, a ledger, and payments deducted on `PaymentRequested` and
//! refunded on `PaymentRefundRequested` — each exactly once per payment.
//!
//! - `domain`: the rules (limits, the per-payment state machine) — pure.
//! - `repo`: keys and item shapes in the service's table.
//! - `app`: one handler per route and per consumed event.
//! - `api`: the HTTP adapter.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
pub mod repo;
