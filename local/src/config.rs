//! The local system's configuration. The names are those the Lambda functions use.

use std::collections::BTreeMap;
use std::time::Duration;

use platform::config::{ConfigError, Env, number_in};

pub struct LocalConfig {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `SWEEP_INTERVAL_SECONDS`: how often the expiry sweep runs locally (default 5).
    pub sweep_interval: Duration,
    /// `REDELIVERY_SECONDS`: how long a message received from an in-memory queue stays
    /// invisible (default 1, at most the template's visibility timeout), so a failed one
    /// comes back soon. A batch must finish within it, or another poller takes its messages
    /// again, as on AWS: raise it when the tables are slower than memory.
    pub redelivery: Duration,
    /// The variables set here. Each service reads its settings from what `template.yaml`
    /// gives its functions with these on top, as a deploy's parameters would: the order
    /// lifetimes, `JWT_KEYS` or `JWT_SECRET` (else a random key), `TOKEN_TTL_SECONDS`, the
    /// login, sign-up and coupon-issue limits.
    pub env: BTreeMap<String, String>,
}

impl LocalConfig {
    /// Checks every setting set here, so a bad value fails at start and names its variable
    /// (the system checks them again over the template's when it is built).
    pub fn from_env(env: &dyn Env) -> Result<LocalConfig, ConfigError> {
        order_service::app::OrderSettings::from_env(env)?;
        user_service::config::UserConfig::check_local(env)?;
        coupon_source_service::app::issue_limit(env)?;
        platform::packing::Packing::from_env(env)?;
        Ok(LocalConfig {
            port: number_in(env, "PORT", 3000, 0, u16::MAX as u64)? as u16,
            sweep_interval: Duration::from_secs(number_in(
                env,
                "SWEEP_INTERVAL_SECONDS",
                5,
                1,
                3_600,
            )?),
            redelivery: Duration::from_secs(number_in(env, "REDELIVERY_SECONDS", 1, 1, 900)?),
            env: env.vars().into_iter().collect(),
        })
    }
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
        assert!(config.env.is_empty(), "the template's values apply");
        assert_eq!(config.sweep_interval, Duration::from_secs(5));
        assert_eq!(config.redelivery, Duration::from_secs(1));
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "70000"),
            ("PORT", "http"),
            ("ORDER_TTL_SECONDS", "0"),
            ("SWEEP_INTERVAL_SECONDS", "-1"),
            ("REDELIVERY_SECONDS", "0"),
            ("ITEM_PACKING", "gzip"),
        ] {
            let err = LocalConfig::from_env(&HashMap::from([(name, value)]))
                .err()
                .unwrap();
            assert_eq!(err.variable, name);
        }
    }
}
