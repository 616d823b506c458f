//! Kinesis rate limits as deterministic token buckets (docs/limits.md).
//!
//! Everything here is pure: the caller passes the current time as a
//! [`Nanos`] (nanoseconds since any fixed origin, e.g. broker start, see
//! [`Nanos::since`]) and wraps each limiter in whatever lock it already holds
//! for the shard or stream. No clocks, no sockets, no threads.
//!
//! * [`ShardWriteLimiter`]: 1 MiB/s (data + partition key) **and** 1000
//!   records/s per shard, 1 s burst. [`ShardWriteLimiter::admit`] is asked once
//!   per record, so PutRecords can fail exactly the records over budget and
//!   accept the rest.
//! * [`ShardReadLimiter`]: 5 GetRecords calls/s and 2 MiB/s per shard, shared
//!   by all polling readers. A large response borrows up to 5 s of future byte
//!   budget, so the calls after a ~10 MiB read are refused until the debt is
//!   repaid. Also 5 GetShardIterator calls/s per shard.
//! * [`FanOutLimiter`]: 2 MiB/s per (consumer, shard) for SubscribeToShard
//!   pushers to pace against, and 1 SubscribeToShard call/s.
//! * [`ControlPlaneLimiter`]: per-operation TPS, account-wide or per stream,
//!   from the spec's table ([`control_plane_rate`]).
//! * [`LimitProfile`] / [`LimitsConfig`]: `--limits aws` (default), `off`,
//!   `scale=10`, plus per-stream overrides such as `aws,bulk:scale=100,tests:off`.
//!
//! Refused data-plane calls map to `ProvisionedThroughputExceededException`
//! ([`shard_throughput_exceeded`]); refused control-plane calls map to
//! `LimitExceededException` ([`control_plane_exceeded`]).
//!
//! Buckets keep their level as an integer count of pico-tokens and their rate
//! as milli-tokens per second, so that rate × elapsed nanoseconds is exact and
//! a simulated run always gives the same answer.

use kinesis_proto::KinesisError;
use kinesis_proto::model::Operation;
use std::collections::HashMap;
use std::fmt;
use std::ops::Add;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// One mebibyte, the unit every Kinesis byte limit is stated in.
pub const MIB: u64 = 1024 * 1024;

/// Pico-tokens per token: the bucket's fixed-point scale.
const PICO: i128 = 1_000_000_000_000;

/// Rates at or above this many tokens/s are treated as unlimited; it keeps the
/// fixed-point arithmetic far from overflow.
const UNLIMITED_RATE: f64 = 1e15;

/// Extra byte debt a write bucket may take on for one record larger than its
/// burst: enough for a 10 MiB record (the largest `MaxRecordSizeInKiB`) to
/// pass a full 1 MiB/s bucket, after which the shard is paced as usual.
const WRITE_LARGE_RECORD_DEBT: Duration = Duration::from_secs(9);

/// A point in time: nanoseconds since an origin the caller fixes (broker start in
/// production, zero in simulations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

impl Nanos {
    /// The origin.
    pub const ZERO: Nanos = Nanos(0);

    /// `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Nanos {
        Nanos(secs.saturating_mul(1_000_000_000))
    }

    /// `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Nanos {
        Nanos(millis.saturating_mul(1_000_000))
    }

    /// `d` after the origin, saturating at `u64::MAX` nanoseconds (~584 years).
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The time of `at` measured from `origin` (zero if `at` is earlier).
    pub fn since(origin: Instant, at: Instant) -> Nanos {
        Nanos::from_duration(at.saturating_duration_since(origin))
    }

    /// The time since the origin as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Nanos {
    type Output = Nanos;

    fn add(self, rhs: Duration) -> Nanos {
        Nanos(self.0.saturating_add(Nanos::from_duration(rhs).0))
    }
}

fn duration_nanos(d: Duration) -> i128 {
    // Duration::as_nanos is u128 but never exceeds ~1.8e28, which fits i128.
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// A token bucket that may also run into bounded debt.
///
/// It starts full. Tokens refill continuously at `refill_per_sec` up to
/// `capacity` (= rate × burst). [`try_take`](Self::try_take) takes only what is
/// there; [`take_or_debt`](Self::take_or_debt) always takes and may leave the
/// level negative, down to −(rate × max debt), so later callers wait until the
/// debt is repaid. Time running backwards is treated as no time passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Refill rate in milli-tokens per second, i.e. pico-tokens per nanosecond.
    rate: i128,
    /// Largest level, in pico-tokens.
    capacity: i128,
    /// Lowest level `take_or_debt` may leave, in pico-tokens (≤ 0).
    floor: i128,
    /// Level at `last`, in pico-tokens.
    tokens: i128,
    /// When `tokens` was last brought up to date.
    last: Nanos,
    /// Admits everything; the `off` profile.
    unlimited: bool,
}

impl TokenBucket {
    /// A full bucket refilling at `refill_per_sec` that holds `burst` worth of refill.
    ///
    /// An infinite (or ≥ 1e15) rate gives an unlimited bucket; zero, negative
    /// or NaN gives one that never refills.
    pub fn new(refill_per_sec: f64, burst: Duration, now: Nanos) -> TokenBucket {
        if refill_per_sec >= UNLIMITED_RATE {
            return TokenBucket::unlimited(now);
        }
        let rate = if refill_per_sec > 0.0 {
            // Rounded to a thousandth of a token per second; exact for every
            // profile the CLI can express with up to three decimals.
            (refill_per_sec * 1000.0).round() as i128
        } else {
            0
        };
        let capacity = rate.saturating_mul(duration_nanos(burst));
        TokenBucket {
            rate,
            capacity,
            floor: 0,
            tokens: capacity,
            last: now,
            unlimited: false,
        }
    }

    /// A bucket that admits everything.
    pub fn unlimited(now: Nanos) -> TokenBucket {
        TokenBucket {
            rate: 0,
            capacity: 0,
            floor: 0,
            tokens: 0,
            last: now,
            unlimited: true,
        }
    }

    /// Allow [`take_or_debt`](Self::take_or_debt) to borrow up to `max_debt` of future refill.
    pub fn with_max_debt(mut self, max_debt: Duration) -> TokenBucket {
        self.floor = -self.rate.saturating_mul(duration_nanos(max_debt));
        self
    }

    /// Whether this bucket admits everything.
    pub fn is_unlimited(&self) -> bool {
        self.unlimited
    }

    /// Largest number of tokens the bucket holds (infinite when unlimited).
    pub fn capacity(&self) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.capacity as f64 / PICO as f64
        }
    }

    /// Tokens added per second (infinite when unlimited).
    pub fn refill_per_sec(&self) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.rate as f64 / 1000.0
        }
    }

    /// When the level was last brought up to date.
    pub fn last(&self) -> Nanos {
        self.last
    }

    /// Tokens available at `now`; negative while in debt, infinite when unlimited.
    pub fn tokens(&self, now: Nanos) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.level_at(now) as f64 / PICO as f64
        }
    }

    /// Whole tokens available at `now` (0 while in debt, `u64::MAX` when unlimited).
    pub fn available(&self, now: Nanos) -> u64 {
        if self.unlimited {
            return u64::MAX;
        }
        u64::try_from(self.level_at(now).max(0) / PICO).unwrap_or(u64::MAX)
    }

    /// Whether the bucket is full at `now` (always true when unlimited).
    pub fn is_full(&self, now: Nanos) -> bool {
        self.unlimited || self.level_at(now) >= self.capacity
    }

    /// Take `amount` tokens if they are all there; otherwise take nothing.
    ///
    /// An amount above the capacity is never admitted; see [`take_or_debt`](Self::take_or_debt).
    pub fn try_take(&mut self, amount: u64, now: Nanos) -> bool {
        if self.unlimited {
            return true;
        }
        self.refill(now);
        let need = i128::from(amount) * PICO;
        if self.tokens >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }

    /// Take `amount` tokens even if that leaves the bucket in debt (down to the
    /// floor set by [`with_max_debt`](Self::with_max_debt)); returns whether the
    /// amount was covered without debt.
    pub fn take_or_debt(&mut self, amount: u64, now: Nanos) -> bool {
        if self.unlimited {
            return true;
        }
        self.refill(now);
        let need = i128::from(amount) * PICO;
        let covered = self.tokens >= need;
        self.tokens = (self.tokens - need).max(self.floor.min(self.tokens));
        covered
    }

    /// How long from `now` until `amount` tokens are there (zero if they are).
    ///
    /// For an amount above the capacity this is the time until the bucket is
    /// full; `time_until(0, now)` is the time until any debt is repaid. A bucket
    /// that never refills answers `Duration::MAX`.
    pub fn time_until(&self, amount: u64, now: Nanos) -> Duration {
        if self.unlimited {
            return Duration::ZERO;
        }
        let need = i128::from(amount) * PICO;
        let level = self.level_at(now);
        if level >= need {
            return Duration::ZERO;
        }
        if self.rate == 0 {
            return Duration::MAX;
        }
        let deficit = need.min(self.capacity) - level;
        if deficit <= 0 {
            return Duration::ZERO;
        }
        // Round up so that waiting exactly this long is always enough.
        let nanos = (deficit + self.rate - 1) / self.rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn level_at(&self, now: Nanos) -> i128 {
        let elapsed = i128::from(now.0.saturating_sub(self.last.0));
        let refilled = self
            .tokens
            .saturating_add(self.rate.saturating_mul(elapsed));
        refilled.min(self.capacity.max(self.tokens))
    }

    fn refill(&mut self, now: Nanos) {
        self.tokens = self.level_at(now);
        self.last = self.last.max(now);
    }
}

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

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleReason {
    /// Too many calls per second.
    CallRate,
    /// The shard's read bytes are in debt after a large read.
    ReadBytes,
}

/// A refused call, and how long until the same call would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Throttle {
    /// Which budget ran out.
    pub reason: ThrottleReason,
    /// Time until the budget allows the call again.
    pub retry_after: Duration,
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            ThrottleReason::CallRate => "call rate exceeded",
            ThrottleReason::ReadBytes => "read throughput exceeded",
        };
        write!(f, "{what}; retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for Throttle {}

/// The service's text for a per-shard throttle, also used as a PutRecords
/// entry's `ErrorMessage`.
pub fn shard_throughput_message(shard_id: &str, stream: &str, account: &str) -> String {
    format!("Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")
}

/// `ProvisionedThroughputExceededException` for a refused PutRecord, GetRecords or GetShardIterator.
pub fn shard_throughput_exceeded(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::throughput_exceeded(shard_throughput_message(shard_id, stream, account))
}

/// `LimitExceededException` for a refused control-plane call; stream-scoped
/// limits name the stream as the service does.
pub fn control_plane_exceeded(
    operation: Operation,
    stream: Option<&str>,
    account: &str,
) -> KinesisError {
    let message = match stream {
        Some(stream) => format!("Rate exceeded for stream {stream} under account {account}."),
        None => format!(
            "Rate exceeded for operation {} under account {account}.",
            operation.name()
        ),
    };
    KinesisError::limit_exceeded(message)
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

/// Enhanced fan-out budget of one (consumer, shard) pair, for a
/// SubscribeToShard pusher to pace its events against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutLimiter {
    bytes: TokenBucket,
    subscribes: TokenBucket,
}

impl FanOutLimiter {
    /// A limiter with `limits`' fan-out rates, full at `now`.
    pub fn new(limits: &Limits, now: Nanos) -> FanOutLimiter {
        FanOutLimiter {
            bytes: TokenBucket::new(limits.fanout_bytes_per_sec, limits.burst, now)
                .with_max_debt(limits.read_debt),
            subscribes: TokenBucket::new(limits.subscribe_per_sec, limits.burst, now),
        }
    }

    /// Bytes that may be pushed now without going into debt (`u64::MAX` when unlimited).
    pub fn bytes_available(&self, now: Nanos) -> u64 {
        self.bytes.available(now)
    }

    /// Charge `n` pushed bytes; a record larger than what is available leaves
    /// the pair in debt, which [`time_until`](Self::time_until) then waits out.
    pub fn consume(&mut self, n: u64, now: Nanos) {
        self.bytes.take_or_debt(n, now);
    }

    /// How long to wait before `n` bytes are available (for `n` above the burst,
    /// until the bucket is full).
    pub fn time_until(&self, n: u64, now: Nanos) -> Duration {
        self.bytes.time_until(n, now)
    }

    /// Admit one SubscribeToShard call for this pair (1/s on AWS). The
    /// service's "already subscribed within 5 s" rule is subscription state,
    /// not a rate, and is not checked here.
    pub fn admit_subscribe(&mut self, now: Nanos) -> Result<(), Throttle> {
        if self.subscribes.try_take(1, now) {
            Ok(())
        } else {
            Err(Throttle {
                reason: ThrottleReason::CallRate,
                retry_after: self.subscribes.time_until(1, now),
            })
        }
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

/// Whether a control-plane limit is shared by the account or kept per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One budget for the whole account.
    Account,
    /// One budget per stream.
    Stream,
}

/// A control-plane operation's transactions-per-second limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlPlaneRate {
    /// Calls per second (infinite when off).
    pub tps: f64,
    /// Who shares the budget.
    pub scope: Scope,
}

/// The AWS control-plane TPS for `operation` (docs/limits.md), or `None` for
/// operations without one (data-plane calls have their own limiters).
pub fn control_plane_rate(operation: Operation) -> Option<ControlPlaneRate> {
    use Operation as Op;
    let (tps, scope) = match operation {
        Op::CreateStream
        | Op::DeleteStream
        | Op::ListStreams
        | Op::SplitShard
        | Op::MergeShards
        | Op::AddTagsToStream
        | Op::RemoveTagsFromStream
        | Op::ListTagsForStream
        | Op::RegisterStreamConsumer => (5.0, Scope::Account),
        Op::DescribeStream | Op::UpdateShardCount => (10.0, Scope::Account),
        Op::DescribeStreamSummary => (20.0, Scope::Account),
        Op::DeregisterStreamConsumer | Op::ListStreamConsumers => (5.0, Scope::Stream),
        Op::DescribeStreamConsumer => (20.0, Scope::Stream),
        Op::ListShards => (1000.0, Scope::Stream),
        _ => return None,
    };
    Some(ControlPlaneRate { tps, scope })
}

/// Concrete numbers for every limit, produced by a [`LimitProfile`].
///
/// Rates are per second; `f64::INFINITY` means unlimited. Burst and debt
/// are durations of refill, so scaling a rate scales its burst too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Write bytes (data + partition key) per shard per second.
    pub write_bytes_per_sec: f64,
    /// Records written per shard per second.
    pub write_records_per_sec: f64,
    /// GetRecords calls per shard per second.
    pub read_calls_per_sec: f64,
    /// GetRecords bytes per shard per second, shared by all polling readers.
    pub read_bytes_per_sec: f64,
    /// GetShardIterator calls per shard per second.
    pub get_shard_iterator_per_sec: f64,
    /// Enhanced fan-out bytes per consumer per shard per second.
    pub fanout_bytes_per_sec: f64,
    /// SubscribeToShard calls per consumer per shard per second.
    pub subscribe_per_sec: f64,
    /// How much refill a full bucket holds.
    pub burst: Duration,
    /// How much future read budget one large response may borrow.
    pub read_debt: Duration,
    /// Multiplier applied to [`control_plane_rate`]'s TPS.
    pub control_plane_scale: f64,
}

impl Limits {
    /// The service's numbers.
    pub fn aws() -> Limits {
        Limits {
            write_bytes_per_sec: MIB as f64,
            write_records_per_sec: 1000.0,
            read_calls_per_sec: 5.0,
            read_bytes_per_sec: (2 * MIB) as f64,
            get_shard_iterator_per_sec: 5.0,
            fanout_bytes_per_sec: (2 * MIB) as f64,
            subscribe_per_sec: 1.0,
            burst: Duration::from_secs(1),
            read_debt: Duration::from_secs(5),
            control_plane_scale: 1.0,
        }
    }

    /// No limits at all.
    pub fn off() -> Limits {
        Limits::aws().scaled(f64::INFINITY)
    }

    /// These limits with every rate multiplied by `factor`.
    pub fn scaled(self, factor: f64) -> Limits {
        Limits {
            write_bytes_per_sec: self.write_bytes_per_sec * factor,
            write_records_per_sec: self.write_records_per_sec * factor,
            read_calls_per_sec: self.read_calls_per_sec * factor,
            read_bytes_per_sec: self.read_bytes_per_sec * factor,
            get_shard_iterator_per_sec: self.get_shard_iterator_per_sec * factor,
            fanout_bytes_per_sec: self.fanout_bytes_per_sec * factor,
            subscribe_per_sec: self.subscribe_per_sec * factor,
            control_plane_scale: self.control_plane_scale * factor,
            ..self
        }
    }

    /// The TPS limit for a control-plane `operation` under these limits.
    pub fn control_plane(&self, operation: Operation) -> Option<ControlPlaneRate> {
        control_plane_rate(operation).map(|rate| ControlPlaneRate {
            tps: rate.tps * self.control_plane_scale,
            ..rate
        })
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::aws()
    }
}

/// Which limits the broker enforces, as chosen with `--limits`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LimitProfile {
    /// The service's limits.
    #[default]
    Aws,
    /// No limits.
    Off,
    /// The service's limits times a positive factor, for load tests.
    Scaled(f64),
}

impl LimitProfile {
    /// The concrete numbers of this profile.
    pub fn limits(&self) -> Limits {
        match *self {
            LimitProfile::Aws => Limits::aws(),
            LimitProfile::Off => Limits::off(),
            LimitProfile::Scaled(factor) => Limits::aws().scaled(factor),
        }
    }
}

/// A `--limits` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitProfileError(String);

impl fmt::Display for LimitProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitProfileError {}

const PROFILE_HELP: &str =
    r#"expected "aws", "off" or "scale=<factor>" (for example "scale=10" or "scale=0.5")"#;

impl FromStr for LimitProfile {
    type Err = LimitProfileError;

    fn from_str(s: &str) -> Result<LimitProfile, LimitProfileError> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("aws") {
            return Ok(LimitProfile::Aws);
        }
        if text.eq_ignore_ascii_case("off") {
            return Ok(LimitProfile::Off);
        }
        let factor = match text.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("scale") => value.trim(),
            _ => {
                return Err(LimitProfileError(format!(
                    "unknown limit profile \"{text}\": {PROFILE_HELP}"
                )));
            }
        };
        match factor.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(LimitProfile::Scaled(f)),
            Ok(_) => Err(LimitProfileError(format!(
                "scale factor in \"{text}\" must be a positive finite number"
            ))),
            Err(_) => Err(LimitProfileError(format!(
                "scale factor \"{factor}\" in \"{text}\" is not a number: {PROFILE_HELP}"
            ))),
        }
    }
}

impl fmt::Display for LimitProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitProfile::Aws => f.write_str("aws"),
            LimitProfile::Off => f.write_str("off"),
            LimitProfile::Scaled(factor) => write!(f, "scale={factor}"),
        }
    }
}

/// A default [`LimitProfile`] plus per-stream overrides.
///
/// Parses from a comma-separated list where one bare profile sets the default
/// and `<stream>:<profile>` entries override it, e.g.
/// `aws,bulk-load:scale=100,scratch:off`. Stream names cannot contain `:` or
/// `,`, so the form is unambiguous.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitsConfig {
    /// The profile of streams without an override.
    pub default: LimitProfile,
    /// Overrides by stream name.
    pub per_stream: HashMap<String, LimitProfile>,
}

impl LimitsConfig {
    /// One profile for every stream.
    pub fn uniform(profile: LimitProfile) -> LimitsConfig {
        LimitsConfig {
            default: profile,
            per_stream: HashMap::new(),
        }
    }

    /// The profile that applies to `stream`.
    pub fn profile_for(&self, stream: &str) -> LimitProfile {
        self.per_stream.get(stream).copied().unwrap_or(self.default)
    }

    /// The limits that apply to `stream`.
    pub fn for_stream(&self, stream: &str) -> Limits {
        self.profile_for(stream).limits()
    }

    /// The limits of streams without an override, and of account-wide budgets.
    pub fn default_limits(&self) -> Limits {
        self.default.limits()
    }
}

impl FromStr for LimitsConfig {
    type Err = LimitProfileError;

    fn from_str(s: &str) -> Result<LimitsConfig, LimitProfileError> {
        let mut default: Option<LimitProfile> = None;
        let mut per_stream = HashMap::new();
        for entry in s.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(LimitProfileError(format!(
                    "empty entry in limits \"{s}\": separate entries with single commas"
                )));
            }
            match entry.split_once(':') {
                Some((stream, profile)) => {
                    let stream = stream.trim();
                    if stream.is_empty() {
                        return Err(LimitProfileError(format!(
                            "missing stream name in \"{entry}\": per-stream entries look like \"<stream>:<profile>\""
                        )));
                    }
                    let profile: LimitProfile = profile
                        .parse()
                        .map_err(|e| LimitProfileError(format!("stream \"{stream}\": {e}")))?;
                    if per_stream.insert(stream.to_string(), profile).is_some() {
                        return Err(LimitProfileError(format!(
                            "stream \"{stream}\" has more than one limit profile"
                        )));
                    }
                }
                None => {
                    let profile: LimitProfile = entry.parse()?;
                    if let Some(first) = default {
                        return Err(LimitProfileError(format!(
                            "two default limit profiles (\"{first}\" and \"{profile}\"); per-stream entries look like \"<stream>:<profile>\""
                        )));
                    }
                    default = Some(profile);
                }
            }
        }
        Ok(LimitsConfig {
            default: default.unwrap_or_default(),
            per_stream,
        })
    }
}

impl fmt::Display for LimitsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default)?;
        let mut streams: Vec<_> = self.per_stream.iter().collect();
        streams.sort_by(|a, b| a.0.cmp(b.0));
        for (stream, profile) in streams {
            write!(f, ",{stream}:{profile}")?;
        }
        Ok(())
    }
}

/// Control-plane TPS budgets: one bucket per operation for account-wide
/// limits, one per (stream, operation) for per-stream limits.
///
/// Account-wide budgets follow the config's default profile; per-stream
/// budgets follow the stream's own profile.
#[derive(Debug, Clone)]
pub struct ControlPlaneLimiter {
    config: LimitsConfig,
    account: HashMap<Operation, TokenBucket>,
    streams: HashMap<String, HashMap<Operation, TokenBucket>>,
}

impl ControlPlaneLimiter {
    /// A limiter enforcing `config`'s control-plane rates.
    pub fn new(config: LimitsConfig) -> ControlPlaneLimiter {
        ControlPlaneLimiter {
            config,
            account: HashMap::new(),
            streams: HashMap::new(),
        }
    }

    /// Admit one call of `operation`, naming its `stream` when it has one.
    ///
    /// Operations without a control-plane limit are always admitted; a
    /// per-stream operation called without a stream is charged to an
    /// account-wide bucket.
    pub fn admit(
        &mut self,
        operation: Operation,
        stream: Option<&str>,
        now: Nanos,
    ) -> Result<(), Throttle> {
        let Some(rate) = control_plane_rate(operation) else {
            return Ok(());
        };
        let bucket = match (rate.scope, stream) {
            (Scope::Stream, Some(stream)) => {
                if !self.streams.contains_key(stream) {
                    self.streams.insert(stream.to_string(), HashMap::new());
                }
                let limits = self.config.for_stream(stream);
                let Some(buckets) = self.streams.get_mut(stream) else {
                    return Ok(());
                };
                buckets
                    .entry(operation)
                    .or_insert_with(|| new_control_bucket(&limits, operation, now))
            }
            _ => {
                let limits = self.config.default_limits();
                self.account
                    .entry(operation)
                    .or_insert_with(|| new_control_bucket(&limits, operation, now))
            }
        };
        if bucket.try_take(1, now) {
            Ok(())
        } else {
            Err(Throttle {
                reason: ThrottleReason::CallRate,
                retry_after: bucket.time_until(1, now),
            })
        }
    }

    /// [`admit`](Self::admit) by operation name; unknown names are admitted.
    pub fn admit_named(
        &mut self,
        operation: &str,
        stream: Option<&str>,
        now: Nanos,
    ) -> Result<(), Throttle> {
        match Operation::ALL.iter().find(|op| op.name() == operation) {
            Some(op) => self.admit(*op, stream, now),
            None => Ok(()),
        }
    }

    /// Drop a deleted stream's budgets.
    pub fn forget_stream(&mut self, stream: &str) {
        self.streams.remove(stream);
    }

    /// The configuration in force.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }
}

fn new_control_bucket(limits: &Limits, operation: Operation, now: Nanos) -> TokenBucket {
    match limits.control_plane(operation) {
        Some(rate) => TokenBucket::new(rate.tps, limits.burst, now),
        None => TokenBucket::unlimited(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    #[test]
    fn bucket_starts_full_refills_and_caps() {
        let mut b = TokenBucket::new(10.0, Duration::from_secs(1), Nanos::ZERO);
        assert_eq!(b.capacity(), 10.0);
        assert!(b.try_take(10, Nanos::ZERO));
        assert!(!b.try_take(1, Nanos::ZERO));
        assert_eq!(b.time_until(1, Nanos::ZERO), Duration::from_millis(100));
        assert!(b.try_take(1, ms(100)));
        assert_eq!(b.tokens(Nanos::from_secs(100)), 10.0);
        assert!(!b.try_take(11, Nanos::from_secs(100)));
    }

    #[test]
    fn bucket_debt_is_floored_and_repaid() {
        let mut b = TokenBucket::new(100.0, Duration::from_secs(1), Nanos::ZERO)
            .with_max_debt(Duration::from_secs(2));
        assert!(!b.take_or_debt(1000, Nanos::ZERO));
        assert_eq!(b.tokens(Nanos::ZERO), -200.0);
        assert_eq!(b.time_until(0, Nanos::ZERO), Duration::from_secs(2));
        assert!(!b.try_take(0, ms(1999)));
        assert!(b.try_take(0, ms(2000)));
    }

    #[test]
    fn bucket_ignores_time_going_backwards() {
        let mut b = TokenBucket::new(1.0, Duration::from_secs(1), Nanos::from_secs(10));
        assert!(b.try_take(1, Nanos::from_secs(10)));
        assert!(!b.try_take(1, Nanos::from_secs(5)));
        assert_eq!(b.last(), Nanos::from_secs(10));
        assert!(b.try_take(1, Nanos::from_secs(11)));
    }

    #[test]
    fn zero_rate_never_refills() {
        let mut b = TokenBucket::new(0.0, Duration::from_secs(1), Nanos::ZERO);
        assert!(!b.try_take(1, Nanos::from_secs(1000)));
        assert_eq!(b.time_until(1, Nanos::ZERO), Duration::MAX);
    }

    /// Offers `offered` records per second evenly for `secs` seconds; returns admitted count.
    fn offer_records(limits: &Limits, offered: u64, bytes: u64, secs: u64) -> u64 {
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
    fn fan_out_paces_a_pusher() {
        let mut f = FanOutLimiter::new(&Limits::aws(), Nanos::ZERO);
        assert_eq!(f.bytes_available(Nanos::ZERO), 2 * MIB);
        f.consume(2 * MIB, Nanos::ZERO);
        assert_eq!(f.bytes_available(Nanos::ZERO), 0);
        assert_eq!(f.time_until(MIB, Nanos::ZERO), Duration::from_millis(500));
        assert_eq!(f.bytes_available(ms(500)), MIB);

        // A pusher that sends what it may and sleeps for the rest moves 2 MiB/s.
        let mut f = FanOutLimiter::new(&Limits::aws(), Nanos::ZERO);
        let mut now = Nanos::ZERO;
        let mut sent = 0u64;
        while now < Nanos::from_secs(10) {
            let chunk = f.bytes_available(now).min(256 * 1024);
            if chunk == 0 {
                now = now + f.time_until(256 * 1024, now);
                continue;
            }
            f.consume(chunk, now);
            sent += chunk;
        }
        assert!(sent <= 22 * MIB + 256 * 1024, "sent {sent}");
        assert!(sent >= 21 * MIB, "sent {sent}");
    }

    #[test]
    fn subscribe_is_one_per_second_per_pair() {
        let mut f = FanOutLimiter::new(&Limits::aws(), Nanos::ZERO);
        assert_eq!(f.admit_subscribe(Nanos::ZERO), Ok(()));
        assert!(f.admit_subscribe(ms(500)).is_err());
        assert_eq!(f.admit_subscribe(ms(1000)), Ok(()));
    }

    #[test]
    fn off_admits_everything() {
        let limits = LimitProfile::Off.limits();
        assert_eq!(offer_records(&limits, 100_000, MIB, 1), 100_000);
        let mut r = ShardReadLimiter::new(&limits, Nanos::ZERO);
        for _ in 0..1000 {
            assert_eq!(r.admit_call(Nanos::ZERO), Ok(()));
            r.charge_bytes(10 * MIB, Nanos::ZERO);
        }
        let f = FanOutLimiter::new(&limits, Nanos::ZERO);
        assert_eq!(f.bytes_available(Nanos::ZERO), u64::MAX);
        let mut c = ControlPlaneLimiter::new(LimitsConfig::uniform(LimitProfile::Off));
        for _ in 0..1000 {
            assert_eq!(c.admit(Operation::CreateStream, None, Nanos::ZERO), Ok(()));
        }
    }

    #[test]
    fn scaled_ten_admits_ten_times_as_much() {
        let aws = offer_records(&Limits::aws(), 40_000, 10, 3);
        let scaled = offer_records(&LimitProfile::Scaled(10.0).limits(), 40_000, 10, 3);
        // 1 s burst + just under 3 s of refill, before and after scaling.
        assert!((3999..=4000).contains(&aws), "aws {aws}");
        assert!((39_999..=40_000).contains(&scaled), "scaled {scaled}");
        let mut r = ShardReadLimiter::new(&LimitProfile::Scaled(10.0).limits(), Nanos::ZERO);
        let calls = (0..100)
            .filter(|_| r.admit_call(Nanos::ZERO).is_ok())
            .count();
        assert_eq!(calls, 50);
    }

    #[test]
    fn control_plane_account_and_stream_scopes() {
        let mut c = ControlPlaneLimiter::new(LimitsConfig::default());
        let t = Nanos::ZERO;
        for _ in 0..10 {
            assert_eq!(c.admit(Operation::DescribeStream, Some("a"), t), Ok(()));
        }
        // DescribeStream is account-wide: another stream does not help.
        assert!(c.admit(Operation::DescribeStream, Some("b"), t).is_err());
        // DescribeStreamConsumer is per stream: 20 each.
        for _ in 0..20 {
            assert_eq!(
                c.admit(Operation::DescribeStreamConsumer, Some("a"), t),
                Ok(())
            );
        }
        assert!(
            c.admit(Operation::DescribeStreamConsumer, Some("a"), t)
                .is_err()
        );
        assert_eq!(
            c.admit(Operation::DescribeStreamConsumer, Some("b"), t),
            Ok(())
        );
        // Data-plane operations are not the control plane's business.
        for _ in 0..100 {
            assert_eq!(c.admit(Operation::PutRecord, Some("a"), t), Ok(()));
        }
        // ListShards: 1000 per stream.
        let listed = (0..1500)
            .filter(|_| c.admit_named("ListShards", Some("a"), t).is_ok())
            .count();
        assert_eq!(listed, 1000);
        assert_eq!(c.admit_named("NoSuchOperation", None, t), Ok(()));
        c.forget_stream("a");
        assert_eq!(c.admit(Operation::ListShards, Some("a"), t), Ok(()));
    }

    #[test]
    fn control_plane_per_stream_override() {
        let config: LimitsConfig = "aws,bulk:off".parse().unwrap();
        let mut c = ControlPlaneLimiter::new(config);
        let t = Nanos::ZERO;
        for _ in 0..100 {
            assert_eq!(
                c.admit(Operation::ListStreamConsumers, Some("bulk"), t),
                Ok(())
            );
        }
        let other = (0..100)
            .filter(|_| {
                c.admit(Operation::ListStreamConsumers, Some("x"), t)
                    .is_ok()
            })
            .count();
        assert_eq!(other, 5);
    }

    #[test]
    fn control_plane_table_matches_spec() {
        let rate = |op| control_plane_rate(op).map(|r| (r.tps, r.scope));
        assert_eq!(rate(Operation::CreateStream), Some((5.0, Scope::Account)));
        assert_eq!(
            rate(Operation::DescribeStream),
            Some((10.0, Scope::Account))
        );
        assert_eq!(
            rate(Operation::DescribeStreamSummary),
            Some((20.0, Scope::Account))
        );
        assert_eq!(rate(Operation::ListShards), Some((1000.0, Scope::Stream)));
        assert_eq!(
            rate(Operation::RegisterStreamConsumer),
            Some((5.0, Scope::Account))
        );
        assert_eq!(
            rate(Operation::DeregisterStreamConsumer),
            Some((5.0, Scope::Stream))
        );
        assert_eq!(rate(Operation::GetRecords), None);
        let scaled = LimitProfile::Scaled(2.0).limits();
        assert_eq!(
            scaled.control_plane(Operation::ListShards).map(|r| r.tps),
            Some(2000.0)
        );
    }

    #[test]
    fn profiles_parse_and_print() {
        assert_eq!("aws".parse(), Ok(LimitProfile::Aws));
        assert_eq!(" OFF ".parse(), Ok(LimitProfile::Off));
        assert_eq!("scale=10".parse(), Ok(LimitProfile::Scaled(10.0)));
        assert_eq!("scale = 0.5".parse(), Ok(LimitProfile::Scaled(0.5)));
        assert_eq!(LimitProfile::Scaled(10.0).to_string(), "scale=10");
        let err = "fast".parse::<LimitProfile>().unwrap_err().to_string();
        assert!(err.contains("unknown limit profile \"fast\""), "{err}");
        assert!(err.contains("scale=<factor>"), "{err}");
        let err = "scale=ten".parse::<LimitProfile>().unwrap_err().to_string();
        assert!(err.contains("is not a number"), "{err}");
        for bad in ["scale=0", "scale=-1", "scale=inf", "scale=NaN"] {
            let err = bad.parse::<LimitProfile>().unwrap_err().to_string();
            assert!(err.contains("positive finite"), "{bad}: {err}");
        }
    }

    #[test]
    fn limits_config_parses_overrides() {
        let c: LimitsConfig = "scale=10,bulk:off,slow:scale=0.1".parse().unwrap();
        assert_eq!(c.default, LimitProfile::Scaled(10.0));
        assert_eq!(c.profile_for("bulk"), LimitProfile::Off);
        assert_eq!(c.profile_for("slow"), LimitProfile::Scaled(0.1));
        assert_eq!(c.profile_for("other"), LimitProfile::Scaled(10.0));
        assert_eq!(c.to_string(), "scale=10,bulk:off,slow:scale=0.1");
        let c: LimitsConfig = "bulk:off".parse().unwrap();
        assert_eq!(c.default, LimitProfile::Aws);
        assert!("aws,off".parse::<LimitsConfig>().is_err());
        assert!("aws,a:off,a:aws".parse::<LimitsConfig>().is_err());
        assert!("aws,,a:off".parse::<LimitsConfig>().is_err());
        assert!(":off".parse::<LimitsConfig>().is_err());
        let err = "a:fast".parse::<LimitsConfig>().unwrap_err().to_string();
        assert!(
            err.starts_with("stream \"a\": unknown limit profile"),
            "{err}"
        );
    }

    #[test]
    fn throttle_errors_have_service_shape() {
        let e = shard_throughput_exceeded("shardId-000000000000", "orders", "123456789012");
        assert_eq!(
            e.code,
            kinesis_proto::ErrorCode::ProvisionedThroughputExceeded
        );
        assert_eq!(
            e.message,
            "Rate exceeded for shard shardId-000000000000 in stream orders under account 123456789012."
        );
        let e = control_plane_exceeded(Operation::ListShards, Some("orders"), "1");
        assert_eq!(e.code, kinesis_proto::ErrorCode::LimitExceeded);
        assert_eq!(
            e.message,
            "Rate exceeded for stream orders under account 1."
        );
        let e = control_plane_exceeded(Operation::CreateStream, None, "1");
        assert!(e.message.contains("CreateStream"));
    }

    #[test]
    fn nanos_helpers() {
        let origin = Instant::now();
        assert_eq!(
            Nanos::since(origin, origin + Duration::from_millis(3)),
            ms(3)
        );
        assert_eq!(
            Nanos::since(origin + Duration::from_secs(1), origin),
            Nanos::ZERO
        );
        assert_eq!(
            ms(1500).saturating_since(Nanos::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(Nanos::ZERO + Duration::from_secs(2), Nanos::from_secs(2));
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
