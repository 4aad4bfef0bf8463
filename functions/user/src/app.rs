//! The user service's application handlers: one per route, over the store port.

use std::sync::Arc;

use contract::UserRegistered;
use platform::clock::Clock;
use platform::dynamo::StoreError;
use platform::events::{Cause, EventFactory};
use platform::identity::{Identity, Role};
use platform::ids::IdGenerator;

use crate::auth::{IssuedToken, Passwords, TokenCodec};
use crate::config::UserConfig;
use crate::domain::{AdminEmails, Email, Password, User, UserName, ValidationError};
use crate::store::{RegisterError, Registration, UserStore};

/// Everything the handlers need, wired once per process.
pub struct UserService {
    pub store: Arc<dyn UserStore>,
    pub tokens: TokenCodec,
    pub admins: AdminEmails,
    pub passwords: Passwords,
    pub events: EventFactory,
    pub ids: Arc<dyn IdGenerator>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer for an unknown e-mail and a wrong password.
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user: User,
    pub role: Role,
}

impl UserService {
    pub fn new(
        store: Arc<dyn UserStore>,
        config: UserConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        UserService {
            store,
            tokens: TokenCodec::new(&config.jwt_secret, config.token_ttl, clock.clone()),
            admins: config.admin_emails,
            passwords: Passwords::default(),
            events: EventFactory::new(ids.clone(), clock.clone()),
            ids,
            clock,
        }
    }

    /// Registers a user; `UserRegistered` is written with them. Returns the new user's id.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<String, SignUpError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let name = UserName::parse(name)?;
        let password_hash = self
            .passwords
            .hash(password)
            .await
            .map_err(|e| SignUpError::Internal(e.to_string()))?;
        let user = User {
            user_id: self.ids.next_id(),
            email,
            name,
            created_at: self.clock.now(),
        };
        let registered = self.events.envelope(
            Cause::Request {
                correlation_id: &user.user_id,
            },
            &user.user_id,
            UserRegistered {
                user_id: user.user_id.clone(),
                email: user.email.as_str().to_owned(),
                name: user.name.as_str().to_owned(),
            },
        );
        let user_id = user.user_id.clone();
        match self
            .store
            .register(
                Registration {
                    user,
                    password_hash,
                },
                registered,
            )
            .await
        {
            Ok(()) => Ok(user_id),
            Err(RegisterError::EmailTaken) => Err(SignUpError::EmailTaken),
            Err(RegisterError::Store(e)) => Err(SignUpError::Internal(e.to_string())),
        }
    }

    /// Checks the password and issues a token whose role comes from `ADMIN_EMAILS`.
    pub async fn log_in(&self, email: &str, password: &str) -> Result<IssuedToken, LoginError> {
        // Nothing over the sign-up limit can be a password; refuse it without hashing.
        if password.chars().count() > Password::MAX_CHARS {
            return Err(LoginError::InvalidCredentials);
        }
        let Ok(email) = Email::parse(email) else {
            return Err(LoginError::InvalidCredentials);
        };
        let credentials = self
            .store
            .credentials(&email)
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        let Some(credentials) = credentials else {
            self.passwords.verify_decoy(password.to_owned()).await;
            return Err(LoginError::InvalidCredentials);
        };
        if !self
            .passwords
            .verify(password.to_owned(), credentials.password_hash)
            .await
        {
            return Err(LoginError::InvalidCredentials);
        }
        let role = self.admins.role_of(&email);
        self.tokens
            .issue(&credentials.user_id, role)
            .map_err(|e| LoginError::Internal(e.to_string()))
    }

    /// Any user's profile, for administrators; the role is what `ADMIN_EMAILS` says now.
    pub async fn profile_of(&self, user_id: &str) -> Result<Profile, ProfileError> {
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or(ProfileError::NotFound)?;
        let role = self.admins.role_of(&user.email);
        Ok(Profile { user, role })
    }

    /// The caller's profile; the role is the one their token carries.
    pub async fn profile(&self, identity: &Identity) -> Result<Profile, ProfileError> {
        let user = self
            .store
            .user(&identity.user_id)
            .await?
            .ok_or(ProfileError::NotFound)?;
        Ok(Profile {
            user,
            role: identity.role,
        })
    }
}
