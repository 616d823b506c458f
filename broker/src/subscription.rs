//! Enhanced fan-out subscriptions of one shard: which consumers are subscribed,
//! the service's rules for SubscribeToShard calls, each consumer's own fan-out
//! budget, and the signal that wakes subscribers when records arrive.
//!
//! The rules (`docs/event-stream.md` §4), per (consumer, shard) pair:
//! * at most one SubscribeToShard call per second (the fan-out limiter's
//!   subscribe bucket), refused with `ResourceInUseException`;
//! * a call while a subscription of the pair is running and younger than the
//!   takeover delay (5 s on the service) is refused with `ResourceInUseException`;
//! * a later call takes over: the older subscription ends with a
//!   `ResourceInUseException` event and the new one starts.
//!
//! The pair's byte budget ([`FanOutLimiter`], 2 MiB/s on AWS) outlives single
//! subscriptions, so re-subscribing does not refill it.
//!
//! [`PairRules`] is the pure decision logic (time passed in); [`ShardSubscriptions`]
//! wraps it with locking, takeover signals and the append signal.

use crate::limiter::{FanOutLimiter, Limits, Nanos};
use kinesis_proto::KinesisError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long an idle pair's state is kept after its last subscription ended: by
/// then its budgets have refilled (1 s burst plus at most 5 s of debt), so a
/// fresh state is equivalent.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// Why a SubscribeToShard call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A subscription of this pair started less than the takeover delay ago and still runs.
    Active {
        /// Time until a new call would take it over.
        retry_after: Duration,
    },
    /// More than one call per second for this pair.
    CallRate {
        /// Time until a call is admitted again.
        retry_after: Duration,
    },
}

impl Refusal {
    /// The error the service answers with, before any event is sent.
    pub fn to_error(self, consumer_arn: &str, shard_id: &str) -> KinesisError {
        match self {
            Refusal::Active { .. } => KinesisError::in_use(format!(
                "Another active subscription exists for consumer {consumer_arn} and shard {shard_id}."
            )),
            Refusal::CallRate { .. } => KinesisError::in_use(format!(
                "Rate exceeded for SubscribeToShard on consumer {consumer_arn} and shard {shard_id}: at most one call per second."
            )),
        }
    }
}

/// An admitted subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Its id within the pair.
    pub id: u64,
    /// The running subscription it takes over, if any.
    pub replaced: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    id: u64,
    started: Nanos,
}

/// The SubscribeToShard rules and fan-out budget of one (consumer, shard) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRules {
    fan_out: FanOutLimiter,
    active: Option<Active>,
    next_id: u64,
    last_used: Nanos,
}

impl PairRules {
    /// A pair with full budgets at `now`.
    pub fn new(limits: &Limits, now: Nanos) -> PairRules {
        PairRules {
            fan_out: FanOutLimiter::new(limits, now),
            active: None,
            next_id: 1,
            last_used: now,
        }
    }

    /// Decide a SubscribeToShard call at `now`.
    pub fn subscribe(
        &mut self,
        now: Nanos,
        takeover_after: Duration,
    ) -> Result<Admission, Refusal> {
        if let Some(a) = self.active {
            let age = now.saturating_since(a.started);
            if age < takeover_after {
                return Err(Refusal::Active {
                    retry_after: takeover_after - age,
                });
            }
        }
        self.fan_out
            .admit_subscribe(now)
            .map_err(|t| Refusal::CallRate {
                retry_after: t.retry_after,
            })?;
        let id = self.next_id;
        self.next_id += 1;
        let replaced = self
            .active
            .replace(Active { id, started: now })
            .map(|a| a.id);
        self.last_used = now;
        Ok(Admission { id, replaced })
    }

    /// Subscription `id` ended (expired, finished, taken over or disconnected).
    pub fn finish(&mut self, id: u64, now: Nanos) {
        if self.active.is_some_and(|a| a.id == id) {
            self.active = None;
        }
        self.last_used = self.last_used.max(now);
    }

    /// The running subscription's id.
    pub fn active(&self) -> Option<u64> {
        self.active.map(|a| a.id)
    }

    /// Whether this state can be forgotten: nothing runs and its budgets have refilled.
    pub fn is_stale(&self, now: Nanos) -> bool {
        self.active.is_none() && now.saturating_since(self.last_used) >= STALE_AFTER
    }

    /// Note activity at `now`, so that staleness counts from the last push.
    pub fn touch(&mut self, now: Nanos) {
        self.last_used = self.last_used.max(now);
    }

    /// The pair's byte budget.
    pub fn fan_out(&mut self) -> &mut FanOutLimiter {
        &mut self.fan_out
    }
}

struct Pair {
    rules: PairRules,
    /// Tells the running subscription it was taken over.
    takeover: Option<watch::Sender<bool>>,
}

struct Inner {
    /// Bumped on every append and on close.
    appended: watch::Sender<u64>,
    /// By consumer ARN.
    pairs: Mutex<HashMap<String, Pair>>,
}

/// The enhanced fan-out state of one shard. Cheap to clone (shared).
#[derive(Clone)]
pub struct ShardSubscriptions {
    inner: Arc<Inner>,
}

impl Default for ShardSubscriptions {
    fn default() -> Self {
        let (appended, _) = watch::channel(0);
        ShardSubscriptions {
            inner: Arc::new(Inner {
                appended,
                pairs: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl std::fmt::Debug for ShardSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSubscriptions")
            .field("pairs", &self.inner.pairs.lock().len())
            .finish()
    }
}

impl ShardSubscriptions {
    /// Wake every subscriber of the shard: records were appended or the shard closed.
    pub fn notify_appended(&self) {
        self.inner.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`notify_appended`](Self::notify_appended).
    pub fn watch_appends(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    /// Apply the SubscribeToShard rules for `consumer_arn` at `now`; on success the
    /// returned lease holds the subscription until it is dropped.
    pub fn subscribe(
        &self,
        consumer_arn: &str,
        limits: &Limits,
        takeover_after: Duration,
        now: Nanos,
    ) -> Result<Lease, Refusal> {
        let mut pairs = self.inner.pairs.lock();
        pairs.retain(|arn, p| arn == consumer_arn || !p.rules.is_stale(now));
        let pair = pairs
            .entry(consumer_arn.to_string())
            .or_insert_with(|| Pair {
                rules: PairRules::new(limits, now),
                takeover: None,
            });
        let admission = pair.rules.subscribe(now, takeover_after)?;
        let (tx, rx) = watch::channel(false);
        if let Some(old) = pair.takeover.replace(tx) {
            // The old subscription may already be gone; nothing to tell then.
            let _ = old.send(true);
        }
        Ok(Lease {
            shard: self.clone(),
            consumer_arn: consumer_arn.to_string(),
            id: admission.id,
            taken_over: rx,
            appends: self.watch_appends(),
        })
    }

    /// Consumers with a running subscription on this shard (for inspection).
    pub fn active_consumers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .pairs
            .lock()
            .iter()
            .filter(|(_, p)| p.rules.active().is_some())
            .map(|(arn, _)| arn.clone())
            .collect();
        v.sort();
        v
    }

    fn with_pair<R>(&self, consumer_arn: &str, f: impl FnOnce(&mut Pair) -> R) -> Option<R> {
        self.inner.pairs.lock().get_mut(consumer_arn).map(f)
    }
}

/// A running subscription: its place in the registry, its takeover signal and
/// its view of the shard's appends. Dropping it ends the subscription.
pub struct Lease {
    shard: ShardSubscriptions,
    consumer_arn: String,
    id: u64,
    taken_over: watch::Receiver<bool>,
    appends: watch::Receiver<u64>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("consumer_arn", &self.consumer_arn)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The consumer this subscription belongs to.
    pub fn consumer_arn(&self) -> &str {
        &self.consumer_arn
    }

    /// Whether a newer subscription took this one over.
    pub fn is_taken_over(&self) -> bool {
        // A dropped sender means this lease is no longer the pair's: treat as takeover.
        *self.taken_over.borrow() || self.taken_over.has_changed().is_err()
    }

    /// Resolves once a newer subscription takes this one over.
    pub async fn taken_over(&mut self) {
        let _ = self.taken_over.wait_for(|t| *t).await;
    }

    /// Resolves at the next append to (or close of) the shard after the last one seen.
    pub async fn appended(&mut self) {
        if self.appends.changed().await.is_err() {
            // The shard is gone; nothing will ever be appended.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when the subscription is taken over or, if `appends`, at the
    /// next append after [`mark_appends_seen`](Self::mark_appends_seen).
    pub async fn wait(&mut self, appends: bool) {
        let Lease {
            taken_over,
            appends: appended,
            ..
        } = self;
        let shard_gone = tokio::select! {
            _ = taken_over.wait_for(|t| *t) => false,
            changed = appended.changed(), if appends => changed.is_err(),
        };
        if shard_gone {
            // Nothing will ever be appended; only a takeover can end the wait.
            let _ = taken_over.wait_for(|t| *t).await;
        }
    }

    /// Mark every append so far as seen (call before reading the shard, so an
    /// append that races the read still wakes [`appended`](Self::appended)).
    pub fn mark_appends_seen(&mut self) {
        self.appends.borrow_and_update();
    }

    /// Bytes the pair may push at `now` without going into debt.
    pub fn bytes_available(&self, now: Nanos) -> u64 {
        self.shard
            .with_pair(&self.consumer_arn, |p| {
                p.rules.fan_out().bytes_available(now)
            })
            .unwrap_or(0)
    }

    /// Charge `n` pushed bytes to the pair.
    pub fn consume(&self, n: u64, now: Nanos) {
        self.shard.with_pair(&self.consumer_arn, |p| {
            p.rules.fan_out().consume(n, now);
            p.rules.touch(now);
        });
    }

    /// Time until `n` bytes are available to the pair.
    pub fn time_until(&self, n: u64, now: Nanos) -> Duration {
        self.shard
            .with_pair(&self.consumer_arn, |p| p.rules.fan_out().time_until(n, now))
            .unwrap_or(Duration::ZERO)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let id = self.id;
        self.shard.with_pair(&self.consumer_arn, |p| {
            let last = p.rules.last_used;
            p.rules.finish(id, last);
            if p.rules.active().is_none() {
                p.takeover = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::{LimitProfile, MIB};

    const TAKEOVER: Duration = Duration::from_secs(5);

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    #[test]
    fn second_call_within_five_seconds_is_refused_then_takes_over() {
        let mut p = PairRules::new(&Limits::aws(), Nanos::ZERO);
        let first = p.subscribe(Nanos::ZERO, TAKEOVER).unwrap();
        assert_eq!(first.replaced, None);
        assert_eq!(
            p.subscribe(ms(1500), TAKEOVER),
            Err(Refusal::Active {
                retry_after: Duration::from_millis(3500)
            })
        );
        assert!(matches!(
            p.subscribe(ms(4999), TAKEOVER),
            Err(Refusal::Active { .. })
        ));
        let second = p.subscribe(ms(5000), TAKEOVER).unwrap();
        assert_eq!(second.replaced, Some(first.id));
        assert_eq!(p.active(), Some(second.id));
        // The old one finishing late must not clear the new one.
        p.finish(first.id, ms(5001));
        assert_eq!(p.active(), Some(second.id));
    }

    #[test]
    fn one_call_per_second_after_a_subscription_ended() {
        let mut p = PairRules::new(&Limits::aws(), Nanos::ZERO);
        let a = p.subscribe(Nanos::ZERO, TAKEOVER).unwrap();
        p.finish(a.id, ms(100));
        assert_eq!(p.active(), None);
        assert_eq!(
            p.subscribe(ms(400), TAKEOVER),
            Err(Refusal::CallRate {
                retry_after: Duration::from_millis(600)
            })
        );
        let b = p.subscribe(ms(1000), TAKEOVER).unwrap();
        assert_eq!(b.replaced, None);
    }

    #[test]
    fn limits_off_still_protects_a_young_subscription() {
        let limits = LimitProfile::Off.limits();
        let mut p = PairRules::new(&limits, Nanos::ZERO);
        let a = p.subscribe(Nanos::ZERO, TAKEOVER).unwrap();
        assert!(p.subscribe(ms(1), TAKEOVER).is_err());
        p.finish(a.id, ms(1));
        // No call rate: immediately again once nothing runs.
        assert!(p.subscribe(ms(1), TAKEOVER).is_ok());
    }

    #[test]
    fn budget_is_the_pairs_and_survives_resubscription() {
        let mut p = PairRules::new(&Limits::aws(), Nanos::ZERO);
        let a = p.subscribe(Nanos::ZERO, TAKEOVER).unwrap();
        p.fan_out().consume(2 * MIB, Nanos::ZERO);
        p.finish(a.id, Nanos::ZERO);
        p.subscribe(Nanos::from_secs(1), TAKEOVER).unwrap();
        // One second refilled 2 MiB, not a fresh burst on top.
        assert_eq!(p.fan_out().bytes_available(Nanos::from_secs(1)), 2 * MIB);
        p.fan_out().consume(2 * MIB, Nanos::from_secs(1));
        assert_eq!(p.fan_out().bytes_available(Nanos::from_secs(1)), 0);
    }

    #[test]
    fn staleness_needs_idleness_and_time() {
        let mut p = PairRules::new(&Limits::aws(), Nanos::ZERO);
        let a = p.subscribe(Nanos::ZERO, TAKEOVER).unwrap();
        assert!(!p.is_stale(Nanos::from_secs(60)));
        p.finish(a.id, Nanos::from_secs(60));
        assert!(!p.is_stale(Nanos::from_secs(65)));
        assert!(p.is_stale(Nanos::from_secs(70)));
    }

    #[tokio::test]
    async fn takeover_signals_the_older_lease_and_drop_frees_the_pair() {
        let subs = ShardSubscriptions::default();
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1";
        let limits = Limits::aws();
        let mut old = subs.subscribe(arn, &limits, TAKEOVER, Nanos::ZERO).unwrap();
        assert!(!old.is_taken_over());
        assert!(subs.subscribe(arn, &limits, TAKEOVER, ms(10)).is_err());
        assert_eq!(subs.active_consumers(), vec![arn.to_string()]);
        let new = subs
            .subscribe(arn, &limits, TAKEOVER, Nanos::from_secs(5))
            .unwrap();
        old.taken_over().await;
        assert!(old.is_taken_over());
        drop(old);
        assert_eq!(subs.active_consumers(), vec![arn.to_string()]);
        assert!(!new.is_taken_over());
        drop(new);
        assert!(subs.active_consumers().is_empty());
        // Other consumers are independent.
        let other = "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/d:1";
        let _a = subs
            .subscribe(arn, &limits, TAKEOVER, Nanos::from_secs(6))
            .unwrap();
        let _b = subs
            .subscribe(other, &limits, TAKEOVER, Nanos::from_secs(6))
            .unwrap();
        assert_eq!(subs.active_consumers().len(), 2);
    }

    #[tokio::test]
    async fn appends_wake_a_lease_that_marked_them_seen() {
        let subs = ShardSubscriptions::default();
        let mut lease = subs
            .subscribe("c", &Limits::aws(), TAKEOVER, Nanos::ZERO)
            .unwrap();
        lease.mark_appends_seen();
        subs.notify_appended();
        // Resolves immediately: the append happened after the mark.
        lease.appended().await;
        lease.mark_appends_seen();
        use futures::FutureExt;
        assert!(
            lease.appended().now_or_never().is_none(),
            "no append since the mark"
        );
    }
}
