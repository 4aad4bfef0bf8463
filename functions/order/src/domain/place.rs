//! Placing an order: the request parsed at the boundary, priced from the service's copies,
//! and the coupon policy. Pure: the copies and `now` come in as arguments.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use contract::{Discount, OrderCreated, OrderItem, Won};
use serde::{Deserialize, Serialize};

use super::Order;

pub const MAX_DISTINCT_ITEMS: usize = 50;
pub const MAX_QUANTITY: u32 = 1_000;
pub const MAX_ID_CHARS: usize = 100;

/// An order line as asked for: nothing checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product_id: String,
    pub quantity: i64,
}

/// A line of an [`OrderRequest`]: a product id of 1–100 characters, a quantity of 1–1,000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    product_id: String,
    quantity: u32,
}

impl OrderLine {
    pub fn product_id(&self) -> &str {
        &self.product_id
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }
}

/// An order request whose shape holds: 1 to 50 distinct products, each quantity 1 to 1,000,
/// a well-formed coupon id. Only [`OrderRequest::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    lines: Vec<OrderLine>,
    coupon_id: Option<String>,
}

impl OrderRequest {
    /// Checks the shape of what was asked for, before anything is looked up.
    pub fn parse(lines: Vec<Line>, coupon_id: Option<String>) -> Result<Self, OrderError> {
        if lines.is_empty() || lines.len() > MAX_DISTINCT_ITEMS {
            return Err(OrderError::ItemCount);
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for line in lines {
            if line.product_id.trim().is_empty() || line.product_id.chars().count() > MAX_ID_CHARS {
                return Err(OrderError::ProductId);
            }
            let quantity = u32::try_from(line.quantity)
                .ok()
                .filter(|q| (1..=MAX_QUANTITY).contains(q))
                .ok_or(OrderError::Quantity)?;
            if !seen.insert(line.product_id.clone()) {
                return Err(OrderError::DuplicateProduct);
            }
            parsed.push(OrderLine {
                product_id: line.product_id,
                quantity,
            });
        }
        if let Some(id) = &coupon_id
            && !contract::is_valid_id(id)
        {
            return Err(OrderError::CouponId);
        }
        Ok(OrderRequest {
            lines: parsed,
            coupon_id,
        })
    }

    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    pub fn coupon_id(&self) -> Option<&str> {
        self.coupon_id.as_deref()
    }

    /// What makes two requests the same request, for an `Idempotency-Key`: the lines (in any
    /// order) and the coupon, in one canonical form.
    pub fn fingerprint(&self) -> String {
        let mut lines: Vec<(&str, u32)> = self
            .lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        lines.sort_unstable();
        serde_json::json!({ "lines": lines, "couponId": self.coupon_id }).to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs 1 to 50 distinct products")]
    ItemCount,
    #[error("each quantity must be from 1 to 1,000")]
    Quantity,
    #[error("a product appears twice in the order")]
    DuplicateProduct,
    #[error("a product id is empty or too long")]
    ProductId,
    #[error("the coupon id is empty, too long or of another shape")]
    CouponId,
    #[error("the order's amount is too large")]
    AmountTooLarge,
    #[error("no such product: {0}")]
    UnknownProduct(String),
    /// Also another user's coupon: the answer does not tell whether the id exists.
    #[error("no such coupon")]
    UnknownCoupon,
    #[error("the coupon is used by another order")]
    CouponUsed,
    #[error("the coupon has expired")]
    CouponExpired,
    #[error("the order is below the coupon's minimum order amount")]
    BelowMinimum,
}

impl OrderError {
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::ItemCount => "INVALID_ITEM_COUNT",
            OrderError::Quantity => "INVALID_QUANTITY",
            OrderError::DuplicateProduct => "DUPLICATE_PRODUCT",
            OrderError::ProductId => "INVALID_PRODUCT_ID",
            OrderError::CouponId => "INVALID_COUPON_ID",
            OrderError::AmountTooLarge => "AMOUNT_TOO_LARGE",
            OrderError::UnknownProduct(_) => "UNKNOWN_PRODUCT",
            OrderError::UnknownCoupon => "UNKNOWN_COUPON",
            OrderError::CouponUsed => "COUPON_USED",
            OrderError::CouponExpired => "COUPON_EXPIRED",
            OrderError::BelowMinimum => "BELOW_MINIMUM_ORDER_AMOUNT",
        }
    }

    /// Problems of shape the API document describes are 400; rules beyond it (a product
    /// listed twice) and what the order refers to are 422.
    pub fn is_shape(&self) -> bool {
        matches!(
            self,
            OrderError::ItemCount
                | OrderError::Quantity
                | OrderError::ProductId
                | OrderError::CouponId
        )
    }
}

/// The order service's copy of a product's price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceCopy {
    pub product_id: String,
    pub price: Won,
    /// When the price was set at the product service; an older event never overwrites it.
    pub as_of: DateTime<Utc>,
}

/// The order service's copy of an issued coupon, and which live order holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponCopy {
    pub coupon_id: String,
    pub user_id: String,
    pub discount: Discount,
    pub minimum_order_amount: Won,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// A coupon as the order service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponTerms {
    pub discount: Discount,
    pub minimum_order_amount: Won,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub total: Won,
    pub discount: Won,
    pub payment: Won,
}

/// Prices an order. A FIXED discount takes its amount; a PERCENT one takes
/// `floor(total × rate / 100)` (rounded down to the won, in the customer's disfavour by
/// less than one won), capped at `maxAmount`. No discount exceeds the total.
pub fn price(items: &[OrderItem], coupon: Option<&CouponTerms>) -> Result<Amounts, OrderError> {
    let mut total = Won::ZERO;
    for item in items {
        let line = item
            .unit_price
            .checked_mul(u64::from(item.quantity))
            .ok_or(OrderError::AmountTooLarge)?;
        total = total.checked_add(line).ok_or(OrderError::AmountTooLarge)?;
    }
    let discount = match coupon {
        None => Won::ZERO,
        Some(terms) => {
            if total < terms.minimum_order_amount {
                return Err(OrderError::BelowMinimum);
            }
            match &terms.discount {
                Discount::Fixed { amount } => *amount,
                Discount::Percent { rate, max_amount } => {
                    let raw = u128::from(total.0) * u128::from(*rate) / 100;
                    let raw = Won(u64::try_from(raw).map_err(|_| OrderError::AmountTooLarge)?);
                    max_amount.map_or(raw, |cap| raw.min(cap))
                }
            }
        }
    }
    .min(total);
    Ok(Amounts {
        total,
        discount,
        payment: total.checked_sub(discount).unwrap_or_default(),
    })
}

/// What placing an order decides: the PENDING order, the event announcing it, and the coupon
/// copy now held by it (to be written back under the version it was read at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: Order,
    pub created: OrderCreated,
    pub held_coupon: Option<CouponCopy>,
}

/// What placing an order needs to know, as read from the order service's own table.
pub struct Known<'a> {
    /// The price copies found for the request's products (a missing one is unknown).
    pub prices: &'a HashMap<String, PriceCopy>,
    /// The copy of the request's coupon, if it has one and it was found.
    pub coupon: Option<CouponCopy>,
}

/// Places `request` for `user_id` at `now`: priced from the copies, with the coupon policy —
/// another user's coupon answers as an unknown one (the answer must not tell whether a coupon
/// id exists), a coupon held by a live order is used, an expired one is refused.
pub fn place(
    order_id: String,
    user_id: &str,
    request: &OrderRequest,
    known: Known<'_>,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Placed, OrderError> {
    let mut items = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        let copy = known
            .prices
            .get(&line.product_id)
            .ok_or_else(|| OrderError::UnknownProduct(line.product_id.clone()))?;
        items.push(OrderItem {
            product_id: line.product_id.clone(),
            quantity: line.quantity,
            unit_price: copy.price,
        });
    }
    let held_coupon = match request.coupon_id() {
        None => None,
        Some(_) => {
            let mut copy = known.coupon.ok_or(OrderError::UnknownCoupon)?;
            if copy.user_id != user_id {
                return Err(OrderError::UnknownCoupon);
            }
            if copy.held_by.is_some() {
                return Err(OrderError::CouponUsed);
            }
            if now >= copy.expires_at {
                return Err(OrderError::CouponExpired);
            }
            copy.held_by = Some(order_id.clone());
            Some(copy)
        }
    };
    let terms = held_coupon.as_ref().map(|c| CouponTerms {
        discount: c.discount.clone(),
        minimum_order_amount: c.minimum_order_amount,
    });
    let amounts = price(&items, terms.as_ref())?;
    let coupon_id = request.coupon_id.clone();
    let order = Order::pending(
        order_id,
        user_id.to_owned(),
        items,
        coupon_id,
        amounts,
        now,
        ttl,
    );
    let created = OrderCreated {
        order_id: order.order_id.clone(),
        user_id: order.user_id.clone(),
        items: order.items.clone(),
        coupon_id: order.coupon_id.clone(),
        total_amount: amounts.total,
        discount_amount: amounts.discount,
        payment_amount: amounts.payment,
        expires_at: order.expires_at,
    };
    Ok(Placed {
        order,
        created,
        held_coupon,
    })
}

/// An order that ends without being confirmed lets go of its coupon: the copy released, if
/// `order` ended FAILED or CANCELLED and still holds it; `None` when nothing changes.
pub fn release_coupon(order: &Order, copy: &CouponCopy) -> Option<CouponCopy> {
    (order.status.ended_unconfirmed() && copy.held_by.as_deref() == Some(order.order_id.as_str()))
        .then(|| CouponCopy {
            held_by: None,
            ..copy.clone()
        })
}

#[cfg(test)]
#[path = "place_tests.rs"]
mod tests;
