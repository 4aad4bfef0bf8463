//! The best-seller statistics: an order's lines are counted on the day it is confirmed and
//! taken back out if it is cancelled afterwards. The sale record makes each happen once.

use std::collections::BTreeMap;

use contract::{OrderItem, Won};
use serde::{Deserialize, Serialize};

/// What the statistics hold of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sale {
    /// Counted on `day` (UTC, `YYYY-MM-DD`).
    Counted { day: String, items: Vec<OrderItem> },
    /// Counted, then taken back out.
    Reversed { day: String },
    /// The cancellation came before the confirmation: never count it.
    CancelledFirst,
}

/// How much of one product was sold: pieces and won.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sold {
    pub quantity: u64,
    pub amount: Won,
}

/// A change to the statistics: the sale record's next state, and what to add to (or take
/// from) each product's figures of `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleMove {
    pub record: Sale,
    pub day: String,
    pub per_product: BTreeMap<String, Sold>,
    pub add: bool,
}

impl SaleMove {
    /// What this move adds to a product's figures of the day (negative: takes out), as
    /// `(quantity, amount)`.
    pub fn signed(&self, product_id: &str) -> (i64, i64) {
        let change = self
            .per_product
            .get(product_id)
            .copied()
            .unwrap_or_default();
        let sign = if self.add { 1 } else { -1 };
        let as_delta = |n: u64| sign * i64::try_from(n).unwrap_or(i64::MAX);
        (as_delta(change.quantity), as_delta(change.amount.0))
    }
}

/// `OrderConfirmed` on `day`: count the lines unless this order was seen before.
pub fn count_sale(sale: Option<&Sale>, day: &str, items: &[OrderItem]) -> Option<SaleMove> {
    match sale {
        None => Some(SaleMove {
            record: Sale::Counted {
                day: day.to_owned(),
                items: items.to_vec(),
            },
            day: day.to_owned(),
            per_product: per_product(items),
            add: true,
        }),
        Some(_) => None,
    }
}

/// `OrderCancelled` of a confirmed order: take counted lines back out, or make sure a late
/// confirmation never counts them.
pub fn reverse_sale(sale: Option<&Sale>) -> Option<SaleMove> {
    match sale {
        None => Some(SaleMove {
            record: Sale::CancelledFirst,
            day: String::new(),
            per_product: BTreeMap::new(),
            add: false,
        }),
        Some(Sale::Counted { day, items }) => Some(SaleMove {
            record: Sale::Reversed { day: day.clone() },
            day: day.clone(),
            per_product: per_product(items),
            add: false,
        }),
        Some(Sale::Reversed { .. } | Sale::CancelledFirst) => None,
    }
}

fn per_product(items: &[OrderItem]) -> BTreeMap<String, Sold> {
    let mut sold: BTreeMap<String, Sold> = BTreeMap::new();
    for line in items {
        let entry = sold.entry(line.product_id.clone()).or_default();
        let quantity = u64::from(line.quantity);
        entry.quantity = entry.quantity.saturating_add(quantity);
        entry.amount = line
            .unit_price
            .checked_mul(quantity)
            .and_then(|a| entry.amount.checked_add(a))
            .unwrap_or(entry.amount);
    }
    sold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str, q: u32, price: u64) -> OrderItem {
        OrderItem {
            product_id: p.into(),
            quantity: q,
            unit_price: Won(price),
        }
    }

    #[test]
    fn a_confirmed_order_is_counted_once_on_its_day() {
        let items = [line("a", 2, 100), line("b", 1, 50)];
        let first = count_sale(None, "2026-12-01", &items).expect("counted");
        assert_eq!(first.day, "2026-12-01");
        assert_eq!(first.signed("a"), (2, 200));
        assert_eq!(first.signed("b"), (1, 50));
        assert_eq!(first.signed("c"), (0, 0));
        assert_eq!(count_sale(Some(&first.record), "2026-12-02", &items), None);
    }

    #[test]
    fn a_cancellation_takes_counted_lines_back_out_of_their_day() {
        let items = [line("a", 2, 100)];
        let counted = count_sale(None, "2026-12-01", &items).expect("counted");
        let reversed = reverse_sale(Some(&counted.record)).expect("reversed");
        assert_eq!(reversed.day, "2026-12-01");
        assert_eq!(reversed.signed("a"), (-2, -200));
        assert_eq!(reverse_sale(Some(&reversed.record)), None);
    }

    #[test]
    fn a_cancellation_before_the_confirmation_means_it_is_never_counted() {
        let first = reverse_sale(None).expect("recorded");
        assert_eq!(first.record, Sale::CancelledFirst);
        assert!(first.per_product.is_empty());
        assert_eq!(
            count_sale(Some(&first.record), "2026-12-01", &[line("a", 1, 1)]),
            None
        );
    }
}
