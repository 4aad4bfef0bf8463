//! Lambda: the coupon table's stream relay, publishing its outbox to the coupon topic.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::lambda::run_stream_relay().await
}
