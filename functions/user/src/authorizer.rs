//! The authorizer in front of every API: verifies the bearer token and hands the identity
//! on. On AWS it is the HTTP API's Lambda authorizer (simple responses; API Gateway then
//! overwrites `x-user-id` / `x-user-role` from its context); locally the gateway calls
//! [`authorize`] directly.

use aws_lambda_events::event::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use platform::identity::Identity;

use crate::auth::TokenCodec;

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The identity of a request's `Authorization` header value, if it holds a valid token.
pub fn authorize(codec: &TokenCodec, authorization: Option<&str>) -> Option<Identity> {
    let token = bearer_token(authorization?)?;
    match codec.verify(token) {
        Ok(identity) => Some(identity),
        Err(reason) => {
            tracing::info!(%reason, "token refused");
            None
        }
    }
}

/// The `Authorization` value of an authorizer request (the header, or the identity source).
pub fn authorization(request: &ApiGatewayV2CustomAuthorizerV2Request) -> Option<&str> {
    request
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            request
                .identity_source
                .as_ref()?
                .first()
                .map(String::as_str)
        })
}

/// The Lambda authorizer (payload format 2.0, simple responses).
pub fn handle(
    codec: &TokenCodec,
    request: &ApiGatewayV2CustomAuthorizerV2Request,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse {
    let header = authorization(request);
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    if let Some(identity) = authorize(codec, header) {
        response.is_authorized = true;
        response.context = serde_json::json!({
            "userId": identity.user_id,
            "role": identity.role.as_str(),
        });
    }
    response
}
