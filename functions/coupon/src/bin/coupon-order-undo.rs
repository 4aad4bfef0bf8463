//! Lambda: the consumer of the `coupon-order-undo` queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(coupon_service::app::CouponService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_sqs_consumer(
        "coupon-order-undo",
        coupon_service::app::CouponConsumer(service),
    )
    .await
}
