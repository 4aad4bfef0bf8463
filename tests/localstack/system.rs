//! The whole system on AWS APIs: it provisions the topology, long-polls the SQS queues, reads
//! the DynamoDB streams and publishes to SNS, and the saga runs on them. Each test has a
//! system of its own (its own tables, topics and queues, deleted at the end).

use std::collections::HashMap;
use std::time::Duration;

use contract::{Envelope, Service};
use local::aws::{AwsSystem, Names};
use local::config::LocalConfig;
use platform::testing::aws::{Cleanup, endpoint, unique_name};
use serde_json::json;

use crate::queues::{drained, receive};
use crate::support::scenarios::{self, Backend as _};

const SECRET: &str = "localstack-tests-secret-32-bytes-long";

/// How long the queues may take to empty after the last request of a test.
const QUIET: Duration = Duration::from_secs(60);

pub(crate) struct AwsTest {
    pub(crate) system: AwsSystem,
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) prefix: String,
    pub(crate) base: String,
    // Declared last: dropped after the system, also when the test fails.
    _cleanup: Cleanup,
}

/// Starts a system on the endpoint under a fresh prefix, served on a free port.
pub(crate) async fn start(settings: &[(&'static str, &'static str)]) -> AwsTest {
    let sdk = endpoint().sdk_config().await;
    let prefix = format!("{}-", unique_name("t"));
    let mut env = HashMap::from([("JWT_SECRET", SECRET), ("SWEEP_INTERVAL_SECONDS", "1")]);
    env.extend(crate::support::NO_CLIENT_LIMITS);
    env.extend(settings.iter().copied());
    let cleanup = Cleanup::new(endpoint());
    // (If provisioning fails half-way, what it made stays: its names are this run's own.)
    let names = local::aws::provision(&sdk, &prefix)
        .await
        .expect("provision");
    remember(&cleanup, &names);
    let system = AwsSystem::start_with(
        LocalConfig::from_env(&env).expect("test configuration"),
        local::aws::AwsClients::new(&sdk),
        names,
    )
    .await
    .expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = system.router();
    tokio::spawn(local::server::serve(
        listener,
        router,
        local::server::Limits::default(),
        std::future::pending(),
    ));
    AwsTest {
        system,
        sdk,
        prefix,
        base,
        _cleanup: cleanup,
    }
}

impl scenarios::Backend for AwsTest {
    fn base(&self) -> &str {
        &self.base
    }

    fn users(&self) -> &user_service::app::UserService {
        &self.system.services.users
    }

    async fn hold(&self, topic: Service, queue: &str) {
        self.unsubscribe(topic, queue).await;
    }

    async fn settled(&self, queue: &str) {
        drained(&self.sqs(), &[self.queue(queue)], QUIET).await;
    }

    async fn deliver_late(&self, queue: &str, order_id: &str) {
        let events = self.outbox_events(Service::Order, order_id).await;
        let created = events
            .iter()
            .find(|e| e.event_type().name() == "OrderCreated")
            .expect("the OrderCreated event is in the order outbox");
        self.deliver(queue, created).await;
    }
}

fn remember(cleanup: &Cleanup, names: &Names) {
    for table in names.tables.values() {
        cleanup.table(table);
    }
    for topic in names.topics.values() {
        cleanup.topic(topic);
    }
    // Every queue: consumed ones, their dead-letter queues and the relays' failure queues.
    for queue in names.urls.values() {
        cleanup.queue(queue);
    }
}

impl AwsTest {
    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk)
    }

    fn queue(&self, name: &str) -> String {
        self.system.names.queues[name].0.clone()
    }

    fn dlq(&self, name: &str) -> String {
        self.system.names.queues[name].1.clone()
    }

    /// Every consumer queue (not the DLQs).
    fn queues(&self) -> Vec<String> {
        self.system
            .names
            .queues
            .values()
            .map(|(q, _)| q.clone())
            .collect()
    }

    /// The events of `aggregate` on `service`'s table stream, oldest first.
    async fn outbox_events(&self, service: Service, aggregate: &str) -> Vec<Envelope> {
        let table = &self.system.names.tables[&service];
        let mut events = platform::testing::stream_events(&self.sdk, table).await;
        events.retain(|e| e.aggregate_id == aggregate);
        events
    }

    /// Takes `queue`'s subscription off `topic`: its messages are lost from now on.
    async fn unsubscribe(&self, topic: Service, queue: &str) {
        let sns = self.sns();
        let suffix = format!(":{}{queue}", self.prefix);
        let subscriptions = sns
            .list_subscriptions_by_topic()
            .topic_arn(&self.system.names.topics[&topic])
            .send()
            .await
            .unwrap();
        let mut found = 0;
        for s in subscriptions.subscriptions() {
            if s.endpoint().is_some_and(|e| e.ends_with(&suffix)) {
                sns.unsubscribe()
                    .subscription_arn(s.subscription_arn().unwrap())
                    .send()
                    .await
                    .unwrap();
                found += 1;
            }
        }
        assert_eq!(found, 1, "{queue} was subscribed to {topic:?} once");
    }

    /// Sends `event` to `queue` as its subscription would (raw, with its attributes).
    async fn deliver(&self, queue: &str, event: &Envelope) {
        let attribute = |value: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .unwrap()
        };
        let mut send = self
            .sqs()
            .send_message()
            .queue_url(self.queue(queue))
            .message_body(event.to_json());
        for (name, value) in event.message_attributes() {
            send = send.message_attributes(name, attribute(value));
        }
        send.send().await.unwrap();
    }

    async fn finish(self) {
        drained(&self.sqs(), &self.queues(), QUIET).await;
        self.system.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_and_both_kinds_of_payment_failure_with_compensation() {
    let t = start(&[]).await;

    // Provisioning twice finds what exists.
    let again = local::aws::provision(&t.sdk, &t.prefix)
        .await
        .expect("idempotent");
    assert_eq!(again.queues.len(), t.system.names.queues.len());

    let admin = t.admin().await;
    scenarios::an_order_with_a_coupon_is_confirmed_and_everything_adds_up(&t, &admin).await;
    // The payment refused, and approved then refunded.
    scenarios::insufficient_balance_fails_the_order_and_restores_stock_and_coupon(&t, &admin).await;
    scenarios::out_of_stock_after_payment_refunds_it_and_restores_the_coupon(&t, &admin).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_pending_and_a_confirmed_order_restores_everything() {
    let t = start(&[]).await;
    let admin = t.admin().await;
    scenarios::cancelling_a_pending_and_a_confirmed_order_restores_everything(&t, &admin).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_issues_are_exact_and_duplicate_events_change_nothing() {
    let t = start(&[]).await;
    let admin = t.admin().await;
    let lee = t.user("lee@shop.kr").await;
    lee.charge(50_000).await;
    let pen = admin.product("Pen", 2_000, 20).await;

    // First come, first served: 100 users at once for 20 coupons.
    scenarios::racing_for_coupons_issues_exactly_the_stock(&t, &admin, 100, 20, 0).await;

    // Every event of a confirmed order published again through SNS changes nothing.
    let order = lee
        .placed(json!([{"productId": pen, "quantity": 2}]), None)
        .await;
    assert_eq!(
        lee.await_order(&order, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    drained(&t.sqs(), &t.queues(), QUIET).await;
    let before = lee.get(&format!("/orders/{order}")).await;
    for service in [
        Service::Order,
        Service::Product,
        Service::Payment,
        Service::Balance,
    ] {
        let publisher =
            platform::sns::SnsPublisher::new(t.sns(), t.system.names.topics[&service].clone());
        for event in t.outbox_events(service, &order).await {
            platform::publish::EventPublisher::publish(&publisher, &event)
                .await
                .unwrap();
        }
    }
    drained(&t.sqs(), &t.queues(), QUIET).await;
    assert_eq!(lee.balance().await, 50_000 - 4_000);
    assert_eq!(admin.stock(&pen).await, 18);
    let after = lee.get(&format!("/orders/{order}")).await;
    assert_eq!(after["status"], "CONFIRMED");
    assert_eq!(after["steps"], before["steps"]);
    let ledger = lee.get("/balance/transactions").await;
    assert_eq!(ledger["items"].as_array().unwrap().len(), 2, "{ledger}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_fails_an_order_whose_message_was_lost_and_compensation_completes() {
    // The only order of this system is the one that cannot complete, so a short time to
    // live says nothing about how fast the endpoint is.
    let t = start(&[("ORDER_TTL_SECONDS", "5")]).await;
    let admin = t.admin().await;
    scenarios::the_sweep_fails_an_order_that_cannot_complete_and_takes_no_money(&t, &admin).await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_its_dead_letter_queue_and_comes_back_after_a_redrive() {
    let t = start(&[]).await;
    let sqs = t.sqs();
    let type_attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("OrderConfirmed")
        .build()
        .unwrap();
    t.sns()
        .publish()
        .topic_arn(&t.system.names.topics[&Service::Order])
        .message("this is not an event")
        .message_attributes("type", type_attribute)
        .send()
        .await
        .unwrap();
    let (queue, dlq) = (
        t.queue("product-order-confirmed"),
        t.dlq("product-order-confirmed"),
    );
    let poisoned = await_message(&sqs, &dlq).await;
    assert_eq!(poisoned.body(), Some("this is not an event"));

    // Redriven, it is poisoned again and comes back to the DLQ: nothing is lost, and nothing
    // is retried forever.
    sqs.change_message_visibility()
        .queue_url(&dlq)
        .receipt_handle(poisoned.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(local::aws::redrive(&sqs, &dlq, &queue).await.unwrap(), 1);
    let back = await_message(&sqs, &dlq).await;
    assert_eq!(back.body(), Some("this is not an event"));
    t.finish().await;
}

/// The first message to arrive in `queue` (failing after a minute).
async fn await_message(sqs: &aws_sdk_sqs::Client, queue: &str) -> aws_sdk_sqs::types::Message {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = receive(sqs, queue, 1).await.into_iter().next() {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message reached {queue}"
        );
    }
}

/// What `scripts/lambda-dev.sh` hands `cargo lambda watch`: every function's environment,
/// resolved against a provisioned topology, and signing keys with a sample token they accept.
#[tokio::test]
async fn every_function_gets_its_environment_and_the_authorizer_a_valid_sample() {
    use local::lambda_dev::{dev_signing_keys, function_environment, with_valid_token};
    let sdk = endpoint().sdk_config().await;
    let prefix = format!("{}-", unique_name("dev"));
    let cleanup = Cleanup::new(endpoint());
    let names = local::aws::provision(&sdk, &prefix)
        .await
        .expect("provision");
    remember(&cleanup, &names);
    let stack = local::template::Stack::load().expect("template.yaml");
    assert_eq!(stack.functions.len(), 31);
    for function in &stack.functions {
        let env = function_environment(function, &names)
            .unwrap_or_else(|e| panic!("{}: {e}", function.id));
        assert_eq!(
            env.get("HANDLER"),
            Some(&function.handler),
            "{}",
            function.id
        );
        if let Some(table) = env.get("TABLE_NAME") {
            assert!(table.starts_with(&prefix), "{}: {table}", function.id);
        }
        if let Some(topic) = env.get("TOPIC_ARN") {
            assert!(
                topic.starts_with("arn:aws:sns:"),
                "{}: {topic}",
                function.id
            );
        }
    }

    let parameter = format!("/{}/jwt-keys", unique_name("dev"));
    let keys = dev_signing_keys(&sdk, &parameter).await.expect("new keys");
    let again = dev_signing_keys(&sdk, &parameter)
        .await
        .expect("the same keys");
    assert_eq!(keys.current().0, again.current().0);
    assert_eq!(
        keys.current().1.as_bytes(),
        again.current().1.as_bytes(),
        "kept, not replaced"
    );
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/user-authorizer.json"
    ))
    .expect("the sample");
    let valid: serde_json::Value =
        serde_json::from_str(&with_valid_token(&sample, &keys).expect("a valid sample"))
            .expect("JSON");
    let codec = user_service::auth::TokenCodec::new(
        &again,
        chrono::Duration::seconds(3_600),
        std::sync::Arc::new(platform::clock::SystemClock),
    );
    let header = |event: &serde_json::Value| {
        event["headers"]["authorization"]
            .as_str()
            .map(str::to_owned)
    };
    let identity = user_service::authorizer::authorize(&codec, header(&valid).as_deref());
    assert_eq!(identity.map(|i| i.user_id).as_deref(), Some("dev-customer"));
    let original: serde_json::Value = serde_json::from_str(&sample).expect("JSON");
    assert!(user_service::authorizer::authorize(&codec, header(&original).as_deref()).is_none());
}
