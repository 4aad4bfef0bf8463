//! The user domain's rules, parsed once at the edge into types that cannot be invalid.

use chrono::{DateTime, Utc};
use platform::identity::Role;

/// Why a sign-up field was refused; each has its own error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{0}")]
    Email(&'static str),
    #[error("{0}")]
    Password(&'static str),
    #[error("{0}")]
    Name(&'static str),
}

impl ValidationError {
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Email(_) => "INVALID_EMAIL",
            ValidationError::Password(_) => "INVALID_PASSWORD",
            ValidationError::Name(_) => "INVALID_NAME",
        }
    }
}

/// An e-mail address, normalised: trimmed and lower-cased, so `Kim@Example.com` and
/// `kim@example.com ` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, ValidationError> {
        let email = raw.trim().to_lowercase();
        if email.len() > Self::MAX_LEN {
            return Err(ValidationError::Email(
                "the e-mail address is longer than 254 characters",
            ));
        }
        let invalid =
            ValidationError::Email("the e-mail address is not of the form name@domain.tld");
        let (local, domain) = email.split_once('@').ok_or(invalid.clone())?;
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && email.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if well_formed {
            Ok(Email(email))
        } else {
            Err(invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the rules: 8 to 128 characters, with at least one letter and one
/// digit. Only its hash is ever stored.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Password, ValidationError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ValidationError::Password(
                "the password needs at least 8 characters",
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::Password(
                "the password may have at most 128 characters",
            ));
        }
        if !raw.chars().any(char::is_alphabetic) || !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(ValidationError::Password(
                "the password needs at least one letter and one digit",
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters, no bidirectional
/// overrides or isolates (which make a name read differently from what it is), and at least
/// one visible character (not only zero-width characters or Hangul fillers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

/// Marks that change the direction text is shown in: embeddings, overrides, isolates and the
/// directional marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: zero-width spaces and joiners, invisible operators, the
/// byte-order mark, the soft hyphen, Hangul fillers.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

impl UserName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<UserName, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::Name("the name is empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::Name(
                "the name may have at most 100 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::Name(
                "the name contains control characters",
            ));
        }
        if name.chars().any(is_bidi_control) {
            return Err(ValidationError::Name(
                "the name contains bidirectional control characters",
            ));
        }
        if !name.chars().any(|c| !c.is_whitespace() && !is_invisible(c)) {
            return Err(ValidationError::Name("the name has no visible character"));
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered user. The role is stored with them: every user signs up a customer, and only
/// an administrator (or the bootstrap command, with AWS credentials) makes one an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub email: Email,
    pub name: UserName,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Why a role change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoleChangeError {
    /// The caller's token says admin, but their stored role no longer does (revoked while
    /// the token lives): they may not change roles, least of all give theirs back.
    #[error("this needs the admin role")]
    NotAdmin,
    /// An admin cannot take their own role away: the last admin would lock everyone out.
    #[error("an administrator cannot revoke their own role")]
    OwnRole,
}

/// Decides a role change asked by `actor` (as stored now, not as their token says) for
/// `target`. `Ok(false)`: the user already has that role, nothing to write.
pub fn decide_role_change(
    actor: &User,
    target: &User,
    role: Role,
) -> Result<bool, RoleChangeError> {
    if actor.role != Role::Admin {
        return Err(RoleChangeError::NotAdmin);
    }
    if target.user_id == actor.user_id && role != Role::Admin {
        return Err(RoleChangeError::OwnRole);
    }
    Ok(target.role != role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Kim@Example.COM ").unwrap().as_str(),
            "kim@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "kim",
            "kim@",
            "@example.com",
            "kim@example",
            "kim@@example.com",
            "k im@example.com",
            "kim@.example.com",
            "kim@example.com.",
            "kim@exa..mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "k".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err().code(), "INVALID_EMAIL");
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse("abcdefg1").is_ok());
        assert!(Password::parse("비밀번호는길어요12").is_ok());
        for bad in ["abc1", "abcdefgh", "12345678", &"a1".repeat(65)] {
            assert_eq!(
                Password::parse(bad).unwrap_err().code(),
                "INVALID_PASSWORD",
                "{bad:?}"
            );
        }
        assert_eq!(
            format!("{:?}", Password::parse("abcdefg1").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  김철수 ").unwrap().as_str(), "김철수");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"가".repeat(101)).is_err());
        assert!(UserName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn names_must_show_something_and_read_as_they_are() {
        // Only zero-width characters, a byte-order mark or Hangul fillers: nothing to see.
        for invisible in [
            "\u{200B}\u{200C}\u{200D}",
            "\u{FEFF}",
            "\u{3164}\u{3164}",
            "\u{2060} \u{00AD}",
        ] {
            assert!(UserName::parse(invisible).is_err(), "{invisible:?}");
        }
        // A right-to-left override makes "Kim\u{202E}nimda" show as "Kimadmin".
        assert!(UserName::parse("Kim\u{202E}nimda").is_err());
        assert!(UserName::parse("\u{2067}Kim\u{2069}").is_err());
        // A joiner inside a visible name is fine (emoji sequences, Indic scripts).
        assert!(UserName::parse("Kim \u{1F468}\u{200D}\u{1F373}").is_ok());
    }

    fn user(id: &str, role: Role) -> User {
        User {
            user_id: id.into(),
            email: Email::parse("kim@shop.kr").unwrap(),
            name: UserName::parse("Kim").unwrap(),
            role,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn given_a_customer_when_an_admin_grants_admin_then_the_role_changes() {
        let boss = user("boss", Role::Admin);
        assert_eq!(
            decide_role_change(&boss, &user("kim", Role::Customer), Role::Admin),
            Ok(true)
        );
        assert_eq!(
            decide_role_change(&boss, &user("kim", Role::Admin), Role::Customer),
            Ok(true)
        );
    }

    #[test]
    fn given_the_same_role_when_granted_again_then_nothing_is_written() {
        let boss = user("boss", Role::Admin);
        assert_eq!(
            decide_role_change(&boss, &user("kim", Role::Admin), Role::Admin),
            Ok(false)
        );
    }

    #[test]
    fn given_an_admin_when_they_revoke_their_own_role_then_it_is_refused() {
        let boss = user("boss", Role::Admin);
        assert_eq!(
            decide_role_change(&boss, &boss, Role::Customer),
            Err(RoleChangeError::OwnRole)
        );
    }

    #[test]
    fn given_a_revoked_admin_with_a_live_token_when_they_grant_themselves_then_it_is_refused() {
        let revoked = user("ex", Role::Customer);
        for target in [&revoked, &user("kim", Role::Customer)] {
            assert_eq!(
                decide_role_change(&revoked, target, Role::Admin),
                Err(RoleChangeError::NotAdmin)
            );
        }
    }
}
