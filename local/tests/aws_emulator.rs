//! The local system against the emulator's real APIs: it provisions the topology, polls the
//! SQS queues, reads the DynamoDB streams and publishes to SNS — the saga runs on them.

mod support;

use std::collections::HashMap;

use contract::Service;
use local::aws::AwsSystem;
use local::config::LocalConfig;
use platform::testing::emulator::emulator;
use serde_json::json;
use support::{ADMIN, signed_up};

const SECRET: &str = "aws-emulator-test-secret-32-bytes-long";

/// Starts the system on the emulator under a fresh prefix, served on a free port.
async fn start(
    settings: &[(&'static str, &'static str)],
) -> (AwsSystem, aws_config::SdkConfig, String, String) {
    let sdk = emulator().sdk_config().await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let mut env = HashMap::from([
        ("JWT_SECRET", SECRET),
        ("ADMIN_EMAILS", ADMIN),
        ("SWEEP_INTERVAL_SECONDS", "1"),
    ]);
    env.extend(settings.iter().copied());
    let system = AwsSystem::start(LocalConfig::from_env(&env).unwrap(), &sdk, &prefix)
        .await
        .expect("provision and start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = system.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (system, sdk, prefix, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_saga_runs_on_the_emulators_dynamodb_streams_sns_and_sqs() {
    let (system, sdk, prefix, base) = start(&[]).await;

    // Provisioning twice finds what exists.
    let again = local::aws::provision(&sdk, &prefix)
        .await
        .expect("idempotent");
    assert_eq!(again.queues.len(), system.names.queues.len());

    let admin = signed_up(&base, ADMIN).await;
    let kim = signed_up(&base, "kim@shop.kr").await;
    kim.charge(30_000).await;
    let tea = admin.product("Tea", 3_000, 10).await;
    let vase = admin.product("Vase", 25_000, 5).await;
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 1_000}), 0, 10)
        .await;
    let coupon = kim.issue(&source).await;

    // Success: the events travel outbox → stream → SNS → filtered SQS queues → handlers.
    let order = kim
        .placed(json!([{"productId": tea, "quantity": 4}]), Some(&coupon))
        .await;
    assert_eq!(
        kim.await_order(&order, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    assert_eq!(kim.balance().await, 30_000 - 11_000);
    assert_eq!(admin.stock(&tea).await, 6);
    assert_eq!(kim.coupon_status(&coupon).await, "USED");

    // Failure with compensation: not enough money left.
    let failing = kim
        .placed(json!([{"productId": vase, "quantity": 1}]), None)
        .await;
    let failed = kim.await_order(&failing, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failureReason"].as_str()),
        (Some("FAILED"), Some("PAYMENT_FAILED"))
    );
    assert_eq!(kim.balance().await, 19_000);
    assert_eq!(admin.stock(&vase).await, 5);

    // A poison message on a topic ends in each subscribed queue's DLQ, not in a retry loop.
    let sns = aws_sdk_sns::Client::new(&sdk);
    let type_attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("OrderConfirmed")
        .build()
        .unwrap();
    sns.publish()
        .topic_arn(&system.names.topics[&Service::Order])
        .message("this is not an event")
        .message_attributes("type", type_attribute)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = system.names.queues["product-order-confirmed"].1.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let poisoned = loop {
        let out = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
        if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poison message never reached the DLQ"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(poisoned.body(), Some("this is not an event"));

    // Redriven, it is poisoned again and comes back to the DLQ: nothing is lost or retried forever.
    let queue = system.names.queues["product-order-confirmed"].0.clone();
    sqs.change_message_visibility()
        .queue_url(&dlq)
        .receipt_handle(poisoned.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(local::aws::redrive(&sqs, &dlq, &queue).await.unwrap(), 1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
        if out.messages.is_some_and(|m| !m.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the redriven poison message did not come back to the DLQ"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_change_nothing_races_issue_exactly_and_the_sweep_recovers_a_lost_message() {
    let (system, sdk, _, base) = start(&[("ORDER_TTL_SECONDS", "3")]).await;
    let admin = signed_up(&base, ADMIN).await;
    let lee = signed_up(&base, "lee@shop.kr").await;
    lee.charge(50_000).await;
    let pen = admin.product("Pen", 2_000, 20).await;

    // First come, first served: 100 users for 20 coupons.
    let source = admin
        .coupon_source(json!({"type": "FIXED", "amount": 100}), 0, 20)
        .await;
    let codec = user_service::auth::TokenCodec::new(
        &user_service::auth::JwtSecret::parse("JWT_SECRET", SECRET).unwrap(),
        chrono::Duration::hours(1),
        std::sync::Arc::new(platform::clock::SystemClock),
    );
    let racers: Vec<_> = (0..100)
        .map(|n| {
            let token = codec
                .issue(&format!("racer-{n}"), platform::identity::Role::Customer)
                .unwrap()
                .token;
            let client = support::Client {
                base: base.clone(),
                token,
                user_id: format!("racer-{n}"),
            };
            let path = format!("/coupon-sources/{source}/issue");
            tokio::spawn(async move { client.post(&path, json!({})).await })
        })
        .collect();
    let mut issued = 0;
    for r in racers {
        let (status, body) = r.await.unwrap();
        match status.as_u16() {
            201 => issued += 1,
            409 => assert_eq!(body["error"]["code"], "SOLD_OUT"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(issued, 20);

    // A confirmed order's events delivered again through SNS change nothing.
    let order = lee
        .placed(json!([{"productId": pen, "quantity": 2}]), None)
        .await;
    assert_eq!(
        lee.await_order(&order, &["CONFIRMED", "FAILED"]).await["status"],
        "CONFIRMED"
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let outbox = dynamodb
        .scan()
        .table_name(&system.names.tables[&Service::Order])
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("OUTBOX#".into()),
        )
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(&sdk);
    for item in outbox.items() {
        let event = contract::Envelope::from_json(item["event"].as_s().unwrap()).unwrap();
        if event.aggregate_id != order {
            continue;
        }
        let publisher = platform::sns::SnsPublisher::new(
            sns.clone(),
            system.names.topics[&Service::Order].clone(),
        );
        platform::publish::EventPublisher::publish(&publisher, &event)
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(lee.balance().await, 50_000 - 4_000);
    assert_eq!(admin.stock(&pen).await, 18);
    assert_eq!(
        lee.await_order(&order, &["CONFIRMED"]).await["status"],
        "CONFIRMED"
    );

    // A message lost between SNS and a queue (payment never hears of the order): the sweep
    // fails the order when it expires, and the compensation completes.
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&system.names.topics[&Service::Order])
        .send()
        .await
        .unwrap();
    for s in subscriptions.subscriptions() {
        if s.endpoint()
            .is_some_and(|e| e.ends_with("payment-order-created"))
        {
            sns.unsubscribe()
                .subscription_arn(s.subscription_arn().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let stalled = lee
        .placed(json!([{"productId": pen, "quantity": 1}]), None)
        .await;
    let failed = lee.await_order(&stalled, &["FAILED", "CONFIRMED"]).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failureReason"].as_str()),
        (Some("FAILED"), Some("EXPIRED"))
    );
    assert_eq!(admin.stock(&pen).await, 18);
    assert_eq!(lee.balance().await, 46_000);
    system.shutdown().await;
}
