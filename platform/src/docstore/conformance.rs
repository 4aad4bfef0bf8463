//! What every [`DocStore`] adapter must do, as one suite. `docstore_conformance!` turns each
//! case into a test for an adapter; the in-memory and DynamoDB test files both use it.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use contract::{Envelope, EventMeta, StockReserved};
use serde_json::json;

use super::{
    Commit, CommitError, ConflictAt, DocStore, Expect, Index, IndexKey, Key, Query, Write,
};
use crate::errors::StoreError;
use crate::testing::OutboxProbe;

pub struct Subject {
    pub store: Arc<dyn DocStore>,
    pub outbox: Box<dyn OutboxProbe>,
}

fn put(pk: &str, sk: &str, body: serde_json::Value, expect: Expect) -> Write {
    Write::put(Key::new(pk, sk), &body, expect).expect("serialisable")
}

fn event(n: u32) -> Envelope {
    let meta = EventMeta {
        event_id: format!("e-{n}-{}", uuid::Uuid::new_v4().simple()),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        correlation_id: "o-1".into(),
        causation_id: None,
    };
    Envelope::new(
        meta,
        "o-1",
        StockReserved {
            order_id: format!("o-{n}"),
        },
    )
}

fn conflict_at(result: Result<(), CommitError>) -> ConflictAt {
    match result {
        Err(CommitError::Conflict(at)) => at,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn versions_guard_every_write(s: Subject) {
    let key = Key::new("P#1", "P");
    let store = &s.store;
    store
        .commit(Commit::new().write(put("P#1", "P", json!({"stock": 5}), Expect::Absent)))
        .await
        .unwrap();
    let item = store.get(&key).await.unwrap().expect("created");
    assert_eq!((item.version, item.body.clone()), (1, json!({"stock": 5})));

    let again = store
        .commit(Commit::new().write(put("P#1", "P", json!({"stock": 9}), Expect::Absent)))
        .await;
    assert_eq!(conflict_at(again), ConflictAt::Write(0));
    store
        .commit(Commit::new().write(put("P#1", "P", json!({"stock": 4}), Expect::Version(1))))
        .await
        .unwrap();
    let stale = store
        .commit(Commit::new().write(put("P#1", "P", json!({"stock": 3}), Expect::Version(1))))
        .await;
    assert_eq!(conflict_at(stale), ConflictAt::Write(0));
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.version, item.body), (2, json!({"stock": 4})));

    let wrong_delete = store
        .commit(Commit::new().write(Write::Delete {
            key: key.clone(),
            expect: Expect::Version(1),
        }))
        .await;
    assert_eq!(conflict_at(wrong_delete), ConflictAt::Write(0));
    store
        .commit(Commit::new().write(Write::Delete {
            key: key.clone(),
            expect: Expect::Version(2),
        }))
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
}

pub async fn a_commit_is_all_or_nothing_with_its_events(s: Subject) {
    let store = &s.store;
    store
        .commit(Commit::new().write(put("A", "A", json!(1), Expect::Absent)))
        .await
        .unwrap();
    let first = event(1);
    store
        .commit(
            Commit::new()
                .write(put("B", "B", json!(1), Expect::Absent))
                .event(first.clone()),
        )
        .await
        .unwrap();

    // The second write's condition fails: the first write and the event must not happen.
    let failed = Commit::new()
        .write(put("C", "C", json!(1), Expect::Absent))
        .write(put("A", "A", json!(2), Expect::Version(7)))
        .event(event(2));
    assert_eq!(
        conflict_at(store.commit(failed).await),
        ConflictAt::Write(1)
    );
    assert_eq!(store.get(&Key::new("C", "C")).await.unwrap(), None);
    assert_eq!(
        store.get(&Key::new("A", "A")).await.unwrap().unwrap().body,
        json!(1)
    );

    // A check that fails cancels too; one that holds lets the rest through.
    let checked = Commit::new()
        .write(Write::Check {
            key: Key::new("A", "A"),
            expect: Expect::Version(2),
        })
        .write(put("D", "D", json!(1), Expect::Absent));
    assert_eq!(
        conflict_at(store.commit(checked).await),
        ConflictAt::Write(0)
    );
    let checked = Commit::new()
        .write(Write::Check {
            key: Key::new("A", "A"),
            expect: Expect::Version(1),
        })
        .write(put("D", "D", json!(1), Expect::Absent));
    store.commit(checked).await.unwrap();
    assert!(store.get(&Key::new("D", "D")).await.unwrap().is_some());

    let events = s.outbox.events().await;
    assert_eq!(events, vec![first]);
}

/// Every shape a commit with events takes on DynamoDB — one put carrying them (a create or
/// a replace), a transaction whose first put carries them, deletes with an outbox item,
/// events alone — publishes each event exactly once, and one whose condition fails none.
pub async fn events_are_written_once_by_every_shape_of_commit(s: Subject) {
    let store = &s.store;
    let events: Vec<Envelope> = (1..=7).map(event).collect();
    let create = Commit::new()
        .write(put("E", "E", json!(1), Expect::Absent))
        .event(events[0].clone());
    store.commit(create).await.unwrap();
    // A replace without events leaves the first event published once, not again.
    let quiet = Commit::new().write(put("E", "E", json!(2), Expect::Version(1)));
    store.commit(quiet).await.unwrap();
    let replace = Commit::new()
        .write(put("E", "E", json!(3), Expect::Version(2)))
        .events([events[1].clone(), events[2].clone()]);
    store.commit(replace).await.unwrap();
    let lost = Commit::new()
        .write(put("E", "E", json!(9), Expect::Version(2)))
        .event(event(8));
    assert_eq!(conflict_at(store.commit(lost).await), ConflictAt::Write(0));
    let lost_create = Commit::new()
        .write(put("E", "E", json!(9), Expect::Absent))
        .event(event(9));
    assert_eq!(
        conflict_at(store.commit(lost_create).await),
        ConflictAt::Write(0)
    );
    // Two items: the check comes first, the put after it carries the event.
    let pair = Commit::new()
        .write(Write::Check {
            key: Key::new("E", "E"),
            expect: Expect::Version(3),
        })
        .write(put("F", "F", json!(1), Expect::Absent))
        .event(events[3].clone());
    store.commit(pair).await.unwrap();
    let delete = Commit::new()
        .write(Write::Delete {
            key: Key::new("F", "F"),
            expect: Expect::Version(1),
        })
        .event(events[4].clone());
    store.commit(delete).await.unwrap();
    assert_eq!(store.get(&Key::new("F", "F")).await.unwrap(), None);
    let alone = Commit::new().events([events[5].clone(), events[6].clone()]);
    store.commit(alone).await.unwrap();
    let too_many = Commit::new()
        .write(put("G", "G", json!(1), Expect::Absent))
        .events((0..=super::MAX_COMMIT_ITEMS as u32).map(event));
    assert!(matches!(
        store.commit(too_many).await,
        Err(CommitError::Store(StoreError::Refused(_)))
    ));
    assert_eq!(store.get(&Key::new("G", "G")).await.unwrap(), None);

    let mut written = s.outbox.events().await;
    written.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let mut expected = events;
    expected.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(written, expected);
    // The item read back is the state alone: the events it carried are not its body.
    let item = store.get(&Key::new("E", "E")).await.unwrap().unwrap();
    assert_eq!((item.version, item.body), (3, json!(3)));
}

/// A document and events long enough to be stored deflated (see [`crate::packing`]) read
/// back as written: by key, eventually, by query, by index, as a counter's item; and its
/// events are published as they were.
pub async fn long_documents_and_their_events_read_back_as_written(s: Subject) {
    let store = &s.store;
    let lines: Vec<serde_json::Value> = (0..40)
        .map(|i| json!({"productId": format!("p-{}", i % 3), "quantity": i, "unitPrice": 1000}))
        .collect();
    let body = json!({"orderId": "o-long", "items": lines, "note": "한글도 그대로"});
    let events: Vec<Envelope> = (1..=6).map(event).collect();
    let key = Key::new("L#1", "L");
    let index = IndexKey::new("LONG", "1");
    let write = Write::put(key.clone(), &body, Expect::Absent)
        .expect("serialisable")
        .indexed(Some(index), None);
    store
        .commit(Commit::new().write(write).events(events.clone()))
        .await
        .unwrap();
    let read = store.get(&key).await.unwrap().expect("written");
    assert_eq!((read.version, &read.body), (1, &body));
    let eventual = read_eventually(store.as_ref(), &key)
        .await
        .expect("written");
    assert_eq!(eventual.body, body);
    let page = store
        .query(Query::partition(Index::Table, "L#1"))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|i| &i.body).collect::<Vec<_>>(),
        [&body]
    );
    let by_index = store
        .query(Query::partition(Index::Gsi1, "LONG"))
        .await
        .unwrap();
    assert_eq!(
        by_index.items.iter().map(|i| &i.body).collect::<Vec<_>>(),
        [&body]
    );

    // An add that creates its item keeps the long body it was given, beside its counter.
    let counted = Key::new("L#2", "L");
    let add = Write::add(counted.clone(), [("stock", 5)])
        .or_create(&body)
        .expect("serialisable");
    store.commit(Commit::new().write(add)).await.unwrap();
    let mut expected = body.clone();
    expected["stock"] = json!(5);
    let read = store.get(&counted).await.unwrap().expect("created");
    assert_eq!(read.body, expected);

    let mut written = s.outbox.events().await;
    written.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let mut sorted = events;
    sorted.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(written, sorted);
}

pub async fn a_processed_key_is_done_once_and_remembers_its_outcome(s: Subject) {
    let store = &s.store;
    assert_eq!(store.processed("reserve#o-1").await.unwrap(), None);
    let work = |n: u32, outcome: &str| {
        Commit::new()
            .write(put("R", &format!("R{n}"), json!(n), Expect::Absent))
            .processed("reserve#o-1", outcome)
            .event(event(n))
    };
    store.commit(work(1, "reserved")).await.unwrap();
    assert_eq!(
        conflict_at(store.commit(work(2, "failed")).await),
        ConflictAt::Processed
    );
    assert_eq!(
        store.processed("reserve#o-1").await.unwrap().as_deref(),
        Some("reserved")
    );
    assert_eq!(store.get(&Key::new("R", "R2")).await.unwrap(), None);
    assert_eq!(s.outbox.events().await.len(), 1);
}

pub async fn queries_page_through_a_partition_in_either_order(s: Subject) {
    let store = &s.store;
    for n in 0..7 {
        let write = put("U#1", &format!("TX#{n:03}"), json!(n), Expect::Absent);
        store.commit(Commit::new().write(write)).await.unwrap();
    }
    store
        .commit(Commit::new().write(put("U#1", "PROFILE", json!("p"), Expect::Absent)))
        .await
        .unwrap();
    store
        .commit(Commit::new().write(put("U#2", "TX#000", json!("other"), Expect::Absent)))
        .await
        .unwrap();

    for descending in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let mut q = Query::partition(Index::Table, "U#1")
                .prefix("TX#")
                .limit(3)
                .after(cursor.clone());
            q.descending = descending;
            let page = store.query(q).await.unwrap();
            seen.extend(page.items.iter().map(|i| i.body.as_i64().unwrap()));
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let mut expected: Vec<i64> = (0..7).collect();
        if descending {
            expected.reverse();
        }
        assert_eq!(seen, expected, "descending={descending}");
    }
    let up_to = store
        .query(
            Query::partition(Index::Table, "U#1")
                .prefix("TX#")
                .up_to("TX#002"),
        )
        .await
        .unwrap();
    assert_eq!(up_to.items.len(), 3);
    assert_eq!(up_to.cursor, None);
}

pub async fn secondary_indexes_are_sparse_and_sorted(s: Subject) {
    let store = &s.store;
    let orders = [
        ("o-1", "2026-11-24T09:00:00Z"),
        ("o-2", "2026-11-24T08:00:00Z"),
        ("o-3", "2026-11-24T10:00:00Z"),
    ];
    for (id, at) in orders {
        let due = (id != "o-2").then(|| IndexKey::new("SWEEP", format!("{at}#{id}")));
        let write = put(
            &format!("ORDER#{id}"),
            "ORDER",
            json!({"id": id}),
            Expect::Absent,
        )
        .indexed(Some(IndexKey::new("USER#u-1", format!("{at}#{id}"))), due);
        store.commit(Commit::new().write(write)).await.unwrap();
    }
    let ids = |page: super::Page| -> Vec<String> {
        page.items
            .iter()
            .map(|i| i.body["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mine = store
        .query(Query::partition(Index::Gsi1, "USER#u-1").newest_first())
        .await
        .unwrap();
    assert_eq!(ids(mine), ["o-3", "o-1", "o-2"]);
    let first = store
        .query(
            Query::partition(Index::Gsi1, "USER#u-1")
                .newest_first()
                .limit(2),
        )
        .await
        .unwrap();
    assert!(first.cursor.is_some());
    let second = store
        .query(
            Query::partition(Index::Gsi1, "USER#u-1")
                .newest_first()
                .limit(2)
                .after(first.cursor.clone()),
        )
        .await
        .unwrap();
    assert_eq!(ids(second), ["o-2"]);
    let due = store
        .query(Query::partition(Index::Gsi2, "SWEEP").up_to("2026-11-24T09:30:00Z"))
        .await
        .unwrap();
    assert_eq!(ids(due), ["o-1"]);

    // Rewriting an item without an index key takes it out of that index.
    let item = store
        .get(&Key::new("ORDER#o-1", "ORDER"))
        .await
        .unwrap()
        .unwrap();
    let write = put(
        "ORDER#o-1",
        "ORDER",
        json!({"id": "o-1"}),
        Expect::Version(item.version),
    )
    .indexed(item.gsi1.clone(), None);
    store.commit(Commit::new().write(write)).await.unwrap();
    let due = store
        .query(Query::partition(Index::Gsi2, "SWEEP"))
        .await
        .unwrap();
    assert_eq!(ids(due), ["o-3"]);
}

/// An index answers items as they are now, not as they were when they entered it: the
/// DynamoDB adapter's indexes hold keys only and it reads the items.
pub async fn an_index_answers_items_as_they_are_now(s: Subject) {
    let store = &s.store;
    let listed = |id: &str| Some(IndexKey::new("PRODUCTS", format!("pen#{id}")));
    for id in ["p-1", "p-2", "p-3"] {
        let write = put(
            &format!("P#{id}"),
            "P",
            json!({"id": id, "name": "pen", "stock": 5}),
            Expect::Absent,
        )
        .indexed(listed(id), None)
        .counting(["stock"]);
        store.commit(Commit::new().write(write)).await.unwrap();
    }
    // p-1's body replaced, p-2's counter moved, p-3 renamed out of the list's range.
    let p1 = store.get(&Key::new("P#p-1", "P")).await.unwrap().unwrap();
    let renamed = Write::replace(&p1, &json!({"id": "p-1", "name": "ink pen", "stock": 5}));
    store
        .commit(Commit::new().write(renamed.unwrap()))
        .await
        .unwrap();
    let take = Write::add(Key::new("P#p-2", "P"), [("stock", -2)]);
    store.commit(Commit::new().write(take)).await.unwrap();
    let p3 = store.get(&Key::new("P#p-3", "P")).await.unwrap().unwrap();
    let moved = put(
        "P#p-3",
        "P",
        json!({"id": "p-3"}),
        Expect::Version(p3.version),
    )
    .indexed(Some(IndexKey::new("PRODUCTS", "zz#p-3")), None);
    store.commit(Commit::new().write(moved)).await.unwrap();
    let page = store
        .query(Query::partition(Index::Gsi1, "PRODUCTS").prefix("pen#"))
        .await
        .unwrap();
    let bodies: Vec<_> = page.items.iter().map(|i| i.body.clone()).collect();
    assert_eq!(
        bodies,
        [
            json!({"id": "p-1", "name": "ink pen", "stock": 5}),
            json!({"id": "p-2", "name": "pen", "stock": 3}),
        ]
    );
    assert_eq!(page.items[1].version, 2, "read as it is, version and all");
    // A deleted item is no longer answered.
    let gone = Write::Delete {
        key: Key::new("P#p-1", "P"),
        expect: Expect::Version(2),
    };
    store.commit(Commit::new().write(gone)).await.unwrap();
    let page = store
        .query(Query::partition(Index::Gsi1, "PRODUCTS"))
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|i| i.body["id"].clone()).collect();
    assert_eq!(ids, [json!("p-2"), json!("p-3")]);
}

pub async fn racing_writers_each_win_once(s: Subject) {
    let key = Key::new("COUNTER", "C");
    s.store
        .commit(Commit::new().write(put("COUNTER", "C", json!(0), Expect::Absent)))
        .await
        .unwrap();
    let tasks = (0..8).map(|_| {
        let store = s.store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            // The retry loop every handler uses: bounded, with jittered backoff.
            super::commit_with_retries(store.as_ref(), || async {
                let item = store.get(&key).await?.expect("the counter exists");
                let next = item.body.as_i64().expect("a number") + 1;
                let write = Write::put(key.clone(), &next, Expect::Version(item.version))?;
                Ok::<_, StoreError>(super::Decision::Commit(Commit::new().write(write), ()))
            })
            .await
            .expect("each writer wins within the bounded attempts");
        })
    });
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.store.get(&key).await.unwrap().unwrap().body, json!(8));
}

pub async fn counters_move_in_place_under_their_bound(s: Subject) {
    let store = &s.store;
    let key = Key::new("P#2", "P");
    let product = put(
        "P#2",
        "P",
        json!({"name": "pen", "stock": 3}),
        Expect::Absent,
    )
    .counting(["stock"]);
    store.commit(Commit::new().write(product)).await.unwrap();
    let take = |n: i64| Commit::new().write(Write::add(key.clone(), [("stock", -n)]));
    store.commit(take(2)).await.unwrap();
    // Below zero is refused, and changes nothing.
    assert_eq!(
        conflict_at(store.commit(take(2)).await),
        ConflictAt::Write(0)
    );
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.body, json!({"name": "pen", "stock": 1}));
    assert_eq!(item.version, 2, "an add moves the version");
    // A put after read of the item before the add loses, and a replace keeps the counter.
    let stale = put(
        "P#2",
        "P",
        json!({"name": "pencil", "stock": 3}),
        Expect::Version(1),
    );
    assert_eq!(
        conflict_at(store.commit(Commit::new().write(stale)).await),
        ConflictAt::Write(0)
    );
    let renamed = Write::replace(&item, &json!({"name": "pencil", "stock": 1})).unwrap();
    store.commit(Commit::new().write(renamed)).await.unwrap();
    store.commit(take(-4)).await.unwrap();
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (item.version, item.body.clone()),
        (4, json!({"name": "pencil", "stock": 5}))
    );

    // An add to an absent item is refused, unless it says what to create.
    let missing = Commit::new().write(Write::add(Key::new("S#1", "S"), [("quantity", 2)]));
    assert_eq!(
        conflict_at(store.commit(missing).await),
        ConflictAt::Write(0)
    );
    assert_eq!(store.get(&Key::new("S#1", "S")).await.unwrap(), None);
    let count = |q: i64, amount: i64| {
        Write::add(Key::new("S#1", "S"), [("quantity", q), ("amount", amount)])
            .or_create(&json!({"day": "2026-12-04"}))
            .unwrap()
    };
    store
        .commit(Commit::new().write(count(2, 300)).event(event(1)))
        .await
        .unwrap();
    store
        .commit(Commit::new().write(count(1, 50)))
        .await
        .unwrap();
    let stat = store.get(&Key::new("S#1", "S")).await.unwrap().unwrap();
    assert_eq!(
        (stat.version, stat.body),
        (
            2,
            json!({"day": "2026-12-04", "quantity": 3, "amount": 350})
        )
    );

    // In a transaction: the adds and the put land together, or not at all.
    let record = |sk: &str| put("O#1", sk, json!({"state": "RESERVED"}), Expect::Absent);
    let short = Commit::new()
        .write(Write::add(key.clone(), [("stock", -1)]))
        .write(Write::add(Key::new("S#1", "S"), [("quantity", -4)]))
        .write(record("R"))
        .event(event(2));
    assert_eq!(conflict_at(store.commit(short).await), ConflictAt::Write(1));
    assert_eq!(store.get(&Key::new("O#1", "R")).await.unwrap(), None);
    let enough = Commit::new()
        .write(Write::add(key.clone(), [("stock", -5)]))
        .write(record("R"))
        .event(event(3));
    store.commit(enough).await.unwrap();
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.body, json!({"name": "pencil", "stock": 0}));

    // Each event once: an add that carries none does not publish those carried before.
    let events = s.outbox.events().await;
    let mut ids: Vec<_> = events.iter().map(|e| e.event_id[..4].to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["e-1-", "e-3-"]);
}

pub async fn concurrent_adds_all_land_without_a_retry(s: Subject) {
    let key = Key::new("SOURCE", "S");
    let source = put("SOURCE", "S", json!({"left": 5}), Expect::Absent).counting(["left"]);
    s.store.commit(Commit::new().write(source)).await.unwrap();
    let tasks = (0..8).map(|_| {
        let store = s.store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let take = Commit::new().write(Write::add(key, [("left", -1)]));
            store.commit(take).await.is_ok()
        })
    });
    let mut won = 0;
    for task in tasks {
        won += u32::from(task.await.unwrap());
    }
    assert_eq!(
        won, 5,
        "exactly as many as there were, each at its first attempt"
    );
    let item = s.store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.body, json!({"left": 0}));
}

pub async fn counters_need_an_object_holding_integers(s: Subject) {
    for write in [
        put("X", "X", json!(3), Expect::Absent).counting(["stock"]),
        put("X", "X", json!({"stock": "many"}), Expect::Absent).counting(["stock"]),
        Write::add(Key::new("X", "X"), [("n", 1)])
            .or_create(&json!([1]))
            .unwrap(),
    ] {
        assert!(
            matches!(
                s.store.commit(Commit::new().write(write.clone())).await,
                Err(CommitError::Store(StoreError::Refused(_)))
            ),
            "{write:?}"
        );
    }
    assert_eq!(s.store.get(&Key::new("X", "X")).await.unwrap(), None);
}

pub async fn a_foreign_cursor_is_refused(s: Subject) {
    // Odd-length, not hex, valid hex of an object without a position, and a multi-byte
    // character at an even byte offset (the fuzzer's `q\u{93}R`, once a panic).
    for cursor in ["zz", "7b7d", "not hex at all", "q\u{93}R", "\u{e9}\u{e9}"] {
        let q = Query::partition(Index::Table, "X").after(Some(cursor.to_owned()));
        assert!(
            matches!(s.store.query(q).await, Err(StoreError::InvalidCursor)),
            "{cursor}"
        );
    }
    // A real cursor, used on another partition, on another range, or with a key added:
    // refused before the store sees it (DynamoDB would answer a ValidationException).
    let mut commit = Commit::new();
    for n in 0..3 {
        commit = commit.write(put("A", &format!("ITEM#{n}"), json!(n), Expect::Absent));
    }
    commit = commit.write(put("B", "ITEM#0", json!(0), Expect::Absent));
    s.store.commit(commit).await.unwrap();
    let page = s
        .store
        .query(Query::partition(Index::Table, "A").limit(1))
        .await
        .unwrap();
    let cursor = page.cursor.expect("more pages");
    let next = Query::partition(Index::Table, "A")
        .limit(1)
        .after(Some(cursor.clone()));
    assert_eq!(
        s.store.query(next).await.unwrap().items.len(),
        1,
        "the cursor works"
    );
    let mut padded: serde_json::Value = serde_json::from_slice(
        &(0..cursor.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    padded["extra"] = json!("x");
    let padded = super::encode_cursor(&padded);
    for (what, query) in [
        (
            "another partition",
            Query::partition(Index::Table, "B").after(Some(cursor.clone())),
        ),
        (
            "another range",
            Query::partition(Index::Table, "A")
                .prefix("OTHER#")
                .after(Some(cursor.clone())),
        ),
        (
            "a key added",
            Query::partition(Index::Table, "A").after(Some(padded)),
        ),
    ] {
        assert!(
            matches!(s.store.query(query).await, Err(StoreError::InvalidCursor)),
            "{what}"
        );
    }
}

/// `get_many` answers every key in the order asked, absent ones as `None`, over more keys
/// than one DynamoDB batch holds, a key named twice included, counters in their bodies.
pub async fn many_items_are_read_at_once_in_the_order_asked(s: Subject) {
    let store = &s.store;
    let mut commit = Commit::new();
    for n in 0..60 {
        commit = commit.write(put(
            &format!("SHARD#{n}"),
            "S",
            json!({"n": n}),
            Expect::Absent,
        ));
    }
    store.commit(commit).await.unwrap();
    let counted = Write::add(Key::new("SHARD#counted", "S"), [("left", 7)])
        .or_create(&json!({"name": "counted"}))
        .unwrap();
    store.commit(Commit::new().write(counted)).await.unwrap();
    // 120 present and absent keys, backwards, one twice, and the counter item.
    let mut keys: Vec<Key> = (0..120)
        .rev()
        .map(|n| Key::new(format!("SHARD#{n}"), "S"))
        .collect();
    keys.push(Key::new("SHARD#3", "S"));
    keys.push(Key::new("SHARD#counted", "S"));
    let items = store.get_many(&keys).await.unwrap();
    assert_eq!(items.len(), keys.len());
    for (key, item) in keys.iter().zip(&items) {
        let n: Option<u64> = key.pk.trim_start_matches("SHARD#").parse().ok();
        match (n, item) {
            (Some(n), Some(item)) if n < 60 => {
                assert_eq!((&item.key, &item.body), (key, &json!({"n": n})))
            }
            (Some(n), None) if n >= 60 => {}
            (None, Some(item)) => {
                assert_eq!(item.body, json!({"name": "counted", "left": 7}))
            }
            other => panic!("{key:?}: {other:?}"),
        }
    }
    assert_eq!(store.get_many(&[]).await.unwrap(), Vec::new());
}

/// The item at `key` as an eventual read answers it once it has caught up with a strong
/// one (at once on the memory store and DynamoDB Local; within a second or so on DynamoDB).
async fn read_eventually(store: &dyn DocStore, key: &Key) -> Option<super::Item> {
    let now = store.get(key).await.unwrap();
    for _ in 0..60 {
        let eventual = store.get_eventual(key).await.unwrap();
        if eventual == now {
            return eventual;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{key:?}: an eventual read never caught up with {now:?}");
}

/// `get_eventual` answers what the committed writes left — created, replaced, counted,
/// deleted — with its version, index keys and counters, as `get` does.
pub async fn an_eventual_read_answers_what_a_committed_write_left(s: Subject) {
    let store = s.store.as_ref();
    let key = Key::new("P#e", "P");
    assert_eq!(
        store.get_eventual(&key).await.unwrap(),
        None,
        "never written"
    );
    let listed = Some(IndexKey::new("PRODUCTS", "pen#e"));
    let create = put(
        "P#e",
        "P",
        json!({"name": "pen", "stock": 5}),
        Expect::Absent,
    )
    .indexed(listed.clone(), None)
    .counting(["stock"]);
    store.commit(Commit::new().write(create)).await.unwrap();
    let item = read_eventually(store, &key).await.expect("created");
    assert_eq!(
        (item.version, &item.body, &item.gsi1),
        (1, &json!({"name": "pen", "stock": 5}), &listed)
    );
    let renamed = Write::replace(&item, &json!({"name": "ink pen", "stock": 5})).unwrap();
    store.commit(Commit::new().write(renamed)).await.unwrap();
    let take = Write::add(key.clone(), [("stock", -2)]);
    store.commit(Commit::new().write(take)).await.unwrap();
    let item = read_eventually(store, &key).await.expect("still there");
    assert_eq!(
        (item.version, item.body),
        (3, json!({"name": "ink pen", "stock": 3}))
    );
    let gone = Write::Delete {
        key: key.clone(),
        expect: Expect::Version(3),
    };
    store.commit(Commit::new().write(gone)).await.unwrap();
    assert_eq!(read_eventually(store, &key).await, None, "deleted");
}

#[macro_export]
macro_rules! docstore_conformance {
    ($subject:expr) => {
        $crate::docstore_conformance!(@cases $subject;
            versions_guard_every_write,
            a_commit_is_all_or_nothing_with_its_events,
            events_are_written_once_by_every_shape_of_commit,
            long_documents_and_their_events_read_back_as_written,
            a_processed_key_is_done_once_and_remembers_its_outcome,
            queries_page_through_a_partition_in_either_order,
            secondary_indexes_are_sparse_and_sorted,
            an_index_answers_items_as_they_are_now,
            racing_writers_each_win_once,
            counters_move_in_place_under_their_bound,
            concurrent_adds_all_land_without_a_retry,
            counters_need_an_object_holding_integers,
            a_foreign_cursor_is_refused,
            many_items_are_read_at_once_in_the_order_asked,
            an_eventual_read_answers_what_a_committed_write_left,
        );
    };
    (@cases $subject:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::docstore::conformance::$case($subject.await).await
            }
        )*
    };
}
