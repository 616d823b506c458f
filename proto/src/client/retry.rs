//! The standard retry policy: which failures are retried, and how long to wait.

use super::error::ClientError;
use crate::model::Operation;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The AWS SDKs' standard retry mode, made safe for non-idempotent writes.
///
/// A failed attempt is retried when all of these hold:
/// * fewer than `max_attempts` attempts were made;
/// * [`ClientError::is_retryable`] (throttling, 5xx, timeouts, connect and
///   transport errors);
/// * the request was certainly not applied
///   ([`ClientError::may_have_been_applied`] is false), or the operation is
///   [idempotent](RetryPolicy::is_idempotent).
///
/// So PutRecord and PutRecords are retried after throttling and connect
/// errors, but not after a timeout, a reset connection or a 500, where the
/// first attempt may have stored the records. That narrows duplicates but
/// cannot rule them out (a front end may answer 4xx or refuse a connection
/// after a back end stored a record): Kinesis writes are at-least-once. The
/// AWS SDKs do retry writes after such errors. The producer (kpl) sets
/// `max_attempts = 1` and retries failed records itself, record by record.
///
/// Delays use exponential backoff with full jitter: before retry *n* (after
/// *n* failed attempts) wait a uniformly random time in
/// `[0, min(cap, base · 2^(n-1)))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per call, at least 1.
    pub max_attempts: u32,
    /// Backoff ceiling after the first failed attempt.
    pub base: Duration,
    /// Upper bound of every delay.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Whether repeating an already-applied call of this operation does no
    /// harm: reads, and writes with set semantics (tags, enhanced monitoring).
    ///
    /// Stream and shard management calls are not: a repeated CreateStream,
    /// SplitShard or RegisterStreamConsumer fails with a misleading
    /// `ResourceInUseException` although the first attempt succeeded.
    pub fn is_idempotent(op: Operation) -> bool {
        match op {
            Operation::DescribeLimits
            | Operation::DescribeStream
            | Operation::DescribeStreamConsumer
            | Operation::DescribeStreamSummary
            | Operation::GetRecords
            | Operation::GetShardIterator
            | Operation::ListShards
            | Operation::ListStreamConsumers
            | Operation::ListStreams
            | Operation::ListTagsForStream
            | Operation::AddTagsToStream
            | Operation::RemoveTagsFromStream
            | Operation::EnableEnhancedMonitoring
            | Operation::DisableEnhancedMonitoring => true,
            Operation::CreateStream
            | Operation::DeleteStream
            | Operation::DecreaseStreamRetentionPeriod
            | Operation::IncreaseStreamRetentionPeriod
            | Operation::DeregisterStreamConsumer
            | Operation::RegisterStreamConsumer
            | Operation::MergeShards
            | Operation::SplitShard
            | Operation::UpdateShardCount
            | Operation::UpdateStreamMode
            | Operation::StartStreamEncryption
            | Operation::StopStreamEncryption
            | Operation::PutRecord
            | Operation::PutRecords
            | Operation::SubscribeToShard => false,
        }
    }

    /// Whether to make another attempt after `attempts_made` attempts, the last of which failed with `err`.
    pub fn should_retry(&self, op: Operation, err: &ClientError, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
            && err.is_retryable()
            && (!err.may_have_been_applied() || Self::is_idempotent(op))
    }

    /// The upper bound of the delay after `attempts_made` failed attempts: `min(cap, base · 2^(n-1))`.
    pub fn backoff_ceiling(&self, attempts_made: u32) -> Duration {
        let doublings = attempts_made.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// A full-jitter delay after `attempts_made` failed attempts: uniform in `[0, ceiling)`.
    pub fn backoff(&self, attempts_made: u32, rng: &mut Jitter) -> Duration {
        self.backoff_ceiling(attempts_made).mul_f64(rng.unit())
    }
}

/// A small, seedable random source for backoff jitter (SplitMix64).
///
/// Jitter needs spread, not unpredictability; a local generator keeps the
/// crate free of a `rand` dependency and makes backoff testable.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with a fixed seed (for tests).
    pub fn seeded(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// A generator seeded from the clock and a process-wide counter, so that
    /// concurrent callers backing off at the same instant still spread out.
    pub fn from_entropy() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mut j = Jitter::seeded(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        j.next_u64();
        j
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, KinesisError};

    fn svc(code: ErrorCode) -> ClientError {
        ClientError::Service(KinesisError::new(code, "m").into())
    }

    #[test]
    fn ceilings_double_from_base_up_to_cap() {
        let p = RetryPolicy::default();
        let ms = |n| p.backoff_ceiling(n).as_millis();
        assert_eq!(ms(1), 100);
        assert_eq!(ms(2), 200);
        assert_eq!(ms(3), 400);
        assert_eq!(ms(8), 12_800);
        assert_eq!(ms(9), 20_000);
        assert_eq!(ms(1000), 20_000);
        assert_eq!(ms(u32::MAX), 20_000);
        assert_eq!(ms(0), 100);
    }

    #[test]
    fn backoff_is_within_bounds_and_spread() {
        let p = RetryPolicy::default();
        let mut rng = Jitter::seeded(42);
        for attempt in 1..40 {
            let ceiling = p.backoff_ceiling(attempt);
            let mut min = Duration::MAX;
            let mut max = Duration::ZERO;
            for _ in 0..500 {
                let d = p.backoff(attempt, &mut rng);
                assert!(d < ceiling || ceiling.is_zero(), "{d:?} >= {ceiling:?}");
                min = min.min(d);
                max = max.max(d);
            }
            // Full jitter: the draws cover most of [0, ceiling).
            assert!(min < ceiling / 10, "attempt {attempt}: min {min:?}");
            assert!(max > ceiling * 9 / 10, "attempt {attempt}: max {max:?}");
        }
        // Same seed, same delays.
        let a: Vec<_> = (1..5)
            .map(|n| p.backoff(n, &mut Jitter::seeded(7)))
            .collect();
        let b: Vec<_> = (1..5)
            .map(|n| p.backoff(n, &mut Jitter::seeded(7)))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn jitter_unit_is_in_range() {
        let mut rng = Jitter::seeded(0);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
        assert_ne!(
            Jitter::from_entropy().next_u64(),
            Jitter::from_entropy().next_u64()
        );
    }

    #[test]
    fn retry_decisions() {
        let p = RetryPolicy::default();
        let timeout = ClientError::Timeout {
            after: Duration::from_secs(6),
            origin: crate::client::Origin::default(),
        };
        let reset = ClientError::Transport("connection reset".into());
        let refused = ClientError::Connect("connection refused".into());
        let throttled = svc(ErrorCode::ProvisionedThroughputExceeded);
        let internal = svc(ErrorCode::InternalFailure);
        let not_found = svc(ErrorCode::ResourceNotFound);

        // Never applied: retried for any operation, within the attempt budget.
        for op in [
            Operation::PutRecords,
            Operation::GetRecords,
            Operation::CreateStream,
        ] {
            assert!(p.should_retry(op, &throttled, 1));
            assert!(p.should_retry(op, &refused, 2));
            assert!(!p.should_retry(op, &throttled, 3));
            assert!(!p.should_retry(op, &not_found, 1));
        }
        // Maybe applied: only idempotent operations are retried.
        for err in [&timeout, &reset, &internal] {
            assert!(!p.should_retry(Operation::PutRecords, err, 1), "{err:?}");
            assert!(!p.should_retry(Operation::PutRecord, err, 1), "{err:?}");
            assert!(!p.should_retry(Operation::CreateStream, err, 1), "{err:?}");
            assert!(p.should_retry(Operation::GetRecords, err, 1), "{err:?}");
            assert!(p.should_retry(Operation::ListShards, err, 2), "{err:?}");
            assert!(!p.should_retry(Operation::ListShards, err, 3), "{err:?}");
        }
        let once = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        assert!(!once.should_retry(Operation::GetRecords, &throttled, 1));
    }
}
