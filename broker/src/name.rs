//! The name rule streams and consumers share; both ARN parsing and request
//! validation need it, so it lives apart from either.

/// The name pattern shared by streams and consumers.
pub const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

/// Whether `s` matches `[a-zA-Z0-9_.-]+`.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}
