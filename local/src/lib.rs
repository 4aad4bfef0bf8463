//! The whole system in one process, on in-memory adapters: the HTTP gateway (same routes and
//! auth as API Gateway with the Lambda authorizer), every service's handlers, the relays
//! from each outbox to the in-memory SNS/SQS, and the event source mappings.
//!
//! - `config`: the environment, checked at start.
//! - `template`: `template.yaml` read — the one statement of tables, topics, queues,
//!   subscriptions, functions, event sources and schedule.
//! - `registry`: which code each function's `HANDLER` names.
//! - `gateway`: routing and authorization in front of the services' routers.
//! - `server`: serving the gateway with an edge's limits (header and body timeouts, 431).
//! - `system`: wiring it all and running it until shutdown.

pub mod aws;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod lambda_dev;
pub mod registry;
pub mod server;
pub mod system;
pub mod template;
