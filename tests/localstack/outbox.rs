//! The outbox and de-duplication items on DynamoDB: a transaction with a
//! repeated business key is cancelled at that item, and the recorded outcome is read back.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{TimeZone, Utc};
use contract::{Envelope, EventMeta, StockReserved};
use platform::dynamo::{cancellation_codes, condition_failed_at};
use platform::idempotency::{Claim, dynamo_claim, dynamo_put};
use platform::outbox;
use platform::packing::Packing;
use platform::testing::aws::endpoint;

fn effect(table: &str, order: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("RESERVATION#{order}")))
        .item("sk", AttributeValue::S("R".into()))
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

#[tokio::test]
async fn a_repeated_key_cancels_the_whole_transaction_and_the_outcome_is_answered_again() {
    let client = endpoint().dynamodb().await;
    let test_table = endpoint().table(&client, "platform").await;
    let table = test_table.name.clone();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
    let event = |n: u32| {
        let meta = EventMeta {
            event_id: format!("e-{n}"),
            occurred_at: now,
            correlation_id: "o-1".into(),
            causation_id: None,
        };
        Envelope::new(
            meta,
            "o-1",
            StockReserved {
                order_id: "o-1".into(),
            },
        )
    };

    assert_eq!(
        dynamo_claim(&client, &table, "reserve#o-1").await.unwrap(),
        Claim::Fresh
    );
    client
        .transact_write_items()
        .transact_items(effect(&table, "o-1"))
        .transact_items(dynamo_put(&table, "reserve#o-1", r#"{"reserved":true}"#, now).unwrap())
        .transact_items(outbox::dynamo_put(&table, &[event(1)], now, Packing::Deflate).unwrap())
        .send()
        .await
        .unwrap();

    // The duplicate: a different effect item, but the same business key.
    let error = client
        .transact_write_items()
        .transact_items(effect(&table, "o-1-again"))
        .transact_items(dynamo_put(&table, "reserve#o-1", r#"{"reserved":false}"#, now).unwrap())
        .transact_items(outbox::dynamo_put(&table, &[event(2)], now, Packing::Deflate).unwrap())
        .send()
        .await
        .unwrap_err();
    let codes = cancellation_codes(&error).expect("a transaction cancellation");
    assert_eq!(codes.len(), 3);
    assert!(condition_failed_at(&codes, 1), "{codes:?}");
    assert!(
        !condition_failed_at(&codes, 0) && !condition_failed_at(&codes, 2),
        "{codes:?}"
    );

    assert_eq!(
        dynamo_claim(&client, &table, "reserve#o-1").await.unwrap(),
        Claim::Done(r#"{"reserved":true}"#.to_owned())
    );
    // Nothing of the cancelled transaction was written: no second effect, no second event.
    let scan = client
        .scan()
        .table_name(&table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = scan
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["DEDUP#reserve#o-1", "OUTBOX#e-1", "RESERVATION#o-1"]);
}
