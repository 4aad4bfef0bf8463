//! The local system's tests, in memory: one test binary (one link) for all of them. They ignore
//! `AWS_ENDPOINT_URL`.

mod support;

mod bad_input;
mod concurrency;
mod coupon_sources;
mod functions;
mod fuzz;
mod observability;
mod openapi;
mod operations;
mod saga;
mod sample_events;
mod security;
mod walkthrough;
