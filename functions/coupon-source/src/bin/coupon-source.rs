//! Lambda: every function of the coupon-source service, chosen by `HANDLER`: its HTTP API
//! behind API Gateway (`coupon-source-api`).

use std::sync::Arc;

use coupon_source_service::app::{CouponSourceService, issue_limit};
use coupon_source_service::functions;
use platform::lambda;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    let handler = lambda::known_handler_from_env(functions::HANDLERS)?;
    let limit = issue_limit(&platform::config::ProcessEnv)?;
    let service =
        Arc::new(CouponSourceService::new(lambda::ports_from_env().await?).with_issue_limit(limit));
    match handler {
        functions::API => {
            lambda::run_http_api(coupon_source_service::api::router(service), handler).await
        }
        other => Err(lambda::unknown_handler(other, functions::HANDLERS).into()),
    }
}
