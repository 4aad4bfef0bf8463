//! Lambda: the user service's HTTP API behind API Gateway (`user-api`), chosen by `HANDLER`.
//! The authorizer (`user-authorizer`) is its own binary, `user-authorizer`.

use std::sync::Arc;

use axum::middleware::Next;
use platform::clock::SystemClock;
use platform::config::ProcessEnv;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::ids::RandomIds;
use platform::lambda;
use platform::packing::Packing;
use user_service::app::UserService;
use user_service::config::{self, UserConfig};
use user_service::functions;
use user_service::keys::KeyRefresher;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    match lambda::handler_from_env()?.as_str() {
        functions::API => api().await,
        other => {
            let mut error = lambda::unknown_handler(other, &[functions::API]);
            if other == functions::AUTHORIZER {
                error
                    .problem
                    .push_str("; the authorizer is its own binary, user-authorizer");
            }
            Err(error.into())
        }
    }
}

async fn api() -> Result<(), platform::lambda::ExitError> {
    // One SDK configuration for both clients (the keys' SSM and the table's DynamoDB).
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let (config, keys_parameter) = UserConfig::lambda(&ProcessEnv, &sdk).await?;
    let (client, table) = (
        platform::dynamo::Client::new(&sdk),
        config::table_name(&ProcessEnv)?,
    );
    let service = UserService::new(
        Arc::new(DynamoDocStore::new(client, table).packing(Packing::from_env(&ProcessEnv)?)),
        config,
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let tokens = service.tokens.clone();
    // Signs with the current key: re-read when stale, as each request starts.
    let refresher = Arc::new(KeyRefresher::new(keys_parameter, tokens));
    let router = user_service::api::router(Arc::new(service)).layer(axum::middleware::from_fn(
        move |request, next: Next| {
            let refresher = refresher.clone();
            async move {
                let _refreshed = refresher.prepare(None).await;
                next.run(request).await
            }
        },
    ));
    lambda::run_http_api(router, functions::API).await
}
