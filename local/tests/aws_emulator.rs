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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_saga_runs_on_the_emulators_dynamodb_streams_sns_and_sqs() {
    let sdk = emulator().sdk_config().await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let env = HashMap::from([
        ("JWT_SECRET", "aws-emulator-test-secret-32-bytes-long"),
        ("ADMIN_EMAILS", ADMIN),
        ("SWEEP_INTERVAL_SECONDS", "1"),
    ]);
    let system = AwsSystem::start(LocalConfig::from_env(&env).unwrap(), &sdk, &prefix)
        .await
        .expect("provision and start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = system.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

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
    system.shutdown().await;
}
