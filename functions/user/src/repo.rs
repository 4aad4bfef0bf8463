//! The user table, on the platform's document store:
//!
//! | pk               | sk            | body                                     |
//! |------------------|---------------|------------------------------------------|
//! | `USER#<userId>`  | `PROFILE`     | [`Profile`]: userId, email, name, role, createdAt |
//! | `EMAIL#<email>`  | `CREDENTIALS` | [`EmailClaim`]: userId, email, passwordHash |
//!
//! plus the throttle's counters and the outbox. The `EMAIL#` item is the uniqueness record:
//! sign-up writes it and the profile each expecting it absent, with `UserRegistered`, in one
//! commit, so two sign-ups with one address cannot both succeed. Every read is strongly
//! consistent. (A profile written before roles were stored has no `role`: it reads as a
//! customer.)

use chrono::{DateTime, Utc};
use contract::Envelope;
use platform::docstore::{
    Commit, Decision, DocStore, Expect, Item, Key, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::identity::Role;
use serde::{Deserialize, Serialize};

use crate::domain::{Email, User, UserName};

pub fn profile_key(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

pub fn email_key(email: &Email) -> Key {
    Key::new(format!("EMAIL#{}", email.as_str()), "CREDENTIALS")
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: String,
    pub email: String,
    pub name: String,
    #[serde(default = "customer")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

fn customer() -> String {
    Role::Customer.as_str().to_owned()
}

impl From<&User> for Profile {
    fn from(user: &User) -> Profile {
        Profile {
            user_id: user.user_id.clone(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            created_at: user.created_at,
        }
    }
}

impl Profile {
    /// The user, with every field parsed again: a stored value that no longer parses is
    /// corrupt, not trusted.
    pub fn into_user(self) -> Result<User, StoreError> {
        let corrupt = |what: &str| StoreError::corrupt(format!("user {}: {what}", self.user_id));
        Ok(User {
            email: Email::parse(&self.email).map_err(|_| corrupt("e-mail"))?,
            name: UserName::parse(&self.name).map_err(|_| corrupt("name"))?,
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            created_at: self.created_at,
            user_id: self.user_id,
        })
    }
}

/// Who an e-mail address belongs to, and what login checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailClaim {
    pub user_id: String,
    pub email: String,
    pub password_hash: String,
}

/// A user read with the version their profile is at.
pub struct Loaded {
    pub user: User,
    pub expect: Expect,
}

pub async fn load_user(store: &dyn DocStore, user_id: &str) -> Result<Option<Loaded>, StoreError> {
    let Some(item) = store.get(&profile_key(user_id)).await? else {
        return Ok(None);
    };
    let expect = Expect::after_read(Some(&item));
    Ok(Some(Loaded {
        user: item.parse::<Profile>()?.into_user()?,
        expect,
    }))
}

pub async fn user(store: &dyn DocStore, user_id: &str) -> Result<Option<User>, StoreError> {
    Ok(load_user(store, user_id).await?.map(|loaded| loaded.user))
}

pub async fn email_claim(
    store: &dyn DocStore,
    email: &Email,
) -> Result<Option<EmailClaim>, StoreError> {
    store
        .get(&email_key(email))
        .await?
        .as_ref()
        .map(Item::parse)
        .transpose()
}

/// Sign-up's one commit: the profile and the e-mail claim, both expected absent, and the
/// event. A conflict at [`SIGN_UP_EMAIL_WRITE`] means the address is taken.
pub fn sign_up(
    user: &User,
    password_hash: String,
    registered: Envelope,
) -> Result<Commit, StoreError> {
    let claim = EmailClaim {
        user_id: user.user_id.clone(),
        email: user.email.as_str().to_owned(),
        password_hash,
    };
    Ok(Commit::new()
        .write(Write::put(
            profile_key(&user.user_id),
            &Profile::from(user),
            Expect::Absent,
        )?)
        .write(Write::put(email_key(&user.email), &claim, Expect::Absent)?)
        .event(registered))
}

/// The position of the e-mail claim among [`sign_up`]'s writes.
pub const SIGN_UP_EMAIL_WRITE: usize = 1;

/// The profile rewritten with `role`, expecting it as it was read, and the user it makes.
pub fn with_role(loaded: Loaded, role: Role) -> Result<(Commit, User), StoreError> {
    let user = User {
        role,
        ..loaded.user
    };
    let commit = Commit::new().write(Write::put(
        profile_key(&user.user_id),
        &Profile::from(&user),
        loaded.expect,
    )?);
    Ok((commit, user))
}

/// Gives the user `role` with no one asking (the bootstrap: the operator's command, the
/// local demo); nothing is written when they have it. `None`: there is no such user.
pub async fn grant_role(
    store: &dyn DocStore,
    user_id: &str,
    role: Role,
) -> Result<Option<User>, StoreError> {
    commit_with_retries(store, || async move {
        let Some(loaded) = load_user(store, user_id).await? else {
            return Ok(Decision::Done(None));
        };
        if loaded.user.role == role {
            return Ok(Decision::Done(Some(loaded.user)));
        }
        let (commit, user) = with_role(loaded, role)?;
        Ok(Decision::Commit(commit, Some(user)))
    })
    .await
}
