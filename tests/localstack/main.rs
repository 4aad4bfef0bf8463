//! The integration suite against AWS APIs: LocalStack (DynamoDB Local inside), started by the
//! suite on 127.0.0.1, or whatever `AWS_ENDPOINT_URL` names (see
//! `platform::testing::aws`). Every test's tables, topics and queues are its own and are
//! deleted when it ends. Tests wait for conditions with deadlines, never for fixed times.

#[path = "../../local/tests/system/support/mod.rs"]
mod support;

mod docstore;
mod outbox;
mod queues;
mod saga_tables;
mod shop_admin;
mod signing_keys;
mod sns;
mod system;
mod user_table;
