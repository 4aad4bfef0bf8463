//! Lambda: every function of the product service, chosen by `HANDLER`: its HTTP API behind
//! API Gateway (`product-api`) and the consumer of its queues `product-order-created`,
//! `product-order-confirmed` and `product-order-undo` (`product-events`).

use std::sync::Arc;

use platform::lambda;
use product_service::app::{ProductConsumer, ProductService};
use product_service::functions;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let service = Arc::new(ProductService::new(lambda::ports_from_env().await?));
    match handler {
        functions::API => {
            lambda::run_http_api(product_service::api::router(service), handler).await
        }
        functions::EVENTS => lambda::run_sqs_consumer(handler, ProductConsumer(service)).await,
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
