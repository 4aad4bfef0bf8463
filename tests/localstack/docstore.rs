//! The document store conformance suite against the DynamoDB adapter.

use std::sync::Arc;

use platform::docstore::conformance::Subject;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::testing::DynamoOutboxProbe;
use platform::testing::aws::endpoint;

async fn subject() -> Subject {
    let client = endpoint().dynamodb().await;
    let table = endpoint().table(&client, "docstore").await;
    Subject {
        store: Arc::new(DynamoDocStore::new(client, table.name.clone())),
        outbox: Box::new(DynamoOutboxProbe {
            sdk: endpoint().sdk_config().await,
            table,
        }),
    }
}

platform::docstore_conformance!(subject());
