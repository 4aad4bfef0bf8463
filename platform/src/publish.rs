//! The publishing port: an envelope goes to its producer's topic (one topic per service).

use async_trait::async_trait;
use contract::Envelope;

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes with the `type` and `source` message attributes subscriptions filter on.
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError>;
}
