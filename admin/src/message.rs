//! A message of a dead-letter or relay-failure queue, decoded for an operator: no AWS here.
//!
//! A dead-letter queue holds event envelopes (`contract::Envelope`), whether they came by
//! the queue's redrive policy (received too often: the attributes they were published with)
//! or were quarantined by the batch processor (refused, or not an event at all: the body
//! and `poisonReason`, the error's cause chain, `platform::lambda::SqsDeadLetters`). A
//! relay-failure queue holds Lambda's on-failure records of stream batches: where on the
//! table's stream the batch was, not its events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The message attributes the platform adds when it quarantines a message: why.
pub const ERROR_ATTRIBUTES: [&str; 1] = ["poisonReason"];

/// A message as received, without its receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub body: String,
    /// Its message attributes (name → (data type, value)); binary ones are left out.
    pub attributes: BTreeMap<String, (String, String)>,
    /// SQS's `ApproximateReceiveCount`.
    pub receive_count: Option<u32>,
    /// SQS's `SentTimestamp`: when it was sent to the queue it is in (or, moved by a redrive
    /// policy, to its first queue).
    pub sent_at: Option<DateTime<Utc>>,
    /// SQS's `DeadLetterQueueSourceArn`: set when a redrive policy moved it here.
    pub dead_letter_source: Option<String>,
}

impl Message {
    /// The attributes to send it back with: those it was published with, not the error.
    pub fn attributes_to_resend(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.attributes
            .iter()
            .filter(|(name, _)| !ERROR_ATTRIBUTES.contains(&name.as_str()))
            .map(|(name, (data_type, value))| (name.as_str(), data_type.as_str(), value.as_str()))
    }
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An event envelope (`problem`: why it is not a valid event, if it is not).
    Event(EventSummary),
    /// Lambda's record of a stream batch a relay could not publish.
    RelayFailure(RelayFailure),
    /// Neither: its first characters, and why it is no event.
    Unreadable { excerpt: String, problem: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSummary {
    pub event_type: String,
    pub event_id: String,
    pub source: String,
    /// The order the event concerns: the payload's `orderId`, or an order event's aggregate.
    pub order_id: Option<String>,
    pub correlation_id: String,
    pub occurred_at: String,
    /// Why `contract::Envelope::from_json` refuses it; `None` when it is a valid event.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayFailure {
    /// Why Lambda gave up (`RetryAttemptsExhausted`, `RecordAgeExceeded`, …).
    pub condition: String,
    pub invocations: Option<u64>,
    pub shard: String,
    pub first_sequence: String,
    pub last_sequence: String,
    pub batch_size: Option<u64>,
    pub stream: String,
    pub at: String,
}

/// One message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub message_id: String,
    pub content: Content,
    /// The error attributes it carries (`poisonReason`), by name.
    pub errors: Vec<(String, String)>,
    pub receive_count: Option<u32>,
    pub sent_at: Option<DateTime<Utc>>,
    pub dead_letter_source: Option<String>,
}

/// How much of an unreadable body is shown.
const EXCERPT_CHARS: usize = 120;

pub fn decode(message: &Message) -> Summary {
    Summary {
        message_id: message.message_id.clone(),
        content: content(&message.body),
        errors: message
            .attributes
            .iter()
            .filter(|(name, _)| ERROR_ATTRIBUTES.contains(&name.as_str()))
            .map(|(name, (_, value))| (name.clone(), value.clone()))
            .collect(),
        receive_count: message.receive_count,
        sent_at: message.sent_at,
        dead_letter_source: message.dead_letter_source.clone(),
    }
}

fn content(body: &str) -> Content {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let Some(object) = json.as_ref().and_then(Value::as_object) else {
        let problem = match contract::Envelope::from_json(body) {
            Err(e) => e.to_string(),
            Ok(_) => "not a JSON object".to_owned(),
        };
        return Content::Unreadable {
            excerpt: body.chars().take(EXCERPT_CHARS).collect(),
            problem,
        };
    };
    let text = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    if let Some(batch) = object.get("DDBStreamBatchInfo") {
        let context = object.get("requestContext");
        return Content::RelayFailure(RelayFailure {
            condition: text(context.and_then(|c| c.get("condition"))),
            invocations: context
                .and_then(|c| c.get("approximateInvokeCount"))
                .and_then(Value::as_u64),
            shard: text(batch.get("shardId")),
            first_sequence: text(batch.get("startSequenceNumber")),
            last_sequence: text(batch.get("endSequenceNumber")),
            batch_size: batch.get("batchSize").and_then(Value::as_u64),
            stream: text(batch.get("streamArn")),
            at: text(object.get("timestamp")),
        });
    }
    let problem = contract::Envelope::from_json(body)
        .err()
        .map(|e| e.to_string());
    if !object.contains_key("type") {
        return Content::Unreadable {
            excerpt: body.chars().take(EXCERPT_CHARS).collect(),
            problem: problem.unwrap_or_default(),
        };
    }
    let source = text(object.get("source"));
    let order_id = object
        .get("payload")
        .and_then(|p| p.get("orderId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| (source == "order").then(|| text(object.get("aggregateId"))))
        .filter(|id| !id.is_empty());
    Content::Event(EventSummary {
        event_type: text(object.get("type")),
        event_id: text(object.get("eventId")),
        source,
        order_id,
        correlation_id: text(object.get("correlationId")),
        occurred_at: text(object.get("occurredAt")),
        problem,
    })
}

/// The summary as the operator reads it: a few indented lines.
pub fn render(summary: &Summary) -> String {
    let mut out = format!("message {}", summary.message_id);
    if let Some(count) = summary.receive_count {
        out.push_str(&format!(", received {count}×"));
    }
    if let Some(sent) = summary.sent_at {
        out.push_str(&format!(", sent {}", sent.to_rfc3339()));
    }
    out.push('\n');
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!("  {label:<9} {value}\n"));
    };
    match &summary.content {
        Content::Event(e) => {
            line(
                "event",
                &format!("{} {} from {}", e.event_type, e.event_id, e.source),
            );
            line("order", e.order_id.as_deref().unwrap_or("-"));
            line("saga", &e.correlation_id);
            line("occurred", &e.occurred_at);
            if let Some(problem) = &e.problem {
                line("invalid", problem);
            }
        }
        Content::RelayFailure(r) => {
            let invocations = r
                .invocations
                .map(|n| format!(" after {n} invocations"))
                .unwrap_or_default();
            line(
                "relay",
                &format!("{}{invocations} at {}", r.condition, r.at),
            );
            let size = r.batch_size.map(|n| n.to_string()).unwrap_or_default();
            line(
                "batch",
                &format!(
                    "{size} records, {} from {} to {}",
                    r.shard, r.first_sequence, r.last_sequence
                ),
            );
            line("stream", &r.stream);
        }
        Content::Unreadable { excerpt, problem } => {
            line("body", &format!("{excerpt:?}"));
            line("invalid", problem);
        }
    }
    for (name, value) in &summary.errors {
        line("error", &format!("{name}: {value}"));
    }
    if let Some(source) = &summary.dead_letter_source {
        line("from", source);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, attributes: &[(&str, &str)]) -> Message {
        Message {
            message_id: "m-1".into(),
            body: body.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ("String".to_owned(), (*v).to_owned())))
                .collect(),
            receive_count: Some(2),
            sent_at: None,
            dead_letter_source: None,
        }
    }

    const ORDER_CREATED: &str = r#"{"eventId":"e-1","type":"OrderCreated","source":"order","aggregateId":"o-42","occurredAt":"2026-05-01T09:59:59Z","correlationId":"o-42","version":1,"payload":{"orderId":"o-42","userId":"u-1","items":[{"productId":"p-1","quantity":2,"unitPrice":3000}],"totalAmount":6000,"discountAmount":0,"paymentAmount":6000,"expiresAt":"2026-05-01T10:09:59Z"}}"#;

    #[test]
    fn an_event_quarantined_by_the_batch_processor_shows_its_type_order_and_reason() {
        let summary = decode(&message(
            ORDER_CREATED,
            &[(
                "poisonReason",
                "cannot be handled; quarantined: a stored item is unreadable",
            )],
        ));
        let Content::Event(event) = &summary.content else {
            panic!("{summary:?}")
        };
        assert_eq!(event.event_type, "OrderCreated");
        assert_eq!(event.event_id, "e-1");
        assert_eq!(event.order_id.as_deref(), Some("o-42"));
        assert_eq!(event.correlation_id, "o-42");
        assert_eq!(event.occurred_at, "2026-05-01T09:59:59Z");
        assert_eq!(event.problem, None, "a valid event");
        assert_eq!(
            summary.errors,
            [(
                "poisonReason".to_owned(),
                "cannot be handled; quarantined: a stored item is unreadable".to_owned()
            )]
        );
        let text = render(&summary);
        assert!(text.contains("OrderCreated e-1 from order"), "{text}");
        assert!(text.contains("order     o-42"), "{text}");
        assert!(text.contains("poisonReason: cannot be handled"), "{text}");
    }

    #[test]
    fn a_step_result_names_its_order_from_the_payload() {
        let body = r#"{"eventId":"e-2","type":"StockReserved","source":"product","aggregateId":"p-1","occurredAt":"2026-05-01T10:00:00Z","correlationId":"o-42","causationId":"e-1","version":1,"payload":{"orderId":"o-42"}}"#;
        let Content::Event(event) = decode(&message(body, &[])).content else {
            panic!()
        };
        assert_eq!(event.order_id.as_deref(), Some("o-42"));
        assert_eq!(event.source, "product");
        assert_eq!(event.problem, None);
    }

    #[test]
    fn an_envelope_that_is_no_valid_event_still_shows_what_it_says_and_why_it_is_refused() {
        let wrong_source = ORDER_CREATED.replace(r#""source":"order""#, r#""source":"product""#);
        let Content::Event(event) = decode(&message(&wrong_source, &[])).content else {
            panic!()
        };
        assert_eq!(event.event_type, "OrderCreated");
        assert_eq!(event.order_id.as_deref(), Some("o-42"));
        let problem = event.problem.expect("refused");
        assert!(problem.contains("produced by order"), "{problem}");

        let unknown = ORDER_CREATED.replace("OrderCreated", "OrderTeleported");
        let Content::Event(event) = decode(&message(&unknown, &[])).content else {
            panic!()
        };
        assert!(event.problem.unwrap().contains("unknown event type"));
    }

    #[test]
    fn a_body_that_is_no_envelope_is_shown_as_it_is() {
        let summary = decode(&message("this is not an event", &[("poisonReason", "x")]));
        let Content::Unreadable { excerpt, problem } = &summary.content else {
            panic!("{summary:?}")
        };
        assert_eq!(excerpt, "this is not an event");
        assert!(problem.contains("not an event envelope"), "{problem}");
        assert_eq!(summary.errors.len(), 1);
        let long = "x".repeat(500);
        let Content::Unreadable { excerpt, .. } = decode(&message(&long, &[])).content else {
            panic!()
        };
        assert_eq!(excerpt.len(), EXCERPT_CHARS);
        assert!(matches!(
            decode(&message(r#"{"hello": 1}"#, &[])).content,
            Content::Unreadable { .. }
        ));
    }

    #[test]
    fn a_relay_failure_record_names_its_stream_batch() {
        let body = r#"{"requestContext":{"requestId":"r-1","functionArn":"arn:aws:lambda:eu-west-1:1:function:shop-UserRelayFunction","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2026-05-01T10:00:00.000Z","DDBStreamBatchInfo":{"shardId":"shardId-0001","startSequenceNumber":"100","endSequenceNumber":"104","approximateArrivalOfFirstRecord":"2026-05-01T09:59:00Z","approximateArrivalOfLastRecord":"2026-05-01T09:59:01Z","batchSize":5,"streamArn":"arn:aws:dynamodb:eu-west-1:1:table/shop-UserTable/stream/2026"}}"#;
        let summary = decode(&message(body, &[]));
        assert_eq!(
            summary.content,
            Content::RelayFailure(RelayFailure {
                condition: "RetryAttemptsExhausted".into(),
                invocations: Some(11),
                shard: "shardId-0001".into(),
                first_sequence: "100".into(),
                last_sequence: "104".into(),
                batch_size: Some(5),
                stream: "arn:aws:dynamodb:eu-west-1:1:table/shop-UserTable/stream/2026".into(),
                at: "2026-05-01T10:00:00.000Z".into(),
            })
        );
        let text = render(&summary);
        assert!(
            text.contains("5 records, shardId-0001 from 100 to 104"),
            "{text}"
        );
    }

    #[test]
    fn a_message_goes_back_with_its_own_attributes_not_the_error() {
        let m = message(
            ORDER_CREATED,
            &[
                ("type", "OrderCreated"),
                ("hasCoupon", "false"),
                ("poisonReason", "x"),
            ],
        );
        let resent: Vec<_> = m.attributes_to_resend().collect();
        assert_eq!(
            resent,
            [
                ("hasCoupon", "String", "false"),
                ("type", "String", "OrderCreated")
            ]
        );
    }
}
