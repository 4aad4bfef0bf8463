//! Lambda: the HTTP API's authorizer, in front of every service's routes.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::clock::SystemClock;
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};
use user_service::auth::TokenCodec;
use user_service::config::{MissingSecret, UserConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(LogTarget::Stdout);
    let config = UserConfig::from_env(&ProcessEnv, MissingSecret::Refuse)?;
    let codec = TokenCodec::new(&config.jwt_secret, config.token_ttl, Arc::new(SystemClock));
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
