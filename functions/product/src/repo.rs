//! The product table:
//!
//! | pk                | sk                | body            | index                                |
//! |-------------------|-------------------|-----------------|--------------------------------------|
//! | `PRODUCT#<id>`    | `PRODUCT`         | [`Product`] (counter `stock`: shard 0) | gsi1 `PRODUCTS` / `<createdAt>#<id>` |
//! | `PRODUCT#<id>#SHARD#<i>` | `PRODUCT`  | [`StockShard`] (counter `stock`: shard `i`) |                                      |
//! | `ORDER#<orderId>` | `RESERVATION`     | [`Reservation`](crate::domain::Reservation) |                  |
//! | `ORDER#<orderId>` | `SALE`            | [`Sale`](crate::domain::Sale) |                                    |
//! | `STATS#<day>`     | `PRODUCT#<id>`    | [`DailySales`] (counters `quantity`, `amount`) |                                      |

//!
//! A product an admin expects a crowd for is spread over `shards` items
//! (`platform::docstore::shards`): its own item is shard 0, so a product of one shard is
//! one item. Its stock is the sum of its shards'.

use chrono::{DateTime, Utc};
use contract::Won;
use platform::docstore::shards::shard_key;
use platform::docstore::{IndexKey, Item, Key};
use platform::errors::StoreError;
use platform::ports::sortable_time;
use serde::{Deserialize, Serialize};

use crate::domain::Sold;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub price: Won,
    /// As stored: shard 0's stock; as answered: every shard's.
    pub stock: u64,
    pub created_at: DateTime<Utc>,
    /// How many items its stock is spread over, chosen at registration.
    #[serde(default = "one_shard")]
    pub shards: u32,
}

fn one_shard() -> u32 {
    1
}

/// A shard of a product's stock other than the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockShard {
    pub product_id: String,
    pub shard: u32,
    pub stock: u64,
}

/// The item of shard `shard` of a product's stock (0: the product itself).
pub fn stock_key(product_id: &str, shard: u32) -> Key {
    shard_key(&product_key(product_id), shard)
}

/// Each shard's stock: shard 0 from the product, the others from their items as read (in
/// shard order; a missing one holds nothing).
pub fn shard_stock(product: &Product, others: &[Option<Item>]) -> Result<Vec<u64>, StoreError> {
    let mut stock = vec![product.stock];
    for item in others {
        stock.push(match item {
            Some(item) => item.parse::<StockShard>()?.stock,
            None => 0,
        });
    }
    Ok(stock)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySales {
    pub product_id: String,
    pub day: String,
    pub quantity: u64,
    pub amount: Won,
}

impl DailySales {
    pub fn of(product_id: &str, day: &str, sold: Sold) -> DailySales {
        DailySales {
            product_id: product_id.to_owned(),
            day: day.to_owned(),
            quantity: sold.quantity,
            amount: sold.amount,
        }
    }

    pub fn sold(&self) -> Sold {
        Sold {
            quantity: self.quantity,
            amount: self.amount,
        }
    }
}

/// The product's stock is a counter: orders take and give it back in place.
pub const STOCK: &str = "stock";
/// A day's statistic's counters.
pub const QUANTITY: &str = "quantity";
pub const AMOUNT: &str = "amount";

/// A quantity as a counter's delta (stock and sales stay far below `i64::MAX`).
pub fn counted(quantity: u64) -> i64 {
    i64::try_from(quantity).unwrap_or(i64::MAX)
}

/// A day's statistic before anything is counted: what an add creates (its counters, 0).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySalesOf<'a> {
    pub product_id: &'a str,
    pub day: &'a str,
}

impl<'a> DailySalesOf<'a> {
    pub fn new(product_id: &'a str, day: &'a str) -> Self {
        DailySalesOf { product_id, day }
    }
}

pub fn product_key(product_id: &str) -> Key {
    Key::new(format!("PRODUCT#{product_id}"), "PRODUCT")
}

pub const CATALOGUE: &str = "PRODUCTS";

pub fn catalogue_index(product: &Product) -> IndexKey {
    IndexKey::new(
        CATALOGUE,
        format!(
            "{}#{}",
            sortable_time(product.created_at),
            product.product_id
        ),
    )
}

pub fn reservation_key(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "RESERVATION")
}

pub fn sale_key(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "SALE")
}

pub fn stats_pk(day: &str) -> String {
    format!("STATS#{day}")
}

pub fn stats_key(day: &str, product_id: &str) -> Key {
    Key::new(stats_pk(day), format!("PRODUCT#{product_id}"))
}
