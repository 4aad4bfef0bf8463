//! The platform every service stands on — what Powertools would be, for our Rust.
//!
//! Ports for time and ids; the outbox, idempotent consume, SQS batch processing and the
//! stream relay; publishing; the in-memory SNS/SQS bus; telemetry; HTTP error mapping;
//! rate limits.
//! Each concept lives here once.

pub mod batch;
pub mod bus;
pub mod clock;
pub mod config;
pub mod docstore;
pub mod dynamo;
pub mod errors;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod invocations;
pub mod lambda;
pub mod outbox;
pub mod ports;
pub mod publish;
pub mod relay;
pub mod sns;
pub mod telemetry;
pub mod throttle;

#[cfg(feature = "testing")]
pub mod testing;
