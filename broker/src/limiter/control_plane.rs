//! Control-plane TPS limits: the spec's table of per-operation rates and the
//! budgets that enforce them, account-wide or per stream.

use super::profile::{Limits, LimitsConfig};
use super::throttle::{Throttle, ThrottleReason};
use super::token_bucket::{Nanos, TokenBucket};
use kinesis_proto::model::Operation;
use std::collections::HashMap;

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

/// Kept with the control-plane table rather than with [`Limits`]' other
/// numbers, so that the profile parser does not depend on this module.
impl Limits {
    /// The TPS limit for a control-plane `operation` under these limits.
    pub fn control_plane(&self, operation: Operation) -> Option<ControlPlaneRate> {
        control_plane_rate(operation).map(|rate| ControlPlaneRate {
            tps: rate.tps * self.control_plane_scale,
            ..rate
        })
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
    use crate::limiter::LimitProfile;

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
}
