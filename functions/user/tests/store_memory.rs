//! The user store conformance suite against the in-memory adapter.

use std::sync::Arc;

use platform::outbox::MemoryOutbox;
use user_service::store::conformance::Subject;
use user_service::store::memory::MemoryUserStore;

async fn subject() -> Subject {
    let outbox = Arc::new(MemoryOutbox::new());
    Subject {
        store: Arc::new(MemoryUserStore::new(outbox.clone())),
        outbox: Box::new(outbox),
    }
}

user_service::user_store_conformance!(subject());
