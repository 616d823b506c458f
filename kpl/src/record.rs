//! User records: what `put` takes, its checks, the refusal that hands a record back, and the
//! state a record carries through the pipeline.

use crate::attempt::Attempt;
use crate::config::{Config, MAX_PARTITION_KEY_CHARS};
use crate::error::Error;
use crate::handle::Completion;
use bytes::Bytes;
use kinesis_proto::aggregation;
use kinesis_proto::hash_key::{hash_key_for_partition_key, parse_hash_key};
use kinesis_proto::{ErrorCode, KinesisError};
use std::sync::Arc;
use std::time::Instant;

/// A user record: the stream it goes to, its partition key, an optional explicit hash key and
/// its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Stream name (share one `Arc<str>` across records to avoid copying it).
    pub stream: Arc<str>,
    /// Partition key: 1–256 Unicode characters.
    pub partition_key: String,
    /// Explicit hash key: a decimal integer in 0 … 2^128 − 1, routing instead of the key's MD5.
    pub explicit_hash_key: Option<String>,
    /// Payload.
    pub data: Bytes,
}

impl Record {
    /// A record without an explicit hash key.
    pub fn new(
        stream: impl Into<Arc<str>>,
        partition_key: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Self {
        Record {
            stream: stream.into(),
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// The same record with an explicit hash key.
    pub fn with_explicit_hash_key(mut self, explicit_hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(explicit_hash_key.into());
        self
    }

    /// Bytes this record takes from the memory budget.
    pub(crate) fn cost(&self) -> usize {
        self.data.len()
            + self.partition_key.len()
            + self.explicit_hash_key.as_ref().map_or(0, String::len)
    }

    /// The Kinesis rules a record must meet (those the KPL's Java wrapper checks), giving the
    /// hash key it routes by.
    pub(crate) fn validate(&self, config: &Config) -> Result<u128, Error> {
        Ok(match self.validate_unhashed(config)? {
            Some(explicit) => explicit,
            None => hash_key_for_partition_key(&self.partition_key),
        })
    }

    /// [`Record::validate`] short of hashing the partition key: the explicit hash key, or
    /// `None` when the key's MD5 is still to be taken (`put_all` takes many at once).
    pub(crate) fn validate_unhashed(&self, config: &Config) -> Result<Option<u128>, Error> {
        let invalid =
            |code, message: String| Err(Error::InvalidRecord(KinesisError::new(code, message)));
        if self.stream.trim().is_empty() {
            return invalid(
                ErrorCode::Validation,
                "Stream name must not be empty.".into(),
            );
        }
        let chars = self.partition_key.chars().count();
        if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
            return invalid(
                ErrorCode::Validation,
                format!(
                    "Partition key must be 1 to {MAX_PARTITION_KEY_CHARS} characters long, got {chars}."
                ),
            );
        }
        let size = self.data.len() + self.partition_key.len();
        if size > config.max_user_record_size {
            return invalid(
                ErrorCode::Validation,
                format!(
                    "Record size ({size} bytes of data and partition key) exceeds the maximum of {} bytes.",
                    config.max_user_record_size
                ),
            );
        }
        match &self.explicit_hash_key {
            None => Ok(None),
            // Untrimmed: Kinesis refuses an ExplicitHashKey with whitespace, and the key is
            // sent as given.
            Some(ehk) => parse_hash_key(ehk).map_or_else(
                || {
                    invalid(
                        ErrorCode::InvalidArgument,
                        format!("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {ehk}"),
                    )
                },
                |h| Ok(Some(h)),
            ),
        }
    }
}

/// A record [`Producer::try_put`](crate::Producer::try_put) refused, handed back.
#[derive(Debug, thiserror::Error)]
#[error("record refused: {error}")]
pub struct Rejected {
    /// The record, unchanged.
    pub record: Record,
    /// Why: [`Error::BufferFull`], [`Error::ShutDown`] or [`Error::InvalidRecord`].
    pub error: Error,
}

/// A user record inside the pipeline: the record, its routing key, its clock and its handle.
#[derive(Debug)]
pub(crate) struct UserRecord {
    /// Acceptance order; per-key ordering and fairness sort by it.
    pub(crate) seq: u64,
    /// Flush epoch the record belongs to.
    pub(crate) epoch: u64,
    /// Stream name.
    pub(crate) stream: Arc<str>,
    /// Partition key, explicit hash key and data, in the form the aggregator encodes.
    pub(crate) inner: aggregation::UserRecord,
    /// The 128-bit hash key it routes by.
    pub(crate) hash_key: u128,
    /// When `put` accepted it.
    pub(crate) arrival: Instant,
    /// When it should leave the buffers (`RecordMaxBufferedTime`).
    pub(crate) deadline: Instant,
    /// When it fails with `Expired` (`RecordTtl`).
    pub(crate) expiration: Instant,
    /// Not to be sent before this (retry backoff).
    pub(crate) not_before: Instant,
    /// End of the previous attempt, or the arrival.
    pub(crate) last_end: Instant,
    /// Attempts so far.
    pub(crate) attempts: Vec<Attempt>,
    /// Bytes taken from the budget.
    pub(crate) cost: usize,
    /// Whether BufferingTime was observed (first send).
    pub(crate) sent_once: bool,
    /// Resolves the handle.
    pub(crate) completion: Completion,
}

impl UserRecord {
    /// A freshly accepted record.
    pub(crate) fn new(
        record: Record,
        hash_key: u128,
        arrival: Instant,
        config: &Config,
        completion: Completion,
    ) -> Self {
        let cost = record.cost();
        UserRecord {
            seq: 0,
            epoch: 0,
            stream: record.stream,
            inner: aggregation::UserRecord {
                partition_key: record.partition_key,
                explicit_hash_key: record.explicit_hash_key,
                data: record.data,
            },
            hash_key,
            arrival,
            deadline: arrival + config.record_max_buffered_time,
            expiration: arrival + config.record_ttl,
            not_before: arrival,
            last_end: arrival,
            attempts: Vec::new(),
            cost,
            sent_once: false,
            completion,
        }
    }

    /// The record as the user handed it over.
    pub(crate) fn to_record(&self) -> Record {
        Record {
            stream: Arc::clone(&self.stream),
            partition_key: self.inner.partition_key.clone(),
            explicit_hash_key: self.inner.explicit_hash_key.clone(),
            data: self.inner.data.clone(),
        }
    }

    /// Kinesis's size of this record alone: data plus partition key.
    pub(crate) fn kinesis_size(&self) -> usize {
        self.inner.data.len() + self.inner.partition_key.len()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::handle::PutHandle;

    /// A user record for stage tests, with its handle.
    pub(crate) fn user_record(
        seq: u64,
        pk: &str,
        data: &[u8],
        at: Instant,
        config: &Config,
    ) -> (UserRecord, PutHandle) {
        let record = Record::new("s", pk, data.to_vec());
        let hash = record.validate(config).expect("valid test record");
        let (completion, handle) = Completion::channel();
        let mut rec = UserRecord::new(record, hash, at, config, completion);
        rec.seq = seq;
        (rec, handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(r: Record) -> Result<u128, Error> {
        r.validate(&Config::default())
    }

    #[test]
    fn validation_follows_kinesis_rules() {
        assert_eq!(
            check(Record::new("s", "pk-1", "x")).unwrap(),
            273922656776327812788301823748127981641
        );
        assert_eq!(
            check(
                Record::new("s", "k", "x")
                    .with_explicit_hash_key("170141183460469231731687303715884105728")
            )
            .unwrap(),
            1u128 << 127
        );
        let code = |r| match check(r) {
            Err(Error::InvalidRecord(e)) => e.code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Record::new(" ", "k", "x")), ErrorCode::Validation);
        assert_eq!(code(Record::new("s", "", "x")), ErrorCode::Validation);
        assert_eq!(
            code(Record::new("s", "é".repeat(257), "x")),
            ErrorCode::Validation
        );
        // 256 characters is fine even when they take 512 bytes.
        assert!(check(Record::new("s", "é".repeat(256), "x")).is_ok());
        assert_eq!(
            code(Record::new("s", "k", vec![0u8; 1024 * 1024])),
            ErrorCode::Validation
        );
        assert!(check(Record::new("s", "k", vec![0u8; 1024 * 1024 - 1])).is_ok());
        // Kinesis's pattern for ExplicitHashKey has no room for whitespace, so a key
        // with any is refused here rather than sent as-is and refused by the service.
        for bad in [
            "-1",
            "x",
            "340282366920938463463374607431768211456",
            "",
            " 1",
            "1 ",
            "\t170141183460469231731687303715884105728\n",
            " ",
        ] {
            assert_eq!(
                code(Record::new("s", "k", "x").with_explicit_hash_key(bad)),
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}
