//! Lambda entry points every domain shares, so each function's `main` is a line or two.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware;
use lambda_http::request::RequestContext;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::config::{ProcessEnv, required};
use crate::http::{CLIENT_ADDRESS_HEADER, USER_ID_HEADER, USER_ROLE_HEADER};
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

/// A domain's ports on AWS: its table (`TABLE_NAME`) through the DynamoDB document store,
/// the system clock and random ids. Makes no network call.
pub async fn ports_from_env() -> Result<crate::ports::Ports, crate::config::ConfigError> {
    let table = required(&ProcessEnv, "TABLE_NAME")?;
    let client = crate::dynamo::client_from_env().await;
    let store = std::sync::Arc::new(crate::docstore::dynamodb::DynamoDocStore::new(
        client, table,
    ));
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
/// (`ReportBatchItemFailures`); poison messages go to `DLQ_URL`.
pub async fn run_sqs_consumer<H: crate::batch::EventHandler + 'static>(
    function: &'static str,
    handler: H,
) -> Result<(), lambda_runtime::Error> {
    use crate::batch::SqsFunction;
    telemetry::init(LogTarget::Stdout);
    let dlq = required(&ProcessEnv, "DLQ_URL")?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let dead_letters = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&config), dlq);
    let processor = crate::batch::BatchProcessor::new(function, handler, Box::new(dead_letters));
    let processor = &processor;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, std::convert::Infallible>(processor.handle_batch(event.payload).await)
        },
    ))
    .await
}

/// A scheduled function (EventBridge): runs `job` on every invocation; a failure fails the
/// invocation so the schedule's retry policy applies.
pub async fn run_scheduled<F, Fut, E>(job: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    telemetry::init(LogTarget::Stdout);
    let job = &job;
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<aws_lambda_events::event::eventbridge::EventBridgeEvent>| async move {
            match job().await {
                Ok(summary) => {
                    tracing::info!(%summary, "scheduled run done");
                    Ok(summary)
                }
                Err(error) => Err(lambda_runtime::Error::from(error.to_string())),
            }
        },
    ))
    .await
}
