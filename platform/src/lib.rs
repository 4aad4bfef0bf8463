//! The platform every service stands on — what Powertools would be, for our Rust.
//!
//! Ports for time and ids; the outbox, idempotent consume, SQS batch processing and the
//! stream relay; publishing; the in-memory SNS/SQS bus; telemetry (logs, metrics in
//! CloudWatch's embedded format, X-Ray traces); HTTP error mapping; rate limits.
//! Each concept lives here once.
//!
//! The core needs no AWS SDK; the modules and items marked "feature `aws`" are the AWS
//! part (DynamoDB, SNS and SQS adapters, Lambda entry points). A service's domain and app
//! depend on the core only: `cargo test -p <service> --no-default-features` builds them
//! without the SDK.

pub mod batch;
pub mod bus;
pub mod clock;
pub mod config;
pub mod docstore;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod errors;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod invocations;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod packing;
pub mod ports;
pub mod publish;
pub mod relay;
#[cfg(feature = "aws")]
pub mod sns;
pub mod telemetry;
pub mod throttle;
pub mod xray;

#[cfg(feature = "testing")]
pub mod testing;
