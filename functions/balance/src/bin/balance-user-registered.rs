//! Lambda: the consumer of the `balance-user-registered` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(balance_service::app::BalanceService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_sqs_consumer(
        "balance-user-registered",
        balance_service::app::BalanceConsumer(service),
    )
    .await
}
