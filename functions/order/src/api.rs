//! The order service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use contract::{FailureReason, OrderItem, Won};
use platform::http::{
    ApiError, IdempotencyKey, Identity, JsonBody, ListPage, PageParams, PathId, QueryParams,
    idempotency_key,
};
use platform::ports::api_time;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{OrderFailure, OrderService};
use crate::domain::{Line, Order, OrderRequest, Status, StepState};
use crate::repo::TimelineEntry;

pub fn router(service: Arc<OrderService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document, with the links from a new order to what can be
/// asked about it (for clients, and for the fuzzer's chains of calls).
pub fn api() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::link::LinkBuilder;
    let mut document = routes().into_openapi();
    let created = document
        .paths
        .paths
        .get_mut("/orders")
        .and_then(|item| item.post.as_mut())
        .and_then(|create| create.responses.responses.get_mut("201"));
    if let Some(RefOr::T(created)) = created {
        for (name, operation, parameter) in [
            ("read", "getOrder", "orderId"),
            ("timeline", "getOrderTimeline", "orderId"),
            ("cancel", "cancelOrder", "orderId"),
            ("payment", "getPaymentOfOrder", "orderId"),
        ] {
            let link = LinkBuilder::new()
                .operation_id(operation)
                .parameter(parameter, "$response.body#/orderId")
                .build();
            created.links.insert(name.to_owned(), RefOr::T(link));
        }
    }
    document
}

fn routes() -> OpenApiRouter<Arc<OrderService>> {
    OpenApiRouter::new()
        .routes(routes!(mine, create))
        .routes(routes!(read))
        .routes(routes!(cancel))
        .routes(routes!(timeline))
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

/// How far each step of the saga is.
#[derive(Serialize, ToSchema)]
struct StepsView {
    stock: StepState,
    coupon: StepState,
    payment: StepState,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderView {
    order_id: String,
    status: Status,
    items: Vec<OrderItem>,
    coupon_id: Option<String>,
    total_amount: Won,
    discount_amount: Won,
    payment_amount: Won,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    steps: StepsView,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<FailureReason>,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> Self {
        OrderView {
            order_id: o.order_id,
            status: o.status,
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = NewOrderLine)]
struct LineBody {
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9_-]+$")]
    product_id: String,
    /// 1 to 1,000 (`domain::MAX_QUANTITY`).
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = NewOrder)]
struct CreateBody {
    /// 1 to 50 distinct products (`domain::MAX_DISTINCT_ITEMS`).
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<LineBody>,
    /// One of the caller's issued coupons.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9_-]+$")]
    coupon_id: Option<String>,
}

/// Places an order: answered at once as `PENDING`; the saga then reserves the stock, uses
/// the coupon and takes the payment, or fails and undoes what was done.
#[utoipa::path(post, path = "/orders", operation_id = "createOrder", tag = "orders",
    params(IdempotencyKey), request_body = CreateBody,
    responses(
        (status = 201, body = OrderView),
        (status = 400, description = "a malformed body, line or idempotency key"),
        (status = 422, description = "a product listed twice, an unknown product or coupon, or the key reused with another body"),
    ))]
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

/// One of the caller's orders.
#[utoipa::path(get, path = "/orders/{orderId}", operation_id = "getOrder", tag = "orders",
    params(("orderId" = String, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 400, description = "an id of the wrong shape"),
        (status = 404, description = "no such order of the caller's"),
    ))]
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

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", operation_id = "listMyOrders", tag = "orders", params(PageParams),
    responses(
        (status = 200, body = ListPage<OrderView>),
        (status = 400, description = "a bad limit or cursor"),
    ))]
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

/// Cancels a pending or confirmed order: answered at once; the money, stock and coupon
/// are given back by the saga.
#[utoipa::path(post, path = "/orders/{orderId}/cancel", operation_id = "cancelOrder", tag = "orders",
    params(("orderId" = String, Path)),
    responses(
        (status = 202, body = OrderView),
        (status = 400, description = "an id of the wrong shape"),
        (status = 404, description = "no such order of the caller's"),
        (status = 409, description = "the order can no longer be cancelled"),
    ))]
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TimelineParams {
    /// `json` (the default) or `mermaid`, a sequence diagram as text.
    #[param(pattern = "^(json|mermaid)$")]
    format: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TimelineView {
    order_id: String,
    items: Vec<TimelineLine>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TimelineLine {
    #[schema(format = DateTime)]
    at: String,
    #[serde(rename = "type")]
    event_type: String,
    source: String,
    event_id: String,
}

/// Every event of the order's saga, in the order the order service saw them.
#[utoipa::path(get, path = "/orders/{orderId}/timeline", operation_id = "getOrderTimeline", tag = "orders",
    params(("orderId" = String, Path), TimelineParams),
    responses(
        (status = 200, content(
            (TimelineView = "application/json"),
            (String = "text/plain", example = "sequenceDiagram\n    client->>order: OrderCreated\n"),
        )),
        (status = 400, description = "an id of the wrong shape, or an unknown format"),
        (status = 404, description = "no such order of the caller's"),
    ))]
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
    Ok(Json(TimelineView { order_id, items }).into_response())
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
