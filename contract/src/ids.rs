//! The shape of every id the services hand out and accept (entity ids travel in events).

/// The longest id, in bytes.
pub const MAX_ID_LEN: usize = 100;

/// 1 to [`MAX_ID_LEN`] ASCII letters, digits, `-` or `_`: what a client may send where an id
/// is expected, checked before any store sees it (a key DynamoDB would refuse is a 500).
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_plain_ascii() {
        assert!(is_valid_id("6f1c2d3e-0000-4000-8000-000000000000"));
        assert!(is_valid_id("racer_7"));
        for bad in ["", "a/b", "%ff", "é", "a b", &"x".repeat(101)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
