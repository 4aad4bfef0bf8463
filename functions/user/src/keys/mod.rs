//! The keys access tokens are signed with, by key id (`kid`), so a key rotates without
//! downtime: add the new key, make it current (it signs from then on; the old one still
//! verifies), and remove the old one once the longest token lifetime has passed.
//!
//! On Lambda they are read at cold start from an SSM `SecureString` parameter
//! (`JWT_KEYS_PARAMETER`), and again when five minutes old, never from the function's
//! environment, where anyone allowed `lambda:GetFunctionConfiguration` could read them. Locally they come from `JWT_KEYS`
//! (the same JSON) or `JWT_SECRET` (one key), or are made up at start.

use std::collections::BTreeMap;

use platform::config::{ConfigError, Env};
use serde::Deserialize;

/// One signing secret: at least 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub const MIN_BYTES: usize = 32;

    pub fn parse(variable: &str, raw: &str) -> Result<JwtSecret, ConfigError> {
        if raw.len() < Self::MIN_BYTES {
            return Err(ConfigError::new(
                variable,
                format!("must be at least {} bytes long", Self::MIN_BYTES),
            ));
        }
        Ok(JwtSecret(raw.as_bytes().to_vec()))
    }

    /// A fresh random secret: tokens die with the process that made it.
    pub fn random() -> JwtSecret {
        let bytes: [u8; 32] = rand::random();
        JwtSecret(bytes.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(***)")
    }
}

/// The verifying keys by id, and the one that signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    current: String,
    keys: BTreeMap<String, JwtSecret>,
}

/// The stored form: `{"current": "<kid>", "keys": {"<kid>": "<secret>", ...}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKeys {
    current: String,
    keys: BTreeMap<String, String>,
}

/// A key id: 1 to 64 of `A-Z a-z 0-9 . _ -` (it travels in every token's header).
fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl SigningKeys {
    /// The id a single `JWT_SECRET` is known by.
    pub const SINGLE_KID: &'static str = "default";

    pub fn single(secret: JwtSecret) -> SigningKeys {
        SigningKeys {
            current: Self::SINGLE_KID.to_owned(),
            keys: BTreeMap::from([(Self::SINGLE_KID.to_owned(), secret)]),
        }
    }

    /// Parses the stored JSON; `source` names where it came from, for the error.
    pub fn parse(source: &str, raw: &str) -> Result<SigningKeys, ConfigError> {
        // serde's message may quote the value it choked on (a secret): say only where.
        let stored: StoredKeys = serde_json::from_str(raw).map_err(|e| {
            ConfigError::new(
                source,
                format!(
                    "must be JSON {{\"current\": \"<kid>\", \"keys\": {{\"<kid>\": \"<secret>\"}}}} ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let mut keys = BTreeMap::new();
        for (kid, secret) in &stored.keys {
            if !valid_kid(kid) {
                return Err(ConfigError::new(
                    source,
                    format!("key id {kid:?} must be 1 to 64 of A-Z a-z 0-9 . _ -"),
                ));
            }
            let secret = JwtSecret::parse(source, secret)
                .map_err(|e| ConfigError::new(source, format!("key {kid:?}: {}", e.problem)))?;
            keys.insert(kid.clone(), secret);
        }
        if !keys.contains_key(&stored.current) {
            return Err(ConfigError::new(
                source,
                format!("the current key {:?} is not among the keys", stored.current),
            ));
        }
        Ok(SigningKeys {
            current: stored.current,
            keys,
        })
    }

    /// The local system's keys: `JWT_KEYS`, else `JWT_SECRET`, else a random one.
    pub fn from_local_env(env: &dyn Env) -> Result<SigningKeys, ConfigError> {
        if let Some(keys) = SigningKeys::set_locally(env)? {
            return Ok(keys);
        }
        tracing::warn!(
            "neither JWT_KEYS nor JWT_SECRET is set: using a random key; tokens will not survive a restart"
        );
        Ok(SigningKeys::single(JwtSecret::random()))
    }

    /// `JWT_KEYS`, else `JWT_SECRET`; none when neither is set.
    pub fn set_locally(env: &dyn Env) -> Result<Option<SigningKeys>, ConfigError> {
        if let Some(raw) = env.var("JWT_KEYS") {
            return SigningKeys::parse("JWT_KEYS", &raw).map(Some);
        }
        match env.var("JWT_SECRET") {
            Some(raw) => Ok(Some(SigningKeys::single(JwtSecret::parse(
                "JWT_SECRET",
                &raw,
            )?))),
            None => Ok(None),
        }
    }

    pub fn current(&self) -> (&str, &JwtSecret) {
        // `parse` and `single` guarantee the current key is present.
        let secret = &self.keys[&self.current];
        (&self.current, secret)
    }

    pub fn get(&self, kid: &str) -> Option<&JwtSecret> {
        self.keys.get(kid)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &JwtSecret)> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// How often a running function re-reads its keys, so that a rotation reaches it.
pub const KEYS_REFRESH: std::time::Duration = std::time::Duration::from_secs(5 * 60);

#[cfg(feature = "lambda")]
mod ssm;
#[cfg(feature = "lambda")]
pub use ssm::{KeyRefresher, KeysParameter};

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "another secret of at least 32 bytes!";

    #[test]
    fn keys_parse_with_the_current_one_signing() {
        let keys = SigningKeys::parse(
            "JWT_KEYS",
            &format!(r#"{{"current": "2026-12", "keys": {{"2026-06": "{A}", "2026-12": "{B}"}}}}"#),
        )
        .unwrap();
        assert_eq!(keys.current().0, "2026-12");
        assert_eq!(keys.current().1.as_bytes(), B.as_bytes());
        assert_eq!(keys.get("2026-06").unwrap().as_bytes(), A.as_bytes());
        assert!(keys.get("2025").is_none());
    }

    #[test]
    fn bad_key_sets_are_named_errors_that_never_show_a_secret() {
        for (raw, problem) in [
            ("not json", "must be JSON"),
            (r#"{"current": "a", "keys": {}}"#, "is not among the keys"),
            (
                r#"{"current": "a", "keys": {"a": "short"}}"#,
                "at least 32 bytes",
            ),
            (
                &format!(r#"{{"current": "a b", "keys": {{"a b": "{A}"}}}}"#),
                "key id",
            ),
            (
                &format!(r#"{{"current": "a", "keys": {{"a": "{A}"}}, "extra": 1}}"#),
                "must be JSON",
            ),
            // The wrong shape, with a secret where serde would quote it.
            (
                &format!(r#"{{"current": "a", "keys": "{A}"}}"#),
                "must be JSON",
            ),
            (&format!(r#""{A}""#), "must be JSON"),
        ] {
            let err = SigningKeys::parse("JWT_KEYS", raw).unwrap_err();
            assert_eq!(err.variable, "JWT_KEYS");
            assert!(err.problem.contains(problem), "{raw}: {err}");
            assert!(!err.to_string().contains(A), "{err}");
        }
    }

    #[test]
    fn the_local_system_takes_jwt_keys_then_jwt_secret_then_a_random_key() {
        let keys = format!(r#"{{"current": "k1", "keys": {{"k1": "{A}"}}}}"#);
        let env = HashMap::from([("JWT_KEYS", keys.as_str()), ("JWT_SECRET", B)]);
        assert_eq!(SigningKeys::from_local_env(&env).unwrap().current().0, "k1");
        let env = HashMap::from([("JWT_SECRET", B)]);
        let single = SigningKeys::from_local_env(&env).unwrap();
        assert_eq!(single.current().0, SigningKeys::SINGLE_KID);
        let none: HashMap<&str, &str> = HashMap::new();
        let random = SigningKeys::from_local_env(&none).unwrap();
        assert_ne!(random, SigningKeys::from_local_env(&none).unwrap());
        let env = HashMap::from([("JWT_SECRET", "short")]);
        assert_eq!(
            SigningKeys::from_local_env(&env).unwrap_err().variable,
            "JWT_SECRET"
        );
    }
}
