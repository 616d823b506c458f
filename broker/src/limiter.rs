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

mod control_plane;
mod fan_out;
mod profile;
mod shard;
mod throttle;
mod token_bucket;

pub use control_plane::{ControlPlaneLimiter, ControlPlaneRate, Scope, control_plane_rate};
pub use fan_out::FanOutLimiter;
pub use profile::{LimitProfile, LimitProfileError, Limits, LimitsConfig, MIB};
pub use shard::{ShardLimits, ShardReadLimiter, ShardWriteLimiter, record_cost};
pub use throttle::{
    Throttle, ThrottleReason, control_plane_exceeded, shard_throughput_exceeded,
    shard_throughput_message,
};
pub use token_bucket::{Nanos, TokenBucket};

#[cfg(test)]
mod tests {
    use super::shard::tests::offer_records;
    use super::*;
    use kinesis_proto::model::Operation;

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
}
