//! The in-memory user store: the local system's, the simulation's and the tests'.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use contract::Envelope;
use platform::dynamo::StoreError;
use platform::identity::Role;
use platform::outbox::MemoryOutbox;

use super::{Credentials, RegisterError, Registration, UserStore};
use crate::domain::{Email, User};

#[derive(Default)]
struct Tables {
    users: HashMap<String, User>,
    credentials: HashMap<Email, Credentials>,
}

pub struct MemoryUserStore {
    tables: Mutex<Tables>,
    outbox: Arc<MemoryOutbox>,
}

impl MemoryUserStore {
    pub fn new(outbox: Arc<MemoryOutbox>) -> Self {
        MemoryUserStore {
            tables: Mutex::new(Tables::default()),
            outbox,
        }
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn register(
        &self,
        registration: Registration,
        registered: Envelope,
    ) -> Result<(), RegisterError> {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let user = registration.user;
        if tables.credentials.contains_key(&user.email) {
            return Err(RegisterError::EmailTaken);
        }
        if tables.users.contains_key(&user.user_id) {
            return Err(StoreError::Unavailable(format!(
                "user id {} already exists",
                user.user_id
            ))
            .into());
        }
        let credentials = Credentials {
            user_id: user.user_id.clone(),
            email: user.email.clone(),
            password_hash: registration.password_hash,
        };
        tables.credentials.insert(user.email.clone(), credentials);
        tables.users.insert(user.user_id.clone(), user);
        // Under the same lock: the event exists if and only if the user does.
        self.outbox.append([registered]);
        Ok(())
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        Ok(self
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .credentials
            .get(email)
            .cloned())
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .users
            .get(user_id)
            .cloned())
    }

    async fn set_role(&self, user_id: &str, role: Role) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match tables.users.get_mut(user_id) {
            Some(user) => {
                user.role = role;
                true
            }
            None => false,
        })
    }
}
