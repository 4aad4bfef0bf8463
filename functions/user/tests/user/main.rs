//! The user service's tests: accounts on the in-memory store, and (with the `lambda`
//! feature) the Lambda events its functions take. One test binary.

mod accounts;
#[cfg(feature = "lambda")]
mod lambda_events;
