//! The timeline: a batch's events of one order in one write, each event listed once.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use contract::{Envelope, PaymentApproved, Won};
use platform::clock::ManualClock;
use platform::docstore::memory::MemoryDocStore;
use platform::docstore::{Commit, DocStore, Expect, Write};
use platform::events::{Cause, EventFactory};
use platform::ids::SequentialIds;
use platform::outbox::MemoryOutbox;
use platform::ports::Ports;

use super::{OrderService, OrderSettings};

fn service() -> (OrderService, Arc<MemoryDocStore>, EventFactory) {
    let store = Arc::new(MemoryDocStore::new(Arc::new(MemoryOutbox::new())));
    let start = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).single();
    let clock = Arc::new(ManualClock::starting_at(start.unwrap_or_default()));
    let ids = Arc::new(SequentialIds::new("e"));
    let events = EventFactory::new(ids.clone(), clock.clone());
    let settings = OrderSettings {
        order_ttl: chrono::Duration::seconds(600),
        undo_grace: chrono::Duration::seconds(60),
    };
    let ports = Ports::new(store.clone(), clock, ids);
    (OrderService::new(ports, settings), store, events)
}

fn approved(events: &EventFactory, order_id: &str) -> Envelope {
    let approved = PaymentApproved {
        order_id: order_id.to_owned(),
        payment_id: None,
        amount: Won(1),
    };
    let cause = Cause::Request {
        correlation_id: order_id,
    };
    events.envelope(cause, order_id, approved)
}

fn timeline_items(store: &MemoryDocStore, order_id: &str) -> usize {
    let pk = format!("ORDER#{order_id}");
    store
        .items()
        .iter()
        .filter(|i| i.key.pk == pk && i.key.sk.starts_with("EVENT#"))
        .count()
}

#[tokio::test]
async fn a_batch_writes_one_item_per_order_and_a_duplicate_is_listed_once() {
    let (orders, store, events) = service();
    let (a1, a2, b1) = (
        approved(&events, "A"),
        approved(&events, "A"),
        approved(&events, "B"),
    );
    let batch = [&a1, &b1, &a2];
    assert!(orders.record_all(&batch).await.iter().all(Result::is_ok));
    assert_eq!(timeline_items(&store, "A"), 1, "A's two events in one item");
    assert_eq!(timeline_items(&store, "B"), 1);

    // The same batch again writes nothing new; a1 again with a new event, another item.
    assert!(orders.record_all(&batch).await.iter().all(Result::is_ok));
    assert_eq!(timeline_items(&store, "A"), 1);
    let a3 = approved(&events, "A");
    assert!(
        orders
            .record_all(&[&a1, &a3])
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(timeline_items(&store, "A"), 2);

    let listed: Vec<String> = orders
        .timeline("A")
        .await
        .map(|entries| entries.into_iter().map(|e| e.event_id).collect())
        .unwrap_or_default();
    let mut expected = vec![
        a1.event_id.clone(),
        a2.event_id.clone(),
        a3.event_id.clone(),
    ];
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "each event once: {listed:?}");
}

#[tokio::test]
async fn an_event_recorded_alone_reads_as_before() {
    let (orders, store, events) = service();
    let one = approved(&events, "C");
    assert!(orders.record(&one).await.is_ok());
    assert!(
        orders.record(&one).await.is_ok(),
        "a duplicate changes nothing"
    );
    assert_eq!(timeline_items(&store, "C"), 1);
    let entries = orders.timeline("C").await.unwrap_or_default();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event_type, "PaymentApproved");

    // An item written before batches (one entry, keyed by its event id) still reads.
    let old = crate::repo::TimelineEntry {
        event_id: "old-1".to_owned(),
        event_type: "OrderCreated".to_owned(),
        source: "order".to_owned(),
        occurred_at: entries[0].occurred_at,
        seen_at: entries[0].seen_at,
        causation_id: None,
    };
    let key = crate::repo::timeline_key("C", &["old-1"]);
    let write = Write::put(key, &old, Expect::Absent).unwrap_or_else(|e| panic!("{e}"));
    assert!(store.commit(Commit::new().write(write)).await.is_ok());
    let types: Vec<String> = orders
        .timeline("C")
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(types.contains(&"OrderCreated".to_owned()), "{types:?}");
}
