//! The id port. Production ids are random UUIDs; tests and the simulation use a sequence so
//! that the same seed gives the same ids.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait IdGenerator: Send + Sync {
    fn next_id(&self) -> String;
}

/// Random version-4 UUIDs.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn next_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// `prefix-1`, `prefix-2`, …: deterministic and readable in test failures.
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new(prefix: impl Into<String>) -> Self {
        SequentialIds {
            prefix: prefix.into(),
            next: AtomicU64::new(1),
        }
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }
}
