//! `shop-admin`: what an operator does with AWS credentials rather than an API token. Today
//! one thing, the bootstrap of the first administrator: no API can grant a role until an
//! admin exists, and an address alone never makes one (anyone may sign up with any address).

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
    #[error("the user table cannot be used: {0}")]
    Store(#[from] platform::errors::StoreError),
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
