//! The product service's HTTP API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use contract::Won;
use platform::http::{
    Admin, ApiError, Identity, JsonBody, ListPage, PageParams, PathId, QueryParams,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{ProductChange, ProductFailure, ProductService};
use crate::domain::RANK_WINDOW_DAYS;
use crate::repo::Product;

pub fn router(service: Arc<ProductService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<ProductService>> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(ranking))
        .routes(routes!(read, change))
        .routes(routes!(stats))
}

fn failure(e: ProductFailure) -> ApiError {
    match e {
        ProductFailure::Invalid(e) if e == crate::domain::ProductError::InsufficientStock => {
            ApiError::conflict(e.code(), e.to_string())
        }
        ProductFailure::Invalid(e) => ApiError::unprocessable(e.code(), e.to_string()),
        ProductFailure::NotFound => ApiError::not_found("no such product"),
        ProductFailure::Store(e) => e.into(),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ProductView {
    product_id: String,
    name: String,
    price: Won,
    stock: u64,
    /// Its place among the best sellers of the last days, if it is among them.
    rank: Option<u32>,
}

fn view(p: Product, ranks: &HashMap<String, u32>) -> ProductView {
    let rank = ranks.get(&p.product_id).copied();
    ProductView {
        product_id: p.product_id,
        name: p.name,
        price: p.price,
        stock: p.stock,
        rank,
    }
}

async fn current_ranks(service: &ProductService) -> Result<HashMap<String, u32>, ApiError> {
    Ok(service
        .ranking(RANK_WINDOW_DAYS)
        .await?
        .into_iter()
        .map(|r| (r.product_id, r.rank))
        .collect())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = NewProduct)]
struct RegisterBody {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Won: 0 to 100,000,000 (`domain::MAX_PRICE`).
    #[schema(minimum = 0, maximum = 100000000)]
    price: i64,
    /// 0 to 1,000,000 (`domain::MAX_STOCK`).
    #[schema(minimum = 0, maximum = 1000000)]
    stock: i64,
    /// Orders a second expected at the peak (a flash sale): 0 to 1,000,000, none is 0. The
    /// stock is spread over one item per 50 a second (at most 100), so that a crowd is not
    /// limited by one item's write rate.
    #[schema(minimum = 0, maximum = 1000000)]
    expected_orders_per_second: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Registered {
    product_id: String,
}

/// Admin only: adds a product to the catalogue.
#[utoipa::path(post, path = "/products", operation_id = "registerProduct", tag = "products", request_body = RegisterBody,
    responses(
        (status = 201, body = Registered),
        (status = 400, description = "a malformed body"),
        (status = 403, description = "the caller is not an admin"),
        (status = 422, description = "an invalid name, price, stock or expected rate"),
    ))]
async fn register(
    State(service): State<Arc<ProductService>>,
    _: Admin,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let product = service
        .register(
            &body.name,
            body.price,
            body.stock,
            body.expected_orders_per_second,
        )
        .await
        .map_err(failure)?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            product_id: product.product_id,
        }),
    ))
}

/// The catalogue, in the order products were registered.
#[utoipa::path(get, path = "/products", operation_id = "listProducts", tag = "products", params(PageParams),
    responses(
        (status = 200, body = ListPage<ProductView>),
        (status = 400, description = "a bad limit or cursor"),
    ))]
async fn list(
    State(service): State<Arc<ProductService>>,
    _: Identity,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<ListPage<ProductView>>, ApiError> {
    let products = service.list(page.limit()?, page.cursor).await?;
    let ranks = current_ranks(&service).await?;
    Ok(Json(ListPage {
        items: products
            .products
            .into_iter()
            .map(|p| view(p, &ranks))
            .collect(),
        next_cursor: products.cursor,
    }))
}

/// One product.
#[utoipa::path(get, path = "/products/{productId}", operation_id = "getProduct", tag = "products",
    params(("productId" = String, Path)),
    responses(
        (status = 200, body = ProductView),
        (status = 400, description = "an id of the wrong shape"),
        (status = 404, description = "no such product"),
    ))]
async fn read(
    State(service): State<Arc<ProductService>>,
    _: Identity,
    PathId(product_id): PathId,
) -> Result<Json<ProductView>, ApiError> {
    let product = service
        .product(&product_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such product"))?;
    let ranks = current_ranks(&service).await?;
    Ok(Json(view(product, &ranks)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ProductChange)]
struct ChangeBody {
    /// Won: 0 to 100,000,000.
    #[schema(minimum = 0, maximum = 100000000)]
    price: Option<i64>,
    /// Stock to add (positive) or remove (negative).
    stock_delta: Option<i64>,
}

/// Admin only: a new price, and stock added or removed.
#[utoipa::path(patch, path = "/products/{productId}", operation_id = "changeProduct", tag = "products",
    params(("productId" = String, Path)), request_body = ChangeBody,
    responses(
        (status = 200, body = ProductView),
        (status = 400, description = "an id of the wrong shape, or a malformed body"),
        (status = 403, description = "the caller is not an admin"),
        (status = 404, description = "no such product"),
        (status = 409, description = "more stock removed than there is"),
        (status = 422, description = "an invalid price or stock change"),
    ))]
async fn change(
    State(service): State<Arc<ProductService>>,
    _: Admin,
    PathId(product_id): PathId,
    JsonBody(body): JsonBody<ChangeBody>,
) -> Result<Json<ProductView>, ApiError> {
    let change = ProductChange {
        price: body.price,
        stock_delta: body.stock_delta,
    };
    let product = service.change(&product_id, change).await.map_err(failure)?;
    let ranks = current_ranks(&service).await?;
    Ok(Json(view(product, &ranks)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RankingParams {
    /// Over how many days, today included: 1 to 30, default 3.
    #[param(minimum = 1, maximum = 30)]
    days: Option<u32>,
    /// How many products: 1 to 100, default 5.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
struct RankingView {
    days: u32,
    items: Vec<RankingLine>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RankingLine {
    rank: u32,
    product_id: String,
    name: String,
    quantity_sold: u64,
}

/// The best sellers by quantity sold.
#[utoipa::path(get, path = "/products/ranking", operation_id = "getProductRanking", tag = "products", params(RankingParams),
    responses(
        (status = 200, body = RankingView),
        (status = 400, description = "days or limit out of range"),
    ))]
async fn ranking(
    State(service): State<Arc<ProductService>>,
    _: Identity,
    QueryParams(params): QueryParams<RankingParams>,
) -> Result<Json<RankingView>, ApiError> {
    let days = params.days.unwrap_or(3);
    let limit = params.limit.unwrap_or(5);
    if !(1..=30).contains(&days) {
        return Err(ApiError::bad_request(
            "INVALID_DAYS",
            "days must be from 1 to 30",
        ));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "INVALID_LIMIT",
            "limit must be from 1 to 100",
        ));
    }
    let lines: Vec<RankingLine> = service
        .best_sellers(days, limit)
        .await?
        .into_iter()
        .map(|b| RankingLine {
            rank: b.rank,
            product_id: b.product_id,
            name: b.name,
            quantity_sold: b.quantity,
        })
        .collect();
    Ok(Json(RankingView { days, items: lines }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsParams {
    /// Over how many days, today included: 1 to 90, default 7.
    #[param(minimum = 1, maximum = 90)]
    days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatsView {
    product_id: String,
    items: Vec<StatsLine>,
}

/// One day's sales of the product.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatsLine {
    #[schema(example = "2026-12-03")]
    date: String,
    quantity: u64,
    amount: Won,
}

/// Admin only: a product's sales per day.
#[utoipa::path(get, path = "/products/{productId}/stats", operation_id = "getProductStats", tag = "products",
    params(("productId" = String, Path), StatsParams),
    responses(
        (status = 200, body = StatsView),
        (status = 400, description = "an id of the wrong shape, or days out of range"),
        (status = 403, description = "the caller is not an admin"),
        (status = 404, description = "no such product"),
    ))]
async fn stats(
    State(service): State<Arc<ProductService>>,
    _: Admin,
    PathId(product_id): PathId,
    QueryParams(params): QueryParams<StatsParams>,
) -> Result<Json<StatsView>, ApiError> {
    let days = params.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(ApiError::bad_request(
            "INVALID_DAYS",
            "days must be from 1 to 90",
        ));
    }
    if service.product(&product_id).await?.is_none() {
        return Err(ApiError::not_found("no such product"));
    }
    let lines: Vec<StatsLine> = service
        .product_stats(&product_id, days)
        .await?
        .into_iter()
        .map(|s| StatsLine {
            date: s.day,
            quantity: s.quantity,
            amount: s.amount,
        })
        .collect();
    Ok(Json(StatsView {
        product_id,
        items: lines,
    }))
}
