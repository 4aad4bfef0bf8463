//! Lambda: every function of the payment service, chosen by `HANDLER`: its HTTP API behind
//! API Gateway (`payment-api`) and the consumer of its queues `payment-order-created`,
//! `payment-balance-answers` and `payment-order-undo` (`payment-events`).

use std::sync::Arc;

use payment_service::app::{PaymentConsumer, PaymentService};
use payment_service::functions;
use platform::lambda;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let service = Arc::new(PaymentService::new(lambda::ports_from_env().await?));
    match handler {
        functions::API => {
            lambda::run_http_api(payment_service::api::router(service), handler).await
        }
        functions::EVENTS => lambda::run_sqs_consumer(handler, PaymentConsumer(service)).await,
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
