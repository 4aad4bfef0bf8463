//! Lambda: the consumer of the `order-step-results` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(order_service::app::OrderService::from_env().await?);
    platform::lambda::run_sqs_consumer(
        "order-step-results",
        order_service::app::OrderConsumer(service),
    )
    .await
}
