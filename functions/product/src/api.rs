//! The product service's HTTP API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use contract::Won;
use platform::http::{
    Admin, ApiError, Identity, JsonBody, ListPage, PageParams, PathId, QueryParams,
};
use serde::{Deserialize, Serialize};

use crate::app::{ProductChange, ProductFailure, ProductService};
use crate::domain::RANK_WINDOW_DAYS;
use crate::repo::Product;

pub fn router(service: Arc<ProductService>) -> Router {
    Router::new()
        .route("/products", get(list).post(register))
        .route("/products/ranking", get(ranking))
        .route("/products/{product_id}", get(read).patch(change))
        .route("/products/{product_id}/stats", get(stats))
        .with_state(service)
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductView {
    product_id: String,
    name: String,
    price: Won,
    stock: u64,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    name: String,
    price: i64,
    stock: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    product_id: String,
}

async fn register(
    State(service): State<Arc<ProductService>>,
    _: Admin,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let product = service
        .register(&body.name, body.price, body.stock)
        .await
        .map_err(failure)?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            product_id: product.product_id,
        }),
    ))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChangeBody {
    price: Option<i64>,
    /// Stock to add (positive) or remove (negative).
    stock_delta: Option<i64>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RankingParams {
    days: Option<u32>,
    limit: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RankingLine {
    rank: u32,
    product_id: String,
    name: String,
    quantity_sold: u64,
}

async fn ranking(
    State(service): State<Arc<ProductService>>,
    _: Identity,
    QueryParams(params): QueryParams<RankingParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(serde_json::json!({ "days": days, "items": lines })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    days: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsLine {
    date: String,
    quantity: u64,
    amount: Won,
}

async fn stats(
    State(service): State<Arc<ProductService>>,
    _: Admin,
    PathId(product_id): PathId,
    QueryParams(params): QueryParams<StatsParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(
        serde_json::json!({ "productId": product_id, "items": lines }),
    ))
}
