//! Lambda: the user table's stream relay, publishing `UserRegistered` to the user topic.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    platform::lambda::run_stream_relay().await
}
