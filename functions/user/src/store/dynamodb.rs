//! The DynamoDB user store. One table (`USER_TABLE`), three kinds of item:
//!
//! | pk                 | sk            | what                                   |
//! |--------------------|---------------|----------------------------------------|
//! | `USER#<userId>`    | `PROFILE`     | userId, email, name, role, createdAt   |
//! | `EMAIL#<email>`    | `CREDENTIALS` | userId, email, passwordHash            |
//! | `OUTBOX#<eventId>` | `OUTBOX`      | the event, for the stream relay        |
//!
//! Sign-up is one `TransactWriteItems` of all three, each conditioned on not existing: the
//! `EMAIL#` item is the uniqueness record, so two sign-ups with one e-mail cannot both
//! commit. Login is one strongly consistent `GetItem` of the credentials and one of the
//! profile (for the role); a role change one `UpdateItem` of the profile, conditioned on it
//! existing. No index is needed. (A profile written before roles were stored has no `role`:
//! it reads as a customer.)

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use contract::Envelope;
use platform::dynamo::{Client, StoreError, cancellation_codes, condition_failed_at};
use platform::identity::Role;
use platform::outbox;
use serde::{Deserialize, Serialize};

use super::{Credentials, RegisterError, Registration, UserStore};
use crate::domain::{Email, User, UserName};

const PROFILE: &str = "PROFILE";
const CREDENTIALS: &str = "CREDENTIALS";

pub struct DynamoUserStore {
    client: Client,
    table: String,
}

impl DynamoUserStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoUserStore {
            client,
            table: table.into(),
        }
    }
}

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn email_pk(email: &Email) -> String {
    format!("EMAIL#{}", email.as_str())
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileItem {
    pk: String,
    sk: String,
    user_id: String,
    email: String,
    name: String,
    #[serde(default = "customer")]
    role: String,
    created_at: DateTime<Utc>,
}

fn customer() -> String {
    Role::Customer.as_str().to_owned()
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsItem {
    pk: String,
    sk: String,
    user_id: String,
    email: String,
    password_hash: String,
}

fn put_new<T: Serialize>(table: &str, item: &T) -> Result<TransactWriteItem, StoreError> {
    let item = serde_dynamo::to_item(item).map_err(StoreError::corrupt)?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(StoreError::unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoUserStore {
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        out.item
            .map(|item| serde_dynamo::from_item(item).map_err(StoreError::corrupt))
            .transpose()
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn register(
        &self,
        registration: Registration,
        registered: Envelope,
    ) -> Result<(), RegisterError> {
        let user = &registration.user;
        let profile = ProfileItem {
            pk: user_pk(&user.user_id),
            sk: PROFILE.to_owned(),
            user_id: user.user_id.clone(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            created_at: user.created_at,
        };
        let credentials = CredentialsItem {
            pk: email_pk(&user.email),
            sk: CREDENTIALS.to_owned(),
            user_id: user.user_id.clone(),
            email: user.email.as_str().to_owned(),
            password_hash: registration.password_hash.clone(),
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put_new(&self.table, &profile)?)
            .transact_items(put_new(&self.table, &credentials)?)
            .transact_items(outbox::dynamo_put(
                &self.table,
                &registered,
                registered.occurred_at,
            )?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match cancellation_codes(&error) {
                Some(codes) if condition_failed_at(&codes, 1) => Err(RegisterError::EmailTaken),
                _ => Err(StoreError::unavailable(error).into()),
            },
        }
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let Some(item) = self
            .get::<CredentialsItem>(email_pk(email), CREDENTIALS)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            user_id: item.user_id,
            email: Email::parse(&item.email).map_err(StoreError::corrupt)?,
            password_hash: item.password_hash,
        }))
    }

    async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let Some(item) = self.get::<ProfileItem>(user_pk(user_id), PROFILE).await? else {
            return Ok(None);
        };
        Ok(Some(User {
            user_id: item.user_id,
            email: Email::parse(&item.email).map_err(StoreError::corrupt)?,
            name: UserName::parse(&item.name).map_err(StoreError::corrupt)?,
            role: Role::parse(&item.role)
                .ok_or_else(|| StoreError::corrupt(format!("unknown role {:?}", item.role)))?,
            created_at: item.created_at,
        }))
    }

    async fn set_role(&self, user_id: &str, role: Role) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(user_pk(user_id)))
            .key("sk", AttributeValue::S(PROFILE.to_owned()))
            .update_expression("SET #role = :role")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", AttributeValue::S(role.as_str().to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::unavailable(e)),
        }
    }
}
