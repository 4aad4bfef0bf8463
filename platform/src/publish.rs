//! The publishing port: an envelope goes to its producer's topic (one topic per service).

use async_trait::async_trait;
use contract::Envelope;

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

/// A batch stopped at `index`: the events before it were published, it was not (later
/// ones may have been: delivery is at least once).
#[derive(Debug, thiserror::Error)]
#[error("event {index} of the batch was not published: {error}")]
pub struct BatchError {
    pub index: usize,
    pub error: PublishError,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes with the `type` and `source` message attributes subscriptions filter on.
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError>;

    /// Publishes `events` in order, in as few requests as the transport takes.
    async fn publish_all(&self, events: &[&Envelope]) -> Result<(), BatchError> {
        for (index, event) in events.iter().enumerate() {
            self.publish(event)
                .await
                .map_err(|error| BatchError { index, error })?;
        }
        Ok(())
    }
}
