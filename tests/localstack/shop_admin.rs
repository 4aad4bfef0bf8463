//! `shop-admin` on the local system on AWS APIs: a rejected event in its dead-letter queue is
//! listed, shown, redriven and consumed, and the order's saga is printed. The commands' own
//! library functions are called (what `main.rs` prints is their rendering).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::{Envelope, Service};
use platform::batch::{BatchProcessor, EventHandler, HandlerError, SqsFunction};
use platform::docstore::dynamodb::DynamoDocStore;
use platform::lambda::SqsDeadLetters;
use serde_json::json;
use shop_admin::dlq::{self, AwsQueues, Pick};
use shop_admin::message::{self, Content};
use shop_admin::system::{Location, System};
use shop_admin::{AdminError, saga};
use tokio::time::Instant;

use crate::queues::drained;
use crate::support::{admin_signed_up, signed_up};
use crate::system::{AwsTest, start};

const QUEUE: &str = "product-order-created";
const DLQ: &str = "product-order-created-dead-letters";
/// Why the faulty release refuses the event (the batch processor's `poisonReason`).
const BUG: &str = "the reservation code of release 41 has a bug";
/// How long the queues may take to settle, and a message to be counted.
const QUIET: Duration = Duration::from_secs(60);

/// The product consumer of a faulty release: it refuses every event, as a bug would, so the
/// batch processor quarantines it in the dead-letter queue.
struct FaultyRelease;

#[async_trait]
impl EventHandler for FaultyRelease {
    async fn handle(&self, _event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        Err(HandlerError::reject(BUG))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_admin_lists_shows_and_redrives_a_dead_letter_and_prints_the_saga() {
    let t = start(&[]).await;
    let sqs = aws_sdk_sqs::Client::new(&t.sdk);
    let queues = AwsQueues(sqs.clone());
    let (queue_url, dlq_url) = t.system.names.queues[QUEUE].clone();

    // An order whose OrderCreated the product service never got from SNS: its queue's
    // subscription is taken off, and the faulty release received it instead.
    unsubscribe(&t, Service::Order, QUEUE).await;
    let admin = admin_signed_up(&t.base, &t.system.services.users).await;
    let lee = signed_up(&t.base, "lee@shop.kr").await;
    lee.charge(50_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let order_id = lee
        .placed(json!([{"productId": tea, "quantity": 2}]), None)
        .await;
    let table = &t.system.names.tables[&Service::Order];
    let created = platform::testing::stream_events(&t.sdk, table)
        .await
        .into_iter()
        .find(|e| e.aggregate_id == order_id && e.event_type().name() == "OrderCreated")
        .expect("the order's OrderCreated on the order table's stream");
    let faulty = BatchProcessor::new(
        QUEUE,
        FaultyRelease,
        Box::new(SqsDeadLetters::new(sqs.clone(), dlq_url.clone())),
    );
    let attributes: BTreeMap<String, String> = created
        .message_attributes()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let record = platform::batch::sqs_message("m-1", "r-1", &created.to_json(), &attributes, 1);
    let event = serde_json::from_value(json!({"Records": [record]})).expect("an SQS event");
    let answer = faulty.handle_batch(event).await;
    assert!(
        answer.batch_item_failures.is_empty(),
        "quarantined, not failed"
    );

    // list: the dead-letter queue holds it, and no other queue holds anything.
    let system = System::find(&t.sdk, Location::Prefix(t.prefix.clone()))
        .await
        .expect("the system's queues and tables");
    let rows = await_list(&queues, &system, |rows| {
        rows.iter().any(|r| r.name == DLQ && r.depth.visible == 1)
    })
    .await;
    eprintln!("$ shop-admin dlq list\n{}", dlq::render_list(&rows));
    for row in &rows {
        let expected = u64::from(row.name == DLQ);
        assert_eq!(
            (row.depth.visible, row.depth.in_flight),
            (expected, 0),
            "{row:?}"
        );
    }
    assert_eq!(rows.len(), system.queues.len());
    let row = rows.iter().find(|r| r.name == DLQ).unwrap();
    assert_eq!(row.from, format!("queue {QUEUE}"));

    // show: its type, order and error, and it stays in the queue, visible.
    let watched = system.queue(DLQ).expect("the DLQ by name");
    let url = system.url(watched).await.expect("its URL");
    assert_eq!(url, dlq_url);
    let shown = dlq::peek(&queues, &url, 10).await.expect("show");
    assert_eq!(shown.len(), 1);
    let summary = message::decode(&shown[0]);
    eprintln!("$ shop-admin dlq show {DLQ}\n{}", message::render(&summary));
    let Content::Event(event) = &summary.content else {
        panic!("not decoded as an event: {summary:?}")
    };
    assert_eq!(event.event_type, "OrderCreated");
    assert_eq!(event.event_id, created.event_id);
    assert_eq!(event.order_id.as_deref(), Some(order_id.as_str()));
    assert_eq!(event.problem, None, "a valid event");
    let (name, reason) = summary.errors.first().expect("an error attribute");
    assert_eq!(name, "poisonReason");
    assert!(reason.contains(BUG), "{reason}");
    let again = dlq::peek(&queues, &url, 10).await.expect("show again");
    assert_eq!(
        again.iter().map(|m| &m.message_id).collect::<Vec<_>>(),
        [&shown[0].message_id],
        "shown again at once: left in the queue, visible"
    );

    // redrive: refused for a relay-failure queue and for an unknown id; then it moves back.
    let relay_failures = system
        .queue("order-relay-failures")
        .expect("a failure queue");
    let refused = dlq::source_of(&system, relay_failures).await.unwrap_err();
    assert!(refused.is_usage(), "{refused}");
    let source = dlq::source_of(&system, watched).await.expect("its source");
    assert_eq!(source, queue_url);
    let unknown = dlq::redrive(
        &queues,
        &url,
        &source,
        &Pick::Message("no-such-id".into()),
        &mut |m| panic!("moved {m:?}"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&unknown, AdminError::Missing(m) if m.contains("no message no-such-id")),
        "{unknown}"
    );
    let mut printed = Vec::new();
    let report = dlq::redrive(&queues, &url, &source, &Pick::All, &mut |m| {
        printed.push(dlq::render_moved(m))
    })
    .await
    .expect("redrive");
    eprintln!(
        "$ shop-admin dlq redrive {DLQ} --all\n{}",
        printed.join("\n")
    );
    assert_eq!((report.held, report.moved.len()), (1, 1));
    assert_eq!(
        printed,
        [format!(
            "moved {} (OrderCreated of order {order_id})",
            shown[0].message_id
        )]
    );

    // Consumed by the running product consumer: the stock is reserved and the order
    // confirmed; every queue is empty again.
    let order = lee.await_order(&order_id, &["CONFIRMED", "FAILED"]).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(admin.stock(&tea).await, 8);
    lee.await_timeline_with_all(&order_id, &["StockReserved", "OrderConfirmed"])
        .await;
    let all: Vec<String> = t.system.names.urls.values().cloned().collect();
    drained(&sqs, &all, QUIET).await;
    let rows = dlq::list(&queues, &system).await.expect("list");
    assert!(
        rows.iter()
            .all(|r| r.depth.visible + r.depth.in_flight == 0),
        "{rows:?}"
    );

    // order: the saga as the order service keeps it.
    let store = Arc::new(DynamoDocStore::new(
        aws_sdk_dynamodb::Client::new(&t.sdk),
        system.table(Service::Order).expect("the order table"),
    ));
    let found = saga::saga(store, &order_id)
        .await
        .expect("read")
        .expect("the order");
    let text = saga::render(&found);
    eprintln!("$ shop-admin order {order_id}\n{text}");
    assert!(
        text.starts_with(&format!("order {order_id}  CONFIRMED\n")),
        "{text}"
    );
    assert!(
        text.contains("steps     stock DONE, coupon NOT_REQUIRED, payment DONE"),
        "{text}"
    );
    let types: Vec<&str> = found
        .timeline
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    for wanted in [
        "OrderCreated",
        "PaymentApproved",
        "StockReserved",
        "OrderConfirmed",
    ] {
        assert!(types.contains(&wanted), "{wanted} in {types:?}");
    }

    t.system.shutdown().await;
}

/// `dlq::list` once `ready` holds of it (failing after [`QUIET`]).
async fn await_list(
    queues: &AwsQueues,
    system: &System,
    ready: impl Fn(&[dlq::Row]) -> bool,
) -> Vec<dlq::Row> {
    let deadline = Instant::now() + QUIET;
    loop {
        let rows = dlq::list(queues, system).await.expect("list");
        if ready(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "never ready: {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Takes `queue`'s subscription off `topic`.
async fn unsubscribe(t: &AwsTest, topic: Service, queue: &str) {
    let sns = aws_sdk_sns::Client::new(&t.sdk);
    let suffix = format!(":{}{queue}", t.prefix);
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&t.system.names.topics[&topic])
        .send()
        .await
        .expect("the topic's subscriptions");
    let mut found = 0;
    for s in subscriptions.subscriptions() {
        if let (Some(arn), true) = (
            s.subscription_arn(),
            s.endpoint().is_some_and(|e| e.ends_with(&suffix)),
        ) {
            sns.unsubscribe()
                .subscription_arn(arn)
                .send()
                .await
                .expect("unsubscribe");
            found += 1;
        }
    }
    assert_eq!(found, 1, "{queue} was subscribed to {topic:?} once");
}
