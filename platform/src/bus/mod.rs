//! The in-memory SNS/SQS: one topic per service, one queue per consuming function, filter
//! policies on the `type` attribute, at-least-once delivery, visibility timeout, retries,
//! `maxReceiveCount` → dead-letter queue, partial batch failures.
//!
//! It runs two ways: freely on tokio ([`mapping`], the local system's event source
//! mappings), or one delivery at a time with a seeded random choice of what comes next
//! ([`stepping`], for the deterministic simulation).

pub mod mapping;
mod memory;
pub mod stepping;
mod topology;

pub use memory::{
    BusDeadLetters, BusError, BusPublisher, DeadLetter, Delivered, MemoryBus, QueueDepth,
};
pub use topology::{FilterPolicy, QueueSpec, Subscription, Topology, TopologyError};
