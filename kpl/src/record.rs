//! User records: what `put` takes, its checks, the refusal that hands a record back, and the
//! state a record carries through the pipeline.

use crate::attempt::Attempt;
use crate::config::{Config, MAX_PARTITION_KEY_CHARS};
use crate::error::Error;
use crate::handle::Completion;
use crate::partition_key::PartitionKey;
use bytes::Bytes;
use kinesis_proto::hash_key::{hash_key_for_partition_key, parse_hash_key};
use kinesis_proto::{ErrorCode, KinesisError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
///
/// Kept small (176 bytes): the pipeline moves every record several times and buffers up to the
/// whole record budget of them. Times derivable from the arrival and the config are not
/// stored, and what only a failed attempt needs lives out of line in [`Retry`].
#[derive(Debug)]
pub(crate) struct UserRecord {
    /// Acceptance order; per-key ordering and fairness sort by it.
    pub(crate) seq: u64,
    /// Flush epoch the record belongs to.
    pub(crate) epoch: u64,
    /// Stream name.
    pub(crate) stream: Arc<str>,
    /// Partition key.
    pub(crate) partition_key: PartitionKey,
    /// Explicit hash key, as given.
    pub(crate) explicit_hash_key: Option<String>,
    /// Payload.
    pub(crate) data: Bytes,
    /// The 128-bit hash key it routes by.
    pub(crate) hash_key: u128,
    /// When `put` accepted it.
    pub(crate) arrival: Instant,
    /// Set once an attempt has failed.
    pub(crate) retry: Option<Box<Retry>>,
    /// Bytes taken from the budget (a record is at most a few MiB).
    pub(crate) cost: u32,
    /// Whether BufferingTime was observed (first send).
    pub(crate) sent_once: bool,
    /// Resolves the handle.
    pub(crate) completion: Completion,
}

/// What a record carries once an attempt has failed.
#[derive(Debug)]
pub(crate) struct Retry {
    /// Not to be sent before this (retry backoff).
    pub(crate) not_before: Instant,
    /// When it should leave the buffers, once its retry is scheduled (else
    /// `RecordMaxBufferedTime` after the arrival).
    pub(crate) deadline: Option<Instant>,
    /// End of the last attempt.
    pub(crate) last_end: Instant,
    /// Attempts so far.
    pub(crate) attempts: Vec<Attempt>,
}

impl UserRecord {
    /// A freshly accepted record.
    pub(crate) fn new(
        record: Record,
        hash_key: u128,
        arrival: Instant,
        completion: Completion,
    ) -> Self {
        // Validation bounds a record by `max_user_record_size`, far below 4 GiB.
        let cost = u32::try_from(record.cost()).unwrap_or(u32::MAX);
        UserRecord {
            seq: 0,
            epoch: 0,
            stream: record.stream,
            partition_key: PartitionKey::new(record.partition_key),
            explicit_hash_key: record.explicit_hash_key,
            data: record.data,
            hash_key,
            arrival,
            retry: None,
            cost,
            sent_once: false,
            completion,
        }
    }

    /// Not to be sent before this (retry backoff; the arrival at first).
    pub(crate) fn not_before(&self) -> Instant {
        self.retry.as_ref().map_or(self.arrival, |r| r.not_before)
    }

    /// When it should leave the buffers (`RecordMaxBufferedTime`, or its retry time).
    pub(crate) fn deadline(&self, config: &Config) -> Instant {
        match self.retry.as_ref().and_then(|r| r.deadline) {
            Some(d) => d,
            None => after(self.arrival, config.record_max_buffered_time),
        }
    }

    /// When it fails with `Expired` (`RecordTtl`).
    pub(crate) fn expiration(&self, config: &Config) -> Instant {
        after(self.arrival, config.record_ttl)
    }

    /// End of the previous attempt, or the arrival.
    pub(crate) fn last_end(&self) -> Instant {
        self.retry.as_ref().map_or(self.arrival, |r| r.last_end)
    }

    /// Attempts so far.
    pub(crate) fn attempts(&self) -> &[Attempt] {
        self.retry.as_ref().map_or(&[], |r| &r.attempts)
    }

    /// Takes the attempts so far, leaving none.
    pub(crate) fn take_attempts(&mut self) -> Vec<Attempt> {
        self.retry
            .as_mut()
            .map(|r| std::mem::take(&mut r.attempts))
            .unwrap_or_default()
    }

    /// The retry state, made on first use.
    pub(crate) fn retry_mut(&mut self) -> &mut Retry {
        let arrival = self.arrival;
        self.retry.get_or_insert_with(|| {
            Box::new(Retry {
                not_before: arrival,
                deadline: None,
                last_end: arrival,
                attempts: Vec::new(),
            })
        })
    }

    /// The record as the user handed it over.
    pub(crate) fn to_record(&self) -> Record {
        Record {
            stream: Arc::clone(&self.stream),
            partition_key: self.partition_key.as_str().to_owned(),
            explicit_hash_key: self.explicit_hash_key.clone(),
            data: self.data.clone(),
        }
    }

    /// Kinesis's size of this record alone: data plus partition key.
    pub(crate) fn kinesis_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// `at` plus `d`, or a century later when `d` is too long for the clock: the settings have no
/// upper bound (the KPL's go to `Long.MAX_VALUE` ms), and adding past the clock's end panics.
fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
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
        let mut rec = UserRecord::new(record, hash, at, completion);
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
    fn unbounded_settings_put_the_deadlines_far_away_instead_of_panicking() {
        let config = Config::builder()
            .record_ttl(Duration::MAX)
            .record_max_buffered_time(Duration::MAX)
            .build();
        let now = Instant::now();
        let (rec, _handle) = test_support::user_record(0, "k", b"d", now, &config);
        let century = Duration::from_secs(99 * 365 * 24 * 3600);
        assert!(rec.expiration(&config) > now + century);
        assert!(rec.deadline(&config) > now + century);
    }

    #[test]
    fn a_pipeline_record_stays_small() {
        // Moved several times per record and buffered by the hundred thousand.
        assert!(std::mem::size_of::<UserRecord>() <= 176);
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
