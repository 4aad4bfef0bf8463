//! SQS batch processing with partial batch failures (`ReportBatchItemFailures`).
//!
//! Each record is decoded into an [`Envelope`] and given to the function's
//! [`EventHandler`]. Only the records that failed are reported, so SQS redelivers only
//! those. A record that cannot be an event (unparseable, unknown type) is a poison message:
//! retrying cannot fix it, so it is logged with its id and moved to the dead-letter queue.
//! So is an event its handler rejects ([`HandlerError::Reject`]); a [`HandlerError::Retry`]
//! is reported failed and comes back.
//!
//! Each event handled is one hop of its trace: a segment continuing the trace its envelope
//! carries, open while the handler runs (so the events it makes travel on in that trace), and
//! one log line saying what was decided (`handled`, `retry` or `rejected`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{
    BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute,
};
use contract::Envelope;
use tracing::Instrument;

use crate::errors::{BoxError, StoreError, chain};
use crate::metrics::{self, Metric};
use crate::telemetry::{self, Scope};
use crate::xray::Segment;

/// A consumed event was not handled, and whether it is worth another delivery.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Not now (the store was down, contended or throttled; an answer is not there yet): the
    /// message comes back after its visibility timeout.
    #[error("not handled yet; the message will come back")]
    Retry(#[source] BoxError),
    /// Never (the message is poison or the code has a bug): it goes to the dead-letter queue
    /// at once instead of being delivered `maxReceiveCount` times more.
    #[error("cannot be handled; quarantined")]
    Reject(#[source] BoxError),
}

impl HandlerError {
    pub fn retry(cause: impl Into<BoxError>) -> Self {
        HandlerError::Retry(cause.into())
    }

    pub fn reject(cause: impl Into<BoxError>) -> Self {
        HandlerError::Reject(cause.into())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Retry(_))
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        if error.is_retryable() {
            HandlerError::Retry(error.into())
        } else {
            HandlerError::Reject(error.into())
        }
    }
}

/// What became of one event.
pub type Outcome = Result<(), HandlerError>;

/// One consuming function's logic: what to do with one event. `attempt` is how many times
/// this message has been delivered, this time included (SQS `ApproximateReceiveCount`), so
/// a handler can give up after a bounded number of tries.
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &Envelope, attempt: u32) -> Result<(), HandlerError>;

    /// The events of one batch (with their attempts), for a handler that gains by taking
    /// them together (one write for many): each one's outcome, in order. `None` (the
    /// default) has each handled on its own, in order.
    async fn handle_all(&self, _events: &[(Envelope, u32)]) -> Option<Vec<Outcome>> {
        None
    }
}

#[async_trait]
impl<H: EventHandler + ?Sized> EventHandler for std::sync::Arc<H> {
    async fn handle(&self, event: &Envelope, attempt: u32) -> Result<(), HandlerError> {
        (**self).handle(event, attempt).await
    }

    async fn handle_all(&self, events: &[(Envelope, u32)]) -> Option<Vec<Outcome>> {
        (**self).handle_all(events).await
    }
}

/// Where poison messages go: the queue's dead-letter queue.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn quarantine(&self, message: &SqsMessage, reason: &str) -> Result<(), String>;
}

/// What a Lambda function subscribed to an SQS queue is: a batch in, the failures out.
#[async_trait]
pub trait SqsFunction: Send + Sync {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse;
}

/// An [`EventHandler`] run over SQS batches.
pub struct BatchProcessor<H> {
    function: String,
    handler: H,
    dead_letters: Box<dyn DeadLetters>,
}

impl<H: EventHandler> BatchProcessor<H> {
    pub fn new(
        function: impl Into<String>,
        handler: H,
        dead_letters: Box<dyn DeadLetters>,
    ) -> Self {
        BatchProcessor {
            function: function.into(),
            handler,
            dead_letters,
        }
    }

    /// The event in one record, or `None` when it is poison (then quarantined, or
    /// `Some(Err(()))` when that failed and the record must be reported failed).
    async fn decode(&self, message: &SqsMessage) -> Result<Option<(Envelope, u32)>, ()> {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let event = match Envelope::from_json(body) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(function = %self.function, message_id, decision = "rejected", error = %chain(&error), "poison message: moving it to the dead-letter queue");
                let reason = chain(&error).to_string();
                return match self.quarantine(message, reason).await {
                    true => Ok(None),
                    false => Err(()),
                };
            }
        };
        let attempt = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Ok(Some((event, attempt)))
    }

    /// What one handled record comes to, logged as one line saying what was decided and
    /// noted on its segment; `false` means report it as failed.
    async fn settle(&self, message: &SqsMessage, hop: &mut Hop, outcome: Outcome) -> bool {
        let attempt = hop.attempt;
        let (settled, decision) = async {
            match outcome {
                Ok(()) => {
                    tracing::info!(decision = "handled", attempt, "handled");
                    (true, "handled")
                }
                Err(error) if error.is_retryable() => {
                    tracing::warn!(decision = "retry", attempt, error = %chain(&error), "not handled; the message will come back");
                    (false, "retry")
                }
                Err(error) => {
                    tracing::error!(decision = "rejected", attempt, error = %chain(&error), "refused: moving it to the dead-letter queue");
                    let reason = chain(&error).to_string();
                    (self.quarantine(message, reason).await, "rejected")
                }
            }
        }
        .instrument(hop.span.clone())
        .await;
        hop.segment.annotate("outcome", decision);
        hop.segment.error = decision == "retry";
        hop.segment.fault = decision == "rejected";
        settled
    }

    /// Moves a message that can never be handled to the dead-letter queue (one
    /// `PoisonMessages`); `false` when that failed and it must be reported failed instead.
    async fn quarantine(&self, message: &SqsMessage, reason: String) -> bool {
        match self.dead_letters.quarantine(message, &reason).await {
            Ok(()) => {
                metrics::count(Metric::PoisonMessages);
                true
            }
            Err(e) => {
                // Reporting it failed still bounds it: maxReceiveCount moves it later.
                tracing::error!(function = %self.function, error = %e, "could not quarantine; reporting it failed");
                false
            }
        }
    }
}

/// Handling one event: its trace segment (the next hop of the trace the event carries) and
/// its log span.
struct Hop {
    segment: Segment,
    span: tracing::Span,
    attempt: u32,
}

impl Hop {
    fn new(scope: &Scope, message: &SqsMessage, event: &Envelope, attempt: u32) -> Hop {
        let mut segment = Segment::after(scope.function(), event.trace.as_ref());
        segment.annotate("operation", event.event_type().name());
        segment.annotate("correlationId", &event.correlation_id);
        segment.annotate("eventId", &event.event_id);
        segment.annotate("requestId", scope.request_id());
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let span = telemetry::event_span(scope, Some(message_id), &segment.trace_id, event);
        Hop {
            segment,
            span,
            attempt,
        }
    }
}

#[async_trait]
impl<H: EventHandler> SqsFunction for BatchProcessor<H> {
    async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let scope = Scope::current()
            .unwrap_or_else(|| Scope::new(&self.function, None, Default::default()));
        let mut response = SqsBatchResponse::default();
        let mut failed = |message: &SqsMessage| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        };
        // The records that are events, and their events (with their attempts), in order.
        let mut messages = Vec::with_capacity(event.records.len());
        let mut events: Vec<(Envelope, u32)> = Vec::with_capacity(event.records.len());
        for message in &event.records {
            match self.decode(message).await {
                Ok(Some(event)) => {
                    messages.push(message);
                    events.push(event);
                }
                Ok(None) => {}
                Err(()) => failed(message),
            }
        }
        let hops: Vec<Hop> = messages
            .iter()
            .zip(&events)
            .map(|(message, (event, attempt))| Hop::new(&scope, message, event, *attempt))
            .collect();
        // The handler takes the batch's events together if it does better so; otherwise
        // one at a time, in order (a batch is small, and ordering within it is kept). Either
        // way what is done for an event belongs to its segment, found by the event's id.
        let together = scope.clone().handling(
            events
                .iter()
                .zip(&hops)
                .map(|((e, _), hop)| (Some(e.event_id.as_str()), &hop.segment)),
        );
        let outcomes = together
            .run(async {
                if let Some(outcomes) = self.handler.handle_all(&events).await {
                    return outcomes;
                }
                let mut outcomes = Vec::with_capacity(events.len());
                for ((event, attempt), hop) in events.iter().zip(&hops) {
                    let handled = self.handler.handle(event, *attempt);
                    outcomes.push(handled.instrument(hop.span.clone()).await);
                }
                outcomes
            })
            .await;
        let mut outcomes = outcomes.into_iter();
        for (message, mut hop) in messages.into_iter().zip(hops) {
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(HandlerError::retry(
                    "the handler gave no outcome for this event",
                ))
            });
            if !self.settle(message, &mut hop, outcome).await {
                failed(message);
            }
            hop.segment.end();
            scope.record(hop.segment);
        }
        response
    }
}

/// Builds the SQS record Lambda would deliver for a message with these attributes.
pub fn sqs_message(
    message_id: &str,
    receipt_handle: &str,
    body: &str,
    attributes: &std::collections::BTreeMap<String, String>,
    receive_count: u32,
) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.to_owned());
    m.receipt_handle = Some(receipt_handle.to_owned());
    m.body = Some(body.to_owned());
    m.attributes = HashMap::from([(
        "ApproximateReceiveCount".to_owned(),
        receive_count.to_string(),
    )]);
    // Raw message delivery turns SNS message attributes into SQS message attributes.
    m.message_attributes = attributes
        .iter()
        .map(|(k, v)| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(v.clone());
            a.data_type = Some("String".to_owned());
            (k.clone(), a)
        })
        .collect();
    m.event_source = Some("aws:sqs".to_owned());
    m
}

/// The batching window of an event source mapping: with a first `batch` received, asks
/// `more(wanted, time_left)` for the rest until the batch holds `size` messages or `window`
/// has passed. `more` may wait up to `time_left` for messages, and answers `None` to stop
/// early (the system is stopping); without a window the first receive is the batch, as
/// Lambda does.
pub async fn fill_batch<T, F, Fut>(
    mut batch: Vec<T>,
    size: usize,
    window: std::time::Duration,
    mut more: F,
) -> Vec<T>
where
    F: FnMut(usize, std::time::Duration) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<T>>>,
{
    let deadline = tokio::time::Instant::now() + window;
    while batch.len() < size {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match more(size - batch.len(), left).await {
            Some(messages) => batch.extend(messages),
            None => break,
        }
    }
    batch
}
