//! Lease timing and balancing settings, mirroring KCL's `LeaseManagementConfig`
//! (docs/kcl-behaviour.md §4).

use std::time::Duration;

use crate::error::Error;
use crate::lease_balance::BalanceConfig;

/// How leases expire, how often they are renewed and taken, and how many a worker may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// `failoverTimeMillis`: a lease whose counter has not changed for this long is expired.
    pub failover_time: Duration,
    /// `epsilonMillis`: slack subtracted from / added to the renewer and taker intervals.
    pub epsilon: Duration,
    /// `maxLeasesForWorker`: the most leases one worker holds (default unlimited).
    pub max_leases_for_worker: usize,
    /// `maxLeasesToStealAtOneTime`: the most leases one taker run steals (0 disables stealing).
    pub max_leases_to_steal_at_one_time: usize,
    /// `enablePriorityLeaseAssignment`: take very old leases first, ignoring the target.
    pub enable_priority_lease_assignment: bool,
    /// `VERY_OLD_LEASE_DURATION_NANOS_MULTIPLIER` (`DynamoDBLeaseTaker`): a lease is very old
    /// after this many failover times without a counter change.
    pub very_old_lease_duration_multiplier: u32,
    /// `GracefulLeaseHandoffConfig.gracefulLeaseHandoffTimeoutMillis` (KCL 3.x, default
    /// 30 s): how long a graceful hand-off may take before the lease is passed on (by its
    /// owner) or taken (by its next owner) regardless. Used with
    /// [`Coordination::Kcl3`](crate::config::Coordination::Kcl3).
    pub graceful_lease_handoff_timeout: Duration,
    /// `WorkerUtilizationAwareAssignmentConfig` (KCL 3.x): `reBalanceThresholdPercentage`,
    /// `dampeningPercentage`, `allowThroughputOvershoot`, for load-based balancing with
    /// [`Coordination::Kcl3`](crate::config::Coordination::Kcl3).
    pub balance: BalanceConfig,
    /// `dynamoDbLockBasedLeaderLeaseDurationInMillis` (KCL 3.x, default 120 s): how long
    /// the leader lock lives without a heartbeat before another worker may take it.
    pub leader_lease_duration: Duration,
    /// `dynamoDbLockBasedLeaderHeartbeatPeriodInMillis` (KCL 3.x, default 30 s): how often
    /// the leader renews its lock (and others look at it).
    pub leader_heartbeat_period: Duration,
    /// `workerMetricsReporterFreqInMillis` (KCL 3.x, default 30 s): how often a worker
    /// writes its worker-metrics item; the leader counts a worker as alive while its item
    /// is younger than twice this.
    pub worker_metrics_reporter_interval: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            failover_time: Duration::from_millis(10_000),
            epsilon: Duration::from_millis(25),
            max_leases_for_worker: usize::MAX,
            max_leases_to_steal_at_one_time: 1,
            enable_priority_lease_assignment: true,
            very_old_lease_duration_multiplier: 3,
            graceful_lease_handoff_timeout: Duration::from_secs(30),
            balance: BalanceConfig::default(),
            leader_lease_duration: Duration::from_secs(120),
            leader_heartbeat_period: Duration::from_secs(30),
            worker_metrics_reporter_interval: Duration::from_secs(30),
        }
    }
}

impl LeaseConfig {
    /// The renewer's period, `failoverTimeMillis / 3 − epsilonMillis` (3 308 ms by default).
    pub fn renewer_interval(&self) -> Duration {
        // KCL divides whole milliseconds, hence 3 308 and not 3 308.33.
        Duration::from_millis(self.failover_millis() / 3).saturating_sub(self.epsilon)
    }

    /// The taker's period, `(failoverTimeMillis + epsilonMillis) × 2` (20 050 ms by default).
    pub fn taker_interval(&self) -> Duration {
        (self.failover_time + self.epsilon) * 2
    }

    /// The age past which an unrenewed lease is "very old" (`multiplier × failover`).
    pub fn very_old_lease_duration(&self) -> Duration {
        self.failover_time * self.very_old_lease_duration_multiplier
    }

    /// The hand-off timeout in effect: the configured one, but at least two renewer
    /// intervals, since an owner learns of a hand-off from its next write (a renewal
    /// at the latest) and must have time to finish.
    pub fn effective_handoff_timeout(&self) -> Duration {
        self.graceful_lease_handoff_timeout
            .max(self.renewer_interval() * 2)
    }

    /// Reject settings under which leases could not be renewed in time or taken at all.
    pub fn validate(&self) -> Result<(), Error> {
        if self.renewer_interval().is_zero() {
            return Err(Error::InvalidConfig(format!(
                "failover_time {:?} leaves no renewer interval after epsilon {:?}",
                self.failover_time, self.epsilon
            )));
        }
        if self.max_leases_for_worker == 0 {
            return Err(Error::InvalidConfig(
                "max_leases_for_worker must be at least 1".into(),
            ));
        }
        if self.leader_heartbeat_period.is_zero()
            || self.leader_heartbeat_period >= self.leader_lease_duration
            || self.worker_metrics_reporter_interval.is_zero()
        {
            return Err(Error::InvalidConfig(
                "leader_heartbeat_period and worker_metrics_reporter_interval must be positive, \
                 and the heartbeat shorter than leader_lease_duration"
                    .into(),
            ));
        }
        if self.very_old_lease_duration_multiplier == 0 {
            return Err(Error::InvalidConfig(
                "very_old_lease_duration_multiplier must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// `failover_time` in whole milliseconds, the unit the pure lease logic works in.
    pub(crate) fn failover_millis(&self) -> u64 {
        duration_millis(self.failover_time)
    }
}

/// A duration in whole milliseconds, saturating instead of truncating huge values.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kcl() {
        let c = LeaseConfig::default();
        assert_eq!(c.failover_time, Duration::from_secs(10));
        assert_eq!(c.epsilon, Duration::from_millis(25));
        assert_eq!(c.renewer_interval(), Duration::from_millis(3_308));
        assert_eq!(c.taker_interval(), Duration::from_millis(20_050));
        assert_eq!(c.very_old_lease_duration(), Duration::from_secs(30));
        assert_eq!(c.max_leases_for_worker, usize::MAX);
        assert_eq!(c.max_leases_to_steal_at_one_time, 1);
        assert!(c.enable_priority_lease_assignment);
        assert_eq!(c.graceful_lease_handoff_timeout, Duration::from_secs(30));
        assert_eq!(c.effective_handoff_timeout(), Duration::from_secs(30));
        let slow = LeaseConfig {
            failover_time: Duration::from_secs(120),
            ..LeaseConfig::default()
        };
        assert_eq!(
            slow.effective_handoff_timeout(),
            Duration::from_millis(79_950)
        );
        assert_eq!(c.balance.rebalance_threshold_percentage, 10);
        assert_eq!(c.balance.dampening_percentage, 60);
        assert!(c.balance.allow_throughput_overshoot);
        assert_eq!(c.leader_lease_duration, Duration::from_secs(120));
        assert_eq!(c.leader_heartbeat_period, Duration::from_secs(30));
        assert_eq!(c.worker_metrics_reporter_interval, Duration::from_secs(30));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validation_rejects_unworkable_settings() {
        let tiny = LeaseConfig {
            failover_time: Duration::from_millis(60),
            ..LeaseConfig::default()
        };
        assert!(matches!(tiny.validate(), Err(Error::InvalidConfig(_))));
        let none = LeaseConfig {
            max_leases_for_worker: 0,
            ..LeaseConfig::default()
        };
        assert!(none.validate().is_err());
        let never_old = LeaseConfig {
            very_old_lease_duration_multiplier: 0,
            ..LeaseConfig::default()
        };
        assert!(never_old.validate().is_err());
    }
}
