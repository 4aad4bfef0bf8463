//! The product service: the catalogue (admin register, price and stock changes), stock
//! reserved all or nothing on `OrderCreated` and released on `OrderFailed`/`OrderCancelled`
//! (with a tombstone when the release comes first), and daily sales statistics with the
//! best-seller ranking, counted on `OrderConfirmed` and taken back out when a confirmed
//! order is cancelled.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
pub mod repo;
