//! The document store conformance suite against the in-memory adapter.

use std::sync::Arc;

use platform::docstore::conformance::Subject;
use platform::docstore::memory::MemoryDocStore;
use platform::outbox::MemoryOutbox;

async fn subject() -> Subject {
    let outbox = Arc::new(MemoryOutbox::new());
    Subject {
        store: Arc::new(MemoryDocStore::new(outbox.clone())),
        outbox: Box::new(outbox),
    }
}

platform::docstore_conformance!(subject());
