//! An order's stock: reserved on `OrderCreated`, given back on `OrderFailed` /
//! `OrderCancelled`. The reservation record is also the de-duplication key of both, so a
//! repeated event finds it and says again what was said.

use std::collections::BTreeMap;

use contract::{Event, OrderItem, StockReleased, StockReservationFailed, StockReserved};
use serde::{Deserialize, Serialize};

/// Stock taken from one shard of a product (`shard` 0: the product's own item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taken {
    pub product_id: String,
    pub shard: u32,
    pub quantity: u64,
}

/// What the product service did for one order's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reservation {
    Reserved {
        items: Vec<OrderItem>,
        /// Which shards gave the stock, when any is not the product's own item (a product
        /// spread over shards for a flash sale); empty: every line from the product itself.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<Taken>,
    },
    Failed {
        reason: String,
        product_id: Option<String>,
    },
    /// Undone: `released` says whether stock had been taken and was given back.
    Released { released: bool },
    /// The undo came before the order: a late `OrderCreated` reserves nothing.
    Tombstone,
}

/// Why an order's stock could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    UnknownProduct,
    OutOfStock,
}

impl Shortage {
    /// The `reason` the order records and the API shows.
    pub fn code(self) -> &'static str {
        match self {
            Shortage::UnknownProduct => "UNKNOWN_PRODUCT",
            Shortage::OutOfStock => "OUT_OF_STOCK",
        }
    }
}

/// What `OrderCreated` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserve {
    /// The record to create; `None` when the order was decided before.
    pub record: Option<Reservation>,
    /// Each product whose stock is taken, with how much: taken in place, under the bound
    /// that stock never goes below zero.
    pub take: BTreeMap<String, u64>,
    /// What to tell the order; `None` when it has been undone since.
    pub answer: Option<Event>,
}

/// What a reservation knows of the stock of the order's products.
#[derive(Debug, Clone, Copy)]
pub enum Stock<'a> {
    /// Not read: take every line. The store refuses the take if a product is short (or
    /// absent), and the next attempt reads.
    Unread,
    /// Read: each product's stock (`None`: no such product).
    Read(&'a BTreeMap<String, Option<u64>>),
}

/// Decides `OrderCreated` from the order's record (if any) and what is known of the stock
/// of each product it names. Every line must be available, or nothing is taken.
pub fn reserve(
    record: Option<&Reservation>,
    order_id: &str,
    items: &[OrderItem],
    stock: Stock<'_>,
) -> Reserve {
    let reserved = || StockReserved {
        order_id: order_id.to_owned(),
    };
    let failed = |reason: String, product_id: Option<String>| StockReservationFailed {
        order_id: order_id.to_owned(),
        reason,
        product_id,
    };
    if let Some(record) = record {
        let answer = match record {
            Reservation::Reserved { .. } => Some(reserved().into()),
            Reservation::Failed { reason, product_id } => {
                Some(failed(reason.clone(), product_id.clone()).into())
            }
            // Already undone: the order has moved on; nothing to say.
            Reservation::Released { .. } | Reservation::Tombstone => None,
        };
        return Reserve {
            record: None,
            take: BTreeMap::new(),
            answer,
        };
    }
    match take(items, stock) {
        Ok(take) => Reserve {
            record: Some(Reservation::Reserved {
                items: items.to_vec(),
                from: Vec::new(),
            }),
            take,
            answer: Some(reserved().into()),
        },
        Err((shortage, product_id)) => {
            let reason = shortage.code().to_owned();
            Reserve {
                record: Some(Reservation::Failed {
                    reason: reason.clone(),
                    product_id: Some(product_id.clone()),
                }),
                take: BTreeMap::new(),
                answer: Some(failed(reason, Some(product_id)).into()),
            }
        }
    }
}

/// How much of each product the lines take, or the first line that cannot be taken from
/// the stock read.
fn take(
    items: &[OrderItem],
    stock: Stock<'_>,
) -> Result<BTreeMap<String, u64>, (Shortage, String)> {
    let mut taken: BTreeMap<String, u64> = BTreeMap::new();
    for item in items {
        let total = taken.entry(item.product_id.clone()).or_default();
        *total = total.saturating_add(u64::from(item.quantity));
        let Stock::Read(stock) = stock else { continue };
        let Some(Some(available)) = stock.get(&item.product_id) else {
            return Err((Shortage::UnknownProduct, item.product_id.clone()));
        };
        if *total > *available {
            return Err((Shortage::OutOfStock, item.product_id.clone()));
        }
    }
    Ok(taken)
}

/// What `OrderFailed` / `OrderCancelled` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The record's next state; `None` when it stays as it is.
    pub record: Option<Reservation>,
    /// What to put back, to the shards it was taken from.
    pub give_back: Vec<Taken>,
    pub answer: StockReleased,
}

/// Decides the undo from the order's record: gives back what was taken (saying
/// `released: false` when nothing was), and leaves a tombstone if the order has not come yet.
pub fn release(record: Option<&Reservation>, order_id: &str) -> Release {
    let answer = |released| StockReleased {
        order_id: order_id.to_owned(),
        released,
    };
    let unchanged = |released| Release {
        record: None,
        give_back: Vec::new(),
        answer: answer(released),
    };
    match record {
        None => Release {
            record: Some(Reservation::Tombstone),
            ..unchanged(false)
        },
        Some(Reservation::Failed { .. }) => Release {
            record: Some(Reservation::Released { released: false }),
            ..unchanged(false)
        },
        Some(Reservation::Released { released }) => unchanged(*released),
        Some(Reservation::Tombstone) => unchanged(false),
        Some(Reservation::Reserved { items, from }) => {
            let give_back = if from.is_empty() {
                let mut lines: BTreeMap<String, u64> = BTreeMap::new();
                for line in items {
                    *lines.entry(line.product_id.clone()).or_default() += u64::from(line.quantity);
                }
                lines
                    .into_iter()
                    .map(|(product_id, quantity)| Taken {
                        product_id,
                        shard: 0,
                        quantity,
                    })
                    .collect()
            } else {
                from.clone()
            };
            Release {
                record: Some(Reservation::Released { released: true }),
                give_back,
                answer: answer(true),
            }
        }
    }
}

#[cfg(test)]
#[path = "reservation_tests.rs"]
mod tests;
