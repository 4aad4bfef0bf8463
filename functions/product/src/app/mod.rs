//! The product service's handlers. Each is one atomic commit (written per handler):
//! - register: the product (absent) + `ProductRegistered`, and its stock's other shards
//!   when an admin expects a crowd (`platform::docstore::shards`): one conditional put
//!   carrying the event, or one transaction of them all.
//! - change: the product (version) [+ `ProductPriceChanged`] for a new price; stock added
//!   or removed in place on its shards (an add, never below zero), with no version to race.
//! - reserve (`OrderCreated`), release (`OrderFailed`/`OrderCancelled`): in [`stock`].
//! - sales (`OrderConfirmed`; `OrderCancelled` of a confirmed order): the day's statistic of
//!   each product moved in place (created if absent) + the sale record (absent / version)
//!   [+ `SaleRecorded`, the answer to a confirmation]. A confirmation announced again is
//!   answered again: the record as it is (version) carrying `SaleRecorded`, one put.
//!
//! A repeated event finds its record and answers again what was recorded.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use contract::{Envelope, Event, OrderItem, ProductPriceChanged, ProductRegistered, SaleRecorded};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::shards::{self, Recent, ShortShards};
use platform::docstore::{
    Commit, CommitError, ConditionedReads, Decision, Expect, Index, Item, Query, Write,
    commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::Ports;

use crate::domain::{self, ProductError, Ranked, Sale, SaleMove, Sold};
use crate::repo::{
    AMOUNT, CATALOGUE, DailySales, DailySalesOf, Product, QUANTITY, STOCK, StockShard,
    catalogue_index, product_key, sale_key, shard_stock, stats_key, stats_pk, stock_key,
};

mod stock;

pub struct ProductService {
    ports: Ports,
    /// How many shards each product's stock has (fixed at registration), as read once.
    shard_counts: Recent<u32>,
    /// Which shards of each product were seen empty lately.
    empty: ShortShards,
}

#[derive(Debug, thiserror::Error)]
pub enum ProductFailure {
    #[error(transparent)]
    Invalid(#[from] ProductError),
    #[error("no such product")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change an admin asks for.
#[derive(Debug, Clone, Default)]
pub struct ProductChange {
    pub price: Option<i64>,
    pub stock_delta: Option<i64>,
}

pub struct ProductPage {
    pub products: Vec<Product>,
    pub cursor: Option<String>,
}

/// A ranked product, with its name.
pub struct BestSeller {
    pub rank: u32,
    pub product_id: String,
    pub name: String,
    pub quantity: u64,
}

fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

impl ProductService {
    pub fn new(ports: Ports) -> Self {
        ProductService {
            ports,
            shard_counts: Recent::new(Duration::hours(1)),
            empty: ShortShards::for_a_while(),
        }
    }

    /// Registers a product with `stock`; `expected_orders_per_second` at its peak spreads
    /// the stock over shards (by the rate alone: stock may be added later).
    pub async fn register(
        &self,
        name: &str,
        price: i64,
        stock: i64,
        expected_orders_per_second: Option<i64>,
    ) -> Result<Product, ProductFailure> {
        let stock = domain::initial_stock(stock)?;
        let rate = domain::expected_rate(expected_orders_per_second)?;
        let shares = shards::split(
            stock,
            shards::shard_count(rate, u64::from(shards::MAX_SHARDS)),
        );
        let mut product = Product {
            product_id: self.ports.ids.next_id(),
            name: domain::product_name(name)?,
            price: domain::price(price)?,
            stock: shares[0],
            created_at: self.ports.clock.now(),
            shards: u32::try_from(shares.len()).unwrap_or(1),
        };
        let registered = self.ports.events.envelope(
            Cause::Request {
                correlation_id: &product.product_id,
            },
            &product.product_id,
            ProductRegistered {
                product_id: product.product_id.clone(),
                name: product.name.clone(),
                price: product.price,
            },
        );
        let id = product.product_id.clone();
        let write = Write::put(product_key(&id), &product, Expect::Absent)?
            .indexed(Some(catalogue_index(&product)), None)
            .counting([STOCK]);
        let mut commit = Commit::new().write(write).event(registered);
        for (shard, stock) in (1u32..).zip(shares.into_iter().skip(1)) {
            let count = StockShard {
                product_id: id.clone(),
                shard,
                stock,
            };
            let write = Write::put(stock_key(&id, shard), &count, Expect::Absent)?;
            commit = commit.write(write.counting([STOCK]));
        }
        self.ports.store.commit(commit).await.map_err(|e| match e {
            CommitError::Store(e) => e,
            CommitError::Conflict(_) => StoreError::unavailable("product id collision"),
        })?;
        product.stock = stock;
        Ok(product)
    }

    /// Each shard's stock of `product` (as stored: with shard 0's), read a moment ago.
    async fn holdings(&self, product: &Product) -> Result<Vec<u64>, StoreError> {
        let base = product_key(&product.product_id);
        let others = shards::other_shards(self.ports.store.as_ref(), &base, product.shards).await?;
        shard_stock(product, &others)
    }

    /// `product` with the stock of all its shards.
    async fn with_stock(&self, mut product: Product) -> Result<Product, StoreError> {
        product.stock = self.holdings(&product).await?.iter().sum();
        Ok(product)
    }

    /// A new price (one put of the product, under its version) and stock added or removed
    /// in place on its shards (adds: spread over them; removals: from the fullest first,
    /// each never below zero), in one commit.
    pub async fn change(
        &self,
        product_id: &str,
        change: ProductChange,
    ) -> Result<Product, ProductFailure> {
        if change.price.is_none() && change.stock_delta.is_none() {
            return Err(ProductError::NothingToChange.into());
        }
        let new_price = change.price.map(domain::price).transpose()?;
        let store = self.ports.store.as_ref();
        let changed = commit_with_retries(store, || async {
            let item = store
                .get(&product_key(product_id))
                .await?
                .ok_or(ProductFailure::NotFound)?;
            let mut product: Product = item.parse()?;
            let mut holdings = self.holdings(&product).await?;
            let total: u64 = holdings.iter().sum();
            let mut moves = match change.stock_delta {
                Some(delta) => {
                    domain::adjust_stock(total, delta)?;
                    shards::spread(&holdings, delta).ok_or(ProductError::InsufficientStock)?
                }
                None => Vec::new(),
            };
            let mut commit = Commit::new();
            if let Some(price) = new_price
                && price != product.price
            {
                product.price = price;
                commit = commit.event(self.ports.events.envelope(
                    Cause::Request {
                        correlation_id: product_id,
                    },
                    product_id,
                    ProductPriceChanged {
                        product_id: product_id.to_owned(),
                        price,
                    },
                ));
                // The product is written anyway: its own shard moves with it.
                if let Some(at) = moves.iter().position(|(s, _)| *s == 0) {
                    let (_, delta) = moves.remove(at);
                    holdings[0] = holdings[0].saturating_add_signed(delta);
                }
                product.stock = holdings[0];
                commit = commit.write(Write::replace(&item, &product)?);
            }
            for (shard, delta) in moves {
                holdings[shard as usize] = holdings[shard as usize].saturating_add_signed(delta);
                commit = commit.write(Write::add(stock_key(product_id, shard), [(STOCK, delta)]));
            }
            product.stock = holdings.iter().sum();
            Ok::<_, ProductFailure>(Decision::Commit(commit, product))
        })
        .await?;
        self.empty.forget(product_id);
        Ok(changed)
    }

    /// A product, with the stock of all its shards.
    pub async fn product(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        match self.ports.store.get(&product_key(product_id)).await? {
            Some(item) => Ok(Some(self.with_stock(item.parse()?).await?)),
            None => Ok(None),
        }
    }

    pub async fn list(
        &self,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<ProductPage, StoreError> {
        let page = self
            .ports
            .store
            .query(
                Query::partition(Index::Gsi1, CATALOGUE)
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let mut products = Vec::with_capacity(page.items.len());
        for product in page.parse::<Product>()? {
            products.push(self.with_stock(product).await?);
        }
        Ok(ProductPage {
            products,
            cursor: page.cursor,
        })
    }

    /// Every statistic of the last `days` days (today included), by day.
    async fn daily_sales(&self, days: u32) -> Result<Vec<DailySales>, StoreError> {
        let today = self.ports.clock.now();
        let mut all = Vec::new();
        for back in 0..days {
            let day = day_of(today - Duration::days(i64::from(back)));
            let mut cursor = None;
            loop {
                let page = self
                    .ports
                    .store
                    .query(Query::partition(Index::Table, stats_pk(&day)).after(cursor))
                    .await?;
                for item in &page.items {
                    all.push(item.parse::<DailySales>()?);
                }
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(all)
    }

    /// Best sellers by quantity over the last `days` days.
    pub async fn ranking(&self, days: u32) -> Result<Vec<Ranked>, StoreError> {
        let sales = self.daily_sales(days).await?;
        Ok(domain::ranking(
            sales.into_iter().map(|s| (s.product_id, s.quantity)),
        ))
    }

    pub async fn best_sellers(
        &self,
        days: u32,
        limit: usize,
    ) -> Result<Vec<BestSeller>, StoreError> {
        let mut out = Vec::new();
        for ranked in self.ranking(days).await?.into_iter().take(limit) {
            let name = self
                .product(&ranked.product_id)
                .await?
                .map(|p| p.name)
                .unwrap_or_default();
            out.push(BestSeller {
                rank: ranked.rank,
                product_id: ranked.product_id,
                name,
                quantity: ranked.quantity,
            });
        }
        Ok(out)
    }

    /// One product's sales per day for the last `days` days, oldest first (zero days included).
    pub async fn product_stats(
        &self,
        product_id: &str,
        days: u32,
    ) -> Result<Vec<DailySales>, StoreError> {
        let today = self.ports.clock.now();
        let mut out = Vec::new();
        for back in (0..days).rev() {
            let day = day_of(today - Duration::days(i64::from(back)));
            let stat = self.ports.store.get(&stats_key(&day, product_id)).await?;
            out.push(match stat {
                Some(item) => item.parse()?,
                None => DailySales::of(product_id, &day, Sold::default()),
            });
        }
        Ok(out)
    }

    /// `OrderConfirmed`: add the order's lines to the day's statistics, once, and answer
    /// `SaleRecorded` every time (the order announces its confirmation until it hears it).
    pub async fn count_sale(
        &self,
        cause: &Envelope,
        order_id: &str,
        items: &[OrderItem],
    ) -> Result<(), StoreError> {
        let day = day_of(cause.occurred_at);
        let recorded = SaleRecorded {
            order_id: order_id.to_owned(),
        };
        let answer = self
            .ports
            .events
            .envelope(Cause::Event(cause), order_id, recorded);
        self.move_sale(
            order_id,
            |sale| domain::count_sale(sale, &day, items),
            Some(answer),
        )
        .await
    }

    /// `OrderCancelled` of a confirmed order: take its lines back out (or make sure a late
    /// confirmation never counts them).
    pub async fn reverse_sale(&self, order_id: &str) -> Result<(), StoreError> {
        self.move_sale(order_id, domain::reverse_sale, None).await
    }

    /// Moves the sale record as `decide` says and the day's statistics with it, in one commit
    /// carrying `answer`. When there is nothing to move (decided before), the record as it
    /// is carries the answer again.
    async fn move_sale<F>(
        &self,
        order_id: &str,
        decide: F,
        answer: Option<Envelope>,
    ) -> Result<(), StoreError>
    where
        F: Fn(Option<&Sale>) -> Option<SaleMove>,
    {
        let store = self.ports.store.as_ref();
        let reads = ConditionedReads::new(store);
        commit_with_retries(store, || async {
            // Eventual: every decision writes the record under the version read (absent:
            // expecting it absent), the statistics only with it; but a reversal on a record
            // already `Reversed` or `CancelledFirst`, which is final: a read that shows one
            // shows it as it is.
            let record_item = reads.get(&sale_key(order_id)).await?;
            let current = record_item.as_ref().map(Item::parse::<Sale>).transpose()?;
            let Some(decided) = decide(current.as_ref()) else {
                let again = match (&answer, &current) {
                    (Some(answer), Some(sale)) => Commit::new()
                        .write(Write::put(
                            sale_key(order_id),
                            sale,
                            Expect::after_read(record_item.as_ref()),
                        )?)
                        .event(answer.clone()),
                    _ => return Ok(Decision::Done(())),
                };
                return Ok(Decision::Commit(again, ()));
            };
            let mut commit = Commit::new().events(answer.clone()).write(Write::put(
                sale_key(order_id),
                &decided.record,
                Expect::after_read(record_item.as_ref()),
            )?);
            // Each day's figures move in place: no read, so concurrent sales of one product
            // never race.
            for product_id in decided.per_product.keys() {
                let (quantity, amount) = decided.signed(product_id);
                let write = Write::add(
                    stats_key(&decided.day, product_id),
                    [(QUANTITY, quantity), (AMOUNT, amount)],
                )
                .or_create(&DailySalesOf::new(product_id, &decided.day))?;
                commit = commit.write(write);
            }
            Ok(Decision::Commit(commit, ()))
        })
        .await
    }
}

/// The product service's consuming functions: `OrderCreated`, `OrderFailed`,
/// `OrderCancelled`, `OrderConfirmed`.
pub struct ProductConsumer(pub Arc<ProductService>);

#[async_trait]
impl EventHandler for ProductConsumer {
    async fn handle(&self, event: &Envelope, _attempt: u32) -> Result<(), HandlerError> {
        match &event.event {
            Event::OrderCreated(e) => self.0.reserve(event, &e.order_id, &e.items).await?,
            Event::OrderFailed(e) => self.0.release(event, &e.order_id).await?,
            Event::OrderCancelled(e) => {
                self.0.release(event, &e.order_id).await?;
                if e.was_confirmed {
                    self.0.reverse_sale(&e.order_id).await?;
                }
            }
            Event::OrderConfirmed(e) => self.0.count_sale(event, &e.order_id, &e.items).await?,
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the product service; ignored"
            ),
        }
        Ok(())
    }
}
