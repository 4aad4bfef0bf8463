//! The user store port, and its adapters: in-memory and DynamoDB. Both pass the same
//! conformance suite (`conformance`, run by `tests/store_memory.rs` and
//! `tests/store_dynamodb.rs`).

use async_trait::async_trait;
use contract::Envelope;
use platform::dynamo::StoreError;
use platform::identity::Role;

use crate::domain::{Email, User};

pub mod dynamodb;
pub mod memory;

#[cfg(feature = "testing")]
pub mod conformance;

/// A new user with the hash of their password.
#[derive(Debug, Clone)]
pub struct Registration {
    pub user: User,
    pub password_hash: String,
}

/// What login needs, found by e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: String,
    pub email: Email,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores the user, claims their e-mail and writes `registered` to the outbox: all or
    /// nothing. Refuses an e-mail that is already claimed, under any concurrency.
    async fn register(
        &self,
        registration: Registration,
        registered: Envelope,
    ) -> Result<(), RegisterError>;

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError>;

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Gives the user this role. `false`: there is no such user (nothing written).
    async fn set_role(&self, user_id: &str, role: Role) -> Result<bool, StoreError>;
}
