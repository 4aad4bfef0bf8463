//! Password hashing (argon2id) and access tokens (HS256 JWT with an expiry).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use platform::clock::Clock;
use platform::config::ConfigError;
use platform::identity::{Identity, Role};
use serde::{Deserialize, Serialize};

use crate::domain::Password;

/// Hashes and verifies passwords off the async runtime (argon2 takes tens of milliseconds
/// by design).
#[derive(Default)]
pub struct Passwords {
    /// A hash of nothing anyone knows, verified against when the e-mail is unknown, so an
    /// unknown e-mail takes as long to refuse as a wrong password.
    decoy: OnceLock<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn hash_now(password: &[u8]) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

fn verify_now(password: &[u8], stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok())
}

impl Passwords {
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        tokio::task::spawn_blocking(move || hash_now(password.as_bytes()))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    pub async fn verify(&self, password: String, stored_hash: String) -> bool {
        tokio::task::spawn_blocking(move || verify_now(password.as_bytes(), &stored_hash))
            .await
            .unwrap_or(false)
    }

    /// Spends the time a verification takes and answers `false`.
    pub async fn verify_decoy(&self, password: String) -> bool {
        let decoy = match self.decoy.get() {
            Some(d) => d.clone(),
            None => {
                let fresh = tokio::task::spawn_blocking(|| {
                    hash_now(b"decoy password that matches nothing")
                })
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
                self.decoy.get_or_init(|| fresh).clone()
            }
        };
        let _ = self.verify(password, decoy).await;
        false
    }
}

/// The key tokens are signed with: at least 32 bytes.
#[derive(Clone)]
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
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(***)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: i64,
    exp: i64,
}

/// A signed token and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed, forged or tampered with")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Issues and verifies access tokens. Expiry is checked against the clock port, so tests
/// and the simulation control it.
#[derive(Clone)]
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenCodec {
    pub fn new(secret: &JwtSecret, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        TokenCodec {
            encoding: EncodingKey::from_secret(&secret.0),
            decoding: DecodingKey::from_secret(&secret.0),
            ttl,
            clock,
        }
    }

    pub fn issue(&self, user_id: &str, role: Role) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now();
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user_id.to_owned(),
            role: role.as_str().to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)?;
        Ok(IssuedToken { token, expires_at })
    }

    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false; // checked below, against our clock
        validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if claims.exp <= self.clock.now().timestamp() {
            return Err(TokenError::Expired);
        }
        let role = Role::parse(&claims.role).ok_or(TokenError::Invalid)?;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(Identity {
            user_id: claims.sub,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::clock::ManualClock;

    fn codec(secret: &str, clock: &ManualClock) -> TokenCodec {
        let secret = JwtSecret::parse("JWT_SECRET", secret).unwrap();
        TokenCodec::new(&secret, Duration::hours(1), Arc::new(clock.clone()))
    }

    fn clock() -> ManualClock {
        ManualClock::starting_at(
            DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
                .unwrap()
                .into(),
        )
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_carries_the_user_and_role_until_it_expires() {
        let clock = clock();
        let codec = codec(SECRET, &clock);
        let issued = codec.issue("u-1", Role::Admin).unwrap();
        assert_eq!(issued.expires_at, clock.now() + Duration::hours(1));
        assert_eq!(
            codec.verify(&issued.token),
            Ok(Identity {
                user_id: "u-1".into(),
                role: Role::Admin
            })
        );
        clock.advance(Duration::minutes(59));
        assert!(codec.verify(&issued.token).is_ok());
        clock.advance(Duration::minutes(1));
        assert_eq!(codec.verify(&issued.token), Err(TokenError::Expired));
    }

    #[test]
    fn forged_and_tampered_tokens_are_invalid() {
        let clock = clock();
        let ours = codec(SECRET, &clock);
        let theirs = codec("another secret of at least 32 bytes!", &clock);
        let forged = theirs.issue("u-1", Role::Admin).unwrap().token;
        assert_eq!(ours.verify(&forged), Err(TokenError::Invalid));

        let token = ours.issue("u-1", Role::Customer).unwrap().token;
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        // Swap in a payload claiming the admin role, keeping the customer's signature.
        let admin = ours.issue("u-1", Role::Admin).unwrap().token;
        parts[1] = admin.split('.').nth(1).unwrap().to_owned();
        assert_eq!(ours.verify(&parts.join(".")), Err(TokenError::Invalid));
        for junk in ["", "abc", "a.b.c", &token[..token.len() - 2]] {
            assert_eq!(ours.verify(junk), Err(TokenError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn a_short_secret_is_a_configuration_error() {
        let err = JwtSecret::parse("JWT_SECRET", "short").unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let passwords = Passwords::default();
        let hash = passwords
            .hash(Password::parse("correct horse 1").unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            passwords
                .verify("correct horse 1".into(), hash.clone())
                .await
        );
        assert!(
            !passwords
                .verify("correct horse 2".into(), hash.clone())
                .await
        );
        assert!(!passwords.verify("x".into(), "not a hash".into()).await);
        assert!(!passwords.verify_decoy("correct horse 1".into()).await);
    }
}
