//! The user store conformance suite against the DynamoDB adapter.

use std::sync::Arc;

use platform::testing::DynamoOutboxProbe;
use platform::testing::aws::endpoint;
use user_service::store::conformance::Subject;
use user_service::store::dynamodb::DynamoUserStore;

async fn subject() -> Subject {
    let client = endpoint().dynamodb().await;
    let table = endpoint().table(&client, "user").await;
    Subject {
        store: Arc::new(DynamoUserStore::new(client.clone(), table.name.clone())),
        outbox: Box::new(DynamoOutboxProbe { client, table }),
    }
}

user_service::user_store_conformance!(subject());
