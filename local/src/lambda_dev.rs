//! What one Lambda function needs to run on this machine against an AWS endpoint (LocalStack):
//! its environment from `template.yaml`, pointed at the provisioned tables, topics and
//! queues, plus what Lambda itself sets; the signing keys in SSM for the user functions; and
//! a sample authorizer event with a token those keys accept. `shop-local --function-env`
//! prints it for `cargo lambda watch --env-file` (`scripts/lambda-dev.sh`); the cold-start
//! benchmark runs every binary with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_ssm::types::ParameterType;
use contract::Service;
use platform::clock::SystemClock;
use platform::http::Role;
use user_service::auth::TokenCodec;
use user_service::keys::{JwtSecret, SigningKeys};

use crate::aws::Names;
use crate::template::{EnvValue, Function};

/// The environment `template.yaml` gives `function`, its resources named as provisioned.
pub fn function_environment(
    function: &Function,
    names: &Names,
) -> Result<BTreeMap<String, String>, String> {
    let name = &function.name;
    let service = |resource: &str| {
        Service::from_name(resource).ok_or_else(|| format!("{name}: {resource} is no service's"))
    };
    let mut env = BTreeMap::new();
    for (variable, value) in &function.environment {
        let value = match value {
            EnvValue::Text(text) => text.clone(),
            EnvValue::Table(table) => names
                .tables
                .get(&service(table)?)
                .cloned()
                .ok_or_else(|| format!("{name}: no table {table} provisioned"))?,
            EnvValue::Topic(topic) => names
                .topics
                .get(&service(topic)?)
                .cloned()
                .ok_or_else(|| format!("{name}: no topic {topic} provisioned"))?,
            EnvValue::Queue(queue) => names
                .urls
                .get(queue)
                .cloned()
                .ok_or_else(|| format!("{name}: no queue {queue} provisioned"))?,
        };
        env.insert(variable.clone(), value);
    }
    Ok(env)
}

/// What Lambda sets for every function (`cargo lambda watch` sets these itself), with
/// [`endpoint_environment`].
pub fn lambda_environment(name: &str, sdk: &SdkConfig) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), name.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            "128".to_owned(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
            "$LATEST".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
            format!("/aws/lambda/{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "local".to_owned()),
    ]);
    env.extend(endpoint_environment(sdk));
    env
}

/// The region, and the endpoint (with LocalStack's credentials) when the SDK has one.
pub fn endpoint_environment(sdk: &SdkConfig) -> BTreeMap<String, String> {
    let region = sdk
        .region()
        .map_or("us-east-1".to_owned(), |r| r.to_string());
    let mut env = BTreeMap::from([("AWS_REGION".to_owned(), region)]);
    if let Some(endpoint) = sdk.endpoint_url() {
        env.insert("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned());
        env.insert("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned());
        env.insert("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned());
    }
    env
}

/// The signing keys in the SSM `SecureString` named `parameter`: the ones there, or a new
/// random key put there first (a development key: never use this against an account).
pub async fn dev_signing_keys(sdk: &SdkConfig, parameter: &str) -> Result<SigningKeys, String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let text = |e: &dyn std::fmt::Display| format!("the signing keys parameter {parameter}: {e}");
    let existing = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await;
    if let Ok(found) = existing
        && let Some(value) = found.parameter().and_then(|p| p.value())
    {
        return SigningKeys::parse(parameter, value).map_err(|e| text(&e));
    }
    let secret = JwtSecret::random();
    let hex: String = secret
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let value = serde_json::json!({"current": "dev", "keys": {"dev": hex}}).to_string();
    ssm.put_parameter()
        .name(parameter)
        .value(&value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| text(&aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    SigningKeys::parse(parameter, &value).map_err(|e| text(&e))
}

/// `sample` (an authorizer event) with a bearer token for a customer that `keys` accept,
/// valid for the next hour.
pub fn with_valid_token(sample: &str, keys: &SigningKeys) -> Result<String, String> {
    let codec = TokenCodec::new(
        keys,
        chrono::Duration::seconds(3_600),
        Arc::new(SystemClock),
    );
    let token = codec
        .issue("dev-customer", Role::Customer)
        .map_err(|e| format!("issuing a token: {e}"))?
        .token;
    let mut event: serde_json::Value =
        serde_json::from_str(sample).map_err(|e| format!("the sample event: {e}"))?;
    let bearer = serde_json::Value::String(format!("Bearer {token}"));
    event["identitySource"] = serde_json::json!([bearer.clone()]);
    event["headers"]["authorization"] = bearer;
    serde_json::to_string_pretty(&event).map_err(|e| e.to_string())
}
