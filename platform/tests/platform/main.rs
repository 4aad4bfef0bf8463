//! The platform's own tests: the in-memory bus and batch processing, the document store's
//! conformance suite in memory, the HTTP edge, the relay. One test binary.

mod bus;
mod docstore_memory;
mod http;
mod relay;
