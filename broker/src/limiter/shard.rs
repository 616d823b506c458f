//! The data-plane budgets of one shard: writes (bytes and records) and
//! polling reads (GetRecords calls and bytes, GetShardIterator calls).

use super::profile::Limits;
use super::throttle::{Throttle, ThrottleReason};
use super::token_bucket::{Nanos, TokenBucket};
use std::time::Duration;

/// Extra byte debt a write bucket may take on for one record larger than its
/// burst: enough for a 10 MiB record (the largest `MaxRecordSizeInKiB`) to
/// pass a full 1 MiB/s bucket, after which the shard is paced as usual.
const WRITE_LARGE_RECORD_DEBT: Duration = Duration::from_secs(9);

/// The bytes a record costs against the write limit: its data plus its
/// partition key's UTF-8 bytes (docs/limits.md).
pub fn record_cost(data_len: usize, partition_key: &str) -> u64 {
    u64::try_from(data_len.saturating_add(partition_key.len())).unwrap_or(u64::MAX)
}

/// Per-shard write limit: bytes (data + partition key) and records, 1 s burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardWriteLimiter {
    bytes: TokenBucket,
    records: TokenBucket,
}

impl ShardWriteLimiter {
    /// A limiter with `limits`' write rates, full at `now`.
    pub fn new(limits: &Limits, now: Nanos) -> ShardWriteLimiter {
        ShardWriteLimiter {
            bytes: TokenBucket::new(limits.write_bytes_per_sec, limits.burst, now)
                .with_max_debt(WRITE_LARGE_RECORD_DEBT),
            records: TokenBucket::new(limits.write_records_per_sec, limits.burst, now),
        }
    }

    /// Admit one record of `record_bytes` (see [`record_cost`]), taking its
    /// budget, or refuse it and take nothing.
    ///
    /// A record larger than the byte burst (a large record under a small
    /// profile) is admitted only into a full bucket and leaves it in debt, so
    /// it is slow rather than impossible.
    pub fn admit(&mut self, record_bytes: u64, now: Nanos) -> bool {
        let bytes_ok = if (record_bytes as f64) <= self.bytes.capacity() {
            self.bytes.time_until(record_bytes, now).is_zero()
        } else {
            self.bytes.is_full(now)
        };
        if !bytes_ok || !self.records.try_take(1, now) {
            return false;
        }
        self.bytes.take_or_debt(record_bytes, now);
        true
    }

    /// How long until a record of `record_bytes` would be admitted.
    pub fn time_until(&self, record_bytes: u64, now: Nanos) -> Duration {
        self.bytes
            .time_until(record_bytes, now)
            .max(self.records.time_until(1, now))
    }

    /// The byte bucket, for inspection.
    pub fn bytes(&self) -> &TokenBucket {
        &self.bytes
    }

    /// The record bucket, for inspection.
    pub fn records(&self) -> &TokenBucket {
        &self.records
    }
}

/// Per-shard read limit shared by every polling reader of the shard.
///
/// Call [`admit_call`](Self::admit_call) before reading and
/// [`charge_bytes`](Self::charge_bytes) with the response size afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardReadLimiter {
    calls: TokenBucket,
    bytes: TokenBucket,
    iterators: TokenBucket,
}

impl ShardReadLimiter {
    /// A limiter with `limits`' read rates, full at `now`.
    pub fn new(limits: &Limits, now: Nanos) -> ShardReadLimiter {
        ShardReadLimiter {
            calls: TokenBucket::new(limits.read_calls_per_sec, limits.burst, now),
            bytes: TokenBucket::new(limits.read_bytes_per_sec, limits.burst, now)
                .with_max_debt(limits.read_debt),
            iterators: TokenBucket::new(limits.get_shard_iterator_per_sec, limits.burst, now),
        }
    }

    /// Admit one GetRecords call, or say why not and for how long.
    ///
    /// A shard still repaying a large read refuses without spending a call.
    pub fn admit_call(&mut self, now: Nanos) -> Result<(), Throttle> {
        let debt = self.bytes.time_until(0, now);
        if !debt.is_zero() {
            return Err(Throttle {
                reason: ThrottleReason::ReadBytes,
                retry_after: debt,
            });
        }
        if self.calls.try_take(1, now) {
            Ok(())
        } else {
            Err(Throttle {
                reason: ThrottleReason::CallRate,
                retry_after: self.calls.time_until(1, now),
            })
        }
    }

    /// Charge the `n` bytes a GetRecords call returned; a large response puts
    /// the shard into debt for up to the profile's `read_debt` (5 s on AWS).
    pub fn charge_bytes(&mut self, n: u64, now: Nanos) {
        self.bytes.take_or_debt(n, now);
    }

    /// Admit one GetShardIterator call on this shard.
    pub fn admit_get_shard_iterator(&mut self, now: Nanos) -> Result<(), Throttle> {
        if self.iterators.try_take(1, now) {
            Ok(())
        } else {
            Err(Throttle {
                reason: ThrottleReason::CallRate,
                retry_after: self.iterators.time_until(1, now),
            })
        }
    }

    /// Read bytes that can be returned without going into debt.
    pub fn bytes_available(&self, now: Nanos) -> u64 {
        self.bytes.available(now)
    }

    /// The call bucket, for inspection.
    pub fn calls(&self) -> &TokenBucket {
        &self.calls
    }

    /// The byte bucket, for inspection.
    pub fn bytes(&self) -> &TokenBucket {
        &self.bytes
    }
}

/// Every data-plane budget of one shard, kept under the shard's one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLimits {
    /// PutRecord / PutRecords budget.
    pub write: ShardWriteLimiter,
    /// GetRecords and GetShardIterator budget.
    pub read: ShardReadLimiter,
}

impl ShardLimits {
    /// Full budgets with `limits`' rates at `now`.
    pub fn new(limits: &Limits, now: Nanos) -> ShardLimits {
        ShardLimits {
            write: ShardWriteLimiter::new(limits, now),
            read: ShardReadLimiter::new(limits, now),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::limiter::{LimitProfile, MIB, ThrottleReason};
    use proptest::prelude::*;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    /// Offers `offered` records per second evenly for `secs` seconds; returns admitted count.
    pub(in crate::limiter) fn offer_records(
        limits: &Limits,
        offered: u64,
        bytes: u64,
        secs: u64,
    ) -> u64 {
        let mut w = ShardWriteLimiter::new(limits, Nanos::ZERO);
        let step = 1_000_000_000 / offered;
        (0..offered * secs)
            .filter(|i| w.admit(bytes, Nanos(i * step)))
            .count() as u64
    }

    #[test]
    fn double_record_rate_admits_about_half() {
        // The 1000-record burst lets the first second through whole; after
        // that exactly half of 2000/s passes.
        let mut w = ShardWriteLimiter::new(&Limits::aws(), Nanos::ZERO);
        let mut per_second = [0u32; 3];
        for i in 0..6000u64 {
            if w.admit(10, Nanos(i * 500_000)) {
                per_second[(i / 2000) as usize] += 1;
            }
        }
        assert!((1999..=2000).contains(&per_second[0]), "{per_second:?}");
        assert!((999..=1001).contains(&per_second[1]), "{per_second:?}");
        assert!((999..=1001).contains(&per_second[2]), "{per_second:?}");
        let total: u32 = per_second.iter().sum();
        assert!((3999..=4000).contains(&total), "{per_second:?}");
    }

    #[test]
    fn byte_rate_caps_at_one_mib_per_second() {
        // 1.5 MiB/s offered as 150 records/s of 10 KiB for 10 s.
        let limits = Limits::aws();
        let admitted = offer_records(&limits, 150, 10 * 1024, 10) * 10 * 1024;
        let ceiling = 11 * MIB; // 10 s of refill + 1 s burst
        assert!(admitted <= ceiling, "admitted {admitted}");
        assert!(admitted >= ceiling - 20 * 1024, "admitted {admitted}");
    }

    #[test]
    fn put_records_fails_only_records_over_budget() {
        let mut w = ShardWriteLimiter::new(&Limits::aws(), Nanos::ZERO);
        // 600 KiB passes, the next 600 KiB does not, then a 300 KiB one fits again.
        assert!(w.admit(600 * 1024, Nanos::ZERO));
        assert!(!w.admit(600 * 1024, Nanos::ZERO));
        assert!(w.admit(300 * 1024, Nanos::ZERO));
        assert_eq!(w.bytes().available(Nanos::ZERO), 124 * 1024);
        // A refused record takes no record budget either.
        assert_eq!(w.records().available(Nanos::ZERO), 998);
    }

    #[test]
    fn oversize_record_passes_a_full_bucket_and_leaves_debt() {
        let limits = Limits::aws().scaled(0.5);
        let mut w = ShardWriteLimiter::new(&limits, Nanos::ZERO);
        assert!(w.admit(MIB, Nanos::ZERO));
        assert!(!w.admit(1, ms(500)));
        // 1 MiB from a 0.5 MiB bucket refilling at 0.5 MiB/s: 1 s of debt.
        assert_eq!(
            w.time_until(1, Nanos::ZERO),
            Duration::from_nanos(1_000_001_908)
        );
        assert!(w.admit(1, ms(1100)));
    }

    #[test]
    fn sixth_call_within_a_second_is_refused() {
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        for i in 0..5 {
            assert_eq!(r.admit_call(ms(i * 20)), Ok(()), "call {i}");
        }
        let refused = r.admit_call(ms(100)).unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::CallRate);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(r.admit_call(ms(200)), Ok(()));
    }

    #[test]
    fn sustained_read_calls_settle_at_five_per_second() {
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        // 10 calls/s over 9.9 s: 5 burst + 49.5 refilled.
        let admitted = (0..100)
            .filter(|i| r.admit_call(ms(i * 100)).is_ok())
            .count();
        assert_eq!(admitted, 54);
    }

    #[test]
    fn ten_mib_read_blocks_reads_for_about_five_seconds() {
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        // Steady polling has already spent the 1 s byte burst.
        assert_eq!(r.admit_call(Nanos::ZERO), Ok(()));
        r.charge_bytes(2 * MIB, Nanos::ZERO);
        assert_eq!(r.admit_call(ms(1)), Ok(()));
        r.charge_bytes(10 * MIB, ms(1));
        let refused = r.admit_call(ms(1000)).unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::ReadBytes);
        assert!(r.admit_call(ms(4900)).is_err());
        assert_eq!(r.admit_call(ms(5001)), Ok(()));

        // From a full bucket the saved second of burst shortens the wait to 4 s.
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        assert_eq!(r.admit_call(Nanos::ZERO), Ok(()));
        r.charge_bytes(10 * MIB, Nanos::ZERO);
        assert!(r.admit_call(ms(3990)).is_err());
        assert_eq!(r.admit_call(ms(4000)), Ok(()));
    }

    #[test]
    fn debt_is_capped_at_five_seconds() {
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        r.charge_bytes(100 * MIB, Nanos::ZERO);
        assert_eq!(
            r.admit_call(Nanos::ZERO).unwrap_err().retry_after,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn shared_read_bytes_across_readers() {
        // Two readers polling the same shard share one byte budget.
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        let mut read = 0u64;
        for i in 0..40u64 {
            let now = ms(i * 250);
            if r.admit_call(now).is_ok() {
                r.charge_bytes(MIB, now);
                read += MIB;
            }
        }
        // 10 s at 2 MiB/s, plus the burst and one read's worth of debt.
        assert!(read <= 23 * MIB, "read {read}");
        assert!(read >= 20 * MIB, "read {read}");
    }

    #[test]
    fn get_shard_iterator_is_limited_per_shard() {
        let mut r = ShardReadLimiter::new(&Limits::aws(), Nanos::ZERO);
        for _ in 0..5 {
            assert_eq!(r.admit_get_shard_iterator(Nanos::ZERO), Ok(()));
        }
        assert!(r.admit_get_shard_iterator(Nanos::ZERO).is_err());
        // Independent from GetRecords.
        assert_eq!(r.admit_call(Nanos::ZERO), Ok(()));
    }

    #[test]
    fn record_cost_counts_partition_key_bytes() {
        assert_eq!(record_cost(10, "ключ"), 18);
    }

    proptest! {
        /// Whatever is offered, admitted bytes and records in any window never
        /// exceed rate × window + burst.
        #[test]
        fn admitted_never_exceeds_rate_times_window_plus_burst(
            offers in prop::collection::vec((0u64..50_000_000, 1u64..=MIB), 1..200),
            scale in prop::sample::select(vec![0.1, 1.0, 3.0]),
        ) {
            let limits = LimitProfile::Scaled(scale).limits();
            let mut w = ShardWriteLimiter::new(&limits, Nanos::ZERO);
            let mut now = 0u64;
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            for (gap, bytes) in offers {
                now += gap;
                if w.admit(bytes, Nanos(now)) {
                    admitted.push((now, bytes));
                }
            }
            let byte_rate = limits.write_bytes_per_sec;
            let record_rate = limits.write_records_per_sec;
            for i in 0..admitted.len() {
                let mut bytes = 0u64;
                let mut oversize = 0.0;
                for (j, (t, b)) in admitted.iter().enumerate().skip(i) {
                    bytes += b;
                    if (*b as f64) > byte_rate {
                        oversize += 1.0;
                    }
                    let window = (t - admitted[i].0) as f64 / 1e9;
                    let records = (j - i + 1) as f64;
                    // A record above the byte burst may borrow up to the write
                    // debt (9 s); the floor can round each such charge by < 1 byte.
                    let slack = if oversize > 0.0 { 9.0 * byte_rate + oversize } else { 0.0 };
                    prop_assert!(bytes as f64 <= byte_rate * (window + 1.0) + slack + 1.0);
                    prop_assert!(records <= record_rate * (window + 1.0) + 1e-6);
                }
            }
        }
    }
}
