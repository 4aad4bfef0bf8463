//! The local system's configuration. The names are those the Lambda functions use.

use std::time::Duration;

use platform::config::{ConfigError, Env, number_in};
use user_service::config::UserConfig;

pub struct LocalConfig {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `ORDER_TTL_SECONDS` and `UNDO_GRACE_SECONDS`, where set: they override what
    /// `template.yaml` gives the order functions (their parameters' defaults). Checked here.
    pub order_overrides: Vec<(&'static str, String)>,
    /// `SWEEP_INTERVAL_SECONDS`: how often the expiry sweep runs locally (default 5).
    pub sweep_interval: Duration,
    /// `JWT_KEYS` or `JWT_SECRET` (else a random key), `TOKEN_TTL_SECONDS`, the login and
    /// sign-up limits.
    pub user: UserConfig,
    /// `COUPON_ISSUES_PER_CLIENT_PER_MINUTE` (default 30; 0: off).
    pub coupon_issue_limit: platform::throttle::Limit,
}

impl LocalConfig {
    pub fn from_env(env: &dyn Env) -> Result<LocalConfig, ConfigError> {
        Ok(LocalConfig {
            port: number_in(env, "PORT", 3000, 0, u16::MAX as u64)? as u16,
            order_overrides: order_overrides(env)?,
            sweep_interval: Duration::from_secs(number_in(
                env,
                "SWEEP_INTERVAL_SECONDS",
                5,
                1,
                3_600,
            )?),
            user: UserConfig::local(env)?,
            coupon_issue_limit: coupon_source_service::app::issue_limit(env)?,
        })
    }
}

fn order_overrides(env: &dyn Env) -> Result<Vec<(&'static str, String)>, ConfigError> {
    // The order service's own reading checks them, so a bad value fails at start.
    order_service::app::OrderSettings::from_env(env)?;
    Ok(["ORDER_TTL_SECONDS", "UNDO_GRACE_SECONDS"]
        .into_iter()
        .filter_map(|name| env.var(name).map(|value| (name, value)))
        .collect())
}

/// Settings that turn every per-client limit off: for tests, load generators and the
/// simulation, whose every request comes from one address. Extend an environment with
/// them, then with whatever limit a test wants on.
pub const NO_CLIENT_LIMITS: [(&str, &str); 5] = [
    ("SIGNUPS_PER_CLIENT_PER_HOUR", "0"),
    ("COUPON_ISSUES_PER_CLIENT_PER_MINUTE", "0"),
    ("LOGIN_FAILURES_PER_CLIENT_PER_HOUR", "0"),
    ("LOGIN_FAILURES_PER_ACCOUNT_PER_MINUTE", "0"),
    ("LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR", "0"),
];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn defaults() {
        let config = LocalConfig::from_env(&HashMap::new()).unwrap();
        assert_eq!(config.port, 3000);
        assert!(
            config.order_overrides.is_empty(),
            "the template's values apply"
        );
        assert_eq!(config.sweep_interval, Duration::from_secs(5));
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "70000"),
            ("PORT", "http"),
            ("ORDER_TTL_SECONDS", "0"),
            ("SWEEP_INTERVAL_SECONDS", "-1"),
        ] {
            let err = LocalConfig::from_env(&HashMap::from([(name, value)]))
                .err()
                .unwrap();
            assert_eq!(err.variable, name);
        }
    }
}
