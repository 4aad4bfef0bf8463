//! The user store conformance suite against the DynamoDB adapter, on the emulator (moto by
//! default; whatever `AWS_ENDPOINT_URL` names otherwise). Each test gets its own table.

use std::sync::Arc;

use platform::testing::DynamoOutboxProbe;
use platform::testing::emulator::emulator;
use user_service::store::conformance::Subject;
use user_service::store::dynamodb::DynamoUserStore;

async fn subject() -> Subject {
    let emulator = emulator();
    let client = emulator.dynamodb().await;
    let table = emulator.create_table(&client, "user").await;
    Subject {
        store: Arc::new(DynamoUserStore::new(client.clone(), table.clone())),
        outbox: Box::new(DynamoOutboxProbe { client, table }),
    }
}

user_service::user_store_conformance!(subject());
