//! Lambda: the consumer of the `payment-balance-answers` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(payment_service::app::PaymentService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_sqs_consumer(
        "payment-balance-answers",
        payment_service::app::PaymentConsumer(service),
    )
    .await
}
