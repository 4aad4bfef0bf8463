//! The user service's configuration, from the environment (the same names locally and on
//! Lambda).

use chrono::Duration;
use platform::config::{ConfigError, Env, number_in, required};

use crate::auth::JwtSecret;
use crate::domain::AdminEmails;

pub struct UserConfig {
    pub jwt_secret: JwtSecret,
    pub admin_emails: AdminEmails,
    pub token_ttl: Duration,
}

/// What to do when `JWT_SECRET` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingSecret {
    /// Lambda: refuse to start.
    Refuse,
    /// The local system: make a random one (tokens then die with the process).
    Generate,
}

impl UserConfig {
    /// `JWT_SECRET` (at least 32 bytes), `ADMIN_EMAILS` (comma-separated, optional),
    /// `TOKEN_TTL_SECONDS` (60 to 86400, default 3600).
    pub fn from_env(
        env: &dyn Env,
        missing_secret: MissingSecret,
    ) -> Result<UserConfig, ConfigError> {
        let jwt_secret = match (env.var("JWT_SECRET"), missing_secret) {
            (Some(raw), _) => JwtSecret::parse("JWT_SECRET", &raw)?,
            (None, MissingSecret::Generate) => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random one; tokens will not survive a restart"
                );
                JwtSecret::random()
            }
            (None, MissingSecret::Refuse) => {
                return Err(ConfigError::new("JWT_SECRET", "is not set"));
            }
        };
        let admin_emails = AdminEmails::parse(&env.var("ADMIN_EMAILS").unwrap_or_default())
            .map_err(|e| {
                ConfigError::new(
                    "ADMIN_EMAILS",
                    format!("must be comma-separated e-mail addresses: {e}"),
                )
            })?;
        let token_ttl = number_in(env, "TOKEN_TTL_SECONDS", 3_600, 60, 86_400)?;
        Ok(UserConfig {
            jwt_secret,
            admin_emails,
            token_ttl: Duration::seconds(token_ttl as i64),
        })
    }
}

/// The user table's name (`USER_TABLE`), for the DynamoDB adapter.
pub fn table_name(env: &dyn Env) -> Result<String, ConfigError> {
    required(env, "USER_TABLE")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn bad_values_are_named_errors() {
        let env = HashMap::from([("JWT_SECRET", "short")]);
        let err = UserConfig::from_env(&env, MissingSecret::Generate)
            .err()
            .unwrap();
        assert_eq!(err.variable, "JWT_SECRET");

        let env = HashMap::from([("ADMIN_EMAILS", "boss@shop.kr, nope")]);
        assert_eq!(
            UserConfig::from_env(&env, MissingSecret::Generate)
                .err()
                .unwrap()
                .variable,
            "ADMIN_EMAILS"
        );

        let env = HashMap::from([("TOKEN_TTL_SECONDS", "ten")]);
        assert_eq!(
            UserConfig::from_env(&env, MissingSecret::Generate)
                .err()
                .unwrap()
                .variable,
            "TOKEN_TTL_SECONDS"
        );

        let env: HashMap<&str, &str> = HashMap::new();
        assert_eq!(
            UserConfig::from_env(&env, MissingSecret::Refuse)
                .err()
                .unwrap()
                .variable,
            "JWT_SECRET"
        );
    }

    #[test]
    fn defaults_apply_when_unset() {
        let env: HashMap<&str, &str> = HashMap::new();
        let config = UserConfig::from_env(&env, MissingSecret::Generate).unwrap();
        assert_eq!(config.token_ttl, Duration::hours(1));
        assert_eq!(config.admin_emails, AdminEmails::default());
    }
}
