//! Lambda: the product service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(product_service::app::ProductService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_http_api(product_service::api::router(service), "product-api").await
}
