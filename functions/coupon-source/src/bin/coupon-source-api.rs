//! Lambda: the coupon-source service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = Arc::new(coupon_source_service::app::CouponSourceService::new(
        platform::lambda::ports_from_env().await?,
    ));
    platform::lambda::run_http_api(
        coupon_source_service::api::router(service),
        "coupon-source-api",
    )
    .await
}
