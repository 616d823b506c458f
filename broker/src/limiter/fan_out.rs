//! The enhanced fan-out budget of one (consumer, shard) pair.

use super::profile::Limits;
use super::throttle::{Throttle, ThrottleReason};
use super::token_bucket::{Nanos, TokenBucket};
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::MIB;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
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
}
