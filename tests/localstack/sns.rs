//! The SNS publisher: an event reaches a subscribed queue (raw delivery) with its `type` and
//! `source` attributes, and a filter policy on `type` holds the others back.

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{TimeZone, Utc};
use contract::{Envelope, EventMeta, StockReleased, StockReserved};
use platform::publish::EventPublisher;
use platform::sns::SnsPublisher;
use platform::testing::aws::{Cleanup, endpoint, unique_name};

use crate::queues::{receive, receive_exactly};

/// How long SNS may take to deliver to SQS (asynchronously) on a loaded machine.
const DELIVERY: std::time::Duration = std::time::Duration::from_secs(30);

fn envelope(n: u32, event: impl Into<contract::Event>) -> Envelope {
    let meta = EventMeta {
        event_id: format!("e-{n}"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        correlation_id: "o-1".into(),
        causation_id: None,
    };
    Envelope::new(meta, "o-1", event)
}

/// A product topic with a queue subscribed to its `StockReserved` events (raw delivery).
/// Deleted, with everything else the test made, when the returned [`Cleanup`] goes.
async fn topic_with_a_filtered_queue() -> (
    aws_sdk_sns::Client,
    String,
    aws_sdk_sqs::Client,
    String,
    Cleanup,
) {
    let config = endpoint().sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let cleanup = Cleanup::new(endpoint());

    let topic_arn = sns
        .create_topic()
        .name(unique_name("product"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    cleanup.topic(&topic_arn);
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("order-steps"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    cleanup.queue(&queue_url);
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .attributes("FilterPolicy", r#"{"type": ["StockReserved"]}"#)
        .send()
        .await
        .unwrap();
    (sns, topic_arn, sqs, queue_url, cleanup)
}

#[tokio::test]
async fn published_events_reach_a_filtered_raw_subscription_with_their_attributes() {
    let (sns, topic_arn, sqs, queue_url, _cleanup) = topic_with_a_filtered_queue().await;

    let publisher = SnsPublisher::new(sns, topic_arn);
    let wanted = envelope(
        1,
        StockReserved {
            order_id: "o-1".into(),
        },
    );
    publisher
        .publish(&envelope(
            2,
            StockReleased {
                order_id: "o-1".into(),
                released: true,
            },
        ))
        .await
        .unwrap();
    publisher.publish(&wanted).await.unwrap();

    // The filter policy lets only StockReserved through.
    let messages = receive_exactly(&sqs, &queue_url, 1, DELIVERY).await;
    let message = &messages[0];
    assert_eq!(
        Envelope::from_json(message.body().unwrap()).unwrap(),
        wanted
    );
    let attributes = message.message_attributes.as_ref().unwrap();
    assert_eq!(attributes["type"].string_value(), Some("StockReserved"));
    assert_eq!(attributes["source"].string_value(), Some("product"));
}

#[tokio::test]
async fn a_batch_of_events_is_published_in_batches_and_filtered_like_single_ones() {
    let (sns, topic_arn, sqs, queue_url, _cleanup) = topic_with_a_filtered_queue().await;

    // 23 events: three PublishBatch requests (10 + 10 + 3); 12 of them pass the filter.
    let events: Vec<Envelope> = (0..23)
        .map(|n| {
            if n % 2 == 0 {
                envelope(
                    n,
                    StockReserved {
                        order_id: format!("o-{n}"),
                    },
                )
            } else {
                envelope(
                    n,
                    StockReleased {
                        order_id: format!("o-{n}"),
                        released: false,
                    },
                )
            }
        })
        .collect();
    let refs: Vec<&Envelope> = events.iter().collect();
    SnsPublisher::new(sns, topic_arn)
        .publish_all(&refs)
        .await
        .unwrap();

    let mut received = Vec::new();
    for m in receive_exactly(&sqs, &queue_url, 12, DELIVERY).await {
        let attributes = m.message_attributes.as_ref().unwrap();
        assert_eq!(attributes["type"].string_value(), Some("StockReserved"));
        assert_eq!(attributes["source"].string_value(), Some("product"));
        received.push(Envelope::from_json(m.body().unwrap()).unwrap().event_id);
    }
    received.sort();
    let mut expected: Vec<String> = (0..23).step_by(2).map(|n| format!("e-{n}")).collect();
    expected.sort();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn a_poison_message_is_kept_in_the_dead_letter_queue_with_its_reason() {
    use platform::batch::DeadLetters;
    let config = endpoint().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let cleanup = Cleanup::new(endpoint());
    let dlq = sqs
        .create_queue()
        .queue_name(unique_name("dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    cleanup.queue(&dlq);
    let dead_letters = platform::lambda::SqsDeadLetters::new(sqs.clone(), dlq.clone());
    let message =
        platform::batch::sqs_message("m-1", "r-1", "not an event", &Default::default(), 1);
    dead_letters
        .quarantine(&message, "the message is not an event envelope")
        .await
        .unwrap();

    let messages = receive(&sqs, &dlq, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body(), Some("not an event"));
    let reason = messages[0].message_attributes.as_ref().unwrap()["poisonReason"].string_value();
    assert_eq!(reason, Some("the message is not an event envelope"));
}
