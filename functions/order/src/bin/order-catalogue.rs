//! Lambda: the consumer of the `order-catalogue` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = order_service::app::OrderSettings::from_env(&platform::config::ProcessEnv)?;
    let service = Arc::new(order_service::app::OrderService::new(
        platform::lambda::ports_from_env().await?,
        settings,
    ));
    platform::lambda::run_sqs_consumer(
        "order-catalogue",
        order_service::app::OrderConsumer(service),
    )
    .await
}
