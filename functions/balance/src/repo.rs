//! The balance table:
//!
//! | pk                 | sk                  | body                                   |
//! |--------------------|---------------------|----------------------------------------|
//! | `ACCOUNT#<userId>` | `ACCOUNT`           | [`Account`]                            |
//! | `ACCOUNT#<userId>` | `TX#<time>#<id>`    | [`LedgerEntry`] (newest first by query)|
//! | `PAYMENT#<id>`     | `BALANCE`           | [`PaymentRecord`](crate::domain::PaymentRecord) |
//!
//! plus the platform's processed-key records (charges with an `Idempotency-Key`) and outbox.

use chrono::{DateTime, Utc};
use contract::Won;
use platform::docstore::Key;
use platform::ports::sortable_time;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub user_id: String,
    pub amount: Won,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryType {
    Charge,
    Payment,
    Refund,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub amount: Won,
    pub balance_after: Won,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

pub fn account_pk(user_id: &str) -> String {
    format!("ACCOUNT#{user_id}")
}

pub fn account_key(user_id: &str) -> Key {
    Key::new(account_pk(user_id), "ACCOUNT")
}

pub const LEDGER_PREFIX: &str = "TX#";

pub fn ledger_key(user_id: &str, at: DateTime<Utc>, entry_id: &str) -> Key {
    Key::new(
        account_pk(user_id),
        format!("{LEDGER_PREFIX}{}#{entry_id}", sortable_time(at)),
    )
}

pub fn payment_key(payment_id: &str) -> Key {
    Key::new(format!("PAYMENT#{payment_id}"), "BALANCE")
}

pub fn charge_business_key(user_id: &str, idempotency_key: &str) -> String {
    format!("charge#{user_id}#{idempotency_key}")
}
