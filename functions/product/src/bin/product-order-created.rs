//! Lambda: the consumer of the `product-order-created` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(product_service::app::ProductService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_sqs_consumer(
        "product-order-created",
        product_service::app::ProductConsumer(service),
    )
    .await
}
