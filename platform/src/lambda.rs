//! Lambda entry points every domain shares, so each function's `main` is a line or two.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::config::{ProcessEnv, required};
use crate::http::{USER_ID_HEADER, USER_ROLE_HEADER};
use crate::identity::{Identity, Role};
use crate::sns::SnsPublisher;
use crate::telemetry::{self, LogTarget};

/// A domain table's stream relay: publishes its outbox items to the domain's topic
/// (`TOPIC_ARN`), reporting the first failed sequence number.
pub async fn run_stream_relay() -> Result<(), lambda_runtime::Error> {
    telemetry::init(LogTarget::Stdout);
    let topic_arn = required(&ProcessEnv, "TOPIC_ARN")?;
    let publisher = SnsPublisher::new(crate::sns::client_from_env().await, topic_arn);
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            Ok::<_, std::convert::Infallible>(
                crate::relay::handle_stream(event.payload, publisher).await,
            )
        },
    ))
    .await
}

/// A domain's HTTP API behind API Gateway: the same router the local gateway serves.
pub async fn run_http_api(
    router: Router,
    function: &'static str,
) -> Result<(), lambda_http::Error> {
    telemetry::init(LogTarget::Stdout);
    lambda_http::run(http_app(router, function)).await
}

/// The router as served on Lambda. A proxy integration passes the client's headers through,
/// so the identity headers are always replaced by what the authorizer established (its
/// context in the request), or removed when there is none.
pub fn http_app(router: Router, function: &'static str) -> Router {
    crate::http::finish(
        router.layer(middleware::map_request(identity_from_authorizer)),
        function,
    )
}

fn authorizer_identity(request: &Request) -> Option<Identity> {
    let RequestContext::ApiGatewayV2(context) = request.extensions().get::<RequestContext>()?
    else {
        return None;
    };
    let fields = &context.authorizer.as_ref()?.fields;
    let user_id = fields.get("userId")?.as_str()?.to_owned();
    let role = Role::parse(fields.get("role")?.as_str()?)?;
    (!user_id.is_empty()).then_some(Identity { user_id, role })
}

async fn identity_from_authorizer(mut request: Request) -> Request {
    let identity = authorizer_identity(&request);
    let headers = request.headers_mut();
    headers.remove(USER_ID_HEADER);
    headers.remove(USER_ROLE_HEADER);
    if let Some(identity) = identity
        && let Ok(user_id) = HeaderValue::from_str(&identity.user_id)
    {
        headers.insert(USER_ID_HEADER, user_id);
        headers.insert(
            USER_ROLE_HEADER,
            HeaderValue::from_static(identity.role.as_str()),
        );
    }
    request
}
