//! The coupon-source service: coupon policies (admin create and update) and first-come,
//! first-served issuing — never more than the quantity, never twice to one user, only
//! inside the issuing window and while active. Each issue publishes `CouponIssued`.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
pub mod repo;
