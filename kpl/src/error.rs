//! What producing can fail with.

use crate::attempt::Attempt;
use kinesis_proto::KinesisError;
use kinesis_proto::client::ClientError;
use std::fmt;

/// The error code of a record that was not put within `RecordTtl` (the KPL's code).
pub const EXPIRED: &str = "Expired";
/// The error code of a user record that landed on a shard not owning its hash key (KPL).
pub const WRONG_SHARD: &str = "Wrong Shard";
/// The error code of a PutRecords answer whose result count differs from the request's (KPL).
pub const RECORD_COUNT_MISMATCH: &str = "Record Count Mismatch";

/// Everything the producer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The record breaks a Kinesis rule (`ValidationException` or `InvalidArgumentException`).
    #[error("invalid record: {0}")]
    InvalidRecord(KinesisError),
    /// The memory budget is full (only [`Producer::try_put`](crate::Producer::try_put)).
    #[error("the producer's buffer is full")]
    BufferFull,
    /// The producer was shut down before the record was accepted.
    #[error("the producer is shut down")]
    ShutDown,
    /// The record was accepted but not put; every attempt is listed.
    #[error("{0}")]
    RecordFailed(Box<RecordFailure>),
    /// The HTTP client could not be built.
    #[error("client: {0}")]
    Client(#[from] ClientError),
}

impl Error {
    /// The failure of an accepted record, if this is one.
    pub fn record_failure(&self) -> Option<&RecordFailure> {
        match self {
            Error::RecordFailed(f) => Some(f),
            _ => None,
        }
    }
}

/// Why an accepted user record was not put, and every attempt made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// The final error code: a Kinesis error name (`ProvisionedThroughputExceededException`,
    /// `ResourceNotFoundException`, …) or one of [`EXPIRED`], `Timeout`, `Transport`, …
    pub code: String,
    /// The final error message.
    pub message: String,
    /// Every attempt, oldest first (empty if the record expired before being sent).
    pub attempts: Vec<Attempt>,
}

impl RecordFailure {
    /// Whether the record ran out of `RecordTtl`.
    pub fn is_expired(&self) -> bool {
        self.code == EXPIRED
    }

    /// Whether some attempt may have stored the record although it failed (a timeout, a reset
    /// connection, a 5xx, or a landing on the wrong shard): it may be in the stream anyway.
    pub fn possibly_stored(&self) -> bool {
        self.attempts.iter().any(|a| a.possibly_stored)
    }
}

impl fmt::Display for RecordFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record failed after {} attempt(s): {}: {}",
            self.attempts.len(),
            self.code,
            self.message
        )?;
        for (i, a) in self.attempts.iter().enumerate() {
            write!(f, "; attempt {}: {a}", i + 1)?;
        }
        Ok(())
    }
}
