//! The user service: sign-up, login, profile, and the authorizer in front of every API.
//!
//! - `domain`: pure rules (e-mail, password, name, roles) — no I/O, no async.
//! - `app`: one handler per route: loads, decides, commits, over the platform's document
//!   store and the `auth` primitives.
//! - `repo`: the user table's items and sign-up's one commit.
//! - `api`: the HTTP adapter (the axum router the local gateway and Lambda both serve).
//! - `authorizer`: the API Gateway Lambda authorizer, also used by the local gateway.
//! - `keys`: the token signing keys by key id, from SSM on Lambda.
//! - `config`: configuration from the environment.

pub mod api;
pub mod app;
pub mod auth;
pub mod authorizer;
pub mod config;
pub mod domain;
pub mod functions;
pub mod keys;
pub mod repo;
