//! The event source mapping, played locally: polls one queue of the in-memory bus, hands
//! batches to the function, deletes what succeeded. Failed messages stay in flight until
//! their visibility timeout and come back; `maxReceiveCount` moves them to the DLQ.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use tokio::sync::watch;

use super::MemoryBus;
use crate::batch::{SqsFunction, sqs_message};

/// Longest sleep while nothing is visible; visibility timeouts are noticed at least this often.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Runs until `shutdown` turns true. Returns how many batches it delivered.
pub async fn run(
    bus: Arc<MemoryBus>,
    queue: String,
    function: Arc<dyn SqsFunction>,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    let mut batches = 0;
    let batch_size = bus.batch_size(&queue).unwrap_or(10);
    while !*shutdown.borrow() {
        // Register interest before looking, so a publish in between is not missed.
        let arrival = bus.arrival();
        tokio::pin!(arrival);
        arrival.as_mut().enable();
        let messages = match bus.receive(&queue, batch_size) {
            Ok(m) => m,
            Err(error) => {
                tracing::error!(%queue, %error, "event source mapping stopped");
                return batches;
            }
        };
        if messages.is_empty() {
            tokio::select! {
                _ = &mut arrival => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                sqs_message(
                    &m.message_id,
                    &m.receipt_handle,
                    &m.body,
                    &m.attributes,
                    m.receive_count,
                )
            })
            .collect();
        let response = function.handle_batch(event).await;
        batches += 1;
        for m in &messages {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == m.message_id);
            if !failed {
                // A stale receipt means the message timed out and was received again
                // meanwhile; like SQS, the delete then does nothing.
                let _ = bus.delete(&queue, &m.receipt_handle);
            }
        }
    }
    batches
}
