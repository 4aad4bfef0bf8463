//! Reading SQS queues in tests: long polls until what is expected arrived, or a deadline.

use std::time::Duration;

use aws_sdk_sqs::types::Message;
use tokio::time::Instant;

/// Receives from `queue` until `expected` messages arrived (failing at `within`), then waits
/// one more long poll to be sure nothing else comes: SNS delivers to SQS asynchronously, so
/// "held back by a filter" can only be shown as "not there once the others were".
pub async fn receive_exactly(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    expected: usize,
    within: Duration,
) -> Vec<Message> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    while received.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} messages arrived in {queue} within {within:?}",
            received.len()
        );
        received.extend(receive(sqs, queue, 1).await);
    }
    let more = receive(sqs, queue, 1).await;
    assert!(
        more.is_empty(),
        "more than {expected} messages arrived in {queue}: {more:?}"
    );
    received
}

/// One long poll of up to `wait_seconds`: up to ten messages, with their attributes.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue: &str, wait_seconds: i32) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap_or_else(|e| panic!("receive from {queue}: {e}"))
        .messages
        .unwrap_or_default()
}

/// Waits until no message is in `queues`, visible or in flight (failing at `within`).
pub async fn drained(sqs: &aws_sdk_sqs::Client, queues: &[String], within: Duration) {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let deadline = Instant::now() + within;
    loop {
        let mut busy = Vec::new();
        for queue in queues {
            let attributes = sqs
                .get_queue_attributes()
                .queue_url(queue)
                .attribute_names(ApproximateNumberOfMessages)
                .attribute_names(ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .unwrap_or_else(|e| panic!("attributes of {queue}: {e}"))
                .attributes
                .unwrap_or_default();
            let count = |name| {
                attributes
                    .get(&name)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let held =
                count(ApproximateNumberOfMessages) + count(ApproximateNumberOfMessagesNotVisible);
            if held > 0 {
                busy.push(format!("{queue}: {held}"));
            }
        }
        if busy.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queues still hold messages after {within:?}: {busy:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
