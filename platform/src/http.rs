//! HTTP at the edge of every domain API: the error body, JSON bodies, the identity headers
//! the authorizer sets, and the finishing touches (404/405 bodies, size limit) applied once
//! by whoever serves the router — the local gateway or `lambda_http`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::errors::StoreError;
pub use crate::identity::{Identity, Role};
use crate::telemetry::{self, Scope, Sinks};
use crate::xray::{Http, HttpRequest, HttpResponse, Segment, TraceHeader};

/// Set by the authorizer (API Gateway) or the local gateway; never trusted from a client.
pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
/// The address the request came from, as the edge saw it (API Gateway's `sourceIp`, the
/// local server's peer): set by the edge, never taken from the client, for per-client limits.
pub const CLIENT_ADDRESS_HEADER: &str = "x-client-address";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every error answer: `{"error": {"code", "message"}}` with its status. The message is for
/// people and never carries internals (stack traces, AWS errors, table names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Seconds, for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: the caller is over a limit, and may try again in `retry_after` seconds.
    pub fn too_many_requests(code: &str, message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this needs the admin role",
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// An unexpected failure: logged in full, answered as a bare 500.
    pub fn internal(error: impl std::error::Error + 'static) -> Self {
        tracing::error!(error = %crate::errors::chain(&error), "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => ApiError::bad_request(
                "INVALID_CURSOR",
                "the cursor is not one this API handed out",
            ),
            // Many writers raced for one item (or the store throttled it) and this request
            // lost every bounded attempt. Retry-After is jittered (1–3 s) so the losers do
            // not all come back together.
            StoreError::Contention | StoreError::Throttled => ApiError {
                retry_after: Some(rand::random_range(1..=3)),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CONTENDED",
                    "too many requests are changing the same thing; try again shortly",
                )
            },
            other => ApiError::internal(other),
        }
    }
}

/// The body of every error answer, as the OpenAPI document describes it.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `NOT_FOUND`, `INSUFFICIENT_BALANCE`, …
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// A JSON request body. Unlike `axum::Json` it does not insist on a content type, and every
/// failure is an [`ApiError`]: 413 over [`MAX_BODY_BYTES`], 400 `MALFORMED_JSON` for bad
/// syntax, 400 `INVALID_BODY` for wrong types, missing or unknown fields.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BODY_TOO_LARGE",
                    format!("the body is over {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request("UNREADABLE_BODY", "the body could not be read")
            }
        })?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("MALFORMED_JSON", format!("the body is not valid JSON: {e}"))
        })?;
        integral_numbers_as_integers(&mut value);
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request("INVALID_BODY", e.to_string()))
    }
}

/// `285.0` is the integer 285 to JSON Schema (and so to the OpenAPI document), though not to
/// serde: every number with no fraction, small enough to be exact, is read as an integer.
fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

/// The identity in the headers the authorizer set.
pub fn identity_from_headers(headers: &HeaderMap) -> Option<Identity> {
    let user_id = headers.get(USER_ID_HEADER)?.to_str().ok()?.trim();
    let role = Role::parse(headers.get(USER_ROLE_HEADER)?.to_str().ok()?)?;
    (!user_id.is_empty()).then(|| Identity {
        user_id: user_id.to_owned(),
        role,
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        identity_from_headers(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("authentication is required"))
    }
}

/// Where a request came from ([`CLIENT_ADDRESS_HEADER`]); `unknown` when the edge said
/// nothing, so such requests share one count rather than escape the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .headers
            .get(CLIENT_ADDRESS_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|a| !a.is_empty() && a.len() <= 64)
            .unwrap_or("unknown");
        Ok(ClientAddress(address.to_owned()))
    }
}

/// An [`Identity`] with the admin role; 403 for anyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = Identity::from_request_parts(parts, state).await?;
        match identity.role {
            Role::Admin => Ok(Admin(identity)),
            Role::Customer => Err(ApiError::forbidden()),
        }
    }
}

/// The `Idempotency-Key` header, as the OpenAPI document describes it (`params(IdempotencyKey)`);
/// [`idempotency_key`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Any 1 to 128 visible ASCII characters, new for each intended change: a repeat with
    /// the same key and body answers as the first did and changes nothing more.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[!-~]+$"
    )]
    #[allow(dead_code)]
    key: Option<String>,
}

/// The optional `Idempotency-Key` header: 1 to 128 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        )
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// Query-string parameters. Unknown parameters are refused, and every failure is a 400
/// `INVALID_QUERY` with the error body.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))
    }
}

/// The one id in a route's path (`/orders/{id}`), checked for shape before anything looks
/// it up ([`contract::is_valid_id`]: every id we hand out is of that shape). A path that does not decode, or an id of another shape, is a 400 `INVALID_ID`
/// with the error body, never a plain-text rejection or a key the store would refuse.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || ApiError::bad_request("INVALID_ID", "the id in the path is not valid");
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| invalid())?;
        if contract::is_valid_id(&id) {
            Ok(PathId(id))
        } else {
            Err(invalid())
        }
    }
}

/// `?limit=&cursor=` of a list route.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items: 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Where the previous page ended: its `nextCursor`.
    pub cursor: Option<String>,
}

impl PageParams {
    pub const DEFAULT_LIMIT: usize = 20;
    pub const MAX_LIMIT: usize = 100;

    /// The page size: 1 to 100, default 20.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(n) if (1..=Self::MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                "INVALID_LIMIT",
                "limit must be from 1 to 100",
            )),
        }
    }
}

/// A page of a list, as every list route answers: `{"items": [...], "nextCursor": "..."}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// There is more: pass it as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not take that method",
    )
}

/// Which function answered, as a response extension: set locally by each API function's
/// routes inside the one gateway, so its request segment bears its name.
#[derive(Debug, Clone)]
pub struct ServedBy {
    pub function: String,
}

/// The trace header, read from the request (Lambda puts its own there) and answered.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// Makes a router of domain routes servable: error bodies for unknown routes (404) and wrong
/// methods (405), the body size limit (413), and the request observed: a log span naming
/// `function`, the request id, trace id, correlation id, method, route, status and latency; a
/// trace segment continuing the `X-Amzn-Trace-Id` the request came with (or a new trace),
/// answered in the same header; events made while serving it travel in that trace.
/// Apply once, to the outermost router.
pub fn finish(router: Router, function: &'static str) -> Router {
    router
        .route_layer(middleware::from_fn(
            |path: MatchedPath, req: Request, next: Next| async move {
                tracing::Span::current().record("route", path.as_str());
                let mut response = next.run(req).await;
                // The route matched (`/orders/{id}`), for the request's segment.
                response.extensions_mut().insert(path);
                response
            },
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            observed(function, req, next)
        }))
}

/// Serves one request inside its scope, span and segment.
async fn observed(function: &'static str, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    // The invocation's scope (on Lambda under Lambda's request id); outside one, a new one.
    let outer = Scope::current().unwrap_or_else(|| Scope::new(function, None, Sinks::default()));
    let incoming = req
        .headers()
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceHeader::parse);
    let mut segment = Segment::begin(
        outer.function(),
        incoming.as_ref().map(|h| {
            (
                h.root.as_str(),
                h.parent.as_deref(),
                h.sampled.unwrap_or(true),
            )
        }),
    );
    let scope = outer.serving(&segment);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let span = telemetry::request_span(&scope, &segment.trace_id, &method);
    let mut response = scope
        .clone()
        .run(
            async {
                let response = next.run(req).await;
                let span = tracing::Span::current();
                span.record("status", response.status().as_u16());
                span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
                tracing::info!("answered");
                response
            }
            .instrument(span),
        )
        .await;
    let served = response.extensions_mut().remove::<ServedBy>();
    let route = response.extensions_mut().remove::<MatchedPath>();
    let status = response.status().as_u16();
    segment.end();
    let by_function = served.is_some();
    if let Some(served) = served {
        segment.name = served.function;
    }
    let route = route.as_ref().map_or(path.as_str(), MatchedPath::as_str);
    segment.annotate("operation", format!("{method} {route}"));
    segment.annotate("requestId", scope.request_id());
    if let Some(saga) = scope.saga() {
        segment.annotate("correlationId", saga);
    }
    segment.http = Some(Http {
        request: HttpRequest { method, url: path },
        response: HttpResponse { status },
    });
    segment.error = (400..500).contains(&status);
    segment.fault = status >= 500;
    let header = HeaderValue::from_str(&TraceHeader::of(&segment.context()));
    // A request no function of a service answered (locally: the gateway's own routes, or
    // none) is not a hop of anyone's trace.
    if by_function || scope.service().is_some() {
        scope.record(segment);
    }
    if let Ok(header) = header {
        response.headers_mut().insert(TRACE_HEADER, header);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = axum::body::to_bytes(response.into_body(), MAX_BODY_BYTES)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, retry_after, body)
    }

    #[derive(Debug, serde::Deserialize)]
    struct Counted {
        count: i64,
        #[serde(default)]
        more: Vec<u32>,
    }

    async fn read(body: &str) -> Result<Counted, ApiError> {
        let request = Request::post("/").body(axum::body::Body::from(body.to_owned()));
        let request = request.map_err(|e| ApiError::bad_request("TEST", e.to_string()))?;
        JsonBody::<Counted>::from_request(request, &())
            .await
            .map(|b| b.0)
    }

    #[tokio::test]
    async fn a_number_without_a_fraction_is_an_integer_as_json_schema_says() {
        let counted = read(r#"{"count": 285.0, "more": [1.0, 2]}"#).await;
        let counted = counted.map(|c| (c.count, c.more));
        assert_eq!(counted, Ok((285, vec![1, 2])));
        assert_eq!(read(r#"{"count": -3e2}"#).await.map(|c| c.count), Ok(-300));
        for refused in [
            r#"{"count": 2.5}"#,
            r#"{"count": 1e30}"#,
            r#"{"count": 9007199254740994.0}"#,
            r#"{"count": 1, "more": [-1.0]}"#,
        ] {
            let error = read(refused).await.map(|c| c.count);
            assert!(
                matches!(&error, Err(e) if e.code == "INVALID_BODY"),
                "{refused}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_a_503_to_retry_and_a_limit_a_429_to_wait_for() {
        let (status, retry_after, body) = answer(StoreError::Contention.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            matches!(retry_after.as_deref(), Some("1" | "2" | "3")),
            "{retry_after:?}"
        );
        assert_eq!(body["error"]["code"], "CONTENDED");
        // DynamoDB throttling (or a transaction conflict) past the retries: the same.
        let (status, retry_after, _) = answer(StoreError::Throttled.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some());

        let (status, retry_after, body) =
            answer(ApiError::too_many_requests("LOGIN_THROTTLED", "wait", 42)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after.as_deref(), Some("42"));
        assert_eq!(body["error"]["code"], "LOGIN_THROTTLED");

        let (_, retry_after, _) = answer(ApiError::not_found("none")).await;
        assert_eq!(
            retry_after, None,
            "only limits and contention say when to retry"
        );
        // An internal error never tells the client what went wrong.
        let (status, _, body) =
            answer(StoreError::unavailable("table shop-x: AccessDenied").into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("shop-x"), "{body}");
    }
}
