//! The user functions' signing keys, read at cold start from an SSM `SecureString`.

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;
use platform::config::{ConfigError, Env};
use platform::testing::aws::{endpoint, unique_name};
use user_service::keys::{KeysParameter, SigningKeys};

/// What a user function does at cold start: find the parameter, then read it.
async fn load(env: &dyn Env, ssm: &aws_sdk_ssm::Client) -> Result<SigningKeys, ConfigError> {
    KeysParameter::from_env(env, ssm.clone())?.load().await
}

const KEYS: &str = r#"{"current": "k2", "keys": {"k1": "the-old-key-of-at-least-32-bytes!!", "k2": "the-new-key-of-at-least-32-bytes!!"}}"#;

async fn put(ssm: &aws_sdk_ssm::Client, name: &str, value: &str, kind: ParameterType) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .expect("put the parameter");
}

#[tokio::test]
async fn signing_keys_come_from_a_secure_string_and_nothing_else() {
    let ssm = aws_sdk_ssm::Client::new(&endpoint().sdk_config().await);
    let name = format!("/{}/jwt-keys", unique_name("keys"));
    let env = HashMap::from([("JWT_KEYS_PARAMETER", name.as_str())]);

    // Not there yet: a named error, not a panic or a random key.
    let err = load(&env, &ssm).await.unwrap_err();
    assert_eq!(err.variable, "JWT_KEYS_PARAMETER");
    assert!(err.problem.contains(&name), "{err}");

    put(&ssm, &name, KEYS, ParameterType::SecureString).await;
    let keys = load(&env, &ssm).await.expect("keys");
    assert_eq!(keys.current().0, "k2");
    assert!(keys.get("k1").is_some(), "the old key still verifies");

    // A plain String would show the key to anyone who may read parameters: refused.
    put(&ssm, &name, KEYS, ParameterType::String).await;
    let err = load(&env, &ssm).await.unwrap_err();
    assert!(err.problem.contains("SecureString"), "{err}");

    // A malformed value is named, and its content is not echoed.
    put(
        &ssm,
        &name,
        "k1=secret-of-at-least-32-bytes-long",
        ParameterType::SecureString,
    )
    .await;
    let err = load(&env, &ssm).await.unwrap_err();
    assert!(err.variable.starts_with("JWT_KEYS_PARAMETER"), "{err}");
    assert!(!err.to_string().contains("secret-of-at-least"), "{err}");

    let _ = ssm.delete_parameter().name(&name).send().await;
    let unset: HashMap<&str, &str> = HashMap::new();
    assert_eq!(
        load(&unset, &ssm).await.unwrap_err().variable,
        "JWT_KEYS_PARAMETER"
    );
}
