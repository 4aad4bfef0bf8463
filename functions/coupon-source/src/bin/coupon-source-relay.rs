//! Lambda: the coupon-source table's stream relay, publishing its outbox to the coupon-source topic.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::lambda::run_stream_relay().await
}
