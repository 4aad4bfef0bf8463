//! `shop-admin`: what an operator does with AWS credentials rather than an API token, on a
//! deployed stack or on the local system on AWS APIs ([`system`]):
//! - the dead-letter and relay-failure queues: their depths, their messages decoded, and the
//!   redrive of a dead-letter queue's messages to their queue ([`dlq`], [`message`]);
//! - an order's saga: its state, each step's, and its timeline ([`saga`]);
//! - a user's role, and so the bootstrap of the first administrator: no API can grant a role
//!   until an admin exists, and an address alone never makes one (anyone may sign up with
//!   any address).
//!
//! The logic is here, on small ports where it meets AWS; `main.rs` parses the command line
//! and prints.

pub mod dlq;
pub mod message;
pub mod saga;
pub mod system;

use aws_sdk_dynamodb::Client;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::identity::Role;
use user_service::domain::{Email, User};
use user_service::repo;

/// Whose role to change: by id, or by the e-mail address they signed up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    UserId(String),
    Email(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} is not an e-mail address")]
    BadEmail(String),
    #[error("no user {0} in table {1}")]
    NoSuchUser(String, String),
    #[error("the table cannot be used: {}", platform::errors::chain(.0))]
    Store(#[from] platform::errors::StoreError),
    /// The command asks for something that is not there to ask for (a queue of another
    /// name, a redrive of what cannot go back): the operator's to change.
    #[error("{0}")]
    Usage(String),
    /// Something the command needs is not there (a stack output, a queue, a message).
    #[error("{0}")]
    Missing(String),
    /// An AWS call failed.
    #[error("{what}: {reason}")]
    Aws { what: String, reason: String },
    /// Failed part way; what was done before is reported.
    #[error("{0}")]
    Partly(String),
}

/// An AWS call's error, with what was being done: the service's code and message when it
/// answered, else the cause chain (a connection refused, say).
pub(crate) fn aws<E, R>(
    what: impl Into<String>,
) -> impl FnOnce(aws_sdk_sqs::error::SdkError<E, R>) -> AdminError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    let what = what.into();
    move |e| {
        let reason = match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => platform::errors::chain(&e).to_string(),
        };
        AdminError::Aws { what, reason }
    }
}

/// A request the SDK would not build (a missing field: a bug here).
pub(crate) fn unbuilt(what: &str) -> impl FnOnce(aws_sdk_sqs::error::BuildError) -> AdminError {
    move |e| AdminError::Aws {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

impl AdminError {
    /// Whether the command line was wrong (exit code 2) rather than the work failing (1).
    pub fn is_usage(&self) -> bool {
        matches!(self, AdminError::Usage(_) | AdminError::BadEmail(_))
    }
}

/// Gives the user `role`, straight on the user table; returns who they are, for the
/// operator to check. Their next login carries it (a token they hold keeps its old role
/// until it expires, at most 15 minutes for an admin token).
pub async fn grant_role(
    client: Client,
    table: &str,
    who: &Who,
    role: Role,
) -> Result<User, AdminError> {
    let store = DynamoDocStore::new(client, table);
    let user_id = match who {
        Who::UserId(id) => id.clone(),
        Who::Email(raw) => {
            let email = Email::parse(raw).map_err(|_| AdminError::BadEmail(raw.clone()))?;
            repo::email_claim(&store, &email)
                .await?
                .ok_or_else(|| AdminError::NoSuchUser(raw.clone(), table.to_owned()))?
                .user_id
        }
    };
    repo::grant_role(&store, &user_id, role)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(user_id, table.to_owned()))
}
