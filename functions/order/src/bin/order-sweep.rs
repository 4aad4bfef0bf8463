//! Lambda: the expiry sweep, on an EventBridge schedule.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = order_service::app::OrderSettings::from_env(&platform::config::ProcessEnv)?;
    let orders = Arc::new(order_service::app::OrderService::new(
        platform::lambda::ports_from_env().await?,
        settings,
    ));
    let orders = &orders;
    platform::lambda::run_scheduled(move || async move {
        orders
            .sweep()
            .await
            .map(|r| format!("{} due, {} changed", r.due, r.changed))
    })
    .await
}
