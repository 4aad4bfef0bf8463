//! The payment handlers on the in-memory store billing write units as DynamoDB does: what
//! each one writes, and that every repeat answers what was recorded.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use contract::{
    BalanceRefunded, Envelope, Event, EventMeta, PaymentRefundRequested, PaymentRequested, Won,
};
use platform::clock::ManualClock;
use platform::docstore::limits::ItemLimits;
use platform::docstore::memory::MemoryDocStore;
use platform::ids::SequentialIds;
use platform::outbox::MemoryOutbox;
use platform::ports::Ports;

use super::BalanceService;
use crate::domain::{INSUFFICIENT_BALANCE, PAYMENT_CANCELLED};

const USER: &str = "u-1";

fn paid_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0)
        .single()
        .unwrap_or_default()
}

struct World {
    store: Arc<MemoryDocStore>,
    clock: ManualClock,
    service: BalanceService,
    published: usize,
}

fn world() -> World {
    let outbox = Arc::new(MemoryOutbox::new());
    // Billing only: no rate to meet, no transaction holding its items.
    let limits = ItemLimits {
        write_units_per_second: 1e9,
        transaction_hold: Duration::ZERO,
    };
    let store =
        Arc::new(MemoryDocStore::new(outbox).with_limits(limits, Arc::new(|| Duration::ZERO)));
    let clock = ManualClock::starting_at(paid_at());
    let ports = Ports::new(
        store.clone(),
        Arc::new(clock.clone()),
        Arc::new(SequentialIds::new("id")),
    );
    World {
        store,
        clock,
        service: BalanceService::new(ports),
        published: 0,
    }
}

fn envelope(event_id: &str, event: impl Into<Event>) -> Envelope {
    let meta = EventMeta {
        event_id: event_id.to_owned(),
        occurred_at: Utc::now(),
        correlation_id: "o-1".to_owned(),
        causation_id: None,
    };
    Envelope::new(meta, "pay-1", event)
}

fn requested(payment_id: &str, amount: u64, at: Option<DateTime<Utc>>) -> PaymentRequested {
    PaymentRequested {
        payment_id: payment_id.to_owned(),
        order_id: "o-1".to_owned(),
        user_id: USER.to_owned(),
        amount: Won(amount),
        requested_at: at,
    }
}

fn refund_requested(r: &PaymentRequested) -> PaymentRefundRequested {
    PaymentRefundRequested {
        payment_id: r.payment_id.clone(),
        order_id: r.order_id.clone(),
        user_id: r.user_id.clone(),
        amount: r.amount,
        requested_at: r.requested_at,
        refund_requested_at: r.requested_at.map(|at| at + TimeDelta::minutes(5)),
    }
}

/// What the balance answered: `Ok(amount)` taken or given back, `Err(reason)` not taken.
type Answer = Result<u64, String>;

impl World {
    async fn balance(&self) -> u64 {
        self.service
            .balance(USER)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .amount
            .0
    }

    fn units(&self) -> f64 {
        self.store.limit_report().write_units
    }

    /// The write units billed since `before`, and the answers published since last asked.
    fn billed_since(&mut self, before: f64) -> (f64, Vec<Answer>) {
        let records = self.store.outbox().read(self.published, 100);
        self.published += records.len();
        let answers = records
            .into_iter()
            .flat_map(|r| r.events.unwrap_or_default())
            .map(|e| match e.event {
                Event::BalanceDeducted(d) => Ok(d.amount.0),
                Event::BalanceRefunded(BalanceRefunded { amount, .. }) => Ok(amount.0),
                Event::BalanceDeductionFailed(f) => Err(f.reason),
                other => panic!("{other:?}"),
            })
            .collect();
        (self.units() - before, answers)
    }

    async fn deduct(&mut self, event_id: &str, r: &PaymentRequested) -> (f64, Vec<Answer>) {
        let before = self.units();
        let cause = envelope(event_id, r.clone());
        let done = self.service.deduct(&cause, r).await;
        done.unwrap_or_else(|e| panic!("{e}"));
        self.billed_since(before)
    }

    async fn refund(&mut self, event_id: &str, r: &PaymentRefundRequested) -> (f64, Vec<Answer>) {
        let before = self.units();
        let cause = envelope(event_id, r.clone());
        let done = self.service.refund(&cause, r).await;
        done.unwrap_or_else(|e| panic!("{e}"));
        self.billed_since(before)
    }

    async fn charge(&mut self, amount: i64) {
        let charged = self.service.charge(USER, amount, None).await;
        charged.unwrap_or_else(|e| panic!("{e}"));
        self.billed_since(0.0);
    }

    /// The ledger's entries as `TYPE amount`, newest first, read `limit` at a time.
    async fn listed(&self, limit: usize) -> Vec<Vec<String>> {
        let (mut pages, mut cursor) = (Vec::new(), None);
        loop {
            let page = self
                .service
                .ledger(USER, limit, cursor)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            pages.push(
                page.entries
                    .iter()
                    .map(|e| format!("{:?} {}", e.kind, e.amount.0).to_uppercase())
                    .collect(),
            );
            cursor = page.cursor;
            if cursor.is_none() {
                return pages;
            }
        }
    }
}

#[tokio::test]
async fn a_deduction_writes_two_items_and_its_repeats_write_none() {
    // Given an account of 10,000 won
    let mut w = world();
    w.charge(10_000).await;
    let request = requested("pay-1", 9_000, Some(paid_at()));
    // When the payment is requested: the account and the payment's entry, in one
    // transaction (2 items, 2 units each; the old payment record made it 3 items, 6 units)
    assert_eq!(w.deduct("e-1", &request).await, (4.0, vec![Ok(9_000)]));
    // Then a redelivery, and a new publication of the same request later, take nothing and
    // answer the same again: its event alone (one outbox item)
    w.clock.advance(TimeDelta::minutes(1));
    assert_eq!(w.deduct("e-1", &request).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.deduct("e-2", &request).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.balance().await, 1_000);
    assert_eq!(w.listed(20).await, [["PAYMENT 9000", "CHARGE 10000"]]);
}

#[tokio::test]
async fn a_refund_writes_two_items_once_and_gives_back_what_was_taken() {
    let mut w = world();
    w.charge(10_000).await;
    let request = requested("pay-1", 9_000, Some(paid_at()));
    w.deduct("e-1", &request).await;
    // When the refund is asked for, twice
    let refund = refund_requested(&request);
    assert_eq!(w.refund("e-2", &refund).await, (4.0, vec![Ok(9_000)]));
    assert_eq!(w.refund("e-3", &refund).await, (1.0, vec![Ok(9_000)]));
    // Then the money is back once, and a late repeat of the request takes nothing again
    assert_eq!(w.deduct("e-1", &request).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.balance().await, 10_000);
    assert_eq!(
        w.listed(20).await,
        [["REFUND 9000", "PAYMENT 9000", "CHARGE 10000"]]
    );
}

#[tokio::test]
async fn a_failed_deduction_is_one_put_answered_again_and_never_listed() {
    let mut w = world();
    w.charge(1_000).await;
    let request = requested("pay-1", 9_000, Some(paid_at()));
    let failed = Err(INSUFFICIENT_BALANCE.to_owned());
    assert_eq!(w.deduct("e-1", &request).await, (1.0, vec![failed.clone()]));
    // Even when the money is there by the repeat: the recorded outcome stands
    w.charge(10_000).await;
    assert_eq!(w.deduct("e-2", &request).await, (1.0, vec![failed]));
    // A refund of it gives back nothing, and writes nothing but its answer
    assert_eq!(
        w.refund("e-3", &refund_requested(&request)).await,
        (1.0, vec![Ok(0)])
    );
    assert_eq!(w.balance().await, 11_000);
    assert_eq!(w.listed(20).await, [["CHARGE 10000", "CHARGE 1000"]]);
}

#[tokio::test]
async fn a_refund_before_the_deduction_leaves_a_tombstone_that_refuses_it() {
    let mut w = world();
    w.charge(10_000).await;
    let request = requested("pay-1", 9_000, Some(paid_at()));
    // When the refund request comes first: the tombstone alone, one put
    let refund = refund_requested(&request);
    assert_eq!(w.refund("e-1", &refund).await, (1.0, vec![Ok(0)]));
    // Then the late deduction takes nothing, as often as it comes
    let cancelled = Err(PAYMENT_CANCELLED.to_owned());
    assert_eq!(
        w.deduct("e-2", &request).await,
        (1.0, vec![cancelled.clone()])
    );
    assert_eq!(w.deduct("e-2", &request).await, (1.0, vec![cancelled]));
    assert_eq!(w.refund("e-1", &refund).await, (1.0, vec![Ok(0)]));
    assert_eq!(w.balance().await, 10_000);
    assert_eq!(w.listed(20).await, [["CHARGE 10000"]]);
}

#[tokio::test]
async fn the_listing_pages_past_marks_full_and_without_gaps() {
    // Given charges and payments that failed or were cancelled first, interleaved in time
    let mut w = world();
    let mut expected = Vec::new();
    for n in 1..=5u64 {
        w.clock.advance(TimeDelta::seconds(1));
        w.charge(i64::try_from(n).unwrap_or_default()).await;
        expected.push(format!("CHARGE {n}"));
        for m in 0..n {
            w.clock.advance(TimeDelta::seconds(1));
            let request = requested(&format!("pay-{n}-{m}"), 1_000, Some(w.clock_now()));
            if m % 2 == 0 {
                w.deduct("e", &request).await;
            } else {
                w.refund("e", &refund_requested(&request)).await;
            }
        }
    }
    expected.reverse();
    // When it is listed two at a time: every page full but the last, each entry once
    let pages = w.listed(2).await;
    assert!(
        pages.iter().rev().skip(1).all(|p| p.len() == 2),
        "{pages:?}"
    );
    assert_eq!(pages.concat(), expected);
    assert_eq!(w.listed(1).await.concat(), expected);
    assert_eq!(w.listed(100).await, [expected]);
}

#[tokio::test]
async fn a_payment_requested_before_requests_said_their_time_keeps_its_old_record() {
    // Given a request from a payment made before `requestedAt`
    let mut w = world();
    w.charge(10_000).await;
    let request = requested("pay-1", 9_000, None);
    // Then it is recorded as it was before: a transaction of three items
    assert_eq!(w.deduct("e-1", &request).await, (6.0, vec![Ok(9_000)]));
    w.clock.advance(TimeDelta::minutes(1));
    assert_eq!(w.deduct("e-2", &request).await, (1.0, vec![Ok(9_000)]));
    let refund = refund_requested(&request);
    assert_eq!(w.refund("e-3", &refund).await, (6.0, vec![Ok(9_000)]));
    assert_eq!(w.refund("e-4", &refund).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.balance().await, 10_000);
    assert_eq!(
        w.listed(20).await,
        [["REFUND 9000", "PAYMENT 9000", "CHARGE 10000"]]
    );
}

#[tokio::test]
async fn a_payment_kept_in_the_old_layout_is_finished_there_when_requests_say_their_time() {
    // Given a deduction made by a balance service that did not yet read `requestedAt` (the
    // payment service was deployed first): kept in the old layout,
    let mut w = world();
    w.charge(10_000).await;
    let at = w.clock_now();
    w.clock.advance(TimeDelta::seconds(1));
    let old = requested("pay-1", 9_000, None);
    assert_eq!(w.deduct("e-1", &old).await, (6.0, vec![Ok(9_000)]));
    // when the same request, saying its time, comes again to this balance service,
    let request = requested("pay-1", 9_000, Some(at));
    // then nothing more is taken, and the recorded answer is given again;
    assert_eq!(w.deduct("e-1", &request).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.balance().await, 1_000);
    // and its refund finds what was taken, and gives it back once.
    let refund = refund_requested(&request);
    assert_eq!(w.refund("e-2", &refund).await, (6.0, vec![Ok(9_000)]));
    assert_eq!(w.refund("e-3", &refund).await, (1.0, vec![Ok(9_000)]));
    assert_eq!(w.balance().await, 10_000);
    assert_eq!(
        w.listed(20).await,
        [["REFUND 9000", "PAYMENT 9000", "CHARGE 10000"]]
    );
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        platform::clock::Clock::now(&self.clock)
    }
}
