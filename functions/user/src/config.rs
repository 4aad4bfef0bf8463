//! The user service's configuration, from the environment (the same names locally and on
//! Lambda) and, on Lambda, the signing keys from SSM.

use chrono::Duration;
use platform::config::{ConfigError, Env, number_in, required};
use platform::throttle::Limit;

#[cfg(feature = "lambda")]
use crate::keys::KeysParameter;
use crate::keys::SigningKeys;

pub struct UserConfig {
    pub keys: SigningKeys,
    pub token_ttl: Duration,
    pub limits: UserLimits,
}

/// How many failed logins and sign-ups are allowed before the answer is 429 with
/// `Retry-After`. Counted in the user table, so they hold across Lambda instances. A failed
/// login counts against the e-mail address tried (whether or not it has an account, so the
/// answer says nothing about which exist) and against the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserLimits {
    /// Slows guessing down: `LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE` (default 5).
    pub account_per_minute: Limit,
    /// Then locks the account for the rest of the hour: `LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR`
    /// (default 20).
    pub account_per_hour: Limit,
    /// One address guessing many accounts: `LOGIN_FAILURES_PER_CLIENT_PER_HOUR` (default 100).
    pub client_per_hour: Limit,
    /// Fresh accounts from one address: `SIGNUPS_PER_CLIENT_PER_HOUR` (default 20).
    pub signups_per_client_per_hour: Limit,
}

impl UserLimits {
    /// Each from its variable (0 turns that limit off; at most 1,000,000).
    pub fn from_env(env: &dyn Env) -> Result<UserLimits, ConfigError> {
        let limit = |name: &str, default: u64, window: Duration| {
            number_in(env, name, default, 0, 1_000_000).map(|max| Limit::new(max as u32, window))
        };
        Ok(UserLimits {
            account_per_minute: limit(
                "LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE",
                5,
                Duration::minutes(1),
            )?,
            account_per_hour: limit(
                "LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR",
                20,
                Duration::hours(1),
            )?,
            client_per_hour: limit(
                "LOGIN_FAILURES_PER_CLIENT_PER_HOUR",
                100,
                Duration::hours(1),
            )?,
            signups_per_client_per_hour: limit(
                "SIGNUPS_PER_CLIENT_PER_HOUR",
                20,
                Duration::hours(1),
            )?,
        })
    }
}

/// `TOKEN_TTL_SECONDS` (60 to 86400, default 3600; admin tokens live at most 15 minutes).
fn token_ttl(env: &dyn Env) -> Result<Duration, ConfigError> {
    let seconds = number_in(env, "TOKEN_TTL_SECONDS", 3_600, 60, 86_400)?;
    Ok(Duration::seconds(seconds as i64))
}

impl UserConfig {
    /// The local system's: keys from `JWT_KEYS` / `JWT_SECRET` (or random), `TOKEN_TTL_SECONDS`.
    pub fn local(env: &dyn Env) -> Result<UserConfig, ConfigError> {
        Ok(UserConfig {
            keys: SigningKeys::from_local_env(env)?,
            token_ttl: token_ttl(env)?,
            limits: UserLimits::from_env(env)?,
        })
    }

    /// Whether [`UserConfig::local`] would accept `env`, without making a random key (nor
    /// warning of one): for a caller that reads the settings later, over another layer.
    pub fn check_local(env: &dyn Env) -> Result<(), ConfigError> {
        SigningKeys::set_locally(env)?;
        token_ttl(env)?;
        UserLimits::from_env(env)?;
        Ok(())
    }

    /// Lambda's: keys from the SSM `SecureString` named by `JWT_KEYS_PARAMETER`, read at cold
    /// start (and kept fresh by a [`crate::keys::KeyRefresher`]); a `JWT_SECRET` in the
    /// environment is refused, so a key cannot be left where `lambda:GetFunctionConfiguration`
    /// shows it. With the parameter, to re-read it (a rotation).
    #[cfg(feature = "lambda")]
    pub async fn lambda(
        env: &dyn Env,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(UserConfig, KeysParameter), ConfigError> {
        for leaked in ["JWT_SECRET", "JWT_KEYS"] {
            if env.var(leaked).is_some() {
                return Err(ConfigError::new(
                    leaked,
                    "must not be set on Lambda: the keys are read from JWT_KEYS_PARAMETER",
                ));
            }
        }
        let ttl = token_ttl(env)?;
        let limits = UserLimits::from_env(env)?;
        let parameter = KeysParameter::from_env(env, aws_sdk_ssm::Client::new(sdk))?;
        let config = UserConfig {
            keys: parameter.load().await?,
            token_ttl: ttl,
            limits,
        };
        Ok((config, parameter))
    }
}

/// The user table's name (`TABLE_NAME`, as every service's).
pub fn table_name(env: &dyn Env) -> Result<String, ConfigError> {
    required(env, "TABLE_NAME")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_local_check_refuses_what_local_refuses_and_accepts_no_key() {
        assert_eq!(UserConfig::check_local(&HashMap::new()), Ok(()));
        for (name, value) in [
            ("JWT_SECRET", "short"),
            ("JWT_KEYS", "not json"),
            ("TOKEN_TTL_SECONDS", "ten"),
            ("SIGNUPS_PER_CLIENT_PER_HOUR", "lots"),
        ] {
            let env = HashMap::from([(name, value)]);
            assert!(UserConfig::local(&env).is_err(), "{name}");
            assert_eq!(
                UserConfig::check_local(&env).err().map(|e| e.variable),
                Some(name.to_owned())
            );
        }
    }

    #[test]
    fn bad_values_are_named_errors() {
        let env = HashMap::from([("JWT_SECRET", "short")]);
        assert_eq!(
            UserConfig::local(&env).err().unwrap().variable,
            "JWT_SECRET"
        );
        let env = HashMap::from([("TOKEN_TTL_SECONDS", "ten")]);
        assert_eq!(
            UserConfig::local(&env).err().unwrap().variable,
            "TOKEN_TTL_SECONDS"
        );
        let env = HashMap::from([("SIGNUPS_PER_CLIENT_PER_HOUR", "-1")]);
        assert_eq!(
            UserConfig::local(&env).err().unwrap().variable,
            "SIGNUPS_PER_CLIENT_PER_HOUR"
        );
    }

    #[cfg(feature = "lambda")]
    #[tokio::test]
    async fn on_lambda_a_key_in_the_environment_is_refused_before_anything_is_read() {
        for leaked in ["JWT_SECRET", "JWT_KEYS"] {
            let env = HashMap::from([
                (leaked, "0123456789abcdef0123456789abcdef"),
                ("JWT_KEYS_PARAMETER", "/shop/jwt-keys"),
            ]);
            let sdk = aws_config::SdkConfig::builder().build();
            assert_eq!(
                UserConfig::lambda(&env, &sdk).await.err().unwrap().variable,
                leaked
            );
        }
    }

    #[test]
    fn defaults_apply_when_unset() {
        let env: HashMap<&str, &str> = HashMap::new();
        let config = UserConfig::local(&env).unwrap();
        assert_eq!(config.token_ttl, Duration::hours(1));
        assert_eq!(
            config.limits.account_per_minute,
            Limit::new(5, Duration::minutes(1))
        );
        assert_eq!(
            config.limits.client_per_hour,
            Limit::new(100, Duration::hours(1))
        );
    }
}
