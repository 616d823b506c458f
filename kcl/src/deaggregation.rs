//! Turning the Kinesis records of a GetRecords page into user records (KCL
//! `AggregatorUtil.deaggregate` plus the retrieval filters).
//!
//! Two filters apply:
//! * an aggregate holding any user record whose hash key lies outside the
//!   shard's range is dropped whole, as the Java KCL drops it: a producer with a
//!   stale shard map packed it for a parent shard, and the KPL (Java's and
//!   kinesis-kpl alike) re-sends every user record of such an aggregate, so
//!   delivering any of them here would deliver it twice;
//! * user records at or before the position processing resumes from are
//!   skipped, because a restart reads the checkpointed Kinesis record again
//!   (`AT_SEQUENCE_NUMBER`) and only the user records after the checkpointed
//!   sub-sequence number are new.
//!
//! An aggregate names its keys through tables, so one large key can be named by
//! every user record: keys stay shared (never copied per user record), and each
//! distinct key is checked and hashed once per aggregate, not once per record.
//! A user record whose partition key is longer than Kinesis allows (256
//! characters) is not delivered but reported as a [`RejectedRecord`]: no
//! conforming producer writes one, and an application copying such keys per
//! record could be made to exhaust its memory by a single aggregate.

use std::collections::HashMap;
use std::sync::Arc;

use kinesis_proto::aggregation::deaggregate;
use kinesis_proto::hash_key::{HashRange, effective_hash_key};
use kinesis_proto::model::Record;
use kinesis_proto::sequence::SequenceNumber;

use crate::extended_sequence::ExtendedSequenceNumber;
use crate::record::{KinesisClientRecord, RejectedRecord};

pub use kinesis_proto::limits::MAX_PARTITION_KEY_CHARS;

/// The user records of one page and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deaggregated {
    /// The user records to deliver, in order.
    pub records: Vec<KinesisClientRecord>,
    /// User records dropped because their hash key is outside the shard's range.
    pub dropped_out_of_range: usize,
    /// User records skipped because they are at or before the resume position.
    pub skipped_before_start: usize,
    /// Kinesis records ignored because their sequence number is malformed.
    pub invalid_sequence_numbers: usize,
    /// User records that cannot be delivered, to report to the application.
    pub rejected: Vec<RejectedRecord>,
}

/// What one distinct key of an aggregate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyVerdict {
    /// Deliverable; in the shard's range (always, when no range is checked).
    Deliver { in_range: bool },
    /// The partition key is longer than Kinesis allows; this many characters at least.
    TooLong(usize),
}

/// A (partition key, explicit hash key) pair, held so its addresses are never reused.
type HeldKeys = (Arc<str>, Option<Arc<str>>);

/// Verdicts per distinct (partition key, explicit hash key) of one aggregate, by
/// the keys' shared allocations.
#[derive(Default)]
struct KeyVerdicts(HashMap<(usize, usize), (HeldKeys, KeyVerdict)>);

impl KeyVerdicts {
    fn verdict(
        &mut self,
        pk: &Arc<str>,
        ehk: Option<&Arc<str>>,
        range: Option<HashRange>,
    ) -> KeyVerdict {
        let id = (
            Arc::as_ptr(pk) as *const u8 as usize,
            ehk.map_or(0, |e| Arc::as_ptr(e) as *const u8 as usize),
        );
        self.0
            .entry(id)
            .or_insert_with(|| {
                (
                    (Arc::clone(pk), ehk.cloned()),
                    judge(pk, ehk.map(|e| &**e), range),
                )
            })
            .1
    }
}

fn judge(pk: &str, ehk: Option<&str>, range: Option<HashRange>) -> KeyVerdict {
    // Four UTF-8 bytes at most per character: a longer key is too long without counting.
    let chars = if pk.len() > 4 * MAX_PARTITION_KEY_CHARS {
        pk.len() / 4
    } else {
        pk.chars().count()
    };
    if chars > MAX_PARTITION_KEY_CHARS {
        return KeyVerdict::TooLong(chars);
    }
    let in_range =
        range.is_none_or(|range| effective_hash_key(pk, ehk).is_some_and(|k| range.contains(k)));
    KeyVerdict::Deliver { in_range }
}

/// Deaggregate `records` of a shard with hash range `shard_range` (no range check when
/// `None`), keeping only user records after `resume_after` (all when `None`).
pub fn deaggregate_records(
    records: Vec<Record>,
    shard_range: Option<HashRange>,
    resume_after: Option<&ExtendedSequenceNumber>,
) -> Deaggregated {
    let mut out = Deaggregated::default();
    for record in records {
        let Some(sequence_number) = SequenceNumber::parse(&record.sequence_number) else {
            // Without a valid sequence number the record cannot be checkpointed or
            // ordered; no real service sends one.
            tracing::warn!(
                sequence_number = %record.sequence_number,
                "ignoring a record with a malformed sequence number"
            );
            out.invalid_sequence_numbers += 1;
            continue;
        };
        let mut verdicts = KeyVerdicts::default();
        let users = deaggregate(&record.partition_key, None, record.data.0);
        // A producer re-sends an aggregate that landed on the wrong shard whole, as the
        // Java KPL does, so one stray user record makes the whole aggregate a stray, as
        // the Java KCL judges it: delivering the rest would deliver it twice.
        let stray = users.iter().any(|user| {
            user.aggregated
                && verdicts.verdict(
                    &user.partition_key,
                    user.explicit_hash_key.as_ref(),
                    shard_range,
                ) == (KeyVerdict::Deliver { in_range: false })
        });
        if stray {
            out.dropped_out_of_range += users.len();
            continue;
        }
        for user in users {
            let position =
                ExtendedSequenceNumber::new(sequence_number.clone(), user.sub_sequence_number);
            if resume_after.is_some_and(|after| position <= *after) {
                out.skipped_before_start += 1;
                continue;
            }
            if user.aggregated {
                let verdict = verdicts.verdict(
                    &user.partition_key,
                    user.explicit_hash_key.as_ref(),
                    shard_range,
                );
                match verdict {
                    KeyVerdict::TooLong(chars) => {
                        out.rejected.push(RejectedRecord {
                            sequence_number: sequence_number.clone(),
                            sub_sequence_number: user.sub_sequence_number,
                            reason: format!(
                                "its partition key has at least {chars} characters; Kinesis \
                                 allows {MAX_PARTITION_KEY_CHARS}"
                            ),
                        });
                        continue;
                    }
                    KeyVerdict::Deliver { in_range: false } => {
                        out.dropped_out_of_range += 1;
                        continue;
                    }
                    KeyVerdict::Deliver { in_range: true } => {}
                }
            }
            out.records.push(KinesisClientRecord {
                sequence_number: sequence_number.clone(),
                sub_sequence_number: user.sub_sequence_number,
                partition_key: user.partition_key,
                explicit_hash_key: user.explicit_hash_key,
                data: user.data,
                approximate_arrival_timestamp: record.approximate_arrival_timestamp,
                encryption_type: record.encryption_type.clone(),
                aggregated: user.aggregated,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_proto::aggregation::{Aggregator, UserRecord};
    use kinesis_proto::codec::Blob;

    const LOW: &str = "1"; // explicit hash keys on either side of the split point
    const HIGH: &str = "300000000000000000000000000000000000000";

    fn kinesis_record(seq: &str, data: bytes::Bytes) -> Record {
        Record {
            sequence_number: seq.into(),
            data: Blob(data),
            partition_key: "outer".into(),
            ..Record::default()
        }
    }

    fn aggregate(users: &[UserRecord]) -> bytes::Bytes {
        let mut agg = Aggregator::new(1 << 20, u64::MAX);
        for u in users {
            agg.push(u);
        }
        agg.finish().expect("non-empty aggregate")
    }

    fn pos(seq: &str, sub: u64) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::parse(seq, sub).expect("valid")
    }

    fn datas(d: &Deaggregated) -> Vec<&[u8]> {
        d.records.iter().map(|r| &r.data[..]).collect()
    }

    #[test]
    fn plain_records_pass_through_with_sub_sequence_zero() {
        let d = deaggregate_records(
            vec![kinesis_record("5", bytes::Bytes::from_static(b"plain"))],
            Some(HashRange::new(0, 0)),
            None,
        );
        assert_eq!(datas(&d), [b"plain"]);
        assert_eq!(d.records[0].sub_sequence_number, 0);
        assert!(!d.records[0].aggregated);
        assert_eq!(&*d.records[0].partition_key, "outer");
        assert_eq!(
            d.dropped_out_of_range, 0,
            "plain records were routed by Kinesis itself"
        );
    }

    #[test]
    fn user_records_get_sub_sequence_numbers() {
        let data = aggregate(&[UserRecord::new("a", "1"), UserRecord::new("b", "2")]);
        let d = deaggregate_records(vec![kinesis_record("7", data)], None, None);
        assert_eq!(datas(&d), [b"1", b"2"]);
        assert_eq!(d.records[1].extended_sequence_number(), pos("7", 1));
        assert_eq!(&*d.records[1].partition_key, "b");
        assert!(d.records[1].aggregated);
    }

    #[test]
    fn an_aggregate_with_a_user_record_outside_the_shard_is_dropped_whole() {
        let stray = aggregate(&[
            UserRecord::new("a", "in-1").with_explicit_hash_key(LOW),
            UserRecord::new("b", "out").with_explicit_hash_key(HIGH),
            UserRecord::new("c", "in-2").with_explicit_hash_key(LOW),
        ]);
        let fine = aggregate(&[
            UserRecord::new("a", "in-3").with_explicit_hash_key(LOW),
            UserRecord::new("c", "in-4").with_explicit_hash_key(LOW),
        ]);
        let lower_half = HashRange::new(0, u128::MAX / 2);
        let d = deaggregate_records(
            vec![kinesis_record("9", stray), kinesis_record("10", fine)],
            Some(lower_half),
            None,
        );
        assert_eq!(datas(&d), [&b"in-3"[..], b"in-4"]);
        assert_eq!(d.dropped_out_of_range, 3);
        assert_eq!(d.records[1].sub_sequence_number, 1);
    }

    #[test]
    fn resumes_right_after_the_checkpointed_user_record() {
        let data = aggregate(&[
            UserRecord::new("a", "0"),
            UserRecord::new("a", "1"),
            UserRecord::new("a", "2"),
        ]);
        let records = vec![
            kinesis_record("10", data),
            kinesis_record("11", bytes::Bytes::from_static(b"next")),
        ];
        let d = deaggregate_records(records.clone(), None, Some(&pos("10", 1)));
        assert_eq!(datas(&d), [&b"2"[..], b"next"]);
        assert_eq!(d.skipped_before_start, 2);
        let d = deaggregate_records(records, None, Some(&pos("10", 2)));
        assert_eq!(datas(&d), [b"next"]);
    }

    #[test]
    fn sentinel_resume_positions_skip_nothing() {
        let d = deaggregate_records(
            vec![kinesis_record("3", bytes::Bytes::from_static(b"x"))],
            None,
            Some(&ExtendedSequenceNumber::TrimHorizon),
        );
        assert_eq!(d.records.len(), 1);
    }

    #[test]
    fn malformed_sequence_numbers_are_counted_not_delivered() {
        let d = deaggregate_records(
            vec![kinesis_record("01", bytes::Bytes::from_static(b"x"))],
            None,
            None,
        );
        assert!(d.records.is_empty());
        assert_eq!(d.invalid_sequence_numbers, 1);
    }

    #[test]
    fn an_oversized_key_is_rejected_for_every_record_naming_it_and_checked_once() {
        let long = "k".repeat(MAX_PARTITION_KEY_CHARS + 1);
        let longest = "é".repeat(MAX_PARTITION_KEY_CHARS);
        let data = aggregate(&[
            UserRecord::new(long.clone(), "a"),
            UserRecord::new(longest.clone(), "b"),
            UserRecord::new(long, "c"),
        ]);
        let d = deaggregate_records(vec![kinesis_record("4", data)], Some(HashRange::FULL), None);
        assert_eq!(datas(&d), [b"b"], "256 characters (512 bytes) are allowed");
        assert_eq!(
            d.rejected
                .iter()
                .map(|r| r.extended_sequence_number())
                .collect::<Vec<_>>(),
            [pos("4", 0), pos("4", 2)]
        );
        assert!(d.rejected[0].reason.contains("257"));
    }
}
