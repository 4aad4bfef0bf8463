//! Lambda: every function of the coupon service, chosen by `HANDLER`: its HTTP API behind
//! API Gateway (`coupon-api`) and the consumer of its queues `coupon-coupon-issued`,
//! `coupon-order-created` and `coupon-order-undo` (`coupon-events`).

use std::sync::Arc;

use coupon_service::app::{CouponConsumer, CouponService};
use coupon_service::functions;
use platform::lambda;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let service = Arc::new(CouponService::new(lambda::ports_from_env().await?));
    match handler {
        functions::API => lambda::run_http_api(coupon_service::api::router(service), handler).await,
        functions::EVENTS => lambda::run_sqs_consumer(handler, CouponConsumer(service)).await,
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
