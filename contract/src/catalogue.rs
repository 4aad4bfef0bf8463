//! Every event of the saga (`shared/spec/saga.md`, "Event catalogue"), with its producer.
//! Adding an event means adding one line to `catalogue!` and its payload struct below.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::Service;
use crate::money::Won;

macro_rules! catalogue {
    ($( $name:ident => $producer:ident ),* $(,)?) => {
        /// An event's typed payload, one variant per event type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event { $( $name($name), )* }

        /// The event types, as named in the envelope's `type` and the SNS `type` attribute.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $( $name, )* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[ $( EventType::$name, )* ];

            pub fn name(self) -> &'static str {
                match self { $( EventType::$name => stringify!($name), )* }
            }

            pub fn from_name(name: &str) -> Option<EventType> {
                match name { $( stringify!($name) => Some(EventType::$name), )* _ => None }
            }

            /// The only service allowed to publish this event.
            pub fn producer(self) -> Service {
                match self { $( EventType::$name => Service::$producer, )* }
            }
        }

        impl Event {
            pub fn event_type(&self) -> EventType {
                match self { $( Event::$name(_) => EventType::$name, )* }
            }

            pub(crate) fn payload_json(&self) -> serde_json::Value {
                // Payloads are plain data (strings, integers, times): serialising cannot fail.
                match self { $( Event::$name(p) => serde_json::to_value(p).unwrap_or_default(), )* }
            }

            pub(crate) fn decode_payload(
                event_type: EventType,
                payload: serde_json::Value,
            ) -> Result<Event, serde_json::Error> {
                match event_type {
                    $( EventType::$name => serde_json::from_value(payload).map(Event::$name), )*
                }
            }
        }

        $( impl From<$name> for Event {
            fn from(payload: $name) -> Event { Event::$name(payload) }
        } )*
    };
}

catalogue! {
    UserRegistered => User,
    ProductRegistered => Product,
    ProductPriceChanged => Product,
    CouponIssued => CouponSource,
    OrderCreated => Order,
    StockReserved => Product,
    StockReservationFailed => Product,
    CouponUsed => Coupon,
    CouponUseFailed => Coupon,
    PaymentRequested => Payment,
    BalanceDeducted => Balance,
    BalanceDeductionFailed => Balance,
    PaymentApproved => Payment,
    PaymentFailed => Payment,
    OrderConfirmed => Order,
    SaleRecorded => Product,
    OrderFailed => Order,
    OrderCancelled => Order,
    StockReleased => Product,
    CouponRestored => Coupon,
    PaymentRefundRequested => Payment,
    BalanceRefunded => Balance,
    PaymentCancelled => Payment,
    OrderFailureCompleted => Order,
    OrderCancellationCompleted => Order,
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A coupon's discount: a fixed amount, or a percentage with an optional cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Discount {
    Fixed {
        amount: Won,
    },
    Percent {
        /// Percent off: 1 to 100.
        #[schema(minimum = 1, maximum = 100)]
        rate: u32,
        #[serde(default, rename = "maxAmount", skip_serializing_if = "Option::is_none")]
        max_amount: Option<Won>,
    },
}

/// One line of an order, priced when the order was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: Won,
}

/// Why an order failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    CouponRejected,
    OutOfStock,
    PaymentFailed,
    Expired,
}

impl FailureReason {
    /// As the wire and the API spell it (`PAYMENT_FAILED`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::CouponRejected => "COUPON_REJECTED",
            FailureReason::OutOfStock => "OUT_OF_STOCK",
            FailureReason::PaymentFailed => "PAYMENT_FAILED",
            FailureReason::Expired => "EXPIRED",
        }
    }
}

/// Only the id: the one consumer (balance) needs nothing else, and an event sits in queues
/// and 14-day dead-letter queues where personal data should not. (Events written before
/// this carried `email` and `name`; they still decode, the extra fields ignored.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRegistered {
    pub product_id: String,
    pub name: String,
    pub price: Won,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductPriceChanged {
    pub product_id: String,
    pub price: Won,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponIssued {
    pub coupon_id: String,
    pub source_id: String,
    pub user_id: String,
    pub discount: Discount,
    pub minimum_order_amount: Won,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_id: Option<String>,
    pub total_amount: Won,
    pub discount_amount: Won,
    pub payment_amount: Won,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    pub order_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReservationFailed {
    pub order_id: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponUsed {
    pub order_id: String,
    pub coupon_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponUseFailed {
    pub order_id: String,
    pub coupon_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequested {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
    /// When the payment was made: its record's time, the same in every (re-)publication of
    /// the request, so that with the payment id it keys the balance service's record of the
    /// payment (an envelope's own time changes when it is published again). Absent from
    /// payments made before it was added: the balance service then keeps its old record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDeducted {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceDeductionFailed {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentApproved {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub amount: Won,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub amount: Won,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderConfirmed {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderItem>,
    pub payment_amount: Won,
}

/// The product service's answer to `OrderConfirmed`, given again for every announcement: the
/// order's sale is in the statistics (counted once), so the order stops announcing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleRecorded {
    pub order_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFailed {
    pub order_id: String,
    pub reason: FailureReason,
    /// Whether the order used a coupon: `false` spares the coupon service an undo with
    /// nothing to undo. Absent (from an older producer) means unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_coupon: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: String,
    pub was_confirmed: bool,
    /// As in [`OrderFailed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_coupon: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    pub order_id: String,
    pub released: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponRestored {
    pub order_id: String,
    pub restored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefundRequested {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
    /// The payment's [`PaymentRequested::requested_at`]: where to find what was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// When the payment asked for its refund: its record's time, the same in every
    /// (re-)publication, which keys the refund in the balance service's ledger. Absent from
    /// payments that asked before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_requested_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceRefunded {
    pub payment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: Won,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCancelled {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub refunded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFailureCompleted {
    pub order_id: String,
    pub reason: FailureReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancellationCompleted {
    pub order_id: String,
}
