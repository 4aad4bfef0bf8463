//! Lambda: the consumer of the `balance-refund-requested` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(balance_service::app::BalanceService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_sqs_consumer(
        "balance-refund-requested",
        balance_service::app::BalanceConsumer(service),
    )
    .await
}
