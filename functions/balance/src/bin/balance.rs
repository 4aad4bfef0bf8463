//! Lambda: every function of the balance service, chosen by `HANDLER`: its HTTP API behind
//! API Gateway (`balance-api`) and the consumer of its queues `balance-user-registered`,
//! `balance-payment-requested` and `balance-refund-requested` (`balance-events`).

use std::sync::Arc;

use balance_service::app::{BalanceConsumer, BalanceService};
use balance_service::functions;
use platform::lambda;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let service = Arc::new(BalanceService::new(lambda::ports_from_env().await?));
    match handler {
        functions::API => {
            lambda::run_http_api(balance_service::api::router(service), handler).await
        }
        functions::EVENTS => lambda::run_sqs_consumer(handler, BalanceConsumer(service)).await,
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
