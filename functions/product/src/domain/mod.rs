//! Product rules: what a product may be and how the ranking is computed. How an order's
//! stock is reserved and released is in `reservation`, how a sale is counted in `sales`.
//! Pure.

use std::collections::BTreeMap;

use contract::Won;

mod reservation;
mod sales;
pub use reservation::*;
pub use sales::*;

pub const MAX_PRICE: Won = Won(100_000_000);
pub const MAX_STOCK: u64 = 1_000_000;
pub const MAX_NAME_CHARS: usize = 100;
/// The `rank` shown with a product is its place among the best sellers of this many days.
pub const RANK_WINDOW_DAYS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("the name must have 1 to 100 characters")]
    Name,
    #[error("the price must be from 0 to 100,000,000 won")]
    Price,
    #[error("stock must be from 0 to 1,000,000")]
    Stock,
    #[error("not enough stock to remove that much")]
    InsufficientStock,
    #[error("nothing to change: give a price, a stock change or both")]
    NothingToChange,
    #[error("expectedOrdersPerSecond must be from 0 to 1,000,000")]
    ExpectedRate,
}

impl ProductError {
    pub fn code(&self) -> &'static str {
        match self {
            ProductError::Name => "INVALID_NAME",
            ProductError::Price => "INVALID_PRICE",
            ProductError::Stock => "INVALID_STOCK",
            ProductError::InsufficientStock => "INSUFFICIENT_STOCK",
            ProductError::NothingToChange => "NOTHING_TO_CHANGE",
            ProductError::ExpectedRate => "INVALID_EXPECTED_RATE",
        }
    }
}

pub fn product_name(raw: &str) -> Result<String, ProductError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ProductError::Name);
    }
    Ok(name.to_owned())
}

pub fn price(raw: i64) -> Result<Won, ProductError> {
    u64::try_from(raw)
        .ok()
        .map(Won)
        .filter(|p| *p <= MAX_PRICE)
        .ok_or(ProductError::Price)
}

pub fn initial_stock(raw: i64) -> Result<u64, ProductError> {
    u64::try_from(raw)
        .ok()
        .filter(|s| *s <= MAX_STOCK)
        .ok_or(ProductError::Stock)
}

/// Orders a second expected at a product's peak (`platform::docstore::shards`).
pub fn expected_rate(raw: Option<i64>) -> Result<u64, ProductError> {
    platform::docstore::shards::expected_rate(raw).ok_or(ProductError::ExpectedRate)
}

/// Stock after an admin adds (positive) or removes (negative) `delta`.
pub fn adjust_stock(stock: u64, delta: i64) -> Result<u64, ProductError> {
    let after = i128::from(stock) + i128::from(delta);
    if after < 0 {
        return Err(ProductError::InsufficientStock);
    }
    u64::try_from(after)
        .ok()
        .filter(|s| *s <= MAX_STOCK)
        .ok_or(ProductError::Stock)
}

/// One product's line in the ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub rank: u32,
    pub product_id: String,
    pub quantity: u64,
}

/// Best sellers by quantity (ties by product id), from per-day quantities.
pub fn ranking(sold: impl IntoIterator<Item = (String, u64)>) -> Vec<Ranked> {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (product_id, quantity) in sold {
        *totals.entry(product_id).or_default() += quantity;
    }
    let mut lines: Vec<(String, u64)> = totals.into_iter().filter(|(_, q)| *q > 0).collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    lines
        .into_iter()
        .enumerate()
        .map(|(i, (product_id, quantity))| Ranked {
            rank: i as u32 + 1,
            product_id,
            quantity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_adjustments_stay_in_bounds() {
        assert_eq!(adjust_stock(5, -5), Ok(0));
        assert_eq!(adjust_stock(5, -6), Err(ProductError::InsufficientStock));
        assert_eq!(adjust_stock(5, 10), Ok(15));
        assert_eq!(adjust_stock(MAX_STOCK, 1), Err(ProductError::Stock));
        assert_eq!(
            adjust_stock(0, i64::MIN),
            Err(ProductError::InsufficientStock)
        );
        assert_eq!(adjust_stock(0, i64::MAX), Err(ProductError::Stock));
    }

    #[test]
    fn the_ranking_sums_days_and_breaks_ties_by_id() {
        let sold = [
            ("b".to_owned(), 2),
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("a".to_owned(), 2),
            ("c".to_owned(), 5),
            ("d".to_owned(), 0),
        ];
        let ranked = ranking(sold);
        let got: Vec<(u32, &str, u64)> = ranked
            .iter()
            .map(|r| (r.rank, r.product_id.as_str(), r.quantity))
            .collect();
        assert_eq!(got, [(1, "c", 5), (2, "a", 3), (3, "b", 3)]);
    }

    #[test]
    fn names_and_prices_are_checked() {
        assert_eq!(product_name("  Green tea "), Ok("Green tea".into()));
        assert_eq!(product_name(""), Err(ProductError::Name));
        assert_eq!(product_name(&"x".repeat(101)), Err(ProductError::Name));
        assert_eq!(price(-1), Err(ProductError::Price));
        assert_eq!(price(100_000_001), Err(ProductError::Price));
        assert_eq!(price(0), Ok(Won(0)));
        assert_eq!(initial_stock(-3), Err(ProductError::Stock));
        assert_eq!(expected_rate(None), Ok(0));
        assert_eq!(expected_rate(Some(5_000)), Ok(5_000));
        assert_eq!(expected_rate(Some(-5)), Err(ProductError::ExpectedRate));
    }
}
