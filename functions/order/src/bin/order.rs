//! Lambda: every function of the order service, chosen by `HANDLER`: its HTTP API behind
//! API Gateway (`order-api`), the saga's consumer of the `order-catalogue` and
//! `order-step-results` queues (`order-events`), the timeline's consumer of the
//! `order-timeline` queue (`order-timeline`), and the expiry sweep on an EventBridge
//! schedule (`order-sweep`).

use std::sync::Arc;

use order_service::app::{OrderConsumer, OrderService, TimelineConsumer};
use order_service::functions;
use platform::lambda;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let orders = Arc::new(OrderService::from_env().await?);
    match handler {
        functions::API => lambda::run_http_api(order_service::api::router(orders), handler).await,
        functions::EVENTS => lambda::run_sqs_consumer(handler, OrderConsumer(orders)).await,
        functions::TIMELINE => lambda::run_sqs_consumer(handler, TimelineConsumer(orders)).await,
        functions::SWEEP => {
            let orders = &orders;
            lambda::run_scheduled(handler, move || async move {
                orders
                    .sweep()
                    .await
                    .map(|r| format!("{} due, {} changed", r.due, r.changed))
            })
            .await
        }
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
