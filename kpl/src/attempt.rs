//! One try at putting a user record, as reported in results and failures.

use std::fmt;
use std::time::Duration;

/// One try at putting a user record (the KPL's `Attempt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Time from `put` (first attempt) or from the previous attempt's end to this attempt's start.
    pub delay: Duration,
    /// How long the PutRecords request took.
    pub duration: Duration,
    /// Whether this attempt put the record.
    pub success: bool,
    /// The error code of a failed attempt.
    pub error_code: Option<String>,
    /// The error message of a failed attempt.
    pub error_message: Option<String>,
    /// Whether a failed attempt may have stored the record anyway (timeout, reset, 5xx, wrong
    /// shard); a later successful attempt then may have made a duplicate.
    pub possibly_stored: bool,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.success {
            return write!(f, "ok after {:?} in {:?}", self.delay, self.duration);
        }
        write!(
            f,
            "{}: {} (after {:?}, took {:?}{})",
            self.error_code.as_deref().unwrap_or("error"),
            self.error_message.as_deref().unwrap_or(""),
            self.delay,
            self.duration,
            if self.possibly_stored {
                ", possibly stored"
            } else {
                ""
            }
        )
    }
}
