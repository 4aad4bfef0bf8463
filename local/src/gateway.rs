//! The local stand-in for API Gateway with the user service's Lambda authorizer: the same
//! routes, and the same auth. Every route but the public ones needs a valid bearer token;
//! the identity headers (`x-user-id`, `x-user-role`) are always removed from the client's
//! request and, when authorized, set from the token; the client address header likewise
//! from the connection's peer. Unknown routes are 404 without auth,
//! as on API Gateway, because authorization runs only for a matched route. `GET /openapi.json`
//! answers the document of every route, to anyone; so do the local-only `GET /metrics` and
//! `GET /traces/{id}` (not API routes: not in the document nor in `template.yaml`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use platform::http::{ApiError, CLIENT_ADDRESS_HEADER, PathId, USER_ID_HEADER, USER_ROLE_HEADER};
use platform::invocations::Meter;
use platform::telemetry::Scope;
use user_service::auth::TokenCodec;
use user_service::authorizer::authorize;

use crate::system::Telemetry;

struct Auth {
    tokens: TokenCodec,
    public: Vec<(&'static str, &'static str)>,
    /// Counts the authorizer's invocations (API Gateway calls it for every protected route).
    authorizer: Meter,
}

/// The OpenAPI document of every service's routes (committed as `docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    platform::openapi::document(
        [
            user_service::api::api(),
            balance_service::api::api(),
            product_service::api::api(),
            coupon_source_service::api::api(),
            coupon_service::api::api(),
            order_service::api::api(),
            payment_service::api::api(),
        ],
        &user_service::api::PUBLIC_ROUTES,
    )
}

/// [`openapi`] as the JSON `GET /openapi.json` answers.
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(openapi()).unwrap_or_default()
}

/// One router of every service's routes, behind the authorizer (its telemetry kept apart).
pub fn gateway(
    routers: Vec<Router>,
    tokens: TokenCodec,
    public: &[(&'static str, &'static str)],
    authorizer: Meter,
) -> Router {
    observed_gateway(routers, tokens, public, authorizer, Telemetry::default())
}

/// One router of every service's routes, behind the authorizer, with the local system's own
/// public routes: `/openapi.json`, `/metrics` and `/traces/{id}` (from `telemetry`, which also
/// receives every request's metrics and segments).
pub fn observed_gateway(
    routers: Vec<Router>,
    tokens: TokenCodec,
    public: &[(&'static str, &'static str)],
    authorizer: Meter,
    telemetry: Telemetry,
) -> Router {
    let auth = Arc::new(Auth {
        tokens,
        public: public.to_vec(),
        authorizer,
    });
    let routes = routers.into_iter().fold(Router::new(), Router::merge);
    let document = Arc::new(openapi_json());
    let sinks = telemetry.sinks();
    let routes = routes
        .route_layer(middleware::from_fn_with_state(auth, authenticate))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document) }
            }),
        )
        .merge(observability(telemetry));
    // Requests are observed into the system's telemetry, each in a scope of its own (whose
    // new request id is the request's); the function that answers each names itself
    // (`ServedBy`).
    platform::http::finish(routes, "gateway").layer(middleware::from_fn(
        move |request: Request, next: Next| {
            Scope::new("gateway", None, sinks.clone()).run(next.run(request))
        },
    ))
}

/// Local only, public like `/openapi.json` (on AWS the same figures are in CloudWatch and
/// X-Ray): `GET /metrics`, every metric as Prometheus text; `GET /traces/{id}`, a trace as text
/// by its id, or every trace of an order by the order's id (404 when none is kept).
fn observability(telemetry: Telemetry) -> Router {
    let metrics = telemetry.metrics.clone();
    let traces = telemetry.traces;
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = metrics.prometheus();
                async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/traces/{id}",
            get(move |PathId(id): PathId| {
                let text = traces.render(&id);
                async move {
                    match text {
                        Some(text) => {
                            ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
                        }
                        None => ApiError::not_found("no trace of that id is kept").into_response(),
                    }
                }
            }),
        )
}

async fn authenticate(
    State(auth): State<Arc<Auth>>,
    path: MatchedPath,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .and_then(|ConnectInfo(peer)| HeaderValue::from_str(&peer.ip().to_string()).ok());
    let headers = request.headers_mut();
    headers.remove(USER_ID_HEADER);
    headers.remove(USER_ROLE_HEADER);
    headers.remove(CLIENT_ADDRESS_HEADER);
    if let Some(peer) = peer {
        headers.insert(CLIENT_ADDRESS_HEADER, peer);
    }
    let route = (request.method().as_str(), path.as_str());
    if auth.public.iter().any(|(m, p)| (*m, *p) == route) {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let started = Instant::now();
    let identity = authorize(&auth.tokens, header);
    // The authorizer only computes: its wall time is its CPU time, and it calls no AWS API.
    let took = started.elapsed();
    auth.authorizer.record(platform::invocations::Invocation {
        records: 1,
        wall: took,
        cpu: took,
        ..Default::default()
    });
    let Some(identity) = identity else {
        return ApiError::unauthorized("a valid bearer token is required").into_response();
    };
    let (Ok(user_id), role) = (
        HeaderValue::from_str(&identity.user_id),
        HeaderValue::from_static(identity.role.as_str()),
    ) else {
        return ApiError::unauthorized("a valid bearer token is required").into_response();
    };
    request.headers_mut().insert(USER_ID_HEADER, user_id);
    request.headers_mut().insert(USER_ROLE_HEADER, role);
    next.run(request).await
}
