//! The event source mapping, played locally: polls one queue of the in-memory bus, hands
//! batches to the function, deletes what succeeded. Failed messages stay in flight until
//! their visibility timeout and come back; `maxReceiveCount` moves them to the DLQ. The
//! queue's spec gives the batch size, the batching window and how many batches run at once
//! (the template's `MaximumConcurrency`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use tokio::sync::watch;

use super::{Delivered, MemoryBus};
use crate::batch::{SqsFunction, fill_batch, sqs_message};

/// Longest sleep while nothing is visible; visibility timeouts are noticed at least this often.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Runs the queue's pollers until `shutdown` turns true. Returns how many batches they
/// delivered.
pub async fn run(
    bus: Arc<MemoryBus>,
    queue: String,
    function: Arc<dyn SqsFunction>,
    shutdown: watch::Receiver<bool>,
) -> u64 {
    let spec = match bus.spec(&queue) {
        Ok(spec) => spec,
        Err(error) => {
            tracing::error!(%queue, %error, "event source mapping not started");
            return 0;
        }
    };
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..spec.pollers {
        pollers.spawn(poll(
            bus.clone(),
            queue.clone(),
            spec.batch_size,
            spec.batching_window,
            function.clone(),
            shutdown.clone(),
        ));
    }
    let mut batches = 0;
    while let Some(done) = pollers.join_next().await {
        match done {
            Ok(n) => batches += n,
            Err(error) => tracing::error!(%queue, %error, "a poller failed"),
        }
    }
    batches
}

/// One poller: one batch at a time.
async fn poll(
    bus: Arc<MemoryBus>,
    queue: String,
    batch_size: usize,
    batching_window: Duration,
    function: Arc<dyn SqsFunction>,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    let mut batches = 0;
    while !*shutdown.borrow() {
        let messages = match receive(&bus, &queue, batch_size, IDLE_POLL, &mut shutdown).await {
            Ok(m) => m,
            Err(error) => {
                tracing::error!(%queue, %error, "event source mapping stopped");
                return batches;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let messages = fill_batch(messages, batch_size, batching_window, |wanted, left| {
            let (bus, queue, mut shutdown) = (bus.clone(), queue.clone(), shutdown.clone());
            async move {
                if *shutdown.borrow() {
                    return None;
                }
                receive(&bus, &queue, wanted, left, &mut shutdown)
                    .await
                    .ok()
            }
        })
        .await;
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

/// Up to `max` messages; when none is visible, waits up to `wait` for one to arrive (a long
/// poll), or less if asked to stop.
async fn receive(
    bus: &MemoryBus,
    queue: &str,
    max: usize,
    wait: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Vec<Delivered>, super::BusError> {
    // Register interest before looking, so a publish in between is not missed.
    let arrival = bus.arrival();
    tokio::pin!(arrival);
    arrival.as_mut().enable();
    let messages = bus.receive(queue, max)?;
    if messages.is_empty() {
        tokio::select! {
            _ = &mut arrival => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
    Ok(messages)
}
