//! Lambda: the balance service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(balance_service::app::BalanceService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_http_api(balance_service::api::router(service), "balance-api").await
}
