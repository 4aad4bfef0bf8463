//! Given a record and the stock, when an order's event comes, then this is written and said.

use super::*;
use contract::Won;

fn line(p: &str, q: u32) -> OrderItem {
    OrderItem {
        product_id: p.into(),
        quantity: q,
        unit_price: Won(100),
    }
}

fn stock() -> BTreeMap<String, Option<u64>> {
    BTreeMap::from([
        ("a".to_owned(), Some(3)),
        ("b".to_owned(), Some(1)),
        ("gone".to_owned(), None),
    ])
}

fn failed(reason: &str, product: &str) -> Option<Event> {
    Some(
        StockReservationFailed {
            order_id: "o1".into(),
            reason: reason.into(),
            product_id: Some(product.into()),
        }
        .into(),
    )
}

#[test]
fn an_order_whose_every_line_is_available_takes_them_all() {
    let items = [line("a", 3), line("b", 1)];
    let got = reserve(None, "o1", &items, Stock::Read(&stock()));
    assert_eq!(
        got.record,
        Some(Reservation::Reserved {
            items: items.to_vec(),
            from: vec![],
        })
    );
    assert_eq!(
        got.take,
        BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 1)])
    );
    assert_eq!(
        got.answer,
        Some(
            StockReserved {
                order_id: "o1".into()
            }
            .into()
        )
    );
}

#[test]
fn one_short_line_takes_nothing_and_names_the_product() {
    let got = reserve(
        None,
        "o1",
        &[line("a", 3), line("b", 2)],
        Stock::Read(&stock()),
    );
    assert_eq!(got.take, BTreeMap::new());
    assert_eq!(
        got.record,
        Some(Reservation::Failed {
            reason: "OUT_OF_STOCK".into(),
            product_id: Some("b".into())
        })
    );
    assert_eq!(got.answer, failed("OUT_OF_STOCK", "b"));
}

#[test]
fn a_product_that_is_gone_or_never_was_is_unknown() {
    for product in ["gone", "x"] {
        let got = reserve(None, "o1", &[line(product, 1)], Stock::Read(&stock()));
        assert_eq!(got.answer, failed("UNKNOWN_PRODUCT", product));
        assert!(got.take.is_empty());
    }
}

#[test]
fn lines_of_one_product_are_counted_together() {
    // The order service refuses such an order; an event that carries one anyway must not
    // take more than there is.
    let got = reserve(
        None,
        "o1",
        &[line("a", 2), line("a", 2)],
        Stock::Read(&stock()),
    );
    assert_eq!(got.answer, failed("OUT_OF_STOCK", "a"));
    let got = reserve(
        None,
        "o1",
        &[line("a", 2), line("a", 1)],
        Stock::Read(&stock()),
    );
    assert_eq!(got.take, BTreeMap::from([("a".to_owned(), 3)]));
}

#[test]
fn without_a_read_every_line_is_taken_and_the_store_keeps_the_bound() {
    let items = [line("a", 2), line("b", 1), line("a", 1)];
    let got = reserve(None, "o1", &items, Stock::Unread);
    assert_eq!(
        got.take,
        BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 1)])
    );
    assert_eq!(
        got.record,
        Some(Reservation::Reserved {
            items: items.to_vec(),
            from: vec![],
        })
    );
    assert!(matches!(got.answer, Some(Event::StockReserved(_))));
    let undone = reserve(Some(&Reservation::Tombstone), "o1", &items, Stock::Unread);
    assert!(undone.take.is_empty() && undone.record.is_none());
}

#[test]
fn a_repeated_order_says_again_what_was_said_and_writes_nothing() {
    let failed_before = Reservation::Failed {
        reason: "OUT_OF_STOCK".into(),
        product_id: Some("b".into()),
    };
    let got = reserve(
        Some(&failed_before),
        "o1",
        &[line("a", 1)],
        Stock::Read(&stock()),
    );
    assert_eq!(
        (got.record, got.answer),
        (None, failed("OUT_OF_STOCK", "b"))
    );

    let reserved_before = Reservation::Reserved {
        items: vec![line("a", 1)],
        from: vec![],
    };
    let got = reserve(
        Some(&reserved_before),
        "o1",
        &[line("a", 1)],
        Stock::Read(&stock()),
    );
    assert!(got.record.is_none() && got.take.is_empty());
    assert!(matches!(got.answer, Some(Event::StockReserved(_))));
}

#[test]
fn an_order_that_comes_after_its_undo_reserves_nothing_and_says_nothing() {
    for undone in [
        Reservation::Tombstone,
        Reservation::Released { released: true },
    ] {
        let got = reserve(Some(&undone), "o1", &[line("a", 1)], Stock::Read(&stock()));
        assert_eq!(got.record, None);
        assert!(got.take.is_empty());
        assert_eq!(got.answer, None);
    }
}

fn taken(product: &str, shard: u32, quantity: u64) -> Taken {
    Taken {
        product_id: product.into(),
        shard,
        quantity,
    }
}

#[test]
fn releasing_a_reservation_gives_every_line_back_once() {
    let reserved = Reservation::Reserved {
        items: vec![line("a", 2), line("b", 1), line("a", 1)],
        from: vec![],
    };
    let got = release(Some(&reserved), "o1");
    assert_eq!(got.record, Some(Reservation::Released { released: true }));
    assert_eq!(got.give_back, vec![taken("a", 0, 3), taken("b", 0, 1)]);
    assert!(got.answer.released);

    let again = release(got.record.as_ref(), "o1");
    assert_eq!(again.record, None);
    assert!(again.give_back.is_empty());
    assert!(again.answer.released, "a repeat says what was done");
}

#[test]
fn stock_taken_from_shards_goes_back_to_those_shards() {
    // Given an order whose tea came from shards 3 and 5 of the tea, the pen from the pen
    let reserved = Reservation::Reserved {
        items: vec![line("tea", 2), line("pen", 1)],
        from: vec![taken("tea", 3, 1), taken("tea", 5, 1), taken("pen", 0, 1)],
    };
    // When it is released, each unit goes back where it came from
    let got = release(Some(&reserved), "o1");
    assert_eq!(
        got.give_back,
        vec![taken("tea", 3, 1), taken("tea", 5, 1), taken("pen", 0, 1)]
    );
    // And a record written before shards existed reads as taken from the products
    let old: Reservation = serde_json::from_value(serde_json::json!({
        "state": "RESERVED",
        "items": [{"productId": "tea", "quantity": 2, "unitPrice": 100}]
    }))
    .unwrap();
    assert_eq!(
        release(Some(&old), "o1").give_back,
        vec![taken("tea", 0, 2)]
    );
}

#[test]
fn releasing_before_the_order_leaves_a_tombstone() {
    let got = release(None, "o1");
    assert_eq!(got.record, Some(Reservation::Tombstone));
    assert!(got.give_back.is_empty() && !got.answer.released);
    let again = release(Some(&Reservation::Tombstone), "o1");
    assert_eq!((again.record, again.answer.released), (None, false));
}

#[test]
fn releasing_a_failed_reservation_gives_nothing_back() {
    let failed = Reservation::Failed {
        reason: "OUT_OF_STOCK".into(),
        product_id: None,
    };
    let got = release(Some(&failed), "o1");
    assert_eq!(got.record, Some(Reservation::Released { released: false }));
    assert!(got.give_back.is_empty() && !got.answer.released);
}
