//! The crate's error type.

use crate::extended_sequence::{ExtendedSequenceNumber, InvalidSequenceNumber};

/// Everything that can go wrong in the consumer library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A conditional lease write failed: the lease is gone or its counter or owner
    /// changed, so this worker no longer holds it (or never got it).
    #[error(
        "lease {lease_key} was changed by someone else (lease lost or taken by another worker)"
    )]
    LeaseConflict {
        /// The lease whose write was refused.
        lease_key: String,
    },

    /// A checkpoint outside `last_checkpoint ..= largest_permitted` (KCL's `IllegalArgumentException`).
    #[error(
        "cannot checkpoint at {value}: it must lie between the last checkpoint {last_checkpoint} \
         and the largest position delivered so far {largest_permitted}"
    )]
    InvalidCheckpoint {
        /// The position asked for.
        value: ExtendedSequenceNumber,
        /// The lower bound: the checkpoint already stored.
        last_checkpoint: ExtendedSequenceNumber,
        /// The upper bound: the highest position delivered to the processor.
        largest_permitted: ExtendedSequenceNumber,
    },

    /// A sub-sequence number that is negative or does not fit in 64 bits.
    #[error("invalid sub-sequence number {0}: it must be between 0 and 2^64 - 1")]
    InvalidSubSequenceNumber(i128),

    /// A string that is neither a decimal sequence number nor a checkpoint sentinel.
    #[error("{0:?} is not a sequence number or checkpoint sentinel")]
    InvalidSequenceNumber(String),

    /// A lease configuration whose values cannot work together.
    #[error("invalid lease configuration: {0}")]
    InvalidConfig(String),

    /// A lease read from the store holds a value this library cannot interpret.
    #[error("lease {lease_key} in the store is corrupt: {reason}")]
    CorruptLease {
        /// The unreadable lease.
        lease_key: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A Kinesis call failed (after the client's own retries, where it retries).
    #[error("Kinesis {operation} failed: {source}")]
    Kinesis {
        /// The Kinesis operation, e.g. `GetRecords`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: kinesis_proto::client::ClientError,
    },

    /// Enhanced fan-out could not be set up (e.g. the consumer never became ACTIVE).
    #[error("enhanced fan-out: {0}")]
    FanOut(String),

    /// A user record that cannot be delivered (see [`RejectedRecord`](crate::record::RejectedRecord)).
    #[error(
        "user record {}/{} cannot be delivered: {}",
        .0.sequence_number.as_str(),
        .0.sub_sequence_number,
        .0.reason
    )]
    RecordRejected(crate::record::RejectedRecord),

    /// The lease store itself failed (I/O, database, task join), as opposed to refusing a write.
    #[error("lease store operation {operation} failed: {source}")]
    Store {
        /// The store operation that failed.
        operation: &'static str,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether this is a refused conditional lease write, i.e. the lease is lost.
    pub fn is_lease_conflict(&self) -> bool {
        matches!(self, Error::LeaseConflict { .. })
    }

    /// A [`Error::LeaseConflict`] for `lease_key`.
    pub(crate) fn conflict(lease_key: &str) -> Self {
        Error::LeaseConflict {
            lease_key: lease_key.to_string(),
        }
    }

    /// A [`Error::Store`] wrapping any error.
    pub(crate) fn store(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Store {
            operation,
            source: source.into(),
        }
    }

    /// A [`Error::Kinesis`] for `operation`.
    pub(crate) fn kinesis(
        operation: &'static str,
        source: kinesis_proto::client::ClientError,
    ) -> Self {
        Error::Kinesis { operation, source }
    }

    /// The Kinesis client error, for [`Error::Kinesis`].
    pub fn client_error(&self) -> Option<&kinesis_proto::client::ClientError> {
        match self {
            Error::Kinesis { source, .. } => Some(source),
            _ => None,
        }
    }

    /// A [`Error::CorruptLease`] for `lease_key`.
    pub(crate) fn corrupt(lease_key: &str, reason: impl Into<String>) -> Self {
        Error::CorruptLease {
            lease_key: lease_key.to_string(),
            reason: reason.into(),
        }
    }
}

impl From<InvalidSequenceNumber> for Error {
    fn from(e: InvalidSequenceNumber) -> Self {
        Error::InvalidSequenceNumber(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_bounds_and_the_lease() {
        let e = Error::InvalidCheckpoint {
            value: ExtendedSequenceNumber::ShardEnd,
            last_checkpoint: ExtendedSequenceNumber::TrimHorizon,
            largest_permitted: ExtendedSequenceNumber::Latest,
        };
        let text = e.to_string();
        assert!(
            text.contains("SHARD_END") && text.contains("TRIM_HORIZON") && text.contains("LATEST")
        );
        let c = Error::conflict("shardId-000000000001");
        assert!(c.is_lease_conflict());
        assert!(c.to_string().contains("shardId-000000000001"));
        assert!(!Error::InvalidSubSequenceNumber(-1).is_lease_conflict());
    }

    #[test]
    fn store_errors_keep_their_source() {
        let e = Error::store("list", std::io::Error::other("disk gone"));
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().contains("disk gone"));
    }
}
