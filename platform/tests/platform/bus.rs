//! The in-memory SNS/SQS: filter policies, visibility timeout, redelivery of only the failed
//! items of a batch, DLQ after maxReceiveCount, poison messages, duplicates, and
//! deterministic stepping.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use contract::{
    Envelope, EventMeta, OrderCancelled, OrderConfirmed, StockReleased, StockReserved, Won,
};
use platform::batch::{BatchProcessor, EventHandler, HandlerError, SqsFunction, sqs_message};
use platform::bus::stepping::{Faults, Step, Stepper};
use platform::bus::{
    BusDeadLetters, BusError, BusPublisher, Delivered, FilterPolicy, MemoryBus, QueueSpec,
    Topology, mapping,
};
use platform::clock::{ManualClock, SystemClock};
use platform::errors::StoreError;
use platform::ids::SequentialIds;
use platform::publish::EventPublisher;

fn clock() -> ManualClock {
    ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap())
}

fn event(n: u32, payload: impl Into<contract::Event>) -> Envelope {
    let meta = EventMeta {
        event_id: format!("e-{n}"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        correlation_id: format!("o-{n}"),
        causation_id: None,
    };
    Envelope::new(meta, format!("o-{n}"), payload)
}

fn reserved(n: u32) -> Envelope {
    event(
        n,
        StockReserved {
            order_id: format!("o-{n}"),
        },
    )
}

/// The SQS event Lambda would deliver for a received batch.
fn lambda_batch(batch: &[Delivered]) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = batch
        .iter()
        .map(|m| {
            let (id, handle) = (&m.message_id, &m.receipt_handle);
            sqs_message(id, handle, &m.body, &m.attributes, m.receive_count)
        })
        .collect();
    event
}

fn attrs(t: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("type".to_owned(), t.to_owned())])
}

fn bus_with(queues: Vec<QueueSpec>, clock: ManualClock) -> Arc<MemoryBus> {
    let topology = Topology {
        topics: vec!["order".into(), "product".into()],
        queues,
    };
    Arc::new(
        MemoryBus::new(
            &topology,
            Arc::new(clock),
            Arc::new(SequentialIds::new("m")),
        )
        .unwrap(),
    )
}

#[test]
fn filter_policies_route_by_type() {
    let bus = bus_with(
        vec![
            QueueSpec::new("product-reserve")
                .subscribe("order", FilterPolicy::types(["OrderCreated"])),
            QueueSpec::new("order-steps")
                .subscribe(
                    "product",
                    FilterPolicy::types(["StockReserved", "StockReleased"]),
                )
                .subscribe("order", FilterPolicy::All),
        ],
        clock(),
    );
    assert_eq!(bus.publish("order", "a", &attrs("OrderCreated")), Ok(2));
    assert_eq!(bus.publish("order", "b", &attrs("OrderConfirmed")), Ok(1));
    assert_eq!(bus.publish("product", "c", &attrs("StockReserved")), Ok(1));
    assert_eq!(
        bus.publish("product", "d", &attrs("ProductRegistered")),
        Ok(0)
    );
    // Like SNS, a message without the filtered attribute matches no type filter.
    assert_eq!(bus.publish("product", "e", &BTreeMap::new()), Ok(0));
    assert_eq!(
        bus.publish("nope", "f", &attrs("X")),
        Err(BusError::UnknownTopic("nope".into()))
    );

    let bodies = |q: &str| -> Vec<String> {
        bus.receive(q, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    };
    assert_eq!(bodies("product-reserve"), ["a"]);
    assert_eq!(bodies("order-steps"), ["a", "b", "c"]);
}

#[test]
fn a_topology_naming_an_unknown_topic_is_rejected() {
    let topology = Topology {
        topics: vec!["order".into()],
        queues: vec![QueueSpec::new("q").subscribe("ordr", FilterPolicy::All)],
    };
    let err = MemoryBus::new(
        &topology,
        Arc::new(clock()),
        Arc::new(SequentialIds::new("m")),
    )
    .err();
    assert!(err.is_some_and(|e| e.to_string().contains("ordr")));
}

#[test]
fn a_queue_added_while_running_receives_only_what_is_published_after() {
    let bus = bus_with(
        vec![
            QueueSpec::new("product-reserve")
                .subscribe("order", FilterPolicy::types(["OrderCreated"])),
        ],
        clock(),
    );
    assert_eq!(
        bus.publish("order", "before", &attrs("OrderConfirmed")),
        Ok(0)
    );
    bus.add_queue(
        QueueSpec::new("observer").subscribe("order", FilterPolicy::types(["OrderConfirmed"])),
    )
    .unwrap();
    assert_eq!(
        bus.publish("order", "after", &attrs("OrderConfirmed")),
        Ok(1)
    );
    assert_eq!(
        bus.publish("order", "created", &attrs("OrderCreated")),
        Ok(1)
    );
    let bodies: Vec<String> = bus
        .receive("observer", 10)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["after"]);

    // The same rules as a topology: no second queue of a name, no unknown topic.
    let twice = bus.add_queue(QueueSpec::new("observer"));
    assert!(twice.is_err_and(|e| e.to_string().contains("twice")));
    let unknown = bus.add_queue(QueueSpec::new("other").subscribe("ordr", FilterPolicy::All));
    assert!(unknown.is_err_and(|e| e.to_string().contains("ordr")));
    assert_eq!(bus.queue_names(), ["observer", "product-reserve"]);
}

#[test]
fn a_received_message_is_invisible_until_its_visibility_timeout() {
    let clock = clock();
    let bus = bus_with(
        vec![
            QueueSpec::new("q")
                .subscribe("order", FilterPolicy::All)
                .visibility_timeout(Duration::from_secs(30)),
        ],
        clock.clone(),
    );
    bus.publish("order", "x", &attrs("OrderCreated")).unwrap();
    let first = bus.receive("q", 10).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(bus.receive("q", 10).unwrap().is_empty());

    clock.advance(chrono::Duration::seconds(29));
    assert!(bus.receive("q", 10).unwrap().is_empty());
    clock.advance(chrono::Duration::seconds(1));
    let second = bus.receive("q", 10).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);

    // Only the latest receipt deletes.
    assert!(matches!(
        bus.delete("q", &first[0].receipt_handle),
        Err(BusError::StaleReceipt(_))
    ));
    bus.delete("q", &second[0].receipt_handle).unwrap();
    clock.advance(chrono::Duration::seconds(60));
    assert!(bus.receive("q", 10).unwrap().is_empty());
}

#[test]
fn a_message_goes_to_the_dlq_after_max_receive_count_and_can_be_redriven() {
    let clock = clock();
    let bus = bus_with(
        vec![
            QueueSpec::new("q")
                .subscribe("order", FilterPolicy::All)
                .visibility_timeout(Duration::from_secs(10))
                .max_receive_count(3),
        ],
        clock.clone(),
    );
    bus.publish("order", "x", &attrs("OrderCreated")).unwrap();
    for attempt in 1..=3 {
        let got = bus.receive("q", 10).unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        clock.advance(chrono::Duration::seconds(10));
    }
    assert!(bus.receive("q", 10).unwrap().is_empty());
    let dead = bus.dead_letters("q").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("x", 3));
    assert_eq!(bus.depth("q").unwrap().dead, 1);

    assert_eq!(bus.redrive("q").unwrap(), 1);
    assert!(bus.dead_letters("q").unwrap().is_empty());
    let again = bus.receive("q", 10).unwrap();
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("x", 1));
}

/// Records every event it sees; fails each event listed in `fail_once` the first time.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    fail_once: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(event.event_id.clone());
        let mut fail = self.fail_once.lock().unwrap();
        if let Some(i) = fail.iter().position(|id| *id == event.event_id) {
            fail.remove(i);
            return Err(HandlerError::retry("not yet"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn only_the_failed_items_of_a_batch_are_redelivered() {
    let bus = Arc::new(
        MemoryBus::new(
            &Topology {
                topics: vec!["product".into()],
                queues: vec![
                    QueueSpec::new("order-steps")
                        .subscribe("product", FilterPolicy::All)
                        .visibility_timeout(Duration::from_millis(50)),
                ],
            },
            Arc::new(SystemClock),
            Arc::new(SequentialIds::new("m")),
        )
        .unwrap(),
    );
    let recorder = Arc::new(Recorder::default());
    recorder.fail_once.lock().unwrap().push("e-2".into());
    let processor = BatchProcessor::new(
        "order-steps",
        recorder.clone(),
        Box::new(BusDeadLetters::new(bus.clone(), "order-steps")),
    );
    let publisher = BusPublisher::new(bus.clone());
    for n in 1..=3 {
        publisher.publish(&reserved(n)).await.unwrap();
    }

    // The batch response names only the failure…
    let batch = bus.receive("order-steps", 10).unwrap();
    assert_eq!(batch.len(), 3);
    let event = lambda_batch(&batch);
    let response = processor.handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, [batch[1].message_id.as_str()]);

    // …and the event source mapping deletes the rest, so only that one comes back.
    for m in &batch {
        if m.message_id != batch[1].message_id {
            bus.delete("order-steps", &m.receipt_handle).unwrap();
        }
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mapping = tokio::spawn(mapping::run(
        bus.clone(),
        "order-steps".into(),
        Arc::new(processor),
        shutdown,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus.depth("order-steps").unwrap() != Default::default()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    mapping.await.unwrap();
    assert_eq!(*recorder.seen.lock().unwrap(), ["e-1", "e-2", "e-3", "e-2"]);
    assert_eq!(bus.depth("order-steps").unwrap(), Default::default());
}

#[tokio::test]
async fn a_poison_message_goes_straight_to_the_dlq_and_the_rest_of_the_batch_succeeds() {
    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("order", FilterPolicy::All)],
        clock(),
    );
    let recorder = Arc::new(Recorder::default());
    let processor = BatchProcessor::new(
        "q",
        recorder.clone(),
        Box::new(BusDeadLetters::new(bus.clone(), "q")),
    );
    bus.publish("order", "not an event", &attrs("OrderCreated"))
        .unwrap();
    let unknown = reserved(1)
        .to_json()
        .replace("StockReserved", "StockTeleported");
    bus.publish("order", &unknown, &attrs("StockTeleported"))
        .unwrap();
    BusPublisher::new(bus.clone())
        .publish(&reserved(2))
        .await
        .ok();
    let good = event(
        3,
        OrderCancelled {
            order_id: "o-3".into(),
            was_confirmed: false,
            has_coupon: None,
        },
    );
    bus.publish("order", &good.to_json(), &attrs("OrderCancelled"))
        .unwrap();

    let batch = bus.receive("q", 10).unwrap();
    assert_eq!(
        batch.len(),
        3,
        "StockReserved goes to the product topic, not here"
    );
    let event = lambda_batch(&batch);
    let response = processor.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(*recorder.seen.lock().unwrap(), ["e-3"]);
    let dead = bus.dead_letters("q").unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].body, "not an event");
    assert!(
        dead[0].reason.contains("not an event envelope"),
        "{}",
        dead[0].reason
    );
    assert!(
        dead[1].reason.contains("unknown event type"),
        "{}",
        dead[1].reason
    );
}

/// Fails `e-1` as the store being down and `e-2` as a corrupt item.
struct Failing;

#[async_trait]
impl EventHandler for Failing {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        match event.event_id.as_str() {
            "e-1" => Err(StoreError::unavailable(io).into()),
            "e-2" => Err(StoreError::corrupt("ORDER#o-2/ORDER: missing field `status`").into()),
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn a_retryable_failure_comes_back_and_a_permanent_one_is_quarantined_with_its_cause() {
    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("product", FilterPolicy::All)],
        clock(),
    );
    let processor = BatchProcessor::new(
        "q",
        Failing,
        Box::new(BusDeadLetters::new(bus.clone(), "q")),
    );
    let publisher = BusPublisher::new(bus.clone());
    for n in 1..=3 {
        publisher.publish(&reserved(n)).await.unwrap();
    }
    let batch = bus.receive("q", 10).unwrap();
    let event = lambda_batch(&batch);
    let response = processor.handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [batch[0].message_id.as_str()],
        "only the retryable one"
    );
    let dead = bus.dead_letters("q").unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("\"e-2\""), "{}", dead[0].body);
    assert_eq!(
        dead[0].reason,
        "cannot be handled; quarantined: a stored item is unreadable: ORDER#o-2/ORDER: missing field `status`"
    );
}

#[test]
fn stepping_with_duplicates_delivers_the_same_event_twice() {
    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("product", FilterPolicy::All)],
        clock(),
    );
    bus.publish("product", &reserved(1).to_json(), &attrs("StockReserved"))
        .unwrap();

    let mut duplicating = Stepper::new(
        bus.clone(),
        7,
        Faults {
            duplicate: 1.0,
            drop: 0.0,
        },
    );
    let Some(Step::Deliver {
        queue,
        message: first,
    }) = duplicating.step()
    else {
        panic!("expected a delivery")
    };
    duplicating.settle(&queue, &first, false).unwrap();

    let mut plain = Stepper::new(bus.clone(), 7, Faults::default());
    let Some(Step::Deliver {
        message: second, ..
    }) = plain.step()
    else {
        panic!("expected the duplicate")
    };
    plain.settle("q", &second, false).unwrap();
    assert_eq!(second.body, first.body);
    assert_ne!(second.message_id, first.message_id);
    assert_eq!(plain.step(), None);
}

#[test]
fn stepping_can_lose_a_message() {
    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("product", FilterPolicy::All)],
        clock(),
    );
    bus.publish("product", "x", &attrs("StockReserved"))
        .unwrap();
    let mut stepper = Stepper::new(
        bus.clone(),
        1,
        Faults {
            duplicate: 0.0,
            drop: 1.0,
        },
    );
    assert!(matches!(stepper.step(), Some(Step::Lost { .. })));
    assert_eq!(stepper.step(), None);
}

/// Publishes 30 events over three queues and steps until quiet, failing every fifth
/// delivery; returns what happened, in order.
fn stepped_run(seed: u64) -> Vec<String> {
    let clock = clock();
    let bus = bus_with(
        vec![
            QueueSpec::new("a")
                .subscribe("order", FilterPolicy::All)
                .visibility_timeout(Duration::from_secs(5)),
            QueueSpec::new("b").subscribe("order", FilterPolicy::types(["OrderConfirmed"])),
            QueueSpec::new("c")
                .subscribe("product", FilterPolicy::All)
                .max_receive_count(2),
        ],
        clock.clone(),
    );
    for n in 0..10 {
        let confirmed = event(
            n,
            OrderConfirmed {
                order_id: format!("o-{n}"),
                user_id: "u".into(),
                items: vec![],
                payment_amount: Won(n as u64),
            },
        );
        bus.publish("order", &confirmed.to_json(), &attrs("OrderConfirmed"))
            .unwrap();
        let released = event(
            n,
            StockReleased {
                order_id: format!("o-{n}"),
                released: true,
            },
        );
        bus.publish("product", &released.to_json(), &attrs("StockReleased"))
            .unwrap();
    }
    let mut stepper = Stepper::new(
        bus.clone(),
        seed,
        Faults {
            duplicate: 0.2,
            drop: 0.1,
        },
    );
    let mut log = Vec::new();
    let deliveries = AtomicU32::new(0);
    for _ in 0..1_000 {
        match stepper.step() {
            Some(Step::Deliver { queue, message }) => {
                let failed = deliveries.fetch_add(1, Ordering::Relaxed) % 5 == 4;
                log.push(format!(
                    "deliver {queue} {} {} failed={failed}",
                    message.message_id, message.receive_count
                ));
                stepper.settle(&queue, &message, failed).unwrap();
            }
            Some(Step::Lost { queue, message_id }) => {
                log.push(format!("lost {queue} {message_id}"))
            }
            None if bus
                .queue_names()
                .iter()
                .all(|q| bus.depth(q).unwrap().in_flight == 0) =>
            {
                break;
            }
            None => clock.advance(chrono::Duration::seconds(5)),
        }
    }
    for q in bus.queue_names() {
        log.push(format!("dead {q} {}", bus.dead_letters(&q).unwrap().len()));
    }
    log
}

#[test]
fn stepping_is_deterministic_for_a_seed() {
    let first = stepped_run(42);
    assert_eq!(first, stepped_run(42));
    assert_ne!(first, stepped_run(43));
    // The run really exercised the faults and the reordering.
    assert!(first.iter().any(|l| l.starts_with("lost")));
    assert!(first.iter().any(|l| l.contains("failed=true")));
    let queues_in_order: Vec<&str> = first
        .iter()
        .filter(|l| l.starts_with("deliver"))
        .map(|l| &l[8..9])
        .collect();
    let mut sorted = queues_in_order.clone();
    sorted.sort();
    assert_ne!(
        queues_in_order, sorted,
        "deliveries interleave across queues"
    );
}

/// A function that records each batch's size and how many batches ran at once, and holds
/// every batch until `gate` opens.
struct Gated {
    batches: Mutex<Vec<usize>>,
    running: AtomicU32,
    peak: AtomicU32,
    gate: tokio::sync::Semaphore,
}

impl Gated {
    fn new() -> Arc<Gated> {
        Arc::new(Gated {
            batches: Mutex::default(),
            running: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            gate: tokio::sync::Semaphore::new(0),
        })
    }
}

#[async_trait]
impl SqsFunction for Gated {
    async fn handle_batch(
        &self,
        event: aws_lambda_events::event::sqs::SqsEvent,
    ) -> aws_lambda_events::event::sqs::SqsBatchResponse {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        drop(self.gate.acquire().await);
        self.batches.lock().unwrap().push(event.records.len());
        self.running.fetch_sub(1, Ordering::SeqCst);
        Default::default()
    }
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A bus with the one queue `spec` (subscribed to every order event), and its event source
/// mapping running a [`Gated`] function (opened `permits` batches wide).
struct Mapped {
    bus: Arc<MemoryBus>,
    function: Arc<Gated>,
    stop: tokio::sync::watch::Sender<bool>,
    mapping: tokio::task::JoinHandle<u64>,
}

fn mapped(spec: QueueSpec, permits: usize) -> Mapped {
    let bus = bus_with(vec![spec.subscribe("order", FilterPolicy::All)], clock());
    let function = Gated::new();
    function.gate.add_permits(permits);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let run = mapping::run(bus.clone(), "q".into(), function.clone(), shutdown);
    let mapping = tokio::spawn(run);
    Mapped {
        bus,
        function,
        stop,
        mapping,
    }
}

impl Mapped {
    fn publish(&self, n: u32) {
        self.bus
            .publish("order", &reserved(n).to_json(), &attrs("StockReserved"))
            .unwrap();
    }

    fn batches(&self) -> Vec<usize> {
        self.function.batches.lock().unwrap().clone()
    }

    /// Stops the mapping; how many batches it delivered.
    async fn stop(self) -> u64 {
        self.stop.send(true).unwrap();
        self.mapping.await.unwrap()
    }
}

#[tokio::test]
async fn a_queue_runs_as_many_batches_at_once_as_its_pollers_and_no_more() {
    let m = mapped(QueueSpec::new("q").batch_size(1).pollers(3), 0);
    for n in 0..6 {
        m.publish(n);
    }
    wait_until("three batches held at once", || {
        m.function.running.load(Ordering::SeqCst) == 3
    })
    .await;
    let visible = m.bus.depth("q").unwrap().visible;
    assert_eq!(visible, 3, "no fourth poller took one");
    m.function.gate.add_permits(100);
    wait_until("all six handled", || m.batches().len() == 6).await;
    let peak = m.function.peak.load(Ordering::SeqCst);
    assert_eq!(m.stop().await, 6);
    assert_eq!(peak, 3);
}

#[tokio::test]
async fn a_batching_window_waits_for_a_full_batch_and_no_longer_than_the_window() {
    let window = |seconds| QueueSpec::new("q").batching_window(Duration::from_secs(seconds));
    let m = mapped(window(30).batch_size(10), 100);
    m.publish(0);
    wait_until("the first message received", || {
        m.bus.depth("q").unwrap().in_flight == 1
    })
    .await;
    for n in 1..10 {
        m.publish(n);
    }
    wait_until("a batch handled", || !m.batches().is_empty()).await;
    assert_eq!(m.batches(), [10], "one full batch, not 1 + 9");
    m.stop().await;

    // A batch that does not fill goes when the window ends.
    let m = mapped(window(1), 100);
    m.publish(0);
    wait_until("the partial batch handled", || !m.batches().is_empty()).await;
    assert_eq!(m.batches(), [1]);
    m.stop().await;
}

/// A handler that takes a batch at once: it records the batches it was given, retries
/// `e-2` and rejects `e-3`.
#[derive(Default)]
struct Batching {
    batches: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl EventHandler for Batching {
    async fn handle(&self, _event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        Err(HandlerError::reject("a batching handler is given batches"))
    }

    async fn handle_all(
        &self,
        events: &[(Envelope, u32)],
    ) -> Option<Vec<platform::batch::Outcome>> {
        let ids: Vec<String> = events.iter().map(|(e, _)| e.event_id.clone()).collect();
        self.batches.lock().unwrap().push(ids.clone());
        Some(
            ids.iter()
                .map(|id| match id.as_str() {
                    "e-2" => Err(HandlerError::retry("not yet")),
                    "e-3" => Err(HandlerError::reject("never")),
                    _ => Ok(()),
                })
                .collect(),
        )
    }
}

#[tokio::test]
async fn a_batching_handler_gets_the_whole_batch_and_each_outcome_is_applied() {
    let bus = Arc::new(
        MemoryBus::new(
            &Topology {
                topics: vec!["product".into()],
                queues: vec![QueueSpec::new("timeline").subscribe("product", FilterPolicy::All)],
            },
            Arc::new(SystemClock),
            Arc::new(SequentialIds::new("m")),
        )
        .unwrap(),
    );
    let handler = Arc::new(Batching::default());
    let processor = BatchProcessor::new(
        "timeline",
        handler.clone(),
        Box::new(BusDeadLetters::new(bus.clone(), "timeline")),
    );
    let publisher = BusPublisher::new(bus.clone());
    for n in 1..=3 {
        publisher.publish(&reserved(n)).await.unwrap();
    }
    let batch = bus.receive("timeline", 10).unwrap();
    let event = lambda_batch(&batch);
    let response = processor.handle_batch(event).await;
    assert_eq!(
        *handler.batches.lock().unwrap(),
        [vec!["e-1".to_owned(), "e-2".to_owned(), "e-3".to_owned()]],
        "one call with the whole batch, in order"
    );
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [batch[1].message_id.as_str()],
        "only the retry comes back"
    );
    assert_eq!(
        bus.dead_letters("timeline").unwrap().len(),
        1,
        "the rejected one"
    );
}

#[tokio::test]
async fn each_message_is_a_hop_of_its_trace_that_says_what_was_decided() {
    use platform::metrics::{MemoryMetrics, Metric};
    use platform::telemetry::{Scope, Sinks};
    use platform::xray::{MemoryTraces, Segment};

    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("product", FilterPolicy::All)],
        clock(),
    );
    let processor = BatchProcessor::new(
        "q",
        Failing,
        Box::new(BusDeadLetters::new(bus.clone(), "q")),
    );
    // Each event arrives as the relay sent it: in a trace, naming the relay's segment.
    let relayed: Vec<Segment> = (1..=3)
        .map(|_| Segment::begin("product-relay", None))
        .collect();
    let publisher = BusPublisher::new(bus.clone());
    for (n, hop) in (1..=3).zip(&relayed) {
        let event = reserved(n).with_trace(Some(hop.context()));
        publisher.publish(&event).await.unwrap();
    }
    let (metrics, traces) = (
        Arc::new(MemoryMetrics::new()),
        Arc::new(MemoryTraces::new()),
    );
    let sinks = Sinks {
        metrics: Some(metrics.clone()),
        segments: Some(traces.clone()),
    };
    let scope = Scope::new("order-events", Some(contract::Service::Order), sinks);
    let batch = bus.receive("q", 10).unwrap();
    scope
        .run(processor.handle_batch(lambda_batch(&batch)))
        .await;

    let outcomes: Vec<(String, String)> = relayed
        .iter()
        .map(|relay| {
            let trace = traces.trace(&relay.trace_id);
            assert_eq!(trace.len(), 1, "one hop each");
            let hop = &trace[0];
            assert_eq!(hop.name, "order-events");
            assert_eq!(hop.parent_id.as_deref(), Some(relay.id.as_str()));
            (
                hop.annotations["eventId"].clone(),
                hop.annotations["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("e-1".to_owned(), "retry".to_owned()),
            ("e-2".to_owned(), "rejected".to_owned()),
            ("e-3".to_owned(), "handled".to_owned()),
        ]
    );
    let poison = metrics.total(Metric::PoisonMessages, contract::Service::Order, None);
    assert_eq!(poison.count, 1, "the one sent to the dead-letter queue");
}

/// Remembers the trace each event it handles would pass on to an event made because of it.
#[derive(Default)]
struct Tracing {
    made: Mutex<Vec<(String, Option<contract::TraceContext>)>>,
}

#[async_trait]
impl EventHandler for Tracing {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        let made = platform::telemetry::trace_for(Some(event));
        // Nothing that was not caused by an event of the batch takes one's segment.
        assert_eq!(platform::telemetry::trace_for(None), None);
        let mut all = self.made.lock().unwrap_or_else(|p| p.into_inner());
        all.push((event.event_id.clone(), made));
        Ok(())
    }
}

#[tokio::test]
async fn what_a_handler_makes_one_event_at_a_time_names_that_events_hop_as_parent() {
    use platform::telemetry::{Scope, Sinks};
    use platform::xray::{MemoryTraces, Segment};

    let bus = bus_with(
        vec![QueueSpec::new("q").subscribe("product", FilterPolicy::All)],
        clock(),
    );
    let handler = Arc::new(Tracing::default());
    let processor = BatchProcessor::new(
        "q",
        handler.clone(),
        Box::new(BusDeadLetters::new(bus.clone(), "q")),
    );
    let publisher = BusPublisher::new(bus.clone());
    for n in 1..=3 {
        let relayed = Segment::begin("product-relay", None);
        let event = reserved(n).with_trace(Some(relayed.context()));
        publisher.publish(&event).await.unwrap();
    }
    let traces = Arc::new(MemoryTraces::new());
    let sinks = Sinks {
        metrics: None,
        segments: Some(traces.clone()),
    };
    let scope = Scope::new("order-events", Some(contract::Service::Order), sinks);
    let batch = bus.receive("q", 10).unwrap();
    assert_eq!(batch.len(), 3, "one batch of three events");
    scope
        .run(processor.handle_batch(lambda_batch(&batch)))
        .await;

    let made = handler.made.lock().unwrap().clone();
    assert_eq!(made.len(), 3);
    for (event_id, trace) in made {
        let trace = trace.unwrap_or_else(|| panic!("{event_id} made nothing traced"));
        let hops = traces.trace(&trace.trace_id);
        let hop = hops
            .iter()
            .find(|s| s.id == trace.parent_id)
            .unwrap_or_else(|| panic!("{event_id}: no hop {}", trace.parent_id));
        assert_eq!(hop.annotations["eventId"], event_id, "its own hop");
    }
}
