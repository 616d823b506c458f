//! The `--admin-token` secret, kept apart from [`crate::admin`]'s checks so the
//! configuration can hold one without depending on them.

use std::fmt;

/// The `--admin-token` secret; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token; `None` when empty (an empty token would open the endpoints to anyone
    /// sending `Bearer `).
    pub fn new(token: impl Into<String>) -> Option<AdminToken> {
        let token = token.into();
        (!token.trim().is_empty()).then(|| AdminToken(token.trim().to_string()))
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}
