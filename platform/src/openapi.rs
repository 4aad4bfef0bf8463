//! The OpenAPI document of the whole HTTP API. Each service describes its own routes, bodies
//! and answers with `#[utoipa::path]` on its handlers (`<service>::api::api()`); this adds,
//! once, what the edge does to every route: the bearer token the authorizer checks (and its
//! 401), the body limit (413), the shape [`PathId`](crate::http::PathId) checks on every
//! path parameter, a busy store (503), `Retry-After`, and the error body on every error
//! answer.

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, InfoBuilder, OpenApi, Ref, RefOr, Required, Response};
use utoipa::{PartialSchema, ToSchema};

use crate::http::{ErrorBody, ErrorDetail, MAX_BODY_BYTES};

const BEARER: &str = "bearer";

/// One document of every part, for the routes `public` (method, path) open to anyone.
pub fn document(parts: impl IntoIterator<Item = OpenApi>, public: &[(&str, &str)]) -> OpenApi {
    let mut doc = OpenApi::default();
    for part in parts {
        doc.merge(part);
    }
    doc.info = InfoBuilder::new()
        .title("shop")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The e-commerce backend's HTTP API. Every error answer is \
             `{\"error\": {\"code\", \"message\"}}`; lists are paged with `limit` and `cursor`.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Components::new);
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("the token `POST /users/login` answers"))
                .build(),
        )),
    );
    for (name, schema) in [
        (ErrorBody::name(), ErrorBody::schema()),
        (ErrorDetail::name(), ErrorDetail::schema()),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
    doc.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                at_the_edge(operation, public.contains(&(method, path.as_str())));
            }
        }
    }
    doc
}

fn at_the_edge(operation: &mut Operation, public: bool) {
    let answers = &mut operation.responses.responses;
    for (status, answer) in answers.iter_mut() {
        if let RefOr::T(answer) = answer
            && answer.description.is_empty()
        {
            let reason = status
                .parse()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason());
            answer.description = reason.unwrap_or("the answer").to_owned();
        }
    }
    let mut answer = |status: &str, description: &str| {
        answers
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    };
    if public {
        // No token needed (an empty list overrides the document's default).
        operation.security = Some(Vec::new());
    } else {
        answer("401", "no bearer token, or one that is invalid or expired");
    }
    if operation.request_body.is_some() {
        answer("413", &format!("a body over {MAX_BODY_BYTES} bytes"));
    }
    // Any read or write may meet DynamoDB throttling, and a write a lost race.
    answer(
        "503",
        "the store was busy (throttled, or many requests changed the same thing at once); \
         see Retry-After",
    );
    for (status, response) in answers.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        if response.content.is_empty() {
            response.content.insert(
                "application/json".to_owned(),
                RefOr::T(Content::new(Some(Ref::from_schema_name(ErrorBody::name())))),
            );
        }
        if matches!(status.as_str(), "429" | "503") {
            let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
            header.description = Some("seconds to wait before trying again".to_owned());
            response
                .headers
                .insert("Retry-After".to_owned(), RefOr::T(header));
        }
    }
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.parameter_in == ParameterIn::Path
        {
            parameter.required = Required::True;
            parameter.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(contract::MAX_ID_LEN))
                    .pattern(Some("^[A-Za-z0-9_-]+$"))
                    .into(),
            );
        }
    }
}
