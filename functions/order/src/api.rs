//! The order service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contract::{FailureReason, OrderItem, Won};
use platform::http::{
    ApiError, Identity, JsonBody, ListPage, PageParams, PathId, QueryParams, idempotency_key,
};
use platform::ports::api_time;
use serde::{Deserialize, Serialize};

use crate::app::{OrderFailure, OrderService};
use crate::domain::{Line, Order, OrderRequest, StepState};
use crate::repo::TimelineEntry;

pub fn router(service: Arc<OrderService>) -> Router {
    Router::new()
        .route("/orders", get(mine).post(create))
        .route("/orders/{order_id}", get(read))
        .route("/orders/{order_id}/cancel", post(cancel))
        .route("/orders/{order_id}/timeline", get(timeline))
        .with_state(service)
}

fn failure(e: OrderFailure) -> ApiError {
    match e {
        OrderFailure::Invalid(e) if e.is_shape() => ApiError::bad_request(e.code(), e.to_string()),
        OrderFailure::Invalid(e) => ApiError::unprocessable(e.code(), e.to_string()),
        OrderFailure::NotCancellable(e) => {
            ApiError::conflict("ORDER_NOT_CANCELLABLE", e.to_string())
        }
        OrderFailure::KeyReused(e) => {
            ApiError::unprocessable("IDEMPOTENCY_KEY_REUSED", e.to_string())
        }
        OrderFailure::NotFound => ApiError::not_found("no such order"),
        OrderFailure::Store(e) => e.into(),
    }
}

#[derive(Serialize)]
struct StepsView {
    stock: StepState,
    coupon: StepState,
    payment: StepState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderView {
    order_id: String,
    status: &'static str,
    items: Vec<OrderItem>,
    coupon_id: Option<String>,
    total_amount: Won,
    discount_amount: Won,
    payment_amount: Won,
    created_at: String,
    expires_at: String,
    steps: StepsView,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<FailureReason>,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        OrderView {
            order_id: o.order_id,
            status: o.status.as_str(),
            items: o.items,
            coupon_id: o.coupon_id,
            total_amount: o.total_amount,
            discount_amount: o.discount_amount,
            payment_amount: o.payment_amount,
            created_at: api_time(o.created_at),
            expires_at: api_time(o.expires_at),
            steps: StepsView {
                stock: o.steps.stock,
                coupon: o.steps.coupon,
                payment: o.steps.payment,
            },
            failure_reason: o.failure_reason,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LineBody {
    product_id: String,
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    items: Vec<LineBody>,
    coupon_id: Option<String>,
}

async fn create(
    State(service): State<Arc<OrderService>>,
    identity: Identity,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let key = idempotency_key(&headers)?;
    let lines = body
        .items
        .into_iter()
        .map(|l| Line {
            product_id: l.product_id,
            quantity: l.quantity,
        })
        .collect();
    let request = OrderRequest::parse(lines, body.coupon_id).map_err(|e| failure(e.into()))?;
    let order = service
        .create(&identity.user_id, &request, key.as_deref())
        .await
        .map_err(failure)?;
    Ok((StatusCode::CREATED, Json(order.into())))
}

async fn read(
    State(service): State<Arc<OrderService>>,
    identity: Identity,
    PathId(order_id): PathId,
) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(
        service
            .order_of(&identity.user_id, &order_id)
            .await
            .map_err(failure)?
            .into(),
    ))
}

async fn mine(
    State(service): State<Arc<OrderService>>,
    identity: Identity,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<ListPage<OrderView>>, ApiError> {
    let orders = service
        .mine(&identity.user_id, page.limit()?, page.cursor)
        .await?;
    Ok(Json(ListPage {
        items: orders.orders.into_iter().map(Into::into).collect(),
        next_cursor: orders.cursor,
    }))
}

async fn cancel(
    State(service): State<Arc<OrderService>>,
    identity: Identity,
    PathId(order_id): PathId,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let order = service
        .cancel(&identity.user_id, &order_id)
        .await
        .map_err(failure)?;
    Ok((StatusCode::ACCEPTED, Json(order.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineParams {
    format: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineLine {
    at: String,
    #[serde(rename = "type")]
    event_type: String,
    source: String,
    event_id: String,
}

async fn timeline(
    State(service): State<Arc<OrderService>>,
    identity: Identity,
    PathId(order_id): PathId,
    QueryParams(params): QueryParams<TimelineParams>,
) -> Result<Response, ApiError> {
    let mermaid = match params.format.as_deref() {
        None | Some("json") => false,
        Some("mermaid") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "INVALID_FORMAT",
                "format must be json or mermaid",
            ));
        }
    };
    service
        .order_of(&identity.user_id, &order_id)
        .await
        .map_err(failure)?;
    let entries = service.timeline(&order_id).await?;
    if mermaid {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            mermaid_diagram(&entries),
        )
            .into_response());
    }
    let items: Vec<TimelineLine> = entries
        .into_iter()
        .map(|e| TimelineLine {
            at: api_time(e.seen_at),
            event_type: e.event_type,
            source: e.source,
            event_id: e.event_id,
        })
        .collect();
    Ok(Json(serde_json::json!({ "orderId": order_id, "items": items })).into_response())
}

/// A Mermaid sequence diagram: each event is an arrow from the service whose event caused it
/// (the client for the order itself) to the service that published it.
pub fn mermaid_diagram(entries: &[TimelineEntry]) -> String {
    let source_of = |event_id: &str| {
        entries
            .iter()
            .find(|e| e.event_id == event_id)
            .map(|e| e.source.as_str())
    };
    let mut participants: Vec<&str> = vec!["client"];
    let mut arrows = Vec::new();
    for e in entries {
        let from = e
            .causation_id
            .as_deref()
            .and_then(source_of)
            .unwrap_or("client");
        for p in [from, e.source.as_str()] {
            if !participants.contains(&p) {
                participants.push(p);
            }
        }
        arrows.push(format!("    {from}->>{}: {}", e.source, e.event_type));
    }
    let mut out = String::from("sequenceDiagram\n");
    for p in participants {
        out.push_str(&format!("    participant {p}\n"));
    }
    for a in arrows {
        out.push_str(&a);
        out.push('\n');
    }
    out
}
