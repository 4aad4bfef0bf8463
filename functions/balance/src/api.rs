//! The balance service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::Won;
use platform::http::{
    ApiError, Identity, JsonBody, ListPage, PageParams, QueryParams, idempotency_key,
};
use platform::ports::api_time;
use serde::{Deserialize, Serialize};

use crate::app::{BalanceService, ChargeFailure};
use crate::repo::{Account, EntryType};

pub fn router(service: Arc<BalanceService>) -> Router {
    Router::new()
        .route("/balance", get(balance))
        .route("/balance/charge", post(charge))
        .route("/balance/transactions", get(transactions))
        .with_state(service)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BalanceView {
    user_id: String,
    amount: Won,
}

impl From<Account> for BalanceView {
    fn from(a: Account) -> Self {
        BalanceView {
            user_id: a.user_id,
            amount: a.amount,
        }
    }
}

async fn balance(
    State(service): State<Arc<BalanceService>>,
    identity: Identity,
) -> Result<Json<BalanceView>, ApiError> {
    Ok(Json(service.balance(&identity.user_id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeBody {
    amount: i64,
}

async fn charge(
    State(service): State<Arc<BalanceService>>,
    identity: Identity,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ChargeBody>,
) -> Result<Json<BalanceView>, ApiError> {
    let key = idempotency_key(&headers)?;
    match service
        .charge(&identity.user_id, body.amount, key.as_deref())
        .await
    {
        Ok(account) => Ok(Json(account.into())),
        Err(ChargeFailure::Invalid(e)) => Err(ApiError::unprocessable(e.code(), e.to_string())),
        Err(ChargeFailure::KeyReused(e)) => Err(ApiError::unprocessable(
            "IDEMPOTENCY_KEY_REUSED",
            e.to_string(),
        )),
        Err(ChargeFailure::Store(e)) => Err(e.into()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    #[serde(rename = "type")]
    kind: EntryType,
    amount: Won,
    balance_after: Won,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<String>,
}

async fn transactions(
    State(service): State<Arc<BalanceService>>,
    identity: Identity,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<ListPage<EntryView>>, ApiError> {
    let ledger = service
        .ledger(&identity.user_id, page.limit()?, page.cursor)
        .await?;
    let items = ledger
        .entries
        .into_iter()
        .map(|e| EntryView {
            kind: e.kind,
            amount: e.amount,
            balance_after: e.balance_after,
            at: api_time(e.at),
            payment_id: e.payment_id,
        })
        .collect();
    Ok(Json(ListPage {
        items,
        next_cursor: ledger.cursor,
    }))
}
