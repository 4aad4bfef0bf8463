//! Lambda: the order service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(order_service::app::OrderService::from_env().await?);
    platform::lambda::run_http_api(order_service::api::router(service), "order-api").await
}
