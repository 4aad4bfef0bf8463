//! The product service's handlers. Each is one atomic commit (written per handler):
//! - register / change: the product (absent / version) [+ `ProductRegistered` or
//!   `ProductPriceChanged`]: a transaction when there is an event, else one conditional put.
//! - reserve (`OrderCreated`): every product of the order (version) + the reservation
//!   record (absent) + `StockReserved`, or the record + `StockReservationFailed`.
//! - release (`OrderFailed`/`OrderCancelled`): products back (version) + the record
//!   (version, or a tombstone if absent) + `StockReleased`.
//! - sales (`OrderConfirmed`; `OrderCancelled` of a confirmed order): the day's statistic of
//!   each product (absent / version) + the sale record.
//!
//! A repeated event finds its record and answers again what was recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use contract::{
    Envelope, Event, OrderItem, ProductPriceChanged, ProductRegistered, StockReleased,
    StockReservationFailed, StockReserved, Won,
};
use platform::batch::{EventHandler, HandlerError};
use platform::docstore::{
    Commit, Decision, Expect, Index, Item, Query, Write, commit_with_retries,
};
use platform::dynamo::StoreError;
use platform::events::Cause;
use platform::ports::Ports;

use crate::domain::{self, ProductError, Ranked, Reservation, Sale};
use crate::repo::{
    CATALOGUE, DailySales, Product, catalogue_index, product_key, reservation_key, sale_key,
    stats_key, stats_pk,
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
            .indexed(Some(catalogue_index(&product)), None);
        self.ports
            .store
            .commit(Commit::new().write(write).event(registered))
            .await
            .map_err(|e| match e {
                platform::docstore::CommitError::Store(e) => e,
                platform::docstore::CommitError::Conflict(_) => {
                    StoreError::Unavailable("product id collision".into())
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
            let write = Write::put(
                product_key(product_id),
                &product,
                Expect::Version(item.version),
            )?
            .indexed(item.gsi1.clone(), None);
            Ok(Decision::Commit(commit.write(write), product))
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
            products: page
                .items
                .iter()
                .map(Item::parse)
                .collect::<Result<_, _>>()?,
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
                None => DailySales {
                    product_id: product_id.to_owned(),
                    day,
                    quantity: 0,
                    amount: Won::ZERO,
                },
            });
        }
        Ok(out)
    }

    /// `OrderCreated`: take every line's stock, or none.
    pub async fn reserve(
        &self,
        cause: &Envelope,
        order_id: &str,
        items: &[OrderItem],
    ) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let answer = |event: Event| {
                self.ports
                    .events
                    .envelope(Cause::Event(cause), order_id, event)
            };
            if let Some(record) = store.get(&reservation_key(order_id)).await? {
                let again = match record.parse::<Reservation>()? {
                    Reservation::Reserved { .. } => Some(answer(
                        StockReserved {
                            order_id: order_id.to_owned(),
                        }
                        .into(),
                    )),
                    Reservation::Failed { reason, product_id } => Some(answer(
                        StockReservationFailed {
                            order_id: order_id.to_owned(),
                            reason,
                            product_id,
                        }
                        .into(),
                    )),
                    // Already undone: the order has moved on; nothing to say.
                    Reservation::Released { .. } | Reservation::Tombstone => None,
                };
                return Ok(Decision::Commit(Commit::new().events(again), ()));
            }
            let mut products: BTreeMap<String, Option<Item>> = BTreeMap::new();
            for item in items {
                products.insert(
                    item.product_id.clone(),
                    store.get(&product_key(&item.product_id)).await?,
                );
            }
            let mut stock = BTreeMap::new();
            for (id, item) in &products {
                stock.insert(
                    id.clone(),
                    item.as_ref()
                        .map(|i| i.parse::<Product>().map(|p| p.stock))
                        .transpose()?,
                );
            }
            if let Err((reason, product_id)) = domain::check_reservation(items, &stock) {
                let record = Reservation::Failed {
                    reason: reason.to_owned(),
                    product_id: Some(product_id.clone()),
                };
                let event = answer(
                    StockReservationFailed {
                        order_id: order_id.to_owned(),
                        reason: reason.to_owned(),
                        product_id: Some(product_id),
                    }
                    .into(),
                );
                let commit = Commit::new()
                    .write(Write::put(
                        reservation_key(order_id),
                        &record,
                        Expect::Absent,
                    )?)
                    .event(event);
                return Ok(Decision::Commit(commit, ()));
            }
            let mut commit = Commit::new();
            let mut taken: BTreeMap<&str, u64> = BTreeMap::new();
            for line in items {
                *taken.entry(&line.product_id).or_default() += u64::from(line.quantity);
            }
            for (id, quantity) in taken {
                let Some(Some(item)) = products.get(id) else {
                    continue;
                };
                let mut product: Product = item.parse()?;
                product.stock -= quantity; // checked above, under the version condition below
                commit = commit.write(
                    Write::put(product_key(id), &product, Expect::Version(item.version))?
                        .indexed(item.gsi1.clone(), None),
                );
            }
            let record = Reservation::Reserved {
                items: items.to_vec(),
            };
            let commit = commit
                .write(Write::put(
                    reservation_key(order_id),
                    &record,
                    Expect::Absent,
                )?)
                .event(answer(
                    StockReserved {
                        order_id: order_id.to_owned(),
                    }
                    .into(),
                ));
            Ok(Decision::Commit(commit, ()))
        })
        .await
    }

    /// `OrderFailed` / `OrderCancelled`: give back what was reserved (answering
    /// `released:false` when nothing was), leaving a tombstone if the order came first.
    pub async fn release(&self, cause: &Envelope, order_id: &str) -> Result<(), StoreError> {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let answer = |released: bool| {
                self.ports.events.envelope(
                    Cause::Event(cause),
                    order_id,
                    StockReleased {
                        order_id: order_id.to_owned(),
                        released,
                    },
                )
            };
            let record_item = store.get(&reservation_key(order_id)).await?;
            let record = record_item
                .as_ref()
                .map(Item::parse::<Reservation>)
                .transpose()?;
            let expect = Expect::after_read(record_item.as_ref());
            let commit = match record {
                None => Commit::new()
                    .write(Write::put(
                        reservation_key(order_id),
                        &Reservation::Tombstone,
                        expect,
                    )?)
                    .event(answer(false)),
                Some(Reservation::Failed { .. }) => Commit::new()
                    .write(Write::put(
                        reservation_key(order_id),
                        &Reservation::Released { released: false },
                        expect,
                    )?)
                    .event(answer(false)),
                Some(Reservation::Released { released }) => Commit::new().event(answer(released)),
                Some(Reservation::Tombstone) => Commit::new().event(answer(false)),
                Some(Reservation::Reserved { items }) => {
                    let mut given: BTreeMap<String, u64> = BTreeMap::new();
                    for line in &items {
                        *given.entry(line.product_id.clone()).or_default() +=
                            u64::from(line.quantity);
                    }
                    let mut commit = Commit::new();
                    for (id, quantity) in given {
                        let Some(item) = store.get(&product_key(&id)).await? else {
                            continue;
                        };
                        let mut product: Product = item.parse()?;
                        product.stock += quantity;
                        commit = commit.write(
                            Write::put(product_key(&id), &product, Expect::Version(item.version))?
                                .indexed(item.gsi1.clone(), None),
                        );
                    }
                    commit
                        .write(Write::put(
                            reservation_key(order_id),
                            &Reservation::Released { released: true },
                            expect,
                        )?)
                        .event(answer(true))
                }
            };
            Ok(Decision::Commit(commit, ()))
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
        self.apply_sales(order_id, |sale| match sale {
            None => Some((
                Sale::Counted {
                    day: day.clone(),
                    items: items.to_vec(),
                },
                day.clone(),
                items.to_vec(),
                true,
            )),
            Some(_) => None,
        })
        .await
    }

    /// `OrderCancelled` of a confirmed order: take its lines back out (or make sure a late
    /// confirmation never counts them).
    pub async fn reverse_sale(&self, order_id: &str) -> Result<(), StoreError> {
        self.apply_sales(order_id, |sale| match sale {
            None => Some((Sale::CancelledFirst, String::new(), Vec::new(), false)),
            Some(Sale::Counted { day, items }) => {
                Some((Sale::Reversed { day: day.clone() }, day, items, false))
            }
            Some(_) => None,
        })
        .await
    }

    /// Moves the sale record with `decide` (current → (next, day, lines, add?)) and adds or
    /// subtracts the lines on that day's statistics, in one commit.
    async fn apply_sales<F>(&self, order_id: &str, decide: F) -> Result<(), StoreError>
    where
        F: Fn(Option<Sale>) -> Option<(Sale, String, Vec<OrderItem>, bool)>,
    {
        let store = self.ports.store.as_ref();
        commit_with_retries(store, || async {
            let record_item = store.get(&sale_key(order_id)).await?;
            let current = record_item.as_ref().map(Item::parse::<Sale>).transpose()?;
            let Some((next, day, lines, add)) = decide(current) else {
                return Ok(Decision::Done(()));
            };
            let mut per_product: BTreeMap<String, (u64, Won)> = BTreeMap::new();
            for line in &lines {
                let entry = per_product.entry(line.product_id.clone()).or_default();
                entry.0 += u64::from(line.quantity);
                entry.1 = entry
                    .1
                    .checked_add(
                        line.unit_price
                            .checked_mul(u64::from(line.quantity))
                            .unwrap_or_default(),
                    )
                    .unwrap_or_default();
            }
            let mut commit = Commit::new().write(Write::put(
                sale_key(order_id),
                &next,
                Expect::after_read(record_item.as_ref()),
            )?);
            for (product_id, (quantity, amount)) in per_product {
                let stat_item = store.get(&stats_key(&day, &product_id)).await?;
                let mut stat = match &stat_item {
                    Some(item) => item.parse::<DailySales>()?,
                    None => DailySales {
                        product_id: product_id.clone(),
                        day: day.clone(),
                        quantity: 0,
                        amount: Won::ZERO,
                    },
                };
                if add {
                    stat.quantity += quantity;
                    stat.amount = stat.amount.checked_add(amount).unwrap_or(stat.amount);
                } else {
                    stat.quantity = stat.quantity.saturating_sub(quantity);
                    stat.amount = stat.amount.checked_sub(amount).unwrap_or_default();
                }
                commit = commit.write(Write::put(
                    stats_key(&day, &product_id),
                    &stat,
                    Expect::after_read(stat_item.as_ref()),
                )?);
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
