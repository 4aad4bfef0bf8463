//! The event contract: the envelope every event travels in, and the catalogue of every event
//! type with its typed payload. This crate is the only place an event is defined; services
//! depend on it and on nothing of each other.

mod catalogue;
mod envelope;
mod ids;
mod money;

pub use catalogue::*;
pub use envelope::{DecodeError, Envelope, EventMeta, SCHEMA_VERSION, Service, TraceContext};
pub use ids::{MAX_ID_LEN, is_valid_id};
pub use money::Won;
