//! The OpenAPI document: generated from the handlers, served at `GET /openapi.json`, committed
//! as `docs/openapi.json`, and describing exactly the routes `template.yaml` gives API Gateway.

use std::collections::BTreeSet;
use std::path::PathBuf;

use local::template::{Stack, Trigger};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{self, request};

const REGENERATE: &str = "cargo run -p local --bin shop-local -- --openapi > docs/openapi.json";

fn committed() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; make it with `{REGENERATE}`", path.display()));
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item");
            methods
                .keys()
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_committed_document_is_the_one_the_local_system_serves_to_anyone() {
    let system = support::start(&[]).await;
    let (status, served) =
        request(&system.base, Method::GET, "/openapi.json", None, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert_eq!(served["openapi"], "3.1.0");
    assert!(
        served == committed(),
        "docs/openapi.json differs from what the code describes: run `{REGENERATE}`"
    );
}

#[test]
fn the_document_has_every_route_of_the_template_and_no_other() {
    let template: BTreeSet<(String, String)> = Stack::load()
        .expect("template.yaml")
        .functions
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::Http(routes) => Some(routes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let documented = operations(&local::gateway::openapi_json());
    assert_eq!(documented.len(), 26, "{documented:?}");
    assert_eq!(documented, template);
    let document = local::gateway::openapi_json();
    let links = &document["paths"]["/orders"]["post"]["responses"]["201"]["links"];
    for (name, operation) in [
        ("read", "getOrder"),
        ("timeline", "getOrderTimeline"),
        ("cancel", "cancelOrder"),
        ("payment", "getPaymentOfOrder"),
    ] {
        assert_eq!(links[name]["operationId"], operation, "{links}");
    }
}

#[test]
fn every_operation_is_named_once_and_every_answer_is_described() {
    let document = local::gateway::openapi_json();
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let at = format!("{method} {path}");
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{at}: operationId {id} twice");
            let answers = operation["responses"].as_object().expect("responses");
            assert!(answers.keys().any(|s| s.starts_with('2')), "{at}");
            for (status, answer) in answers {
                assert!(
                    answer["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{at} {status}: no description"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        answer["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{at} {status}"
                    );
                }
            }
            let public = operation["security"] == serde_json::json!([]);
            assert_eq!(
                public,
                user_service::api::PUBLIC_ROUTES
                    .contains(&(method.to_uppercase().as_str(), path.as_str())),
                "{at}: only the public routes need no token"
            );
            assert_eq!(
                answers.contains_key("401"),
                !public || path == "/users/login",
                "{at}"
            );
        }
    }
}
