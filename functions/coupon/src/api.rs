//! The coupon service's HTTP API.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};
use contract::{Discount, Won};
use platform::http::{ApiError, Identity, ListPage, PageParams, QueryParams};
use platform::ports::api_time;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::CouponService;

pub fn router(service: Arc<CouponService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<CouponService>> {
    OpenApiRouter::new().routes(routes!(mine))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CouponView {
    coupon_id: String,
    source_id: String,
    discount: Discount,
    minimum_order_amount: Won,
    /// `ISSUED`, `USED` or `EXPIRED` (an unused coupon past its expiry).
    #[schema(value_type = String, example = "ISSUED")]
    status: &'static str,
    #[schema(format = DateTime)]
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
}

/// The caller's coupons, newest first.
#[utoipa::path(get, path = "/coupons", operation_id = "listMyCoupons", tag = "coupons", params(PageParams),
    responses(
        (status = 200, body = ListPage<CouponView>),
        (status = 400, description = "a bad limit or cursor"),
    ))]
async fn mine(
    State(service): State<Arc<CouponService>>,
    identity: Identity,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<ListPage<CouponView>>, ApiError> {
    let now = service.now();
    let coupons = service
        .mine(&identity.user_id, page.limit()?, page.cursor)
        .await?;
    let items = coupons
        .coupons
        .into_iter()
        .map(|c| CouponView {
            status: c.shown_status(now),
            coupon_id: c.coupon_id,
            source_id: c.source_id,
            discount: c.discount,
            minimum_order_amount: c.minimum_order_amount,
            expires_at: api_time(c.expires_at),
            order_id: c.order_id,
        })
        .collect();
    Ok(Json(ListPage {
        items,
        next_cursor: coupons.cursor,
    }))
}
