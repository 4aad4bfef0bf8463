//! The payment service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};
use contract::Won;
use platform::http::{ApiError, Identity, QueryParams};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::PaymentService;
use crate::domain::Status;

pub fn router(service: Arc<PaymentService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<PaymentService>> {
    OpenApiRouter::new().routes(routes!(of_order))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct OfOrder {
    /// One of the caller's orders.
    #[param(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9_-]+$")]
    order_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PaymentView {
    payment_id: String,
    order_id: String,
    amount: Won,
    status: Status,
}

/// The payment of one of the caller's orders.
#[utoipa::path(get, path = "/payments", operation_id = "getPaymentOfOrder", tag = "payments", params(OfOrder),
    responses(
        (status = 200, body = PaymentView),
        (status = 400, description = "no orderId, or one of the wrong shape"),
        (status = 404, description = "no payment of the caller's for that order"),
    ))]
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
            status: p.status,
        })),
        _ => Err(ApiError::not_found("no payment for that order")),
    }
}
