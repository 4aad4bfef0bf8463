//! The HTTP edge: error bodies and statuses, JSON bodies, identity headers.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use platform::http::{Admin, ApiError, Identity, JsonBody, finish};
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Thing {
    #[allow(dead_code)]
    name: String,
}

async fn create(JsonBody(_): JsonBody<Thing>) -> StatusCode {
    StatusCode::CREATED
}

async fn me(identity: Identity) -> String {
    identity.user_id
}

async fn admin_only(_: Admin) -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn boom() -> Result<(), ApiError> {
    Err(platform::errors::StoreError::unavailable(
        "ResourceNotFoundException: table user-prod-Table1 not found",
    )
    .into())
}

fn app() -> Router {
    let routes = Router::new()
        .route("/things", post(create))
        .route("/me", get(me))
        .route("/admin", post(admin_only))
        .route("/boom", get(boom));
    finish(routes, "test-api")
}

async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

fn post_body(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).body(body.into()).unwrap()
}

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_the_error_body() {
    let (status, body) = call(Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let (status, body) = call(Request::delete("/things").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
    );
}

#[tokio::test]
async fn bodies_are_checked() {
    assert_eq!(
        call(post_body("/things", r#"{"name":"x"}"#)).await.0,
        StatusCode::CREATED
    );
    let (s, b) = call(post_body("/things", "{nope")).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "MALFORMED_JSON"));
    let (s, b) = call(post_body("/things", r#"{"name": 3}"#)).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "INVALID_BODY"));
    let (s, b) = call(post_body("/things", r#"{"name":"x","admin":true}"#)).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "INVALID_BODY"));
    let (s, b) = call(post_body("/things", "{}")).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "INVALID_BODY"));
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(70 * 1024));
    let (s, b) = call(post_body("/things", big)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE")
    );
}

#[tokio::test]
async fn identity_comes_from_the_authorizer_headers() {
    let (s, b) = call(Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    let req = Request::get("/me")
        .header("x-user-id", "u-1")
        .header("x-user-role", "customer")
        .body(Body::empty())
        .unwrap();
    let response = app().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let req = Request::get("/me")
        .header("x-user-id", "u-1")
        .header("x-user-role", "root")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(req).await.0, StatusCode::UNAUTHORIZED);

    let as_role = |role: &str| {
        Request::post("/admin")
            .header("x-user-id", "u-1")
            .header("x-user-role", role)
            .body(Body::empty())
            .unwrap()
    };
    let (s, b) = call(as_role("customer")).await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    assert_eq!(call(as_role("admin")).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn internal_errors_leak_nothing() {
    let (s, b) = call(Request::get("/boom").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        b,
        serde_json::json!({"error": {"code": "INTERNAL", "message": "internal error"}})
    );
}

#[test]
fn idempotency_keys_are_checked() {
    use axum::http::HeaderMap;
    use platform::http::idempotency_key;
    let with = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert("idempotency-key", v.parse().unwrap());
        h
    };
    assert_eq!(idempotency_key(&HeaderMap::new()), Ok(None));
    assert_eq!(
        idempotency_key(&with("charge-2026-11-24-001")),
        Ok(Some("charge-2026-11-24-001".into()))
    );
    for bad in ["", "has space", &"k".repeat(129)] {
        let err = idempotency_key(&with(bad)).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY"),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_request_continues_the_trace_it_came_with_and_answers_its_own_segment() {
    use std::sync::Arc;

    use contract::Service;
    use platform::telemetry::{Scope, Sinks, trace_for};
    use platform::xray::{MemoryTraces, TraceHeader};

    let traces = Arc::new(MemoryTraces::new());
    let sinks = Sinks {
        metrics: None,
        segments: Some(traces.clone()),
    };
    // What an event made while serving the request would travel in.
    let routes = Router::new().route(
        "/things/{id}",
        get(|| async { trace_for(None).map(|t| t.parent_id).unwrap_or_default() }),
    );
    let scope = Scope::new("thing-api", Some(Service::Product), sinks);
    let request = Request::get("/things/7")
        .header(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .body(Body::empty())
        .unwrap();
    let response = scope
        .run(finish(routes, "thing-api").oneshot(request))
        .await
        .unwrap();
    let header = response.headers()["x-amzn-trace-id"].to_str().unwrap();
    let answered = TraceHeader::parse(header).unwrap();
    assert_eq!(answered.root, "1-5759e988-bd862e3fe1be46a994272793");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let segments = traces.trace(&answered.root);
    assert_eq!(segments.len(), 1);
    let segment = &segments[0];
    assert_eq!(segment.name, "thing-api");
    assert_eq!(segment.parent_id.as_deref(), Some("53995c3f42cd8ad8"));
    assert_eq!(answered.parent.as_deref(), Some(segment.id.as_str()));
    assert_eq!(segment.annotations["operation"], "GET /things/{id}");
    assert_eq!(segment.http.as_ref().map(|h| h.response.status), Some(200));
    assert_eq!(
        body,
        segment.id.as_bytes(),
        "events made inside name it as parent"
    );
}
