//! How fast one shard may be written: a controller that converges on the rate the shard
//! actually accepts, instead of the KPL's fixed 150 % of the shard limit
//! (docs/kpl-rate.md).
//!
//! The rate is a factor of the shard's nominal limit (1,000 records/s and 1 MiB/s). It
//! starts at 1.0, since the producer knows the limit. While the shard is saturated (records
//! wait for the limiter) and nothing was ever throttled, it climbs exponentially (the shard
//! may accept far more: limits off, an emulator, an on-demand stream). A throttle above the
//! limit puts it back at the limit; below it, cuts it by a quarter, at most once per
//! `DECREASE_HOLD` so that one rejected batch counts as one signal. After a throttle it
//! climbs linearly: 2 % of the limit a second below the limit, where producers sharing a
//! shard converge to even shares as AIMD flows do, and 0.5 % above it, where a lone
//! producer only probes whether the limit was raised. `RateLimit` stays the ceiling.
//!
//! Pure: every call takes `now`.

use std::time::{Duration, Instant};

/// The lowest factor: a shard throttled by a crowd still gets some traffic through.
pub const FLOOR: f64 = 0.05;
/// The cut on a throttle at or below the limit, where the shard is shared.
pub const DECREASE: f64 = 0.75;
/// After one cut, throttles of requests sent before it landed do not cut again.
pub const DECREASE_HOLD: Duration = Duration::from_millis(500);
/// Growth per second of saturation before any throttle was seen (e-fold a second).
pub const PROBE_GROWTH: f64 = 1.0;
/// Growth per second of saturation below the limit after a throttle: +2 % of the limit.
pub const STEADY_GROWTH: f64 = 0.02;
/// Growth per second of saturation at or above the limit after a throttle: +0.5 %, so a
/// lone producer drains a shard's one-second burst only every twenty seconds or so.
pub const ABOVE_LIMIT_GROWTH: f64 = 0.005;
/// Saturation is judged over this window: the limiter made records wait within it.
pub const SATURATION_WINDOW: Duration = Duration::from_millis(250);

/// The rate controller of one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct RateController {
    factor: f64,
    ceiling: f64,
    last_cut: Option<Instant>,
    throttled_ever: bool,
    last_wait: Option<Instant>,
    last_update: Instant,
    throttles: u64,
    accepted: u64,
}

impl RateController {
    /// A controller whose factor never exceeds `ceiling` (`RateLimit` / 100).
    pub fn new(ceiling: f64, now: Instant) -> Self {
        // A RateLimit below the floor is the user's to set: it wins.
        let ceiling = if ceiling > 0.0 { ceiling } else { FLOOR };
        RateController {
            factor: ceiling.min(1.0),
            ceiling,
            last_cut: None,
            throttled_ever: false,
            last_wait: None,
            last_update: now,
            throttles: 0,
            accepted: 0,
        }
    }

    /// The factor of the shard limit to send at now.
    pub fn factor(&mut self, now: Instant) -> f64 {
        self.grow(now);
        self.factor
    }

    /// The limiter made a record wait at `now`: the shard is saturated.
    pub fn saturated(&mut self, now: Instant) {
        self.grow(now);
        self.last_wait = Some(now);
    }

    /// One Kinesis record of this shard was accepted (`throttled` false) or refused with
    /// `ProvisionedThroughputExceededException`.
    pub fn observe(&mut self, throttled: bool, now: Instant) {
        self.grow(now);
        if !throttled {
            self.accepted += 1;
            return;
        }
        self.throttles += 1;
        self.throttled_ever = true;
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_HOLD)
        {
            return;
        }
        self.last_cut = Some(now);
        self.factor = if self.factor > 1.0 {
            // Above the limit a throttle says the limit is real: go back to it.
            1.0
        } else {
            (self.factor * DECREASE).max(FLOOR.min(self.ceiling))
        };
    }

    /// Throttled and accepted Kinesis records seen so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.throttles, self.accepted)
    }

    /// Grow for the saturated time since the last update.
    fn grow(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last_update);
        self.last_update = self.last_update.max(now);
        let saturated = self
            .last_wait
            .is_some_and(|t| now.saturating_duration_since(t) <= SATURATION_WINDOW);
        let holding = self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_HOLD);
        if !saturated || holding || since.is_zero() {
            return;
        }
        let dt = since.as_secs_f64().min(SATURATION_WINDOW.as_secs_f64());
        self.factor = if self.throttled_ever {
            let step = if self.factor < 1.0 {
                STEADY_GROWTH
            } else {
                ABOVE_LIMIT_GROWTH
            };
            self.factor + step * dt
        } else {
            self.factor * (1.0 + PROBE_GROWTH * dt)
        }
        .min(self.ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drive a controller saturated for `secs`, every 10 ms.
    fn saturate(c: &mut RateController, from: Instant, secs: u64) -> Instant {
        let mut t = from;
        for _ in 0..secs * 100 {
            t += ms(10);
            c.saturated(t);
        }
        t
    }

    #[test]
    fn starts_at_the_shard_limit_below_a_higher_ceiling() {
        let t0 = Instant::now();
        assert_eq!(RateController::new(1.5, t0).factor(t0), 1.0);
        assert_eq!(RateController::new(0.5, t0).factor(t0), 0.5);
        assert_eq!(RateController::new(0.01, t0).factor(t0), 0.01);
        assert_eq!(RateController::new(0.0, t0).factor(t0), FLOOR);
    }

    #[test]
    fn an_idle_shard_does_not_grow() {
        let t0 = Instant::now();
        let mut c = RateController::new(10.0, t0);
        assert_eq!(c.factor(t0 + Duration::from_secs(60)), 1.0);
    }

    #[test]
    fn a_saturated_unthrottled_shard_probes_up_to_the_ceiling() {
        let t0 = Instant::now();
        let mut c = RateController::new(100.0, t0);
        let t = saturate(&mut c, t0, 1);
        let after_one = c.factor(t);
        assert!(
            after_one > 2.5 && after_one < 2.8,
            "e-fold a second: {after_one}"
        );
        let t = saturate(&mut c, t, 5);
        assert_eq!(c.factor(t), 100.0, "capped by RateLimit");
    }

    #[test]
    fn a_throttle_above_the_limit_returns_to_it_and_probes_slowly() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.5, t0);
        let t = saturate(&mut c, t0, 1);
        assert_eq!(c.factor(t), 1.5);
        c.observe(true, t);
        assert_eq!(c.factor(t), 1.0, "the limit is real");
        let t = saturate(&mut c, t, 10);
        let f = c.factor(t);
        assert!(f > 1.04 && f < 1.05, "0.5 % a second above the limit: {f}");
    }

    #[test]
    fn a_throttle_cuts_once_per_hold_then_growth_is_slow() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.5, t0);
        for i in 0..50 {
            c.observe(true, t0 + ms(i));
        }
        assert!(
            (c.factor(t0 + ms(60)) - DECREASE).abs() < 1e-9,
            "one cut for one batch"
        );
        assert_eq!(c.counts(), (50, 0));
        c.observe(true, t0 + ms(600));
        let twice = DECREASE * DECREASE;
        assert!((c.factor(t0 + ms(600)) - twice).abs() < 1e-9);
        let t = saturate(&mut c, t0 + ms(600), 5);
        let f = c.factor(t);
        // The hold after the cut, then 2 % of the limit a second.
        assert!(f > twice + 0.08 && f < twice + 0.11, "{f}");
    }

    #[test]
    fn never_below_the_floor() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.0, t0);
        for i in 0..200 {
            c.observe(true, t0 + DECREASE_HOLD * i);
        }
        assert_eq!(c.factor(t0 + DECREASE_HOLD * 200), FLOOR);
    }

    #[test]
    fn two_controllers_sharing_a_limit_converge_to_even_shares() {
        // A crude shared shard: capacity 1.0, throttles whenever the sum exceeds it.
        let t0 = Instant::now();
        let mut a = RateController::new(1.5, t0);
        let mut b = RateController::new(1.5, t0);
        // b starts late and low, as a second producer joining would after a cut.
        for _ in 0..6 {
            b.observe(true, t0);
            b.last_cut = None;
        }
        let mut t = t0;
        for _ in 0..60_000 {
            t += ms(10);
            a.saturated(t);
            b.saturated(t);
            let (fa, fb) = (a.factor(t), b.factor(t));
            if fa + fb > 1.0 {
                a.observe(true, t);
                b.observe(true, t);
            }
        }
        let (fa, fb) = (a.factor(t), b.factor(t));
        assert!((fa - fb).abs() < 0.1 * fa.max(fb), "{fa} vs {fb}");
        assert!(fa + fb > 0.85, "together they use the shard: {}", fa + fb);
    }
}
