//! The balance service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Json, Router};
use contract::Won;
use platform::http::{
    ApiError, IdempotencyKey, Identity, JsonBody, ListPage, PageParams, QueryParams,
    idempotency_key,
};
use platform::ports::api_time;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{BalanceService, ChargeFailure};
use crate::repo::{Account, EntryType};

pub fn router(service: Arc<BalanceService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<BalanceService>> {
    OpenApiRouter::new()
        .routes(routes!(balance))
        .routes(routes!(charge))
        .routes(routes!(transactions))
}

#[derive(Serialize, ToSchema)]
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

/// The caller's balance.
#[utoipa::path(get, path = "/balance", operation_id = "getBalance", tag = "balance",
    responses((status = 200, body = BalanceView)))]
async fn balance(
    State(service): State<Arc<BalanceService>>,
    identity: Identity,
) -> Result<Json<BalanceView>, ApiError> {
    Ok(Json(service.balance(&identity.user_id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChargeBody {
    /// Won to add; the balance may not pass 100,000,000.
    #[schema(minimum = 1)]
    amount: i64,
}

/// Adds money to the caller's balance. With an `Idempotency-Key`, a repeat answers as the
/// first did and adds nothing.
#[utoipa::path(post, path = "/balance/charge", operation_id = "chargeBalance", tag = "balance",
    params(IdempotencyKey), request_body = ChargeBody,
    responses(
        (status = 200, body = BalanceView),
        (status = 400, description = "a malformed body or idempotency key"),
        (status = 422, description = "an amount out of range, or the key reused with another body"),
    ))]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    #[serde(rename = "type")]
    kind: EntryType,
    amount: Won,
    balance_after: Won,
    #[schema(format = DateTime)]
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<String>,
}

/// The caller's ledger, newest first.
#[utoipa::path(get, path = "/balance/transactions", operation_id = "listBalanceTransactions", tag = "balance", params(PageParams),
    responses(
        (status = 200, body = ListPage<EntryView>),
        (status = 400, description = "a bad limit or cursor"),
    ))]
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
