//! An order's stock, taken and given back (written per handler):
//! - reserve (`OrderCreated`): the reservation record (absent) + each product's stock
//!   taken in place from one of its shards (an add, never below zero) + `StockReserved`;
//!   or the record + `StockReservationFailed`. One transaction.
//! - release (`OrderFailed`/`OrderCancelled`): the stock back in place to the shards it
//!   came from + the record (version, or a tombstone if absent) + `StockReleased`.
//!
//! No product is read to take its stock: a shard is picked among those not known empty,
//! and one that turns out short is skipped for another at once. Only when every shard of a
//! product is short is its stock read, to take it from several shards or to say
//! `OUT_OF_STOCK` (or `UNKNOWN_PRODUCT`); when every shard was seen empty within the last
//! second (`platform::docstore::shards::REMEMBER_FOR`), `OUT_OF_STOCK` is said without a
//! read, so a sold-out product costs its crowd nothing but the records. A repeated event
//! finds its record and answers again what was recorded.

use std::collections::{BTreeMap, BTreeSet};

use contract::{Envelope, OrderItem};
use platform::docstore::shards::{self, take_from};
use platform::docstore::{
    Commit, CommitError, ConditionedReads, ConflictAt, Expect, Item, MAX_ATTEMPTS, Retries, Write,
    commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;

use super::ProductService;
use crate::domain::{self, Reservation, Stock, Taken};
use crate::repo::{Product, STOCK, counted, product_key, reservation_key, stock_key};

/// What one attempt knows of the products of an order.
#[derive(Default)]
struct Known {
    /// Each product's shard count (`None`: no such product).
    shards: BTreeMap<String, Option<u32>>,
    /// Shards refused to this order: short of what it takes.
    refused: BTreeSet<(String, u32)>,
    /// Each product's stock per shard, where it was read.
    holdings: BTreeMap<String, Vec<u64>>,
}

impl ProductService {
    /// A product's shard count, read once per process (`None`: no such product).
    async fn shard_count(&self, product_id: &str) -> Result<Option<u32>, StoreError> {
        let now = self.ports.clock.now();
        if let Some(shards) = self.shard_counts.get(product_id, now) {
            return Ok(Some(shards));
        }
        let Some(item) = self.ports.store.get(&product_key(product_id)).await? else {
            return Ok(None);
        };
        let shards = item.parse::<Product>()?.shards;
        self.shard_counts.put(product_id, shards, now);
        Ok(Some(shards))
    }

    /// Where each product's take comes from, given what is known; `Err` with the products
    /// whose stock must be read first (every shard short, or never read).
    fn plan(
        &self,
        order_id: &str,
        take: &BTreeMap<String, u64>,
        known: &Known,
    ) -> Result<Vec<Taken>, Vec<String>> {
        let now = self.ports.clock.now();
        let mut plan = Vec::new();
        let mut unread = Vec::new();
        for (product_id, quantity) in take {
            let taken = |(shard, quantity)| Taken {
                product_id: product_id.clone(),
                shard,
                quantity,
            };
            if let Some(holdings) = known.holdings.get(product_id) {
                match take_from(holdings, *quantity) {
                    Some(takes) => plan.extend(takes.into_iter().map(taken)),
                    None => unread.push(product_id.clone()),
                }
                continue;
            }
            let Some(Some(count)) = known.shards.get(product_id) else {
                unread.push(product_id.clone());
                continue;
            };
            let mut short = self.empty.get(product_id, now).unwrap_or_default();
            short.extend(
                known
                    .refused
                    .iter()
                    .filter(|(p, _)| p == product_id)
                    .map(|(_, s)| *s),
            );
            match shards::pick(*count, &short, order_id) {
                Some(shard) => plan.push(taken((shard, *quantity))),
                None => unread.push(product_id.clone()),
            }
        }
        if unread.is_empty() {
            Ok(plan)
        } else {
            Err(unread)
        }
    }

    /// Reads each shard's stock of `products`, and learns which shards are empty; a
    /// product whose every shard was seen empty within the last second is not read again.
    async fn read_stock(&self, products: &[String], known: &mut Known) -> Result<(), StoreError> {
        let now = self.ports.clock.now();
        for product_id in products {
            if let Some(Some(count)) = known.shards.get(product_id)
                && self.empty.all_short(product_id, *count, now)
            {
                known
                    .holdings
                    .insert(product_id.clone(), vec![0; *count as usize]);
                continue;
            }
            let Some(item) = self.ports.store.get(&product_key(product_id)).await? else {
                known.shards.insert(product_id.clone(), None);
                continue;
            };
            let product: Product = item.parse()?;
            let holdings = self.holdings(&product).await?;
            self.empty.learn(product_id, &holdings, now);
            known
                .shards
                .insert(product_id.clone(), Some(product.shards));
            known.holdings.insert(product_id.clone(), holdings);
        }
        Ok(())
    }

    /// `OrderCreated`: take every line's stock, or none (decided by [`domain::reserve`]).
    pub async fn reserve(
        &self,
        cause: &Envelope,
        order_id: &str,
        items: &[OrderItem],
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let mut known = Known::default();
        let mut retries = Retries::new();
        loop {
            let record = store
                .get(&reservation_key(order_id))
                .await?
                .map(|item| item.parse::<Reservation>())
                .transpose()?;
            for line in items {
                if !known.shards.contains_key(&line.product_id) {
                    let count = self.shard_count(&line.product_id).await?;
                    known.shards.insert(line.product_id.clone(), count);
                }
            }
            let unread = domain::reserve(record.as_ref(), order_id, items, Stock::Unread);
            let planned = self.plan(order_id, &unread.take, &known);
            // A plan made from a read may meet stock that has moved since: that is a retry.
            let from_read = planned.is_err() || !known.holdings.is_empty();
            let (decided, plan) = match planned {
                Ok(plan) => (unread, plan),
                Err(products) => {
                    self.read_stock(&products, &mut known).await?;
                    let totals: BTreeMap<String, Option<u64>> = known
                        .shards
                        .keys()
                        .map(|p| (p.clone(), self.total(p, &known)))
                        .collect();
                    let read =
                        domain::reserve(record.as_ref(), order_id, items, Stock::Read(&totals));
                    let plan = self.plan(order_id, &read.take, &known).unwrap_or_default();
                    (read, plan)
                }
            };
            let mut record = decided.record;
            if let Some(Reservation::Reserved { from, .. }) = &mut record
                && plan.iter().any(|t| t.shard != 0)
            {
                from.clone_from(&plan);
            }
            let mut commit = Commit::new();
            if let Some(record) = &record {
                let write = Write::put(reservation_key(order_id), record, Expect::Absent)?;
                commit = commit.write(write);
            }
            for taken in &plan {
                let minus = -counted(taken.quantity);
                commit = commit.write(Write::add(
                    stock_key(&taken.product_id, taken.shard),
                    [(STOCK, minus)],
                ));
            }
            let answer = decided
                .answer
                .map(|e| self.ports.events.envelope(Cause::Event(cause), order_id, e));
            let first_take = usize::from(record.is_some());
            match store.commit(commit.events(answer)).await {
                Ok(()) => return Ok(()),
                // A shard short of this take: another one, at once.
                Err(CommitError::Conflict(ConflictAt::Write(i))) if i >= first_take => {
                    let taken = &plan[i - first_take];
                    if taken.quantity == 1 {
                        let now = self.ports.clock.now();
                        self.empty.mark_short(&taken.product_id, taken.shard, now);
                    }
                    known.holdings.remove(&taken.product_id);
                    known
                        .refused
                        .insert((taken.product_id.clone(), taken.shard));
                    if !from_read {
                        continue;
                    }
                }
                // The record was written meanwhile (a repeat), or the store throttled.
                Err(CommitError::Conflict(_) | CommitError::Store(StoreError::Throttled)) => {}
                Err(CommitError::Store(e)) => return Err(e),
            }
            if !retries.wait().await {
                tracing::warn!(
                    attempts = MAX_ATTEMPTS,
                    "gave up reserving on contested stock"
                );
                return Err(StoreError::Contention);
            }
        }
    }

    /// A product's stock as read (`None`: no such product).
    fn total(&self, product_id: &str, known: &Known) -> Option<u64> {
        match known.shards.get(product_id) {
            Some(Some(_)) => Some(
                known
                    .holdings
                    .get(product_id)
                    .map_or(u64::MAX, |h| h.iter().sum()),
            ),
            _ => None,
        }
    }

    /// `OrderFailed` / `OrderCancelled`: give back what was reserved, to the shards it came
    /// from (decided by [`domain::release`]).
    pub async fn release(&self, cause: &Envelope, order_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            // Eventual: every decision writes the record under the version read (absent:
            // expecting it absent), and the stock given back only with it; but on a record
            // already `Released` or `Tombstone`, which is final: a read that shows one shows
            // it as it is.
            let record_item = reads.get(&reservation_key(order_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<Reservation>)
                .transpose()?;
            let decided = domain::release(record.as_ref(), order_id);
            let mut commit = Commit::new();
            // In place, no read: the shards were there when their stock was taken.
            for taken in &decided.give_back {
                commit = commit.write(Write::add(
                    stock_key(&taken.product_id, taken.shard),
                    [(STOCK, counted(taken.quantity))],
                ));
            }
            if let Some(next) = decided.record {
                commit = commit.write(Write::put(
                    reservation_key(order_id),
                    &next,
                    Expect::after_read(record_item.as_ref()),
                )?);
            }
            let answer = self
                .ports
                .events
                .envelope(Cause::Event(cause), order_id, decided.answer);
            for taken in &decided.give_back {
                self.empty.forget(&taken.product_id);
            }
            Ok(platform::docstore::Decision::Commit(
                commit.event(answer),
                (),
            ))
        })
        .await
    }
}
