//! Lambda: the payment service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(payment_service::app::PaymentService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_http_api(payment_service::api::router(service), "payment-api").await
}
