//! Every function's sample event in `events/` (the ones `sam local invoke -e` and
//! `cargo lambda invoke` take) is fed to that function's handler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use contract::{Envelope, Service};
use local::config::LocalConfig;
use local::system::World;
use platform::batch::{BatchProcessor, DeadLetters, SqsFunction};
use platform::clock::SystemClock;
use platform::docstore::memory::MemoryDocStore;
use platform::ids::SequentialIds;
use platform::ports::Ports;
use platform::publish::{EventPublisher, PublishError};
use tower::ServiceExt;

fn sample(name: &str) -> String {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn world() -> World {
    let env = HashMap::from([("JWT_SECRET", "sample-events-secret-of-32-bytes-at-least")]);
    let ids = Arc::new(SequentialIds::new("id"));
    World::build(
        LocalConfig::from_env(&env).unwrap(),
        Arc::new(SystemClock),
        ids.clone(),
        |_, outbox| {
            Ports::new(
                Arc::new(MemoryDocStore::new(outbox)),
                Arc::new(SystemClock),
                ids.clone(),
            )
        },
    )
    .unwrap()
}

/// Remembers what would have gone to a dead-letter queue.
#[derive(Default, Clone)]
struct Quarantine(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl DeadLetters for Quarantine {
    async fn quarantine(&self, _: &SqsMessage, reason: &str) -> Result<(), String> {
        self.0.lock().unwrap().push(reason.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn each_consumer_handles_its_sample_batch() {
    let world = world();
    for consumer in &world.consumers {
        let (function, queue) = (&consumer.function, &consumer.queue);
        let event: SqsEvent =
            serde_json::from_str(&sample(function)).unwrap_or_else(|e| panic!("{function}: {e}"));
        let envelope = Envelope::from_json(event.records[0].body.as_deref().unwrap()).unwrap();
        // The attributes its publisher would give it, as the subscription's filter sees them.
        let attributes = envelope
            .message_attributes()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let subscribed = world
            .stack
            .subscriptions_of(queue)
            .any(|s| s.topic == envelope.source.name() && s.filter.matches(&attributes));
        assert!(
            subscribed,
            "{queue}'s sample is a {} its queue never receives",
            envelope.event_type()
        );
        let quarantine = Quarantine::default();
        let function = BatchProcessor::new(
            function.clone(),
            consumer.handler.clone(),
            Box::new(quarantine.clone()),
        );
        let response = function.handle_batch(event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{queue} failed its sample"
        );
        assert!(
            quarantine.0.lock().unwrap().is_empty(),
            "{queue} found its sample poisonous"
        );
    }
}

#[derive(Default)]
struct Published(Mutex<Vec<Envelope>>);

#[async_trait]
impl EventPublisher for Published {
    async fn publish(&self, event: &Envelope) -> Result<(), PublishError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn each_relay_publishes_its_sample_outbox_record() {
    let world = world();
    assert_eq!(world.relays.len(), Service::ALL.len());
    for relay in &world.relays {
        let (name, service) = (&relay.function, relay.service);
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_str(&sample(name)).unwrap();
        let published = Published::default();
        let response = platform::relay::handle_stream(event, &published).await;
        assert!(response.batch_item_failures.is_empty(), "{name}");
        let published = published.0.into_inner().unwrap();
        assert_eq!(published.len(), 1, "{name}");
        assert_eq!(
            published[0].source, service,
            "{name} relays another service's event"
        );
    }
}

#[tokio::test]
async fn each_api_answers_its_sample_request_as_the_authorizer_said() {
    let world = world();
    let s = &world.services;
    let apis = [
        (
            "balance-api",
            balance_service::api::router(s.balance.clone()),
            200,
        ),
        (
            "product-api",
            product_service::api::router(s.products.clone()),
            200,
        ),
        (
            "coupon-source-api",
            coupon_source_service::api::router(s.coupon_sources.clone()),
            404,
        ),
        (
            "coupon-api",
            coupon_service::api::router(s.coupons.clone()),
            200,
        ),
        (
            "payment-api",
            payment_service::api::router(s.payments.clone()),
            404,
        ),
        (
            "order-api",
            order_service::api::router(s.orders.clone()),
            200,
        ),
        ("user-api", user_service::api::router(s.users.clone()), 201),
    ];
    for (name, router, expected) in apis {
        let request =
            lambda_http::request::from_str(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = platform::lambda::http_app(router, "test")
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{name}");
    }
    // The balance sample's identity is the authorizer's (u-1), not the spoofed header's.
    let request = lambda_http::request::from_str(&sample("balance-api")).unwrap();
    let router = balance_service::api::router(s.balance.clone());
    let response = platform::lambda::http_app(router, "test")
        .oneshot(request)
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["userId"], "u-1");
}

#[tokio::test]
async fn the_sweep_takes_its_scheduled_event() {
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_str(&sample("order-sweep")).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    let report = world().services.orders.sweep().await.unwrap();
    assert_eq!(report.due, 0);
}
