//! The payment service: a payment per order, created on `OrderCreated` (a zero amount is
//! approved at once, anything else asks balance with `PaymentRequested`), approved or failed
//! on the balance's answer, and on undo cancelled — refunded through balance when money was
//! or may have been taken.

pub mod api;
pub mod app;
pub mod domain;
pub mod functions;
