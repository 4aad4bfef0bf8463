//! Lambda: the coupon-source service's HTTP API behind API Gateway.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use coupon_source_service::app::{CouponSourceService, issue_limit};
    let limit = issue_limit(&platform::config::ProcessEnv)?;
    let service = Arc::new(
        CouponSourceService::new(platform::lambda::ports_from_env().await?).with_issue_limit(limit),
    );
    platform::lambda::run_http_api(
        coupon_source_service::api::router(service),
        "coupon-source-api",
    )
    .await
}
