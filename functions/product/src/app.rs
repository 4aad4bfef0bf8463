//! The product service's handlers. Each is one atomic commit (written per handler):
//! - register / change: the product (absent / version) [+ `ProductRegistered` or
//!   `ProductPriceChanged`]: one conditional put, carrying the event.
//! - reserve (`OrderCreated`): every product's stock taken in place (an add, never below
//!   zero; no read) + the reservation record (absent) + `StockReserved`, or the record +
//!   `StockReservationFailed`.
//! - release (`OrderFailed`/`OrderCancelled`): products' stock back in place + the record
//!   (version, or a tombstone if absent) + `StockReleased`.
//! - sales (`OrderConfirmed`; `OrderCancelled` of a confirmed order): the day's statistic of
//!   each product moved in place (created if absent) + the sale record (absent / version).
//!
//! A repeated event finds its record and answers again what was recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use contract::{Envelope, Event, OrderItem, ProductPriceChanged, ProductRegistered};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, Decision, Expect, Index, Item, Query, Write, commit_with_retries,
};
use platform::errors::StoreError;
use platform::events::Cause;
use platform::ports::Ports;

use crate::domain::{self, ProductError, Ranked, Reservation, Sale, SaleMove, Sold, Stock};
use crate::repo::{
    AMOUNT, CATALOGUE, DailySales, DailySalesOf, Product, QUANTITY, STOCK, catalogue_index,
    counted, product_key, reservation_key, sale_key, stats_key, stats_pk,
};

pub struct ProductService {
    ports: Ports,
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
        ProductService { ports }
    }

    pub async fn register(
        &self,
        name: &str,
        price: i64,
        stock: i64,
    ) -> Result<Product, ProductFailure> {
        let product = Product {
            product_id: self.ports.ids.next_id(),
            name: domain::product_name(name)?,
            price: domain::price(price)?,
            stock: domain::initial_stock(stock)?,
            created_at: self.ports.clock.now(),
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
        let write = Write::put(product_key(&product.product_id), &product, Expect::Absent)?
            .indexed(Some(catalogue_index(&product)), None)
            .counting([STOCK]);
        self.ports
            .store
            .commit(Commit::new().write(write).event(registered))
            .await
            .map_err(|e| match e {
                platform::docstore::CommitError::Store(e) => e,
                platform::docstore::CommitError::Conflict(_) => {
                    StoreError::unavailable("product id collision")
                }
            })?;
        Ok(product)
    }

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
        commit_with_retries(store, || async {
            let item = store
                .get(&product_key(product_id))
                .await?
                .ok_or(ProductFailure::NotFound)?;
            let mut product: Product = item.parse()?;
            if let Some(delta) = change.stock_delta {
                product.stock = domain::adjust_stock(product.stock, delta)?;
            }
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
            }
            Ok(Decision::Commit(
                commit.write(Write::replace(&item, &product)?),
                product,
            ))
        })
        .await
    }

    pub async fn product(&self, product_id: &str) -> Result<Option<Product>, StoreError> {
        self.ports
            .store
            .get(&product_key(product_id))
            .await?
            .as_ref()
            .map(Item::parse)
            .transpose()
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
        Ok(ProductPage {
            products: page.parse()?,
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

    /// `OrderCreated`: take every line's stock, or none (decided by [`domain::reserve`]).
    /// The first attempt reads no product: it takes each line in place, under the bound that
    /// stock never goes below zero, so a crowd on one product loses no race. Only when the
    /// store refuses (a product short or absent) does the next attempt read the stock and
    /// decide why.
    pub async fn reserve(
        &self,
        cause: &Envelope,
        order_id: &str,
        items: &[OrderItem],
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        let attempts = AtomicU32::new(0);
        commit_with_retries(store, || async {
            let first = attempts.fetch_add(1, Ordering::Relaxed) == 0;
            let record = store
                .get(&reservation_key(order_id))
                .await?
                .map(|item| item.parse::<Reservation>())
                .transpose()?;
            let mut read = BTreeMap::new();
            if record.is_none() && !first {
                for line in items {
                    let item = store.get(&product_key(&line.product_id)).await?;
                    let product = item.as_ref().map(Item::parse::<Product>).transpose()?;
                    read.insert(line.product_id.clone(), product.map(|p| p.stock));
                }
            }
            let stock = if first {
                Stock::Unread
            } else {
                Stock::Read(&read)
            };
            let decided = domain::reserve(record.as_ref(), order_id, items, stock);
            let mut commit = Commit::new();
            for (id, quantity) in decided.take {
                commit = commit.write(Write::add(product_key(&id), [(STOCK, -counted(quantity))]));
            }
            if let Some(record) = decided.record {
                commit = commit.write(Write::put(
                    reservation_key(order_id),
                    &record,
                    Expect::Absent,
                )?);
            }
            let answer = decided
                .answer
                .map(|e| self.ports.events.envelope(Cause::Event(cause), order_id, e));
            Ok(Decision::Commit(commit.events(answer), ()))
        })
        .await
    }

    /// `OrderFailed` / `OrderCancelled`: give back what was reserved (decided by
    /// [`domain::release`]).
    pub async fn release(&self, cause: &Envelope, order_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let record_item = store.get(&reservation_key(order_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<Reservation>)
                .transpose()?;
            let decided = domain::release(record.as_ref(), order_id);
            let mut commit = Commit::new();
            // In place, no read: the products were there when their stock was taken.
            for (id, quantity) in decided.give_back {
                commit = commit.write(Write::add(product_key(&id), [(STOCK, counted(quantity))]));
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
            Ok(Decision::Commit(commit.event(answer), ()))
        })
        .await
    }

    /// `OrderConfirmed`: add the order's lines to the day's statistics, once.
    pub async fn count_sale(
        &self,
        order_id: &str,
        items: &[OrderItem],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let day = day_of(at);
        self.move_sale(order_id, |sale| domain::count_sale(sale, &day, items))
            .await
    }

    /// `OrderCancelled` of a confirmed order: take its lines back out (or make sure a late
    /// confirmation never counts them).
    pub async fn reverse_sale(&self, order_id: &str) -> Result<(), StoreError> {
        self.move_sale(order_id, domain::reverse_sale).await
    }

    /// Moves the sale record as `decide` says and the day's statistics with it, in one commit.
    async fn move_sale<F>(&self, order_id: &str, decide: F) -> Result<(), StoreError>
    where
        F: Fn(Option<&Sale>) -> Option<SaleMove>,
    {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let record_item = store.get(&sale_key(order_id)).await?;
            let current = record_item.as_ref().map(Item::parse::<Sale>).transpose()?;
            let Some(decided) = decide(current.as_ref()) else {
                return Ok(Decision::Done(()));
            };
            let mut commit = Commit::new().write(Write::put(
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
            Event::OrderConfirmed(e) => {
                self.0
                    .count_sale(&e.order_id, &e.items, event.occurred_at)
                    .await?
            }
            other => tracing::warn!(
                r#type = other.event_type().name(),
                "not for the product service; ignored"
            ),
        }
        Ok(())
    }
}
