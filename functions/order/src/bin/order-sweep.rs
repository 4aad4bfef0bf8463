//! Lambda: the expiry sweep, on an EventBridge schedule.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let orders = Arc::new(order_service::app::OrderService::from_env().await?);
    let orders = &orders;
    platform::lambda::run_scheduled(move || async move {
        orders
            .sweep()
            .await
            .map(|r| format!("{} due, {} changed", r.due, r.changed))
    })
    .await
}
