//! Password hashing (argon2id) and access tokens (HS256 JWTs with a key id, issuer, audience
//! and a bounded lifetime).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use platform::clock::Clock;
use platform::identity::{Identity, Role};
use serde::{Deserialize, Serialize};

use crate::domain::Password;
use crate::keys::SigningKeys;

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

/// The longest an admin token lives, whatever `TOKEN_TTL_SECONDS` says: a revoked role
/// stops working within this.
pub const ADMIN_TOKEN_TTL_SECONDS: i64 = 15 * 60;
/// How far ahead of our clock a token's `iat` and `nbf` may be (the clocks of the issuing
/// and the verifying Lambda differ a little).
const CLOCK_SKEW_SECONDS: i64 = 60;

/// Who issues tokens and for whom: checked on every token.
pub const ISSUER: &str = "shop-user-service";
pub const AUDIENCE: &str = "shop-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iss: String,
    aud: String,
    iat: i64,
    nbf: i64,
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
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token claims a longer lifetime than any token is given")]
    TooLong,
}

/// Issues and verifies access tokens. Times are checked against the clock port, so tests
/// and the simulation control them.
/// Clones share their keys: [`TokenCodec::use_keys`] changes them for all.
#[derive(Clone)]
pub struct TokenCodec {
    keys: Arc<RwLock<CodecKeys>>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

struct CodecKeys {
    signing_kid: String,
    encoding: EncodingKey,
    decoding: BTreeMap<String, DecodingKey>,
}

impl CodecKeys {
    fn of(keys: &SigningKeys) -> CodecKeys {
        let (kid, secret) = keys.current();
        CodecKeys {
            signing_kid: kid.to_owned(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: keys
                .iter()
                .map(|(kid, secret)| (kid.to_owned(), DecodingKey::from_secret(secret.as_bytes())))
                .collect(),
        }
    }
}

impl TokenCodec {
    pub fn new(keys: &SigningKeys, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        TokenCodec {
            keys: Arc::new(RwLock::new(CodecKeys::of(keys))),
            ttl,
            clock,
        }
    }

    /// Signs with `keys`' current key and verifies with any of them from now on (a rotation).
    pub fn use_keys(&self, keys: &SigningKeys) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = CodecKeys::of(keys);
    }

    /// Whether `token`'s header names a key id this codec does not have (a malformed token
    /// names none we lack: it is simply invalid).
    pub fn names_unknown_key(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|kid| !self.keys().decoding.contains_key(&kid))
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, CodecKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// How long a token for this role lives (and the longest one is accepted for).
    pub fn lifetime(&self, role: Role) -> Duration {
        match role {
            Role::Admin => self.ttl.min(Duration::seconds(ADMIN_TOKEN_TTL_SECONDS)),
            Role::Customer => self.ttl,
        }
    }

    pub fn issue(&self, user_id: &str, role: Role) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now();
        let expires_at = now + self.lifetime(role);
        let claims = Claims {
            sub: user_id.to_owned(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let keys = self.keys();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.encoding)
            .map_err(|_| TokenError::Invalid)?;
        Ok(IssuedToken { token, expires_at })
    }

    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let keys = self.keys();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.decoding.get(kid))
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        // Times are checked below, against our clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.required_spec_claims = ["exp", "nbf", "iat", "sub", "iss", "aud"]
            .into_iter()
            .map(str::to_owned)
            .collect::<HashSet<_>>();
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        let role = Role::parse(&claims.role).ok_or(TokenError::Invalid)?;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid);
        }
        let now = self.clock.now().timestamp();
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + CLOCK_SKEW_SECONDS || claims.iat > now + CLOCK_SKEW_SECONDS {
            return Err(TokenError::NotYetValid);
        }
        let lifetime = claims.exp.saturating_sub(claims.iat.min(claims.nbf));
        if lifetime > self.lifetime(role).num_seconds() {
            return Err(TokenError::TooLong);
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
    use crate::keys::JwtSecret;
    use platform::clock::ManualClock;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "another secret of at least 32 bytes!";

    fn keys(current: &str, keys: &[(&str, &str)]) -> SigningKeys {
        let keys: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        SigningKeys::parse(
            "JWT_KEYS",
            &json!({"current": current, "keys": keys}).to_string(),
        )
        .unwrap()
    }

    fn codec_with(keys: &SigningKeys, clock: &ManualClock) -> TokenCodec {
        TokenCodec::new(keys, Duration::hours(1), Arc::new(clock.clone()))
    }

    fn codec(secret: &str, clock: &ManualClock) -> TokenCodec {
        let secret = JwtSecret::parse("JWT_SECRET", secret).unwrap();
        codec_with(&SigningKeys::single(secret), clock)
    }

    fn clock() -> ManualClock {
        ManualClock::starting_at(
            DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
                .unwrap()
                .into(),
        )
    }

    /// A token with any claims, signed with `secret` under `kid`: what an attacker holding
    /// the key (or a buggy issuer) could make.
    fn signed(secret: &str, kid: Option<&str>, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn claims(clock: &ManualClock, lifetime: Duration) -> serde_json::Value {
        let now = clock.now().timestamp();
        json!({
            "sub": "u-1", "role": "customer", "iss": ISSUER, "aud": AUDIENCE,
            "iat": now, "nbf": now, "exp": now + lifetime.num_seconds(),
        })
    }

    #[test]
    fn a_token_carries_the_user_and_role_until_it_expires() {
        let clock = clock();
        let codec = codec(SECRET, &clock);
        let issued = codec.issue("u-1", Role::Customer).unwrap();
        assert_eq!(issued.expires_at, clock.now() + Duration::hours(1));
        assert_eq!(
            codec.verify(&issued.token),
            Ok(Identity {
                user_id: "u-1".into(),
                role: Role::Customer
            })
        );
        clock.advance(Duration::minutes(59));
        assert!(codec.verify(&issued.token).is_ok());
        clock.advance(Duration::minutes(1));
        assert_eq!(codec.verify(&issued.token), Err(TokenError::Expired));
    }

    #[test]
    fn an_admin_token_lives_at_most_fifteen_minutes_whatever_the_ttl() {
        let clock = clock();
        let codec = codec(SECRET, &clock);
        let issued = codec.issue("boss", Role::Admin).unwrap();
        assert_eq!(issued.expires_at, clock.now() + Duration::minutes(15));
        clock.advance(Duration::minutes(15));
        assert_eq!(codec.verify(&issued.token), Err(TokenError::Expired));
        // An admin token claiming an hour, signed with the right key, is refused.
        let mut long = claims(&clock, Duration::hours(1));
        long["role"] = json!("admin");
        let long = signed(SECRET, Some(SigningKeys::SINGLE_KID), long);
        assert_eq!(codec.verify(&long), Err(TokenError::TooLong));
    }

    #[test]
    fn a_ten_year_token_is_refused_even_with_the_right_key() {
        let clock = clock();
        let codec = codec(SECRET, &clock);
        let token = signed(
            SECRET,
            Some(SigningKeys::SINGLE_KID),
            claims(&clock, Duration::days(3650)),
        );
        assert_eq!(codec.verify(&token), Err(TokenError::TooLong));
        let fine = signed(
            SECRET,
            Some(SigningKeys::SINGLE_KID),
            claims(&clock, Duration::hours(1)),
        );
        assert!(codec.verify(&fine).is_ok());
    }

    #[test]
    fn issuer_audience_and_not_before_are_checked() {
        let clock = clock();
        let codec = codec(SECRET, &clock);
        let kid = Some(SigningKeys::SINGLE_KID);
        for (claim, value) in [("iss", "someone-else"), ("aud", "another-api")] {
            let mut c = claims(&clock, Duration::minutes(5));
            c[claim] = json!(value);
            assert_eq!(
                codec.verify(&signed(SECRET, kid, c)),
                Err(TokenError::Invalid),
                "{claim}"
            );
        }
        for missing in ["iss", "aud", "nbf", "iat", "exp", "sub"] {
            let mut c = claims(&clock, Duration::minutes(5));
            c.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                codec.verify(&signed(SECRET, kid, c)),
                Err(TokenError::Invalid),
                "without {missing}"
            );
        }
        let mut future = claims(&clock, Duration::minutes(5));
        future["nbf"] = json!(clock.now().timestamp() + 120);
        let future = signed(SECRET, kid, future);
        assert_eq!(codec.verify(&future), Err(TokenError::NotYetValid));
        clock.advance(Duration::minutes(2));
        assert!(
            codec.verify(&future).is_ok(),
            "valid once its time has come"
        );
    }

    #[test]
    fn keys_rotate_without_refusing_tokens_signed_before() {
        let clock = clock();
        let before = codec_with(&keys("k1", &[("k1", SECRET)]), &clock);
        let old_token = before.issue("u-1", Role::Customer).unwrap().token;
        // The new key is added and made current: old tokens still verify, new ones use k2.
        let during = codec_with(&keys("k2", &[("k1", SECRET), ("k2", OTHER)]), &clock);
        assert!(during.verify(&old_token).is_ok());
        let new_token = during.issue("u-1", Role::Customer).unwrap().token;
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some("k2")
        );
        // The old key is removed: what it signed stops working, what k2 signed does not.
        let after = codec_with(&keys("k2", &[("k2", OTHER)]), &clock);
        assert_eq!(after.verify(&old_token), Err(TokenError::Invalid));
        assert!(after.verify(&new_token).is_ok());
        // A running codec (and every clone of it) takes new keys in place.
        let running = before.clone();
        before.use_keys(&keys("k2", &[("k2", OTHER)]));
        assert_eq!(running.verify(&old_token), Err(TokenError::Invalid));
        assert!(running.verify(&new_token).is_ok());
    }

    #[test]
    fn a_token_without_a_known_key_id_is_invalid() {
        let clock = clock();
        let codec = codec_with(&keys("k1", &[("k1", SECRET)]), &clock);
        let valid = claims(&clock, Duration::minutes(5));
        assert_eq!(
            codec.verify(&signed(SECRET, None, valid.clone())),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            codec.verify(&signed(SECRET, Some("k9"), valid.clone())),
            Err(TokenError::Invalid)
        );
        assert!(codec.names_unknown_key(&signed(
            SECRET,
            Some("k9"),
            claims(&clock, Duration::minutes(5))
        )));
        assert!(!codec.names_unknown_key(&signed(
            SECRET,
            Some("k1"),
            claims(&clock, Duration::minutes(5))
        )));
        assert!(!codec.names_unknown_key("not a token"));
        // The right kid with another secret: forged.
        assert_eq!(
            codec.verify(&signed(OTHER, Some("k1"), valid)),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn forged_and_tampered_tokens_are_invalid() {
        let clock = clock();
        let ours = codec(SECRET, &clock);
        let theirs = codec(OTHER, &clock);
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
