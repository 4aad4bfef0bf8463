//! Lambda: the HTTP API's authorizer, in front of every service's routes.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::clock::SystemClock;
use platform::config::ProcessEnv;
use platform::telemetry::{self, LogTarget};
use user_service::auth::TokenCodec;
use user_service::authorizer;
use user_service::config::UserConfig;
use user_service::keys::KeyRefresher;

#[tokio::main]
async fn main() -> Result<(), platform::lambda::ExitError> {
    telemetry::init(LogTarget::Stdout);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let (config, keys_parameter) = UserConfig::lambda(&ProcessEnv, &sdk).await?;
    let codec = TokenCodec::new(&config.keys, config.token_ttl, Arc::new(SystemClock));
    let refresher = KeyRefresher::new(keys_parameter, codec.clone());
    let (codec, refresher) = (&codec, &refresher);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
            refresher.prepare(None).await;
            let response = authorizer::handle(codec, &event.payload);
            // Only a refused token is looked at again: one naming a key this instance lacks
            // (a rotation it has not seen) is verified once more with fresh keys.
            let token =
                authorizer::authorization(&event.payload).and_then(authorizer::bearer_token);
            match token {
                Some(token) if !response.is_authorized && refresher.prepare(Some(token)).await => {
                    Ok::<_, std::convert::Infallible>(authorizer::handle(codec, &event.payload))
                }
                _ => Ok(response),
            }
        },
    ))
    .await?;
    Ok(())
}
