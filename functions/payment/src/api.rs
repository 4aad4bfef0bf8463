//! The payment service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use contract::Won;
use platform::http::{ApiError, Identity, QueryParams};
use serde::{Deserialize, Serialize};

use crate::app::PaymentService;

pub fn router(service: Arc<PaymentService>) -> Router {
    Router::new()
        .route("/payments", get(of_order))
        .with_state(service)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OfOrder {
    order_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentView {
    payment_id: String,
    order_id: String,
    amount: Won,
    status: &'static str,
}

async fn of_order(
    State(service): State<Arc<PaymentService>>,
    identity: Identity,
    QueryParams(q): QueryParams<OfOrder>,
) -> Result<Json<PaymentView>, ApiError> {
    if !contract::is_valid_id(&q.order_id) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "orderId is not a valid id",
        ));
    }
    match service.payment_of_order(&q.order_id).await? {
        // Another user's payment is answered as if it did not exist.
        Some(p) if p.user_id == identity.user_id => Ok(Json(PaymentView {
            payment_id: p.payment_id,
            order_id: p.order_id,
            amount: p.amount,
            status: p.status.as_str(),
        })),
        _ => Err(ApiError::not_found("no payment for that order")),
    }
}
