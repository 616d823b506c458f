//! What happens to each user record after a PutRecords answer (the KPL's retrier), and how
//! long a retry waits.
//!
//! * Whole-call error: every record is retried if the error is transient (throttling, 5xx,
//!   timeout, connection trouble); otherwise (stream not found, access denied, …) it fails at
//!   once, unlike the KPL, which would retry it until `RecordTtl`. With `FailIfThrottled`,
//!   throttling fails the records.
//! * Result count differs from the request's: all retried (`Record Count Mismatch`).
//! * Per-entry error: retried (or failed when `FailIfThrottled` and throttled).
//! * Per-entry success: each user record succeeds, unless the record landed on a shard other
//!   than predicted (the shard map is then refreshed) and it is an aggregate that shard does not
//!   own whole: then every user record of the aggregate is retried (`Wrong Shard`). A consumer
//!   drops the whole of such an aggregate, as the Java KCL does (it drops an aggregate when any
//!   of its user records lies outside the shard), so its records that did land right must be
//!   sent again too. Whether a shard the map does not know yet (a new child after a split) owns
//!   an aggregate is decided once the refreshed map arrives ([`Verdicts::undecided`], see
//!   [`confirm_aggregates`]). Under per-key ordering the aggregate is retried at once instead
//!   (possible duplicates, flagged), so that nothing later of its keys overtakes it.
//! * A record to be retried past its `RecordTtl` fails with `Expired`.
//!
//! Retry delays use exponential backoff with full jitter: before retry *n*, a uniformly random
//! time in `[0, min(cap, base · 2^(n−1))]`. Pure: the caller passes the times.

use crate::aggregator::KinesisRecord;
use crate::config::{Config, Ordering};
use crate::error::{EXPIRED, RECORD_COUNT_MISMATCH, RecordFailure, WRONG_SHARD};
use crate::handle::{Attempt, Attempts, Completion, PutResult};
use crate::record::UserRecord;
use crate::shard_map::ShardMap;
use kinesis_proto::ErrorCode;
use kinesis_proto::client::ClientError;
use kinesis_proto::model::PutRecordsOutput;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What happened to one Kinesis record of a request, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KinesisOutcome {
    /// The shard it landed on, or the predicted one if it failed (`None`: unknown).
    pub(crate) shard: Option<Arc<str>>,
    /// Its error code, if it failed.
    pub(crate) error_code: Option<String>,
    /// Its user records.
    pub(crate) user_records: usize,
    /// Its size bound (data plus partition key).
    pub(crate) bytes: usize,
}

/// The fate of every user record of a request.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    /// Put, one entry per Kinesis record that holds them.
    pub(crate) succeeded: Vec<Landed>,
    /// Failed for good.
    pub(crate) failed: Vec<(UserRecord, RecordFailure)>,
    /// To be sent again.
    pub(crate) retry: Vec<UserRecord>,
    /// Whether the shard map proved stale.
    pub(crate) invalidate_map: bool,
    /// Per Kinesis record, in request order.
    pub(crate) kinesis: Vec<KinesisOutcome>,
    /// User records that landed on a shard not owning them, per landing shard (ErrorsByCode).
    pub(crate) wrong_shard: Vec<(Arc<str>, usize)>,
    /// Put on a shard the map did not know: success if the refreshed map says the shard owns
    /// the record's aggregate, else a `Wrong Shard` retry (see [`confirm_aggregates`]).
    pub(crate) undecided: Vec<(UserRecord, PutResult)>,
}

/// The user records of one Kinesis record that was put, still in the vector they were sent in:
/// a request carries up to hundreds of thousands of user records, and moving each into a list
/// of its own (and that list into memory fresh from the kernel) cost more than the rest of
/// answering them.
#[derive(Debug)]
pub(crate) struct Landed {
    /// The user records, in sub-sequence order.
    pub(crate) records: Vec<UserRecord>,
    /// The shard that stored them.
    pub(crate) shard_id: Arc<str>,
    /// The Kinesis record's sequence number.
    pub(crate) sequence_number: Arc<str>,
    /// Whether they were sent as a KPL aggregate (sub-sequence numbers count up from 0).
    pub(crate) aggregated: bool,
    /// When the successful attempt started.
    pub(crate) start: Instant,
    /// How long it took.
    pub(crate) duration: Duration,
}

impl Landed {
    /// Each user record's completion with its result (the successful attempt appended to its
    /// earlier ones), made in place: the records stay where they are, to be dropped with
    /// `self`. Moving each 176-byte record out only to take its completion cost more than
    /// making its result.
    pub(crate) fn results(&mut self) -> impl Iterator<Item = (Completion, PutResult)> + '_ {
        let Landed {
            records,
            shard_id,
            sequence_number,
            aggregated,
            start,
            duration,
        } = self;
        records.iter_mut().enumerate().map(move |(i, rec)| {
            let result = PutResult {
                shard_id: Arc::clone(shard_id),
                sequence_number: Arc::clone(sequence_number),
                sub_sequence_number: if *aggregated { i as u64 } else { 0 },
                attempts: put_attempts(rec, *start, *duration),
            };
            (std::mem::take(&mut rec.completion), result)
        })
    }

    /// Each user record with its result.
    #[cfg(test)]
    pub(crate) fn into_results(mut self) -> Vec<(UserRecord, PutResult)> {
        let results: Vec<PutResult> = self.results().map(|(_, result)| result).collect();
        self.records.into_iter().zip(results).collect()
    }
}

/// A failed attempt's description.
struct Failure<'a> {
    code: &'a str,
    message: &'a str,
    possibly_stored: bool,
    /// Retry (true) or fail for good (false).
    retry: bool,
}

/// The attempt of `rec` that started at `start` and took `duration`.
fn attempt_of(
    rec: &UserRecord,
    start: Instant,
    duration: Duration,
    failure: Option<&Failure>,
) -> Attempt {
    Attempt {
        delay: start.saturating_duration_since(rec.last_end()),
        duration,
        success: failure.is_none(),
        error_code: failure.map(|f| f.code.to_string()),
        error_message: failure.map(|f| f.message.to_string()),
        possibly_stored: failure.is_some_and(|f| f.possibly_stored),
    }
}

/// Every attempt of `rec`, put by the one that started at `start` and took `duration`.
fn put_attempts(rec: &mut UserRecord, start: Instant, duration: Duration) -> Attempts {
    let last = attempt_of(rec, start, duration, None);
    Attempts::new(rec.take_attempts(), last)
}

/// Adds the failed attempt that started at `start` and ended at `end` to `rec`'s attempts.
fn record_failure(rec: &mut UserRecord, start: Instant, end: Instant, failure: &Failure) {
    let attempt = attempt_of(
        rec,
        start,
        end.saturating_duration_since(start),
        Some(failure),
    );
    let retry = rec.retry_mut();
    retry.attempts.push(attempt);
    retry.last_end = end;
}

/// The error code a whole-call error is reported with.
pub(crate) fn client_error_code(err: &ClientError) -> String {
    match err {
        ClientError::Service(e) => e.code.as_str().to_string(),
        ClientError::Http { status, .. } => format!("HTTP {status}"),
        ClientError::Timeout { .. } => "Timeout".into(),
        ClientError::Connect(_) => "ConnectError".into(),
        ClientError::Transport(_) => "TransportError".into(),
        ClientError::Decode(_) => "DecodeError".into(),
        _ => "ClientError".into(),
    }
}

/// Sorts the user records of a request sent at `start` and answered (`response`) at `end`.
pub(crate) fn classify(
    records: Vec<KinesisRecord>,
    map: Option<&ShardMap>,
    response: Result<PutRecordsOutput, ClientError>,
    start: Instant,
    end: Instant,
    config: &Config,
) -> Verdicts {
    let defer_unknown = config.ordering == Ordering::BestEffort;
    let mut v = Verdicts::default();
    v.kinesis.reserve_exact(records.len());
    let duration = end.saturating_duration_since(start);
    let fail_all = |v: &mut Verdicts, kr: KinesisRecord, f: &Failure| {
        v.kinesis.push(KinesisOutcome {
            shard: kr.predicted.clone(),
            error_code: Some(f.code.to_string()),
            user_records: kr.records.len(),
            bytes: kr.size,
        });
        for mut rec in kr.records {
            record_failure(&mut rec, start, end, f);
            retry_or_fail(v, rec, f, end, config);
        }
    };

    let out = match response {
        Err(err) => {
            let code = client_error_code(&err);
            let message = match &err {
                ClientError::Service(e) => e.message.clone(),
                other => other.to_string(),
            };
            let throttled = err.is_throttling();
            let f = Failure {
                code: &code,
                message: &message,
                possibly_stored: err.may_have_been_applied(),
                retry: !(config.fail_if_throttled && throttled)
                    && (err.is_retryable() || matches!(err, ClientError::Decode(_))),
            };
            for kr in records {
                fail_all(&mut v, kr, &f);
            }
            return v;
        }
        Ok(out) => out,
    };
    if out.records.len() != records.len() {
        let message = format!(
            "PutRecords answered {} results for {} records",
            out.records.len(),
            records.len()
        );
        let f = Failure {
            code: RECORD_COUNT_MISMATCH,
            message: &message,
            possibly_stored: true,
            retry: true,
        };
        for kr in records {
            fail_all(&mut v, kr, &f);
        }
        return v;
    }
    for (kr, result) in records.into_iter().zip(out.records) {
        let (Some(seq), Some(actual)) = (result.sequence_number, result.shard_id) else {
            let code = result
                .error_code
                .unwrap_or_else(|| RECORD_COUNT_MISMATCH.to_string());
            let message = result.error_message.unwrap_or_default();
            let parsed = ErrorCode::parse(&code);
            let throttled = parsed.is_some_and(ErrorCode::is_throttling);
            let f = Failure {
                code: &code,
                message: &message,
                possibly_stored: false,
                retry: !(config.fail_if_throttled && throttled)
                    && parsed.is_none_or(ErrorCode::is_retryable),
            };
            fail_all(&mut v, kr, &f);
            continue;
        };
        let seq: Arc<str> = Arc::from(seq);
        let actual: Arc<str> = Arc::from(actual);
        // Which user records does the landing shard own?
        let moved = kr.predicted.as_deref().is_some_and(|p| p != &*actual);
        let actual_range = map.and_then(|m| m.range_of(&actual));
        let outer_hash = kr.records[0].hash_key;
        v.invalidate_map |= moved;
        v.kinesis.push(KinesisOutcome {
            shard: Some(Arc::clone(&actual)),
            error_code: None,
            user_records: kr.records.len(),
            bytes: kr.size,
        });
        let aggregated = kr.aggregated;
        // Whether the landing shard owns the whole aggregate: Some(owned), or None: unknown
        // until the map is refreshed.
        let owned = if !moved || !aggregated {
            Some(true)
        } else {
            match actual_range {
                Some(range) => Some(kr.records.iter().all(|r| range.contains(r.hash_key))),
                None if kr.records.iter().all(|r| r.hash_key == outer_hash) => Some(true),
                None if defer_unknown => None,
                None => Some(false),
            }
        };
        if owned == Some(true) {
            v.succeeded.push(Landed {
                records: kr.records,
                shard_id: actual,
                sequence_number: seq,
                aggregated,
                start,
                duration,
            });
            continue;
        }
        let mut wrong = 0;
        for (i, mut rec) in kr.records.into_iter().enumerate() {
            if owned.is_none() {
                let result = PutResult {
                    shard_id: Arc::clone(&actual),
                    sequence_number: Arc::clone(&seq),
                    sub_sequence_number: if aggregated { i as u64 } else { 0 },
                    attempts: put_attempts(&mut rec, start, duration),
                };
                v.undecided.push((rec, result));
            } else {
                let message = format!(
                    "landed on {actual}, which does not own hash key {}",
                    rec.hash_key
                );
                let f = Failure {
                    code: WRONG_SHARD,
                    message: &message,
                    possibly_stored: true,
                    retry: true,
                };
                record_failure(&mut rec, start, end, &f);
                wrong += 1;
                retry_or_fail(&mut v, rec, &f, end, config);
            }
        }
        if wrong > 0 {
            v.wrong_shard.push((actual, wrong));
        }
    }
    v
}

/// How a landing on a shard the map did not know turned out.
#[derive(Debug)]
pub(crate) enum Decision {
    /// The shard owns the record's hash key: it is put.
    Put(UserRecord, PutResult),
    /// It does not (or is still unknown): retry, the last attempt now a `Wrong Shard` failure.
    WrongShard(UserRecord, Arc<str>),
}

/// Decides undecided records with the refreshed `map`, one aggregate (the records sharing a
/// shard and sequence number) at a time: all are put if the shard owns every one of them,
/// else all are retried.
pub(crate) fn confirm_aggregates(
    undecided: Vec<(UserRecord, PutResult)>,
    map: Option<&ShardMap>,
) -> Vec<Decision> {
    let mut owned: std::collections::HashMap<(Arc<str>, Arc<str>), bool> =
        std::collections::HashMap::new();
    for (rec, result) in &undecided {
        let range = map.and_then(|m| m.range_of(&result.shard_id));
        let mine = range.is_some_and(|r| r.contains(rec.hash_key));
        *owned
            .entry((
                Arc::clone(&result.shard_id),
                Arc::clone(&result.sequence_number),
            ))
            .or_insert(true) &= mine;
    }
    undecided
        .into_iter()
        .map(|u| {
            let key = (Arc::clone(&u.1.shard_id), Arc::clone(&u.1.sequence_number));
            confirm(u, owned.get(&key).copied().unwrap_or(false))
        })
        .collect()
}

/// Decides one undecided record: put if its aggregate is `owned`, else a `Wrong Shard` retry.
fn confirm((mut rec, result): (UserRecord, PutResult), owned: bool) -> Decision {
    if owned {
        return Decision::Put(rec, result);
    }
    let PutResult {
        shard_id, attempts, ..
    } = result;
    let message = format!(
        "landed on {shard_id}, which does not own hash key {}",
        rec.hash_key
    );
    let previous_end = rec.last_end();
    let retry = rec.retry_mut();
    retry.attempts = attempts.into_vec();
    if let Some(last) = retry.attempts.last_mut() {
        last.success = false;
        last.possibly_stored = true;
        last.error_code = Some(WRONG_SHARD.to_string());
        last.error_message = Some(message);
        // The attempt's delay ran from the previous end to its start.
        retry.last_end = previous_end + last.delay + last.duration;
    }
    Decision::WrongShard(rec, shard_id)
}

fn retry_or_fail(
    v: &mut Verdicts,
    mut rec: UserRecord,
    f: &Failure,
    now: Instant,
    config: &Config,
) {
    if !f.retry {
        let failure = RecordFailure {
            code: f.code.to_string(),
            message: f.message.to_string(),
            attempts: rec.take_attempts(),
        };
        v.failed.push((rec, failure));
    } else if rec.expiration(config) <= now {
        let failure = expired(&mut rec, Some(f.code));
        v.failed.push((rec, failure));
    } else {
        v.retry.push(rec);
    }
}

/// The `Expired` failure of `rec`, taking its attempts.
pub(crate) fn expired(rec: &mut UserRecord, last_error: Option<&str>) -> RecordFailure {
    let message = match last_error {
        Some(code) => format!("record not put within RecordTtl; last error: {code}"),
        None => "record not put within RecordTtl".to_string(),
    };
    RecordFailure {
        code: EXPIRED.to_string(),
        message,
        attempts: rec.take_attempts(),
    }
}

/// Exponential backoff with full jitter, from a small seeded generator.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    state: u64,
}

impl Backoff {
    /// A backoff with `config`'s base and cap, seeded.
    pub(crate) fn new(config: &Config, seed: u64) -> Self {
        Backoff {
            base: config.retry_backoff_base,
            cap: config.retry_backoff_cap,
            state: seed,
        }
    }

    /// SplitMix64: small, fast and good enough for jitter.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The delay before retry number `n` (1 = first retry).
    pub(crate) fn delay(&mut self, n: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.cap);
        // 53 random bits as a fraction in [0, 1].
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_support::user_record;
    use crate::shard_map::MapShard;
    use kinesis_proto::KinesisError;
    use kinesis_proto::hash_key::{HashRange, even_split};
    use kinesis_proto::model::PutRecordsResultEntry;

    /// The records `v` says were put, each with its result.
    fn put(v: &mut Verdicts) -> Vec<(UserRecord, PutResult)> {
        std::mem::take(&mut v.succeeded)
            .into_iter()
            .flat_map(Landed::into_results)
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ok(shard: &str, seq: &str) -> PutRecordsResultEntry {
        PutRecordsResultEntry {
            sequence_number: Some(seq.into()),
            shard_id: Some(shard.into()),
            ..Default::default()
        }
    }

    fn err(code: &str) -> PutRecordsResultEntry {
        PutRecordsResultEntry {
            error_code: Some(code.into()),
            error_message: Some("m".into()),
            ..Default::default()
        }
    }

    fn output(records: Vec<PutRecordsResultEntry>) -> PutRecordsOutput {
        PutRecordsOutput {
            failed_record_count: records.iter().filter(|r| r.error_code.is_some()).count() as i64,
            records,
            encryption_type: None,
        }
    }

    /// Kinesis records of user records keyed `keys`, all predicted on `shard`.
    fn krs(keys: &[&[&str]], shard: &str, t0: Instant, c: &Config) -> Vec<KinesisRecord> {
        let mut seq = 0;
        keys.iter()
            .map(|ks| {
                let recs = ks
                    .iter()
                    .map(|k| {
                        seq += 1;
                        user_record(seq, k, b"d", t0, c).0
                    })
                    .collect();
                KinesisRecord::new(recs, Some(shard.into()), c)
            })
            .collect()
    }

    fn two_shards() -> ShardMap {
        let r = even_split(2);
        ShardMap::new(
            1,
            vec![
                MapShard {
                    id: "s0".into(),
                    range: r[0],
                },
                MapShard {
                    id: "s1".into(),
                    range: r[1],
                },
            ],
        )
    }

    #[test]
    fn successes_throttles_and_errors_per_entry() {
        let c = Config::default();
        let t0 = Instant::now();
        let (start, end) = (t0 + ms(5), t0 + ms(9));
        let records = krs(&[&["a", "b"], &["c"], &["d"], &["e"]], "s0", t0, &c);
        let out = output(vec![
            ok("s0", "100"),
            err("ProvisionedThroughputExceededException"),
            err("InternalFailure"),
            err("KMSAccessDeniedException"),
        ]);
        let map = ShardMap::new(
            1,
            vec![MapShard {
                id: "s0".into(),
                range: HashRange::FULL,
            }],
        );
        let mut v = classify(records, Some(&map), Ok(out), start, end, &c);
        let put = put(&mut v);
        assert_eq!(put.len(), 2);
        let (_, r) = &put[1];
        assert_eq!(
            (&*r.shard_id, &*r.sequence_number, r.sub_sequence_number),
            ("s0", "100", 1)
        );
        assert_eq!(r.attempts.len(), 1);
        assert_eq!(r.attempts[0].delay, ms(5));
        assert_eq!(r.attempts[0].duration, ms(4));
        assert_eq!(v.retry.len(), 2);
        assert_eq!(
            v.retry[0].attempts()[0].error_code.as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
        assert!(!v.retry[0].attempts()[0].possibly_stored);
        assert_eq!(v.failed.len(), 1);
        assert_eq!(v.failed[0].1.code, "KMSAccessDeniedException");
        assert!(!v.invalidate_map);
        assert_eq!(v.kinesis.len(), 4);
        assert_eq!(
            v.kinesis[1].error_code.as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
    }

    #[test]
    fn fail_if_throttled_fails_throttled_records() {
        let c = Config::builder().fail_if_throttled(true).build();
        let t0 = Instant::now();
        let v = classify(
            krs(&[&["a"], &["b"]], "s0", t0, &c),
            None,
            Ok(output(vec![
                err("ProvisionedThroughputExceededException"),
                err("InternalFailure"),
            ])),
            t0,
            t0,
            &c,
        );
        assert_eq!(v.failed.len(), 1);
        assert_eq!(v.retry.len(), 1);
        let whole = ClientError::Service(KinesisError::throughput_exceeded("slow down").into());
        let v = classify(krs(&[&["a"]], "s0", t0, &c), None, Err(whole), t0, t0, &c);
        assert_eq!(v.failed.len(), 1);
    }

    #[test]
    fn whole_call_errors() {
        let c = Config::default();
        let t0 = Instant::now();
        let cases = [
            (
                ClientError::Timeout {
                    after: ms(10),
                    origin: Default::default(),
                },
                true,
                true,
            ),
            (ClientError::Transport("reset".into()), true, true),
            (ClientError::Connect("refused".into()), true, false),
            (
                ClientError::Service(KinesisError::internal("boom").into()),
                true,
                true,
            ),
            (
                ClientError::Service(KinesisError::throughput_exceeded("x").into()),
                true,
                false,
            ),
            (
                ClientError::Service(KinesisError::not_found("no stream").into()),
                false,
                false,
            ),
        ];
        for (e, retried, stored) in cases {
            let code = client_error_code(&e);
            let v = classify(krs(&[&["a", "b"]], "s0", t0, &c), None, Err(e), t0, t0, &c);
            assert_eq!(v.retry.len(), if retried { 2 } else { 0 }, "{code}");
            assert_eq!(v.failed.len(), if retried { 0 } else { 2 }, "{code}");
            let attempts = if retried {
                v.retry[0].attempts()
            } else {
                &v.failed[0].1.attempts
            };
            assert_eq!(attempts[0].possibly_stored, stored, "{code}");
            assert_eq!(attempts[0].error_code.as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn count_mismatch_and_expiry() {
        let c = Config::default();
        let t0 = Instant::now();
        let v = classify(
            krs(&[&["a"], &["b"]], "s0", t0, &c),
            None,
            Ok(output(vec![ok("s0", "1")])),
            t0,
            t0,
            &c,
        );
        assert_eq!(v.retry.len(), 2);
        assert_eq!(
            v.retry[0].attempts()[0].error_code.as_deref(),
            Some(RECORD_COUNT_MISMATCH)
        );
        // Answered after the TTL: the failed record expires instead of being retried.
        let late = t0 + c.record_ttl;
        let v = classify(
            krs(&[&["a"]], "s0", t0, &c),
            None,
            Ok(output(vec![err("InternalFailure")])),
            late,
            late,
            &c,
        );
        assert_eq!(v.failed.len(), 1);
        assert!(v.failed[0].1.is_expired());
        assert_eq!(v.failed[0].1.attempts.len(), 1);
    }

    #[test]
    fn wrong_shard_after_a_split() {
        let c = Config::default();
        let t0 = Instant::now();
        let map = two_shards();
        let r = even_split(2);
        // Keys hashing into each half.
        let (mut lo, mut hi) = (None, None);
        for i in 0..100 {
            let k = format!("k{i}");
            let h = kinesis_proto::hash_key::hash_key_for_partition_key(&k);
            if r[0].contains(h) {
                lo.get_or_insert(k)
            } else {
                hi.get_or_insert(k)
            };
        }
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        // Predicted on a parent "p" (stale map); landed on s0, which owns only `lo`: a
        // consumer drops the whole aggregate (as the Java KCL does), so all of it is retried.
        let mut v = classify(
            krs(&[&[&lo, &hi, &lo]], "p", t0, &c),
            Some(&map),
            Ok(output(vec![ok("s0", "7")])),
            t0,
            t0,
            &c,
        );
        assert!(v.invalidate_map);
        assert_eq!(put(&mut v).len(), 0);
        assert_eq!(v.retry.len(), 3);
        assert_eq!(v.wrong_shard, vec![(Arc::from("s0"), 3)]);
        let a = &v.retry[0].attempts()[0];
        assert_eq!(a.error_code.as_deref(), Some(WRONG_SHARD));
        assert!(a.possibly_stored);
        // An aggregate s0 owns whole succeeds, moved or not.
        let mut v = classify(
            krs(&[&[&lo, &lo]], "p", t0, &c),
            Some(&map),
            Ok(output(vec![ok("s0", "7")])),
            t0,
            t0,
            &c,
        );
        let done = put(&mut v);
        assert_eq!((done.len(), v.retry.len()), (2, 0));
        assert_eq!(done[1].1.sub_sequence_number, 1);
        // An unknown child: the whole aggregate waits for the new map.
        let mut v = classify(
            krs(&[&[&hi, &lo, &hi]], "p", t0, &c),
            Some(&map),
            Ok(output(vec![ok("child-9", "8")])),
            t0,
            t0,
            &c,
        );
        assert_eq!(
            (put(&mut v).len(), v.retry.len(), v.undecided.len()),
            (0, 0, 3)
        );
        let refreshed = ShardMap::new(
            2,
            vec![
                MapShard {
                    id: "child-9".into(),
                    range: r[1],
                },
                MapShard {
                    id: "s0".into(),
                    range: r[0],
                },
            ],
        );
        // child-9 owns two of the three: the whole aggregate is retried.
        for decision in confirm_aggregates(v.undecided, Some(&refreshed)) {
            let Decision::WrongShard(rec, shard) = decision else {
                panic!("child-9 does not own the whole aggregate");
            };
            assert_eq!(&*shard, "child-9");
            let attempts = rec.attempts();
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].error_code.as_deref(), Some(WRONG_SHARD));
            assert!(attempts[0].possibly_stored && !attempts[0].success);
        }
        // Under per-key ordering nothing waits: the unknown ones are retried at once.
        let ordered = Config::builder()
            .ordering(Ordering::PerPartitionKey)
            .build();
        let mut v = classify(
            krs(&[&[&hi, &lo, &hi]], "p", t0, &ordered),
            Some(&map),
            Ok(output(vec![ok("child-9", "8")])),
            t0,
            t0,
            &ordered,
        );
        assert_eq!(
            (put(&mut v).len(), v.retry.len(), v.undecided.len()),
            (0, 3, 0)
        );
        // A single (unaggregated) record is routed by its own key: always owned.
        let mut v = classify(
            krs(&[&[&hi]], "p", t0, &c),
            Some(&map),
            Ok(output(vec![ok("s0", "9")])),
            t0,
            t0,
            &c,
        );
        assert_eq!(put(&mut v).len(), 1);
        assert!(v.invalidate_map);
    }

    #[test]
    fn backoff_grows_with_full_jitter_under_the_cap() {
        let c = Config::builder().retry_backoff(ms(100), ms(1000)).build();
        let mut b = Backoff::new(&c, 42);
        for n in 1..=10u32 {
            let ceiling = ms(100 * (1 << (n - 1))).min(ms(1000));
            let draws: Vec<_> = (0..200).map(|_| b.delay(n)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling));
            let max = draws.iter().max().unwrap();
            assert!(*max > ceiling.mul_f64(0.9), "{n}: {max:?}");
        }
        // Same seed, same delays.
        let mut x = Backoff::new(&c, 7);
        let mut y = Backoff::new(&c, 7);
        assert_eq!(
            (0..5).map(|_| x.delay(3)).collect::<Vec<_>>(),
            (0..5).map(|_| y.delay(3)).collect::<Vec<_>>()
        );
    }
}
