//! Lambda: the HTTP API's authorizer, in front of every service's routes.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::clock::SystemClock;
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};
use user_service::auth::TokenCodec;
use user_service::config::UserConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(LogTarget::Stdout);
    let config = UserConfig::lambda(&ProcessEnv).await?;
    let codec = TokenCodec::new(&config.keys, config.token_ttl, Arc::new(SystemClock));
    if let Some(parameter) = config.keys_parameter {
        parameter.keep_fresh(codec.clone(), user_service::keys::KEYS_REFRESH);
    }
    let codec = &codec;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
            Ok::<_, std::convert::Infallible>(user_service::authorizer::handle(
                codec,
                &event.payload,
            ))
        },
    ))
    .await
}
