//! The stream relay: records that carry events only, in order, stopping at the first failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use contract::{Envelope, EventMeta, StockReserved};
use platform::invocations::{Invocations, Meter};
use platform::outbox::{EVENTS_ATTRIBUTE, MemoryOutbox, dynamo_item, encode_events};
use platform::packing::{Packed, Packing, Stored};
use platform::publish::{EventPublisher, PublishError};
use platform::relay::{OutboxRecord, handle_stream, outbox_records, relay, run_memory_relay};

fn reserved(n: u32) -> Envelope {
    let meta = EventMeta {
        event_id: format!("e-{n}"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        correlation_id: format!("o-{n}"),
        causation_id: None,
    };
    Envelope::new(
        meta,
        format!("o-{n}"),
        StockReserved {
            order_id: format!("o-{n}"),
        },
    )
}

/// Publishes into a list; refuses the event ids in `refuse`.
#[derive(Default)]
struct ListPublisher {
    published: Mutex<Vec<String>>,
    refuse: Vec<String>,
}

#[async_trait]
impl EventPublisher for ListPublisher {
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError> {
        if self.refuse.contains(&event.event_id) {
            return Err(PublishError("throttled".into()));
        }
        self.published.lock().unwrap().push(event.event_id.clone());
        Ok(())
    }
}

fn record(seq: u32, event: Envelope) -> OutboxRecord {
    OutboxRecord {
        sequence_number: seq.to_string(),
        events: Ok(vec![event]),
        written_at: None,
    }
}

#[tokio::test]
async fn the_relay_publishes_in_order_and_stops_at_the_first_failure() {
    let publisher = ListPublisher {
        refuse: vec!["e-2".into()],
        ..Default::default()
    };
    let records = (1..=3).map(|n| record(100 + n, reserved(n)));
    let failure = relay(records, &publisher).await.unwrap_err();
    assert_eq!(failure.sequence_number, "102");
    assert_eq!(*publisher.published.lock().unwrap(), ["e-1"]);

    let ok = ListPublisher::default();
    assert_eq!(
        relay((1..=3).map(|n| record(n, reserved(n))), &ok).await,
        Ok(3)
    );
}

#[tokio::test]
async fn an_unreadable_outbox_item_is_reported_not_skipped() {
    let publisher = ListPublisher::default();
    let records = vec![
        record(1, reserved(1)),
        OutboxRecord {
            sequence_number: "2".into(),
            events: Err("garbled".into()),
            written_at: None,
        },
        record(3, reserved(3)),
    ];
    assert_eq!(
        relay(records, &publisher)
            .await
            .unwrap_err()
            .sequence_number,
        "2"
    );
    assert_eq!(*publisher.published.lock().unwrap(), ["e-1"]);
}

/// A DynamoDB stream batch as Lambda delivers it, built from the items we write.
fn stream_event(
    items: Vec<(&str, &str, serde_json::Value)>,
) -> aws_lambda_events::event::dynamodb::Event {
    let records: Vec<serde_json::Value> = items
        .into_iter()
        .map(|(name, seq, image)| {
            serde_json::json!({
                "eventID": format!("id-{seq}"),
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1764000000,
                    "Keys": {"pk": image["pk"].clone(), "sk": image["sk"].clone()},
                    "NewImage": image,
                    "SequenceNumber": seq,
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/user/stream/2026-11-24T00:00:00.000"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

/// The outbox item we write, in the stream's attribute-value JSON.
fn outbox_image(event: &Envelope) -> serde_json::Value {
    let item = dynamo_item(
        std::slice::from_ref(event),
        Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        Packing::Text,
    );
    stream_image(item)
}

/// An item as a stream record's JSON shows it (binary as base64).
fn stream_image(
    item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> serde_json::Value {
    let image: serde_json::Map<String, serde_json::Value> = item
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::to_value(serde_dynamo::AttributeValue::from(v)).unwrap(),
            )
        })
        .collect();
    serde_json::Value::Object(image)
}

/// A state item that carries the events of its write, as the document store writes it
/// (deflated: events of any length are).
fn carrying(pk: &str, events: &[Envelope]) -> serde_json::Value {
    use aws_sdk_dynamodb::types::AttributeValue as Value;
    let events = platform::dynamo::packed(encode_events(events), Packing::Deflate);
    assert!(events.is_b(), "events stored as text: {events:?}");
    stream_image(std::collections::HashMap::from([
        ("pk".to_owned(), Value::S(pk.to_owned())),
        ("sk".to_owned(), Value::S("ORDER".to_owned())),
        ("v".to_owned(), Value::N("2".to_owned())),
        ("body".to_owned(), Value::S("{}".to_owned())),
        (EVENTS_ATTRIBUTE.to_owned(), events),
    ]))
}

#[tokio::test]
async fn the_stream_handler_relays_records_that_carry_events_and_reports_the_failed_one() {
    let user_item =
        serde_json::json!({"pk": {"S": "USER#u-1"}, "sk": {"S": "PROFILE"}, "name": {"S": "Kim"}});
    let event = stream_event(vec![
        ("INSERT", "1", user_item.clone()),
        ("INSERT", "2", outbox_image(&reserved(1))),
        ("REMOVE", "3", outbox_image(&reserved(9))),
        ("MODIFY", "4", user_item),
        (
            "MODIFY",
            "5",
            carrying("ORDER#o-2", &[reserved(2), reserved(3)]),
        ),
        ("INSERT", "6", carrying("ORDER#o-4", &[reserved(4)])),
    ]);
    let records = outbox_records(&event);
    let seqs: Vec<&str> = records.iter().map(|r| r.sequence_number.as_str()).collect();
    assert_eq!(seqs, ["2", "5", "6"]);

    // The second event of record 5 fails: the stream goes on from record 5, both its events
    // again (a duplicate of e-2 that consumers absorb), and nothing after it now.
    let publisher = ListPublisher {
        refuse: vec!["e-3".into()],
        ..Default::default()
    };
    let response = handle_stream(event, &publisher).await;
    let failed: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [Some("5".to_owned())]);
    assert_eq!(*publisher.published.lock().unwrap(), ["e-1", "e-2"]);
}

#[test]
fn carried_events_decode_as_written_and_garbage_is_reported() {
    let events = [reserved(1), reserved(2)];
    let text = encode_events(&events);
    let decoded = platform::outbox::decode_events(Some(Stored::Text(&text)));
    assert_eq!(decoded, Ok(events.to_vec()));
    let Packed::Deflated(deflated) = Packing::Deflate.pack(text) else {
        panic!("two envelopes do not deflate smaller");
    };
    let decoded = platform::outbox::decode_events(Some(Stored::Deflated(&deflated)));
    assert_eq!(decoded, Ok(events.to_vec()));
    assert_eq!(
        platform::outbox::decode_events(Some(Stored::Text("[]"))),
        Ok(vec![])
    );
    for garbage in [
        None,
        Some(Stored::Text("{}")),
        Some(Stored::Text("[1]")),
        Some(Stored::Text("[{\"eventType\": \"Nope\"}]")),
        Some(Stored::Deflated(b"not deflate")),
    ] {
        assert!(
            platform::outbox::decode_events(garbage).is_err(),
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn what_comes_before_an_unreadable_record_is_published_and_the_relay_stops_there() {
    let publisher = ListPublisher::default();
    let records = vec![
        record(1, reserved(1)),
        record(2, reserved(2)),
        OutboxRecord {
            sequence_number: "3".into(),
            events: Err("a stream record without readable events".into()),
            written_at: None,
        },
        record(4, reserved(4)),
    ];
    let failure = relay(records, &publisher).await.unwrap_err();
    assert_eq!(failure.sequence_number, "3");
    assert!(failure.reason.contains("readable"), "{failure}");
    assert_eq!(*publisher.published.lock().unwrap(), ["e-1", "e-2"]);
}

#[tokio::test]
async fn the_memory_relay_publishes_what_is_appended() {
    let outbox = Arc::new(MemoryOutbox::new());
    let publisher = Arc::new(ListPublisher::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let invocations = Arc::new(Invocations::new());
    let task = tokio::spawn(run_memory_relay(
        outbox.clone(),
        publisher.clone(),
        Meter::new(invocations.clone(), "order-relay"),
        shutdown,
    ));
    outbox.append([reserved(1), reserved(2)]);
    outbox.append([reserved(3)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while publisher.published.lock().unwrap().len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(*publisher.published.lock().unwrap(), ["e-1", "e-2", "e-3"]);
    // Each batch read is one invocation of the relay function; together they carried all 3.
    let relayed = invocations.snapshot()["order-relay"];
    assert!((1..=3).contains(&relayed.invocations), "{relayed:?}");
    assert_eq!(relayed.records, 3);
}

/// Runs the relay's Lambda binary with only `env` set and waits (at most 30 s) for it to
/// end: its exit status and what it wrote to stderr.
fn relay_binary_with(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the relay binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("its status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the relay binary did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("its stderr");
    (status, stderr)
}

#[test]
fn a_lambda_binary_that_cannot_start_exits_at_once_with_one_line_naming_the_variable() {
    for (env, line) in [
        (
            vec![("HANDLER", "product-api")],
            "Error: configuration error: HANDLER: is \"product-api\", which this binary does not run (it runs: relay)\n",
        ),
        (
            vec![("HANDLER", "relay")],
            "Error: configuration error: TOPIC_ARN: is not set\n",
        ),
    ] {
        let (status, stderr) = relay_binary_with(&env);
        assert!(!status.success(), "{env:?}: {status}");
        assert_eq!(stderr, line, "{env:?}");
    }
}

/// Keeps what it is given, whole.
#[derive(Default)]
struct KeepingPublisher(Mutex<Vec<Envelope>>);

#[async_trait]
impl EventPublisher for KeepingPublisher {
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn each_event_relayed_is_a_hop_of_its_trace_and_its_age_is_the_relay_lag() {
    use contract::{Service, TraceContext};
    use platform::metrics::{MemoryMetrics, Metric};
    use platform::telemetry::{Scope, Sinks};
    use platform::xray::MemoryTraces;

    let (metrics, traces) = (
        Arc::new(MemoryMetrics::new()),
        Arc::new(MemoryTraces::new()),
    );
    let sinks = Sinks {
        metrics: Some(metrics.clone()),
        segments: Some(traces.clone()),
    };
    let api = TraceContext {
        trace_id: "1-6761a2b0-0123456789abcdef01234567".into(),
        parent_id: "53995c3f42cd8ad8".into(),
        sampled: true,
    };
    let now = Utc::now();
    let traced = Envelope {
        occurred_at: now - chrono::Duration::seconds(3),
        ..reserved(1)
    }
    .with_trace(Some(api.clone()));
    // The stream's time is rounded down to the second: the event's own, later, counts.
    let records = vec![OutboxRecord {
        sequence_number: "1".into(),
        events: Ok(vec![traced, reserved(2)]),
        written_at: Some(now - chrono::Duration::seconds(4)),
    }];
    let publisher = KeepingPublisher::default();
    let scope = Scope::new("relay", None, sinks);
    assert_eq!(scope.run(relay(records, &publisher)).await, Ok(2));

    let published = publisher.0.lock().unwrap().clone();
    let first = traces.trace(&api.trace_id);
    assert_eq!(first.len(), 1);
    let hop = &first[0];
    assert_eq!(hop.name, "product-relay");
    assert_eq!(hop.parent_id.as_deref(), Some("53995c3f42cd8ad8"));
    assert_eq!(hop.annotations["outcome"], "published");
    assert_eq!(hop.annotations["correlationId"], "o-1");
    // It goes on naming the relay's segment as its parent; the rest of it is as written.
    assert_eq!(published[0].trace, Some(hop.context()));
    let written = Envelope {
        occurred_at: published[0].occurred_at,
        ..reserved(1)
    };
    assert_eq!(published[0].clone().with_trace(None), written);
    // An event made outside any trace starts one at the relay.
    let second = published[1].trace.clone().expect("a trace");
    assert_ne!(second.trace_id, api.trace_id);
    assert_eq!(traces.trace(&second.trace_id).len(), 1);

    // 3 s for the first (made after the second the stream names), 4 s for the second (made
    // long before: the stream's time is the later).
    let lag = metrics.total(Metric::RelayLag, Service::Product, None);
    assert_eq!(lag.count, 2);
    assert!((7_000.0..7_500.0).contains(&lag.sum), "{lag:?}");
    assert!((4_000.0..4_250.0).contains(&lag.max), "{lag:?}");
}
