//! The invariants of `shared/spec/invariants.md`, checked against the services' tables and
//! outboxes. Each finding names the orders it is about.

use std::collections::{BTreeMap, BTreeSet};

use contract::{Envelope, Event, Service, Won};
use order_service::domain::{CouponTerms, Order, Status};
use platform::docstore::Item;

use crate::world::SimWorld;

/// What the simulation did, to compare the tables with.
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// Product id and initial stock (nothing else adds stock).
    pub products: Vec<(String, u64)>,
    pub users: Vec<String>,
    /// Everything each user charged.
    pub charged: BTreeMap<String, u64>,
    /// Coupon id and owner.
    pub coupons: Vec<(String, String)>,
    /// Order id and owner, of every order placed.
    pub orders: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub text: String,
    pub orders: Vec<String>,
}

fn v(text: String, orders: Vec<String>) -> Violation {
    Violation { text, orders }
}

/// Every table's items, read once per check.
pub struct Snapshot<'a> {
    w: &'a SimWorld,
    items: BTreeMap<Service, Vec<Item>>,
}

impl<'a> Snapshot<'a> {
    pub fn take(w: &'a SimWorld) -> Snapshot<'a> {
        Snapshot::of(w, &Service::ALL)
    }

    fn of(w: &'a SimWorld, services: &[Service]) -> Snapshot<'a> {
        Snapshot {
            w,
            items: services.iter().map(|s| (*s, w.items(*s))).collect(),
        }
    }

    fn items(&self, service: Service) -> &[Item] {
        self.items
            .get(&service)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

fn parsed<T: serde::de::DeserializeOwned>(
    items: &[Item],
    keep: impl Fn(&Item) -> bool,
) -> Vec<(Item, T)> {
    items
        .iter()
        .filter(|i| keep(i))
        .filter_map(|i| i.parse::<T>().ok().map(|t| (i.clone(), t)))
        .collect()
}

fn orders(w: &Snapshot<'_>) -> Vec<Order> {
    parsed::<Order>(w.items(Service::Order), |i| i.key.sk == "ORDER")
        .into_iter()
        .map(|(_, o)| o)
        .collect()
}

pub fn order_statuses(w: &SimWorld) -> Vec<(String, String)> {
    orders(&Snapshot::of(w, &[Service::Order]))
        .into_iter()
        .map(|o| (o.order_id, o.status.as_str().to_owned()))
        .collect()
}

/// Whether the sweep still has anything scheduled (expiries, re-announcements).
pub fn sweep_has_work(w: &SimWorld) -> bool {
    w.items(Service::Order).iter().any(|i| i.gsi2.is_some())
}

fn order_of(pk: &str) -> String {
    pk.trim_start_matches("ORDER#").to_owned()
}

fn reservations(w: &Snapshot<'_>) -> BTreeMap<String, product_service::domain::Reservation> {
    parsed(w.items(Service::Product), |i| i.key.sk == "RESERVATION")
        .into_iter()
        .map(|(i, r)| (order_of(&i.key.pk), r))
        .collect()
}

/// Each product's available stock, summed over its shards.
fn stock(w: &Snapshot<'_>) -> BTreeMap<String, u64> {
    use product_service::repo::{Product, StockShard};
    let items = w.items(Service::Product);
    let shard = |i: &Item| i.key.sk == "PRODUCT" && i.key.pk.contains("#SHARD#");
    let mut stock: BTreeMap<String, u64> =
        parsed::<Product>(items, |i| i.key.sk == "PRODUCT" && !shard(i))
            .into_iter()
            .map(|(_, p)| (p.product_id, p.stock))
            .collect();
    for (_, s) in parsed::<StockShard>(items, shard) {
        *stock.entry(s.product_id).or_default() += s.stock;
    }
    stock
}

/// Ledger entries (movements of money, not the marks of payments that took none) by user.
fn ledger(w: &Snapshot<'_>) -> Vec<(String, balance_service::repo::LedgerEntry)> {
    use balance_service::repo::{LEDGER_PREFIX, LedgerItem};
    parsed::<LedgerItem>(w.items(Service::Balance), |i| {
        i.key.sk.starts_with(LEDGER_PREFIX)
    })
    .into_iter()
    .filter_map(|(i, item)| {
        Some((
            i.key.pk.trim_start_matches("ACCOUNT#").to_owned(),
            item.entry()?,
        ))
    })
    .collect()
}

fn balances(w: &Snapshot<'_>) -> BTreeMap<String, u64> {
    parsed::<balance_service::repo::Account>(w.items(Service::Balance), |i| i.key.sk == "ACCOUNT")
        .into_iter()
        .map(|(_, a)| (a.user_id, a.amount.0))
        .collect()
}

/// Every coupon source, its counts summed over its shards, with its issue records.
fn sources(w: &Snapshot<'_>) -> Vec<(coupon_source_service::domain::CouponSource, usize)> {
    use coupon_source_service::repo::ShardCount;
    let items = w.items(Service::CouponSource);
    let shard = |i: &Item| i.key.pk.contains("#SHARD#");
    let shards = parsed::<ShardCount>(items, |i| i.key.sk == "SOURCE" && shard(i));
    parsed::<coupon_source_service::domain::CouponSource>(items, |i| {
        i.key.sk == "SOURCE" && !shard(i)
    })
    .into_iter()
    .map(|(item, mut s)| {
        for (_, count) in shards.iter().filter(|(_, c)| c.source_id == s.source_id) {
            s.issued += count.issued;
            s.left += count.left;
        }
        let records = items
            .iter()
            .filter(|i| i.key.pk == item.key.pk && i.key.sk.starts_with("USER#"))
            .count();
        (s, records)
    })
    .collect()
}

/// Checked after every step: nothing is ever out of balance, even mid-saga.
pub fn at_every_moment(w: &SimWorld, model: &Model) -> Vec<Violation> {
    let w = &Snapshot::of(
        w,
        &[Service::Product, Service::Balance, Service::CouponSource],
    );
    let mut found = Vec::new();
    let reserved = reservations(w);
    let stock = stock(w);
    for (product, initial) in &model.products {
        let held: u64 = reserved
            .values()
            .filter_map(|r| match r {
                product_service::domain::Reservation::Reserved { items, .. } => Some(items),
                _ => None,
            })
            .flatten()
            .filter(|line| line.product_id == *product)
            .map(|line| u64::from(line.quantity))
            .sum();
        let available = stock.get(product).copied().unwrap_or(0);
        if available + held != *initial {
            let orders = reserved.keys().cloned().collect();
            found.push(v(format!("stock of {product}: available {available} + reserved {held} != initial {initial}"), orders));
        }
    }
    let balances = balances(w);
    let ledger = ledger(w);
    for user in &model.users {
        let charged = model.charged.get(user).copied().unwrap_or(0);
        let balance = balances.get(user).copied().unwrap_or(0);
        let (mut paid, mut refunded, mut charged_in_ledger) = (0u64, 0u64, 0u64);
        for (owner, entry) in &ledger {
            if owner == user {
                use balance_service::repo::EntryType::*;
                match entry.kind {
                    Payment => paid += entry.amount.0,
                    Refund => refunded += entry.amount.0,
                    Charge => charged_in_ledger += entry.amount.0,
                }
            }
        }
        if charged_in_ledger != charged || balance + paid != charged + refunded {
            found.push(v(
                format!("money of {user}: charged {charged} (ledger {charged_in_ledger}), balance {balance}, paid {paid}, refunded {refunded}"),
                vec![],
            ));
        }
    }
    for (source, records) in sources(w) {
        if source.issued > source.quantity
            || records as u64 != source.issued
            || source.issued + source.left != source.quantity
        {
            found.push(v(
                format!(
                    "coupon source {}: issued {} of {} ({} left), {} issue records",
                    source.source_id, source.issued, source.quantity, source.left, records
                ),
                vec![],
            ));
        }
    }
    found
}

fn outbox(w: &Snapshot<'_>, service: Service) -> Vec<Envelope> {
    w.w.world
        .outboxes
        .get(&service)
        .map(|o| o.events())
        .unwrap_or_default()
}

/// Checked when the system is quiet after the faults stopped.
pub fn at_the_end(w: &SimWorld, model: &Model) -> Vec<Violation> {
    let w = &Snapshot::take(w);
    use order_service::domain::StepState;
    use payment_service::domain::{Record, Status as PaymentStatus};
    use product_service::domain::Reservation;

    let mut found = Vec::new();
    let orders = orders(w);
    let by_id: BTreeMap<&str, &Order> = orders.iter().map(|o| (o.order_id.as_str(), o)).collect();
    let confirmed = |id: &str| by_id.get(id).is_some_and(|o| o.status == Status::Confirmed);

    // 1. Every order ends.
    for o in &orders {
        if !o.status.is_final() {
            found.push(v(
                format!("order {} is stuck in {}", o.order_id, o.status.as_str()),
                vec![o.order_id.clone()],
            ));
        }
    }
    if orders.len() != model.orders.len() {
        found.push(v(
            format!(
                "{} orders placed but {} stored",
                model.orders.len(),
                orders.len()
            ),
            vec![],
        ));
    }

    // 2. Stock is conserved.
    let stock = stock(w);
    let mut sold: BTreeMap<&str, u64> = BTreeMap::new();
    let mut sold_amount: BTreeMap<&str, u64> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.status == Status::Confirmed) {
        for line in &o.items {
            *sold.entry(line.product_id.as_str()).or_default() += u64::from(line.quantity);
            *sold_amount.entry(line.product_id.as_str()).or_default() +=
                line.unit_price.0 * u64::from(line.quantity);
        }
    }
    for (product, initial) in &model.products {
        let available = stock.get(product).copied().unwrap_or(0);
        let confirmed_qty = sold.get(product.as_str()).copied().unwrap_or(0);
        if available + confirmed_qty != *initial {
            found.push(v(format!("stock of {product}: {available} available + {confirmed_qty} confirmed != {initial}"), vec![]));
        }
    }

    // 3. Money is conserved; every payment of a failed or cancelled order is undone once.
    let balances = balances(w);
    let ledger = ledger(w);
    for user in &model.users {
        let paid: u64 = orders
            .iter()
            .filter(|o| o.user_id == *user && o.status == Status::Confirmed)
            .map(|o| o.payment_amount.0)
            .sum();
        let charged = model.charged.get(user).copied().unwrap_or(0);
        let balance = balances.get(user).copied().unwrap_or(0);
        if charged != balance + paid {
            let theirs = orders
                .iter()
                .filter(|o| o.user_id == *user)
                .map(|o| o.order_id.clone())
                .collect();
            found.push(v(format!("money of {user}: charged {charged} != balance {balance} + confirmed payments {paid}"), theirs));
        }
    }
    let payments: BTreeMap<String, Record> =
        parsed(w.items(Service::Payment), |i| i.key.sk == "PAYMENT")
            .into_iter()
            .map(|(i, r)| (order_of(&i.key.pk), r))
            .collect();
    let mut per_payment: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (_, entry) in &ledger {
        if let Some(p) = &entry.payment_id {
            let counts = per_payment.entry(p.clone()).or_default();
            match entry.kind {
                balance_service::repo::EntryType::Payment => counts.0 += 1,
                balance_service::repo::EntryType::Refund => counts.1 += 1,
                balance_service::repo::EntryType::Charge => {}
            }
        }
    }
    let reserved_now = reservations(w);
    for o in &orders {
        let payment = match payments.get(&o.order_id) {
            Some(Record::Payment(p)) => Some(p),
            _ => None,
        };
        let (taken, given_back) = payment
            .and_then(|p| per_payment.get(&p.payment_id))
            .copied()
            .unwrap_or((0, 0));
        if taken > 1 || given_back > taken {
            found.push(v(
                format!(
                    "payment of {} taken {taken} times, refunded {given_back} times",
                    o.order_id
                ),
                vec![o.order_id.clone()],
            ));
        }
        // 5. Agreement, and 3's "cancelled, and refunded if money was taken, exactly once".
        let reservation = reserved_now.get(&o.order_id).cloned();
        let coupon_use =
            parsed::<coupon_service::domain::CouponUse>(w.items(Service::Coupon), |i| {
                i.key.pk == format!("ORDER#{}", o.order_id) && i.key.sk == "COUPON_USE"
            })
            .into_iter()
            .next()
            .map(|(_, u)| u);
        let (stock_held, coupon_held, money_held) = (
            matches!(reservation, Some(Reservation::Reserved { .. })),
            matches!(
                coupon_use,
                Some(coupon_service::domain::CouponUse::Used { .. })
            ),
            payment.is_some_and(|p| {
                matches!(
                    p.status,
                    PaymentStatus::Approved | PaymentStatus::Pending | PaymentStatus::Refunding
                )
            }),
        );
        if o.status == Status::Confirmed {
            let payment_ok = payment.is_some_and(|p| {
                p.status == PaymentStatus::Approved && p.amount == o.payment_amount
            });
            if !stock_held
                || (o.coupon_id.is_some() && !coupon_held)
                || !payment_ok
                || taken != u32::from(o.payment_amount > Won::ZERO)
                || given_back != 0
            {
                found.push(v(format!("confirmed order {} lacks its stock {stock_held}, coupon {coupon_held} or payment {payment_ok} (taken {taken}, refunded {given_back})", o.order_id), vec![o.order_id.clone()]));
            }
            if [o.steps.stock, o.steps.payment]
                .iter()
                .any(|s| *s != StepState::Done)
            {
                found.push(v(
                    format!("confirmed order {} has steps {:?}", o.order_id, o.steps),
                    vec![o.order_id.clone()],
                ));
            }
        } else if o.status.is_final()
            && (stock_held || coupon_held || money_held || taken != given_back)
        {
            found.push(v(format!("{} order {} still holds stock {stock_held}, coupon {coupon_held} or money {money_held} (taken {taken}, refunded {given_back})", o.status.as_str(), o.order_id), vec![o.order_id.clone()]));
        }
    }

    // 4. Coupons: USED if and only if its order is CONFIRMED.
    let coupons = parsed::<coupon_service::domain::Coupon>(w.items(Service::Coupon), |i| {
        i.key.sk == "COUPON"
    });
    for (_, c) in &coupons {
        let used = c.status == coupon_service::domain::Status::Used;
        let order_confirmed = c.order_id.as_deref().is_some_and(confirmed);
        if used != order_confirmed {
            found.push(v(
                format!(
                    "coupon {} is {:?} but its order {:?} is not the match",
                    c.coupon_id, c.status, c.order_id
                ),
                c.order_id.iter().cloned().collect(),
            ));
        }
    }
    for o in orders.iter().filter(|o| o.status == Status::Confirmed) {
        if let Some(cid) = &o.coupon_id
            && !coupons.iter().any(|(_, c)| {
                c.coupon_id == *cid && c.order_id.as_deref() == Some(o.order_id.as_str())
            })
        {
            found.push(v(
                format!(
                    "confirmed order {} does not hold its coupon {cid}",
                    o.order_id
                ),
                vec![o.order_id.clone()],
            ));
        }
        // 5. The amounts are the prices and discount it was created with.
        let terms = o
            .coupon_id
            .as_ref()
            .and_then(|cid| coupons.iter().find(|(_, c)| c.coupon_id == *cid))
            .map(|(_, c)| CouponTerms {
                discount: c.discount.clone(),
                minimum_order_amount: c.minimum_order_amount,
            });
        match order_service::domain::price(&o.items, terms.as_ref()) {
            Ok(a)
                if (a.total, a.discount, a.payment)
                    == (o.total_amount, o.discount_amount, o.payment_amount) => {}
            other => found.push(v(
                format!(
                    "order {} amounts differ from its pricing: {other:?}",
                    o.order_id
                ),
                vec![o.order_id.clone()],
            )),
        }
    }

    // 6. Statistics equal what the confirmed orders sold.
    let mut stats: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, s) in parsed::<product_service::repo::DailySales>(w.items(Service::Product), |i| {
        i.key.pk.starts_with("STATS#")
    }) {
        let e = stats.entry(s.product_id).or_default();
        e.0 += s.quantity;
        e.1 += s.amount.0;
    }
    for (product, _) in &model.products {
        let counted = stats.get(product).copied().unwrap_or((0, 0));
        let expected = (
            sold.get(product.as_str()).copied().unwrap_or(0),
            sold_amount.get(product.as_str()).copied().unwrap_or(0),
        );
        if counted != expected {
            let theirs = orders
                .iter()
                .filter(|o| o.was_confirmed && o.items.iter().any(|l| l.product_id == *product))
                .map(|o| o.order_id.clone())
                .collect();
            found.push(v(
                format!("statistics of {product}: {counted:?} != confirmed {expected:?}"),
                theirs,
            ));
        }
    }

    // 8. Events and state agree.
    let order_events = outbox(w, Service::Order);
    for o in &orders {
        let count = |name: &str| {
            order_events
                .iter()
                .filter(|e| e.aggregate_id == o.order_id && e.event_type().name() == name)
                .count()
        };
        let expected = [
            ("OrderCreated", 1),
            (
                "OrderFailureCompleted",
                usize::from(o.status == Status::Failed),
            ),
            (
                "OrderCancellationCompleted",
                usize::from(o.status == Status::Cancelled),
            ),
        ];
        for (name, n) in expected {
            if count(name) != n {
                found.push(v(
                    format!(
                        "order {} has {} {name} events, expected {n}",
                        o.order_id,
                        count(name)
                    ),
                    vec![o.order_id.clone()],
                ));
            }
        }
        if (count("OrderConfirmed") > 0) != o.was_confirmed {
            found.push(v(
                format!(
                    "order {} confirmed {} but has {} OrderConfirmed",
                    o.order_id,
                    o.was_confirmed,
                    count("OrderConfirmed")
                ),
                vec![o.order_id.clone()],
            ));
        }
    }
    let issued: Vec<String> = outbox(w, Service::CouponSource)
        .iter()
        .filter_map(|e| match &e.event {
            Event::CouponIssued(c) => Some(c.coupon_id.clone()),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<&String> = issued.iter().collect();
    let records: usize = sources(w).iter().map(|(_, r)| *r).sum();
    if distinct.len() != issued.len() || issued.len() != records {
        found.push(v(
            format!(
                "{} CouponIssued events ({} distinct) for {records} issued coupons",
                issued.len(),
                distinct.len()
            ),
            vec![],
        ));
    }
    for e in outbox(w, Service::Balance) {
        if let Event::BalanceDeducted(d) = &e.event
            && per_payment
                .get(&d.payment_id)
                .is_none_or(|(taken, _)| *taken == 0)
        {
            found.push(v(
                format!(
                    "BalanceDeducted for payment {} without its deduction",
                    d.payment_id
                ),
                vec![d.order_id.clone()],
            ));
        }
    }
    let reserved = reservations(w);
    for e in outbox(w, Service::Product) {
        if let Event::StockReserved(r) = &e.event
            && !matches!(
                reserved.get(&r.order_id),
                Some(Reservation::Reserved { .. } | Reservation::Released { released: true })
            )
        {
            found.push(v(
                format!("StockReserved for {} without its reservation", r.order_id),
                vec![r.order_id.clone()],
            ));
        }
    }
    found
}
