//! The coupon service: a user's coupons, created on `CouponIssued`, used by an order on
//! `OrderCreated` (owner, unused, unexpired, minimum order amount), restored when the order
//! is undone; `GET /coupons`.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
