//! The document store conformance suite against the DynamoDB adapter, on the emulator.

use std::sync::Arc;

use platform::docstore::conformance::Subject;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::testing::DynamoOutboxProbe;
use platform::testing::emulator::emulator;

async fn subject() -> Subject {
    let emulator = emulator();
    let client = emulator.dynamodb().await;
    let table = emulator.create_table(&client, "docstore").await;
    Subject {
        store: Arc::new(DynamoDocStore::new(client.clone(), table.clone())),
        outbox: Box::new(DynamoOutboxProbe { client, table }),
    }
}

platform::docstore_conformance!(subject());
