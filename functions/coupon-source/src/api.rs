//! The coupon-source service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use contract::{Discount, Won};
use platform::http::{
    Admin, ApiError, ClientAddress, Identity, JsonBody, ListPage, PageParams, PathId, QueryParams,
};
use platform::ports::api_time;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{CouponSourceService, NewSource, SourceChange, SourceFailure};
use crate::domain::{CouponSource, IssueRefusal};

pub fn router(service: Arc<CouponSourceService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<CouponSourceService>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update))
        .routes(routes!(issue))
}

fn failure(e: SourceFailure) -> ApiError {
    match e {
        SourceFailure::Invalid(e) => ApiError::unprocessable(e.code(), e.to_string()),
        SourceFailure::Refused(r @ (IssueRefusal::SoldOut | IssueRefusal::AlreadyIssued)) => {
            ApiError::conflict(r.code(), r.to_string())
        }
        SourceFailure::Refused(r) => ApiError::unprocessable(r.code(), r.to_string()),
        SourceFailure::NotFound => ApiError::not_found("no such coupon source"),
        e @ SourceFailure::Throttled(t) => {
            ApiError::too_many_requests("ISSUE_THROTTLED", e.to_string(), t.retry_after_seconds)
        }
        SourceFailure::Store(e) => e.into(),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SourceView {
    source_id: String,
    name: String,
    discount: Discount,
    minimum_order_amount: Won,
    quantity: u64,
    issued: u64,
    remaining: u64,
    #[schema(format = DateTime)]
    issuable_from: String,
    #[schema(format = DateTime)]
    issuable_until: String,
    coupon_valid_days: u32,
    active: bool,
}

impl From<CouponSource> for SourceView {
    fn from(s: CouponSource) -> Self {
        SourceView {
            remaining: s.quantity.saturating_sub(s.issued),
            source_id: s.source_id,
            name: s.name,
            discount: s.discount,
            minimum_order_amount: s.minimum_order_amount,
            quantity: s.quantity,
            issued: s.issued,
            issuable_from: api_time(s.issuable_from),
            issuable_until: api_time(s.issuable_until),
            coupon_valid_days: s.coupon_valid_days,
            active: s.active,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = NewCouponSource)]
struct CreateBody {
    name: String,
    discount: Discount,
    /// Won: 0 to 100,000,000; none is 0.
    #[schema(minimum = 0, maximum = 100000000)]
    minimum_order_amount: Option<i64>,
    /// How many coupons: 1 to 1,000,000 (`domain::MAX_QUANTITY`).
    #[schema(minimum = 1, maximum = 1000000)]
    quantity: i64,
    issuable_from: DateTime<Utc>,
    /// After `issuableFrom`.
    issuable_until: DateTime<Utc>,
    /// How long an issued coupon stays usable: 1 to 365 days.
    #[schema(minimum = 1, maximum = 365)]
    coupon_valid_days: i64,
    /// Issue requests a second expected at the peak (a flash sale): 0 to 1,000,000, none is
    /// 0. The count is spread over one item per 50 a second (at most 100, and no more than
    /// the quantity), so that a crowd is not limited by one item's write rate.
    #[schema(minimum = 0, maximum = 1000000)]
    expected_issues_per_second: Option<i64>,
}

/// Admin only: a new source of first-come coupons.
#[utoipa::path(post, path = "/coupon-sources", operation_id = "createCouponSource", tag = "coupon-sources", request_body = CreateBody,
    responses(
        (status = 201, body = SourceView),
        (status = 400, description = "a malformed body"),
        (status = 403, description = "the caller is not an admin"),
        (status = 422, description = "an invalid discount, quantity, period, validity or expected rate"),
    ))]
async fn create(
    State(service): State<Arc<CouponSourceService>>,
    _: Admin,
    JsonBody(b): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    let new = NewSource {
        name: b.name,
        discount: b.discount,
        minimum_order_amount: b.minimum_order_amount,
        quantity: b.quantity,
        issuable_from: b.issuable_from,
        issuable_until: b.issuable_until,
        coupon_valid_days: b.coupon_valid_days,
        expected_issues_per_second: b.expected_issues_per_second,
    };
    let source = service.create(new).await.map_err(failure)?;
    Ok((StatusCode::CREATED, Json(source.into())))
}

/// Admin only: every source, oldest first.
#[utoipa::path(get, path = "/coupon-sources", operation_id = "listCouponSources", tag = "coupon-sources", params(PageParams),
    responses(
        (status = 200, body = ListPage<SourceView>),
        (status = 400, description = "a bad limit or cursor"),
        (status = 403, description = "the caller is not an admin"),
    ))]
async fn list(
    State(service): State<Arc<CouponSourceService>>,
    _: Admin,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<ListPage<SourceView>>, ApiError> {
    let sources = service.list(page.limit()?, page.cursor).await?;
    Ok(Json(ListPage {
        items: sources.sources.into_iter().map(SourceView::from).collect(),
        next_cursor: sources.cursor,
    }))
}

/// One source, with how many coupons remain.
#[utoipa::path(get, path = "/coupon-sources/{sourceId}", operation_id = "getCouponSource", tag = "coupon-sources",
    params(("sourceId" = String, Path)),
    responses(
        (status = 200, body = SourceView),
        (status = 400, description = "an id of the wrong shape"),
        (status = 404, description = "no such coupon source"),
    ))]
async fn read(
    State(service): State<Arc<CouponSourceService>>,
    _: Identity,
    PathId(source_id): PathId,
) -> Result<Json<SourceView>, ApiError> {
    let source = service
        .source(&source_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such coupon source"))?;
    Ok(Json(source.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = CouponSourceChange)]
struct UpdateBody {
    name: Option<String>,
    issuable_from: Option<DateTime<Utc>>,
    issuable_until: Option<DateTime<Utc>>,
    active: Option<bool>,
    quantity: Option<i64>,
}

/// Admin only: renames, re-times, (de)activates or resizes a source.
#[utoipa::path(patch, path = "/coupon-sources/{sourceId}", operation_id = "updateCouponSource", tag = "coupon-sources",
    params(("sourceId" = String, Path)), request_body = UpdateBody,
    responses(
        (status = 200, body = SourceView),
        (status = 400, description = "an id of the wrong shape, or a malformed body"),
        (status = 403, description = "the caller is not an admin"),
        (status = 404, description = "no such coupon source"),
        (status = 422, description = "an invalid name, period or quantity"),
    ))]
async fn update(
    State(service): State<Arc<CouponSourceService>>,
    _: Admin,
    PathId(source_id): PathId,
    JsonBody(b): JsonBody<UpdateBody>,
) -> Result<Json<SourceView>, ApiError> {
    let change = SourceChange {
        name: b.name,
        issuable_from: b.issuable_from,
        issuable_until: b.issuable_until,
        active: b.active,
        quantity: b.quantity,
    };
    Ok(Json(
        service
            .update(&source_id, change)
            .await
            .map_err(failure)?
            .into(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Issued {
    coupon_id: String,
}

/// Issues the caller one coupon of the source, first come first served: one per user.
#[utoipa::path(post, path = "/coupon-sources/{sourceId}/issue", operation_id = "issueCoupon", tag = "coupon-sources",
    params(("sourceId" = String, Path)),
    responses(
        (status = 201, body = Issued),
        (status = 400, description = "an id of the wrong shape"),
        (status = 404, description = "no such coupon source"),
        (status = 409, description = "sold out, or already issued to the caller"),
        (status = 422, description = "the source is inactive or outside its issuing period"),
        (status = 429, description = "too many attempts from this address; see Retry-After"),
    ))]
async fn issue(
    State(service): State<Arc<CouponSourceService>>,
    identity: Identity,
    ClientAddress(client): ClientAddress,
    PathId(source_id): PathId,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let coupon_id = service
        .issue(&client, &source_id, &identity.user_id)
        .await
        .map_err(failure)?;
    Ok((StatusCode::CREATED, Json(Issued { coupon_id })))
}
