//! Lambda: the user service's HTTP API behind API Gateway.

use std::sync::Arc;

use platform::clock::SystemClock;
use platform::config::ProcessEnv;
use platform::ids::RandomIds;
use user_service::app::UserService;
use user_service::config::{self, MissingSecret, UserConfig};
use user_service::store::dynamodb::DynamoUserStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = UserConfig::from_env(&ProcessEnv, MissingSecret::Refuse)?;
    let store = DynamoUserStore::new(
        platform::dynamo::client_from_env().await,
        config::table_name(&ProcessEnv)?,
    );
    let service = UserService::new(
        Arc::new(store),
        config,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    platform::lambda::run_http_api(user_service::api::router(Arc::new(service)), "user-api").await
}
