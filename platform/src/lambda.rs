//! Lambda entry points every domain shares, so each service's `main` is a few lines.
//!
//! One binary serves all of a service's functions: template.yaml names the one each
//! function runs in its `HANDLER` variable, and the binary's `main` reads it first
//! ([`known_handler_from_env`]) and runs that handler.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use contract::Service;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::config::{ConfigError, Env, ProcessEnv, required};
use crate::http::{CLIENT_ADDRESS_HEADER, USER_ID_HEADER, USER_ROLE_HEADER};
use crate::identity::{Identity, Role};
use crate::sns::SnsPublisher;
use crate::telemetry::{self, LogTarget, Scope, Sinks};

/// Why a function's process ends: its configuration, most often, at start. Every `main`
/// returns it, and Rust prints a returned error with `Debug`; this one's `Debug` is the
/// message on one line (`Error: configuration error: TABLE_NAME: is not set`), not a
/// struct. The function exits at once, and Lambda reports the line as its init error.
pub struct ExitError(String);

impl<E: std::fmt::Display> From<E> for ExitError {
    fn from(error: E) -> Self {
        ExitError(error.to_string().replace(['\n', '\r'], " "))
    }
}

impl std::fmt::Debug for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The variable naming the handler a function runs, set per function by template.yaml.
pub const HANDLER_VARIABLE: &str = "HANDLER";

/// The stream relay's handler name: one relay binary serves every domain table.
pub const RELAY: &str = "relay";

/// The handler this function runs (`HANDLER`, required).
pub fn handler_from_env() -> Result<String, ConfigError> {
    required(&ProcessEnv, HANDLER_VARIABLE)
}

/// The handler this function runs (`HANDLER`), which must be one of `known`, the handlers
/// this binary runs: anything else is [`unknown_handler`]. Read it before anything else, so
/// a function given the wrong binary fails at once, before any other configuration or
/// network call.
pub fn known_handler_from_env(known: &[&'static str]) -> Result<&'static str, ConfigError> {
    known_handler(&ProcessEnv, known)
}

fn known_handler(env: &dyn Env, known: &[&'static str]) -> Result<&'static str, ConfigError> {
    let handler = required(env, HANDLER_VARIABLE)?;
    known
        .iter()
        .copied()
        .find(|name| *name == handler)
        .ok_or_else(|| unknown_handler(&handler, known))
}

/// `HANDLER` names a handler this binary does not run; `known` are those it does.
pub fn unknown_handler(handler: &str, known: &[&str]) -> ConfigError {
    ConfigError::new(
        HANDLER_VARIABLE,
        format!(
            "is {handler:?}, which this binary does not run (it runs: {})",
            known.join(", ")
        ),
    )
}

/// A domain table's stream relay: publishes its outbox items to the domain's topic
/// (`TOPIC_ARN`), reporting the first failed sequence number. One binary serves every
/// table; `HANDLER` may be unset, or must be [`RELAY`].
pub async fn run_stream_relay() -> Result<(), ExitError> {
    if let Some(handler) = ProcessEnv.var(HANDLER_VARIABLE)
        && handler != RELAY
    {
        return Err(unknown_handler(&handler, &[RELAY]).into());
    }
    telemetry::init(LogTarget::Stdout);
    let topic_arn = required(&ProcessEnv, "TOPIC_ARN")?;
    let publisher = SnsPublisher::new(crate::sns::client_from_env().await, topic_arn);
    let publisher = &publisher;
    let sinks = &Sinks::from_env(&ProcessEnv);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            let scope = invocation(RELAY, sinks, &event.context);
            let relayed = scope.run(crate::relay::handle_stream(event.payload, publisher));
            Ok::<_, std::convert::Infallible>(relayed.await)
        },
    ))
    .await?;
    Ok(())
}

/// The service a handler belongs to: the one its name starts with (`order-api` → `order`,
/// `coupon-source-api` → `coupon-source`); none for the relay, which serves every table.
pub fn service_of(handler: &str) -> Option<Service> {
    Service::ALL
        .into_iter()
        .filter(|s| {
            handler
                .strip_prefix(s.name())
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .max_by_key(|s| s.name().len())
}

/// One invocation of `handler`: its scope, under the request id Lambda gave it.
fn invocation(handler: &str, sinks: &Sinks, context: &lambda_runtime::Context) -> Scope {
    Scope::new(handler, service_of(handler), sinks.clone()).with_request_id(&context.request_id)
}

/// A domain's HTTP API behind API Gateway: the same router the local gateway serves.
/// `function` (the handler name) names the function in each request's log span.
pub async fn run_http_api(router: Router, function: &'static str) -> Result<(), ExitError> {
    telemetry::init(LogTarget::Stdout);
    let sinks = Sinks::from_env(&ProcessEnv);
    let service = service_of(function);
    let app = http_app(router, function).layer(middleware::from_fn(
        move |request: Request, next: Next| {
            // Under the request id Lambda gave the invocation.
            let mut scope = Scope::new(function, service, sinks.clone());
            if let Some(context) = request.extensions().get::<lambda_http::Context>() {
                scope = scope.with_request_id(&context.request_id);
            }
            scope.run(next.run(request))
        },
    ));
    lambda_http::run(app).await?;
    Ok(())
}

/// The router as served on Lambda. A proxy integration passes the client's headers through,
/// so the identity headers are always replaced by what the authorizer established (its
/// context in the request), or removed when there is none; the client address likewise by
/// the request context's `sourceIp`.
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

/// The caller's address as API Gateway saw it.
fn source_ip(request: &Request) -> Option<HeaderValue> {
    let RequestContext::ApiGatewayV2(context) = request.extensions().get::<RequestContext>()?
    else {
        return None;
    };
    HeaderValue::from_str(context.http.source_ip.as_deref()?).ok()
}

async fn identity_from_authorizer(mut request: Request) -> Request {
    let identity = authorizer_identity(&request);
    let address = source_ip(&request);
    let headers = request.headers_mut();
    headers.remove(USER_ID_HEADER);
    headers.remove(USER_ROLE_HEADER);
    headers.remove(CLIENT_ADDRESS_HEADER);
    if let Some(address) = address {
        headers.insert(CLIENT_ADDRESS_HEADER, address);
    }
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

/// A domain's ports on AWS: its table (`TABLE_NAME`) through the DynamoDB document store
/// (packing as `ITEM_PACKING` says), the system clock and random ids. Makes no network call.
pub async fn ports_from_env() -> Result<crate::ports::Ports, crate::config::ConfigError> {
    let table = required(&ProcessEnv, "TABLE_NAME")?;
    let packing = crate::packing::Packing::from_env(&ProcessEnv)?;
    let client = crate::dynamo::client_from_env().await;
    let store = std::sync::Arc::new(
        crate::docstore::dynamodb::DynamoDocStore::new(client, table).packing(packing),
    );
    Ok(crate::ports::Ports::new(
        store,
        std::sync::Arc::new(crate::clock::SystemClock),
        std::sync::Arc::new(crate::ids::RandomIds),
    ))
}

/// Sends poison messages to the function's dead-letter queue (`DLQ_URL`), so they are kept
/// for inspection instead of being retried.
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsDeadLetters {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait::async_trait]
impl crate::batch::DeadLetters for SqsDeadLetters {
    async fn quarantine(
        &self,
        message: &aws_lambda_events::event::sqs::SqsMessage,
        reason: &str,
    ) -> Result<(), String> {
        let reason_attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason.chars().take(256).collect::<String>())
            .build()
            .map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body.clone().unwrap_or_default())
            .message_attributes("poisonReason", reason_attribute)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    }
}

/// A consuming function: SQS batches in, only the failed message ids out
/// (`ReportBatchItemFailures`); poison messages go to `DLQ_URL`. `function` (the handler
/// name) names the function in each event's log span.
pub async fn run_sqs_consumer<H: crate::batch::EventHandler + 'static>(
    function: impl Into<String>,
    handler: H,
) -> Result<(), ExitError> {
    use crate::batch::SqsFunction;
    telemetry::init(LogTarget::Stdout);
    let dlq = required(&ProcessEnv, "DLQ_URL")?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let dead_letters = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&config), dlq);
    let function = function.into();
    let sinks = &Sinks::from_env(&ProcessEnv);
    let scope = &Scope::new(&function, service_of(&function), sinks.clone());
    let processor = crate::batch::BatchProcessor::new(function, handler, Box::new(dead_letters));
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let scope = scope.clone().with_request_id(&event.context.request_id);
            let handled = scope.run(processor.handle_batch(event.payload));
            Ok::<_, std::convert::Infallible>(handled.await)
        },
    ))
    .await?;
    Ok(())
}

/// A scheduled function (EventBridge): runs `job` on every invocation, each the start of a
/// trace; a failure fails the invocation so the schedule's retry policy applies. `function`
/// (the handler name) names the function in its log lines, metrics and segments.
pub async fn run_scheduled<F, Fut, E>(function: &'static str, job: F) -> Result<(), ExitError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
    E: std::error::Error + 'static,
{
    telemetry::init(LogTarget::Stdout);
    let job = &job;
    let sinks = &Sinks::from_env(&ProcessEnv);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::eventbridge::EventBridgeEvent>| async move {
            let scope = invocation(function, sinks, &event.context);
            match scope.run(telemetry::in_new_trace("schedule", job())).await {
                Ok(summary) => {
                    tracing::info!(%summary, "scheduled run done");
                    Ok(summary)
                }
                Err(error) => {
                    let error = crate::errors::chain(&error).to_string();
                    tracing::error!(%error, "scheduled run failed");
                    Err(lambda_runtime::Error::from(error))
                }
            }
        },
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_error_prints_as_its_message_on_one_line() {
        let error =
            ExitError::from(required(&std::collections::HashMap::new(), "TABLE_NAME").unwrap_err());
        assert_eq!(
            format!("{error:?}"),
            "configuration error: TABLE_NAME: is not set"
        );
        let error = ExitError::from("two\nlines");
        assert_eq!(format!("{error:?}"), "two lines");
    }

    #[test]
    fn an_unknown_handler_names_itself_and_what_the_binary_runs() {
        let error = unknown_handler("nope", &["product-api", "product-events"]);
        assert_eq!(error.variable, "HANDLER");
        assert_eq!(
            error.to_string(),
            r#"configuration error: HANDLER: is "nope", which this binary does not run (it runs: product-api, product-events)"#
        );
    }

    #[test]
    fn the_handler_must_be_set_and_one_the_binary_runs() {
        use std::collections::HashMap;
        let known = &["order-api", "order-sweep"];
        let env = HashMap::from([("HANDLER", "order-sweep")]);
        assert_eq!(known_handler(&env, known), Ok("order-sweep"));
        let env = HashMap::from([("HANDLER", "order-swept")]);
        assert_eq!(
            known_handler(&env, known),
            Err(unknown_handler("order-swept", known))
        );
        let unset = HashMap::new();
        assert_eq!(
            known_handler(&unset, known),
            Err(ConfigError::new("HANDLER", "is not set"))
        );
    }

    #[test]
    fn a_handler_belongs_to_the_service_its_name_starts_with() {
        assert_eq!(service_of("order-api"), Some(Service::Order));
        assert_eq!(service_of("coupon-source-api"), Some(Service::CouponSource));
        assert_eq!(service_of("coupon-events"), Some(Service::Coupon));
        assert_eq!(service_of("user-authorizer"), Some(Service::User));
        assert_eq!(service_of(RELAY), None);
        assert_eq!(service_of("orderly"), None);
    }

    #[test]
    fn an_unknown_handler_for_a_one_handler_binary() {
        assert_eq!(
            unknown_handler("order-api", &[RELAY]).problem,
            r#"is "order-api", which this binary does not run (it runs: relay)"#
        );
    }
}
