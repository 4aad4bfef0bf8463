//! The user service's HTTP API: the axum router served by `lambda_http` on AWS and by the
//! local gateway, identically.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use chrono::SecondsFormat;
use platform::http::{Admin, ApiError, ClientAddress, Identity, JsonBody, PathId, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{LoginError, ProfileError, RoleError, SignUpError, UserService};
use crate::domain::{RoleChangeError, User};

/// The routes anyone may call; every other route needs a token.
pub const PUBLIC_ROUTES: [(&str, &str); 2] = [("POST", "/users/signup"), ("POST", "/users/login")];

pub fn router(service: Arc<UserService>) -> Router {
    routes().with_state(service).into()
}

/// This API's part of the OpenAPI document.
pub fn api() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<Arc<UserService>> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(log_in))
        .routes(routes!(me))
        .routes(routes!(user_by_id))
        .routes(routes!(set_role))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    #[schema(max_length = 254, example = "kim@shop.kr")]
    email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignedUp {
    user_id: String,
}

/// Creates a customer account.
#[utoipa::path(post, path = "/users/signup", operation_id = "signUp", tag = "users", request_body = SignUpBody,
    responses(
        (status = 201, body = SignedUp),
        (status = 400, description = "a malformed body"),
        (status = 409, description = "the e-mail address is already registered"),
        (status = 422, description = "an invalid e-mail address, password or name"),
        (status = 429, description = "too many sign-ups from this address; see Retry-After"),
    ))]
async fn sign_up(
    State(service): State<Arc<UserService>>,
    ClientAddress(client): ClientAddress,
    JsonBody(body): JsonBody<SignUpBody>,
) -> Result<(StatusCode, Json<SignedUp>), ApiError> {
    match service
        .sign_up(&client, &body.email, &body.password, &body.name)
        .await
    {
        Ok(user_id) => Ok((StatusCode::CREATED, Json(SignedUp { user_id }))),
        Err(SignUpError::Invalid(e)) => Err(ApiError::unprocessable(e.code(), e.to_string())),
        Err(SignUpError::EmailTaken) => Err(ApiError::conflict(
            "EMAIL_TAKEN",
            "the e-mail address is already registered",
        )),
        Err(e @ SignUpError::Throttled(t)) => Err(ApiError::too_many_requests(
            "SIGNUP_THROTTLED",
            e.to_string(),
            t.retry_after_seconds,
        )),
        Err(SignUpError::Store(e)) => Err(e.into()),
        Err(e @ SignUpError::Internal(_)) => Err(ApiError::internal(e)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LoggedIn {
    /// The bearer token for every other route.
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Exchanges an e-mail address and password for a bearer token.
#[utoipa::path(post, path = "/users/login", operation_id = "logIn", tag = "users", request_body = LoginBody,
    responses(
        (status = 200, body = LoggedIn),
        (status = 400, description = "a malformed body"),
        (status = 401, description = "no account with that e-mail address and password"),
        (status = 429, description = "too many failed attempts; see Retry-After"),
    ))]
async fn log_in(
    State(service): State<Arc<UserService>>,
    ClientAddress(client): ClientAddress,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<LoggedIn>, ApiError> {
    match service.log_in(&client, &body.email, &body.password).await {
        Ok(issued) => Ok(Json(LoggedIn {
            token: issued.token,
            expires_at: issued.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })),
        Err(e @ LoginError::InvalidCredentials) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            e.to_string(),
        )),
        Err(e @ LoginError::Throttled(t)) => Err(ApiError::too_many_requests(
            "LOGIN_THROTTLED",
            e.to_string(),
            t.retry_after_seconds,
        )),
        Err(LoginError::Store(e)) => Err(e.into()),
        Err(e @ LoginError::Internal(_)) => Err(ApiError::internal(e)),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Me {
    user_id: String,
    email: String,
    name: String,
    /// `customer` or `admin`.
    #[schema(value_type = String, example = "customer")]
    role: &'static str,
}

fn me_of(user: User) -> Json<Me> {
    Json(Me {
        user_id: user.user_id,
        email: user.email.as_str().to_owned(),
        name: user.name.as_str().to_owned(),
        role: user.role.as_str(),
    })
}

fn profile_answer(result: Result<User, ProfileError>) -> Result<Json<Me>, ApiError> {
    match result {
        Ok(user) => Ok(me_of(user)),
        Err(ProfileError::NotFound) => Err(ApiError::not_found("no such user")),
        Err(ProfileError::Store(e)) => Err(e.into()),
    }
}

/// The caller's profile, with the role stored now (a token may carry an older one).
#[utoipa::path(get, path = "/users/me", operation_id = "getMe", tag = "users",
    responses(
        (status = 200, body = Me),
        (status = 404, description = "the account no longer exists"),
    ))]
async fn me(
    State(service): State<Arc<UserService>>,
    identity: Identity,
) -> Result<Json<Me>, ApiError> {
    profile_answer(service.profile(&identity.user_id).await)
}

/// Admin only: any user's profile (support and operations).
#[utoipa::path(get, path = "/users/{userId}", operation_id = "getUser", tag = "users",
    params(("userId" = String, Path)),
    responses(
        (status = 200, body = Me),
        (status = 400, description = "an id of the wrong shape"),
        (status = 403, description = "the caller is not an admin"),
        (status = 404, description = "no such user"),
    ))]
async fn user_by_id(
    State(service): State<Arc<UserService>>,
    _: Admin,
    PathId(user_id): PathId,
) -> Result<Json<Me>, ApiError> {
    profile_answer(service.profile(&user_id).await)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    /// `admin` or `customer`.
    #[schema(example = "admin")]
    role: String,
}

/// Admin only: grants or revokes the admin role (`{"role": "admin" | "customer"}`).
#[utoipa::path(put, path = "/users/{userId}/role", operation_id = "setUserRole", tag = "users",
    params(("userId" = String, Path)), request_body = RoleBody,
    responses(
        (status = 200, body = Me),
        (status = 400, description = "an id of the wrong shape, or a malformed body"),
        (status = 403, description = "the caller is not an admin"),
        (status = 404, description = "no such user"),
        (status = 409, description = "an admin may not change their own role"),
        (status = 422, description = "an unknown role"),
    ))]
async fn set_role(
    State(service): State<Arc<UserService>>,
    Admin(admin): Admin,
    PathId(user_id): PathId,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Json<Me>, ApiError> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::unprocessable("INVALID_ROLE", "role must be \"admin\" or \"customer\"")
    })?;
    match service.change_role(&admin, &user_id, role).await {
        Ok(user) => Ok(me_of(user)),
        Err(RoleError::NotFound) => Err(ApiError::not_found("no such user")),
        Err(RoleError::Refused(RoleChangeError::NotAdmin)) => Err(ApiError::forbidden()),
        Err(RoleError::Refused(e @ RoleChangeError::OwnRole)) => {
            Err(ApiError::conflict("OWN_ROLE", e.to_string()))
        }
        Err(RoleError::Store(e)) => Err(e.into()),
    }
}
