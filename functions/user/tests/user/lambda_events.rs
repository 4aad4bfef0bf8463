//! The sample events in `events/` fed to the user service's Lambda handlers.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use chrono::Duration;
use platform::clock::SystemClock;
use platform::docstore::memory::MemoryDocStore;
use platform::identity::Role;
use platform::ids::SequentialIds;
use platform::outbox::MemoryOutbox;
use tower::ServiceExt;
use user_service::app::UserService;
use user_service::auth::TokenCodec;
use user_service::config::{UserConfig, UserLimits};
use user_service::keys::{JwtSecret, SigningKeys};

fn sample(name: &str) -> String {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys() -> SigningKeys {
    SigningKeys::single(
        JwtSecret::parse("JWT_SECRET", "lambda-events-test-secret-32-bytes!").unwrap(),
    )
}

#[test]
fn the_authorizer_refuses_the_sample_token_and_passes_a_valid_one() {
    let codec = TokenCodec::new(&keys(), Duration::hours(1), Arc::new(SystemClock));
    let mut request: ApiGatewayV2CustomAuthorizerV2Request =
        serde_json::from_str(&sample("user-authorizer.json")).unwrap();
    let refused = user_service::authorizer::handle(&codec, &request);
    assert!(!refused.is_authorized);
    assert_eq!(refused.context, serde_json::Value::Null);

    let token = codec.issue("u-42", Role::Admin).unwrap().token;
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let allowed = user_service::authorizer::handle(&codec, &request);
    assert!(allowed.is_authorized);
    assert_eq!(
        allowed.context,
        serde_json::json!({"userId": "u-42", "role": "admin"})
    );
    let json = serde_json::to_value(&allowed).unwrap();
    assert_eq!(json["isAuthorized"], true);
}

fn service(outbox: Arc<MemoryOutbox>) -> Arc<UserService> {
    service_with(outbox, &[])
}

fn service_with(outbox: Arc<MemoryOutbox>, limits: &[(&str, &str)]) -> Arc<UserService> {
    let limits: std::collections::HashMap<&str, &str> = limits.iter().copied().collect();
    let config = UserConfig {
        keys: keys(),
        token_ttl: Duration::hours(1),
        limits: UserLimits::from_env(&limits).unwrap(),
    };
    Arc::new(UserService::new(
        Arc::new(MemoryDocStore::new(outbox)),
        config,
        Arc::new(SystemClock),
        Arc::new(SequentialIds::new("u")),
    ))
}

async fn json_of(response: axum::response::Response) -> serde_json::Value {
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn on_lambda_the_identity_comes_from_the_authorizer_context_not_the_client() {
    let users = service(Arc::new(MemoryOutbox::new()));
    let app = platform::lambda::http_app(user_service::api::router(users), "user-api");
    let signup = lambda_http::request::from_str(&sample("user-api.json")).unwrap();
    let user_id = json_of(app.clone().oneshot(signup).await.unwrap()).await["userId"]
        .as_str()
        .unwrap()
        .to_owned();

    // GET /users/me with a spoofed x-user-id, as API Gateway delivers it after the authorizer.
    let mut event: serde_json::Value = serde_json::from_str(&sample("user-api.json")).unwrap();
    event["routeKey"] = "GET /users/me".into();
    event["rawPath"] = "/users/me".into();
    event["requestContext"]["http"]["method"] = "GET".into();
    event["requestContext"]["http"]["path"] = "/users/me".into();
    event["body"] = serde_json::Value::Null;
    event["headers"]["x-user-id"] = "someone-else".into();
    event["headers"]["x-user-role"] = "admin".into();
    let without_authorizer = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(
        app.clone()
            .oneshot(without_authorizer)
            .await
            .unwrap()
            .status(),
        401
    );

    event["requestContext"]["authorizer"] =
        serde_json::json!({"lambda": {"userId": user_id, "role": "customer"}});
    let with_authorizer = lambda_http::request::from_str(&event.to_string()).unwrap();
    let me = json_of(app.oneshot(with_authorizer).await.unwrap()).await;
    assert_eq!(
        (me["userId"].as_str(), me["role"].as_str()),
        (Some(user_id.as_str()), Some("customer"))
    );
}

#[tokio::test]
async fn on_lambda_the_client_address_is_the_source_ip_not_a_header() {
    let users = service_with(
        Arc::new(MemoryOutbox::new()),
        &[("SIGNUPS_PER_CLIENT_PER_HOUR", "1")],
    );
    let app = platform::lambda::http_app(user_service::api::router(users), "user-api");
    let sign_up = |email: &str, source_ip: &str, forged: &str| {
        let mut event: serde_json::Value = serde_json::from_str(&sample("user-api.json")).unwrap();
        event["requestContext"]["http"]["sourceIp"] = source_ip.into();
        event["headers"]["x-client-address"] = forged.into();
        event["body"] = serde_json::json!({"email": email, "password": "secret123", "name": "Kim"})
            .to_string()
            .into();
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let first = sign_up("a@shop.kr", "198.51.100.7", "10.0.0.1");
    assert_eq!(app.clone().oneshot(first).await.unwrap().status(), 201);
    // Another forged header from the same source: still that source's second sign-up.
    let second = sign_up("b@shop.kr", "198.51.100.7", "10.0.0.2");
    let refused = app.clone().oneshot(second).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(json_of(refused).await["error"]["code"], "SIGNUP_THROTTLED");
    let elsewhere = sign_up("c@shop.kr", "203.0.113.5", "198.51.100.7");
    assert_eq!(app.oneshot(elsewhere).await.unwrap().status(), 201);
}

#[tokio::test]
async fn the_api_router_serves_the_sample_api_gateway_request() {
    let outbox = Arc::new(MemoryOutbox::new());
    let app = platform::lambda::http_app(
        user_service::api::router(service(outbox.clone())),
        "user-api",
    );
    let request = lambda_http::request::from_str(&sample("user-api.json")).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        json_of(response).await,
        serde_json::json!({"userId": "u-1"})
    );
    let events = outbox.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type().name(), "UserRegistered");
}

/// Records what the relay publishes.
#[derive(Default)]
struct Published(std::sync::Mutex<Vec<contract::Envelope>>);

#[async_trait::async_trait]
impl platform::publish::EventPublisher for Published {
    async fn publish(
        &self,
        event: &contract::Envelope,
    ) -> Result<(), platform::publish::PublishError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[tokio::test]
async fn the_relay_publishes_the_sample_outbox_record() {
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&sample("user-relay.json")).unwrap();
    let published = Published::default();
    let response = platform::relay::handle_stream(event, &published).await;
    assert!(response.batch_item_failures.is_empty());
    let published = published.0.into_inner().unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_type().name(), "UserRegistered");
    assert_eq!(published[0].aggregate_id, "u-1");
}
