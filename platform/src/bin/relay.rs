//! Lambda: every domain table's stream relay, publishing the table's outbox to its domain's
//! topic (`TOPIC_ARN`). `HANDLER` may be unset; if set, it must be `relay`.

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    platform::lambda::run_stream_relay().await
}
