//! The user service's application handlers: one per route, over the store port.

use std::sync::Arc;

use contract::UserRegistered;
use platform::clock::Clock;
use platform::docstore::{CommitError, ConflictAt, Decision, DocStore, commit_with_retries};
use platform::errors::{BoxError, StoreError};
use platform::events::{Cause, EventFactory};
use platform::identity::{Identity, Role};
use platform::ids::IdGenerator;
use platform::throttle::{Throttle, Throttled};

use crate::auth::{IssuedToken, Passwords, TokenCodec};
use crate::config::{UserConfig, UserLimits};
use crate::domain::{
    Email, Password, RoleChangeError, User, UserName, ValidationError, decide_role_change,
};
use crate::repo;

/// Everything the handlers need, wired once per process.
pub struct UserService {
    /// The user table: profiles, e-mail claims, the throttle's counters, the outbox.
    pub store: Arc<dyn DocStore>,
    pub tokens: TokenCodec,
    pub throttle: Throttle,
    pub limits: UserLimits,
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
    #[error("too many sign-ups from this address")]
    Throttled(Throttled),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken dependency (hashing, signing): the cause goes to the log.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer for an unknown e-mail and a wrong password.
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    /// Too many failures for this account or from this address; the same for unknown
    /// accounts.
    #[error("too many failed logins; try again later")]
    Throttled(Throttled),
    /// The store failed or was contended (503 `CONTENDED` for the latter).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken dependency (hashing, signing): the cause goes to the log.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// The throttle scopes of the user table.
const LOGIN_ACCOUNT_MINUTE: &str = "login-account-minute";
const LOGIN_ACCOUNT_HOUR: &str = "login-account-hour";
const LOGIN_CLIENT: &str = "login-client";
const SIGNUP_CLIENT: &str = "signup-client";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] RoleChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UserService {
    pub fn new(
        store: Arc<dyn DocStore>,
        config: UserConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        UserService {
            throttle: Throttle::new(store.clone(), clock.clone()),
            store,
            tokens: TokenCodec::new(&config.keys, config.token_ttl, clock.clone()),
            limits: config.limits,
            passwords: Passwords::default(),
            events: EventFactory::new(ids.clone(), clock.clone()),
            ids,
            clock,
        }
    }

    /// Registers a user; `UserRegistered` is written with them. Returns the new user's id.
    /// Every attempt from `client` counts against its sign-up limit.
    pub async fn sign_up(
        &self,
        client: &str,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<String, SignUpError> {
        let limit = self.limits.signups_per_client_per_hour;
        if let Err(throttled) = self.throttle.hit(SIGNUP_CLIENT, client, limit).await? {
            return Err(SignUpError::Throttled(throttled));
        }
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let name = UserName::parse(name)?;
        let password_hash = self
            .passwords
            .hash(password)
            .await
            .map_err(|e| SignUpError::Internal(e.into()))?;
        let user = User {
            user_id: self.ids.next_id(),
            email,
            name,
            role: Role::Customer,
            created_at: self.clock.now(),
        };
        let registered = self.events.envelope(
            Cause::Request {
                correlation_id: &user.user_id,
            },
            &user.user_id,
            UserRegistered {
                user_id: user.user_id.clone(),
            },
        );
        let commit = repo::sign_up(&user, password_hash, registered)?;
        match self.store.commit(commit).await {
            Ok(()) => Ok(user.user_id),
            Err(CommitError::Conflict(ConflictAt::Write(repo::SIGN_UP_EMAIL_WRITE))) => {
                Err(SignUpError::EmailTaken)
            }
            Err(CommitError::Conflict(at)) => Err(SignUpError::Internal(
                format!(
                    "sign-up conflicts at {at:?}: the new user id {} is taken",
                    user.user_id
                )
                .into(),
            )),
            Err(CommitError::Store(e)) => Err(SignUpError::Store(e)),
        }
    }

    /// Checks the password and issues a token with the role stored with the user. Refused
    /// (429) while the e-mail address tried or `client` is over its failure limits.
    pub async fn log_in(
        &self,
        client: &str,
        email: &str,
        password: &str,
    ) -> Result<IssuedToken, LoginError> {
        // Anything that is not an address counts against the raw text, so it is limited too.
        let parsed = Email::parse(email).ok();
        let account = parsed.as_ref().map_or(email, Email::as_str);
        let account: String = account.chars().take(Email::MAX_LEN).collect();
        let limits = [
            (
                LOGIN_ACCOUNT_MINUTE,
                account.as_str(),
                self.limits.account_per_minute,
            ),
            (
                LOGIN_ACCOUNT_HOUR,
                account.as_str(),
                self.limits.account_per_hour,
            ),
            (LOGIN_CLIENT, client, self.limits.client_per_hour),
        ];
        // A caller over any limit is refused without counting; otherwise the attempt is
        // counted before the password is looked at, so guesses sent in parallel cannot all
        // slip under the limit (a success takes its count back).
        let mut wait = None;
        for (scope, subject, limit) in limits {
            if let Err(t) = self.throttle.check(scope, subject, limit).await? {
                wait = Some(wait.map_or(t, |w: Throttled| w.max(t)));
            }
        }
        for (scope, subject, limit) in limits {
            if wait.is_some() {
                break;
            }
            if let Err(t) = self.throttle.hit(scope, subject, limit).await? {
                wait = Some(t);
            }
        }
        if let Some(throttled) = wait {
            return Err(LoginError::Throttled(throttled));
        }
        let Some(user_id) = self.verified(parsed, password).await? else {
            return Err(LoginError::InvalidCredentials);
        };
        for scope in [LOGIN_ACCOUNT_MINUTE, LOGIN_ACCOUNT_HOUR] {
            self.throttle.clear(scope, &account).await?;
        }
        self.throttle
            .refund(LOGIN_CLIENT, client, self.limits.client_per_hour)
            .await?;
        let user = repo::user(&*self.store, &user_id)
            .await?
            .ok_or_else(|| LoginError::Internal("credentials without a profile".into()))?;
        self.tokens
            .issue(&user.user_id, user.role)
            .map_err(|e| LoginError::Internal(e.into()))
    }

    /// The user id whose password this is, or `None`; as slow for an unknown address as for
    /// a wrong password.
    async fn verified(
        &self,
        email: Option<Email>,
        password: &str,
    ) -> Result<Option<String>, LoginError> {
        // Nothing over the sign-up limit can be a password; refuse it without hashing.
        let Some(email) = email.filter(|_| password.chars().count() <= Password::MAX_CHARS) else {
            return Ok(None);
        };
        let Some(claim) = repo::email_claim(&*self.store, &email).await? else {
            self.passwords.verify_decoy(password.to_owned()).await;
            return Ok(None);
        };
        let matches = self
            .passwords
            .verify(password.to_owned(), claim.password_hash)
            .await;
        Ok(matches.then_some(claim.user_id))
    }

    /// A user's profile with their stored role (the caller's own, or any for an admin).
    pub async fn profile(&self, user_id: &str) -> Result<User, ProfileError> {
        repo::user(&*self.store, user_id)
            .await?
            .ok_or(ProfileError::NotFound)
    }

    /// An admin gives `user_id` a role (or takes it away). The caller's role is read from the
    /// store, not trusted from the token, so a revoked admin cannot give it back to
    /// themselves. The target's existing tokens keep the old role until they expire: at most
    /// 15 minutes for an admin token.
    pub async fn change_role(
        &self,
        admin: &Identity,
        user_id: &str,
        role: Role,
    ) -> Result<User, RoleError> {
        let store = &*self.store;
        let user = commit_with_retries::<_, RoleError, _, _>(store, || async move {
            let actor = repo::user(store, &admin.user_id)
                .await?
                .ok_or(RoleError::Refused(RoleChangeError::NotAdmin))?;
            let target = repo::load_user(store, user_id)
                .await?
                .ok_or(RoleError::NotFound)?;
            if !decide_role_change(&actor, &target.user, role)? {
                return Ok(Decision::Done(target.user));
            }
            let (commit, user) = repo::with_role(target, role)?;
            Ok(Decision::Commit(commit, user))
        })
        .await?;
        tracing::info!(admin = %admin.user_id, user = %user_id, role = role.as_str(), "role set");
        Ok(user)
    }

    /// The bootstrap: gives a role with no administrator asking. For whoever holds the
    /// table (the operator's command with AWS credentials, the local demo), never an API.
    pub async fn grant_role(&self, user_id: &str, role: Role) -> Result<(), RoleError> {
        repo::grant_role(&*self.store, user_id, role)
            .await?
            .map(|_| ())
            .ok_or(RoleError::NotFound)
    }
}
