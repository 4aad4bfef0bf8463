//! Lambda's keys: read from SSM at cold start and kept fresh (feature `lambda`).

use platform::config::{ConfigError, Env};

use super::{KEYS_REFRESH, SigningKeys};

/// Where Lambda's keys are: the SSM `SecureString` named by `JWT_KEYS_PARAMETER`.
#[derive(Clone)]
pub struct KeysParameter {
    ssm: aws_sdk_ssm::Client,
    name: String,
}

const PARAMETER_VARIABLE: &str = "JWT_KEYS_PARAMETER";

impl KeysParameter {
    pub fn from_env(env: &dyn Env, ssm: aws_sdk_ssm::Client) -> Result<KeysParameter, ConfigError> {
        let name = platform::config::required(env, PARAMETER_VARIABLE)?;
        Ok(KeysParameter { ssm, name })
    }

    /// Reads and decrypts the parameter; refuses anything but a `SecureString`.
    pub async fn load(&self) -> Result<SigningKeys, ConfigError> {
        let name = &self.name;
        let error = |problem: String| ConfigError::new(PARAMETER_VARIABLE, problem);
        let output = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                error(format!(
                    "the parameter {name} cannot be read: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(&e)
                ))
            })?;
        let parameter = output
            .parameter
            .ok_or_else(|| error(format!("the parameter {name} is empty")))?;
        if parameter.r#type != Some(aws_sdk_ssm::types::ParameterType::SecureString) {
            return Err(error(format!(
                "the parameter {name} must be a SecureString"
            )));
        }
        SigningKeys::parse(
            &format!("{PARAMETER_VARIABLE} ({name})"),
            parameter.value.as_deref().unwrap_or_default(),
        )
    }
}

/// How soon after a failed or fruitless read the keys may be read again.
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// Keeps a codec's keys fresh on Lambda. Checked as each invocation starts — a frozen
/// instance runs no timers, so a background refresh could let a thawed one answer with keys
/// hours old: re-read when they are [`KEYS_REFRESH`] old, and at once (at most every 30 s)
/// when a token names a key id the codec does not know (a rotation that reached the
/// parameter before this instance).
pub struct KeyRefresher {
    parameter: KeysParameter,
    codec: crate::auth::TokenCodec,
    times: tokio::sync::Mutex<ReadTimes>,
}

struct ReadTimes {
    loaded: std::time::Instant,
    tried: std::time::Instant,
}

impl KeyRefresher {
    /// For a codec whose keys `parameter` gave just now.
    pub fn new(parameter: KeysParameter, codec: crate::auth::TokenCodec) -> KeyRefresher {
        let now = std::time::Instant::now();
        KeyRefresher {
            parameter,
            codec,
            times: tokio::sync::Mutex::new(ReadTimes {
                loaded: now,
                tried: now,
            }),
        }
    }

    /// Re-reads the keys if they are stale or `token` names one we lack; whether new keys
    /// were taken. A failed read keeps the keys in use and is logged.
    pub async fn prepare(&self, token: Option<&str>) -> bool {
        let mut times = self.times.lock().await;
        let stale = times.loaded.elapsed() >= KEYS_REFRESH;
        let unknown = token.is_some_and(|t| self.codec.names_unknown_key(t));
        if !(stale || unknown) || times.tried.elapsed() < RELOAD_PAUSE {
            return false;
        }
        times.tried = std::time::Instant::now();
        match self.parameter.load().await {
            Ok(keys) => {
                self.codec.use_keys(&keys);
                times.loaded = times.tried;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing keys not refreshed");
                false
            }
        }
    }
}
