//! Graceful lease hand-off (KCL 3.x, docs/kcl3-coordination.md) as a pure state
//! machine: which hand-offs this worker must finish, and which leases handed to it
//! it may start or must take.
//!
//! A hand-off is marked in the lease itself: `leaseOwner` names the next owner and
//! `checkpointOwner` the current one, who keeps renewing. Both sides act on it:
//!
//! * **Outgoing** (this worker is the `checkpointOwner`): the consumer finishes its
//!   in-flight batch, the processor checkpoints in `shutdown_requested`, then the
//!   worker passes the lease on (`complete_handoff`). If the consumer has not finished
//!   within the timeout, the lease is passed on anyway.
//! * **Incoming** (this worker is the `leaseOwner` but not yet holding the lease): once
//!   the `checkpointOwner` is gone the lease is claimed and processing starts at the
//!   stored checkpoint. A lease still marked after the timeout is taken, which
//!   fences the old owner out (the fallback, at the cost of reprocessing).
//!
//! Time is milliseconds from any monotonic origin the caller chooses.

use std::collections::{BTreeMap, BTreeSet};

use crate::lease::Lease;

/// An outgoing hand-off: this worker still processes the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outgoing {
    to: String,
    since_ms: u64,
    forced: bool,
}

/// What to do about a lease handed to this worker.
#[derive(Debug, Clone, PartialEq)]
pub enum IncomingStep {
    /// The previous owner passed it on: start holding it (renew with its counter).
    Claim(Lease),
    /// The previous owner did not pass it on in time: take it (fenced by its counter).
    Take(Lease),
}

/// One worker's view of the hand-offs it is part of.
#[derive(Debug, Clone)]
pub struct LeaseHandoff {
    worker_id: String,
    timeout_ms: u64,
    outgoing: BTreeMap<String, Outgoing>,
    /// Leases marked as handed to this worker, with when this worker first saw the mark.
    incoming: BTreeMap<String, u64>,
}

impl LeaseHandoff {
    /// The hand-offs of worker `worker_id`, falling back to a take after `timeout_ms`.
    pub fn new(worker_id: impl Into<String>, timeout_ms: u64) -> Self {
        LeaseHandoff {
            worker_id: worker_id.into(),
            timeout_ms,
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
        }
    }

    /// Note a held lease as last written (renewal, checkpoint) at `now_ms`; `true` when
    /// it newly asks this worker to hand it off, so its consumer must be told to finish.
    pub fn observe_held(&mut self, lease: &Lease, now_ms: u64) -> bool {
        let Some(to) = lease.handoff_target() else {
            return false;
        };
        if lease.checkpoint_owner.as_deref() != Some(self.worker_id.as_str())
            || to == self.worker_id
        {
            return false;
        }
        if self.outgoing.contains_key(&lease.lease_key) {
            return false;
        }
        self.outgoing.insert(
            lease.lease_key.clone(),
            Outgoing {
                to: to.to_string(),
                since_ms: now_ms,
                forced: false,
            },
        );
        true
    }

    /// The held leases this worker is asked to hand off, with their next owners.
    pub fn outgoing(&self) -> Vec<(String, String)> {
        self.outgoing
            .iter()
            .map(|(k, o)| (k.clone(), o.to.clone()))
            .collect()
    }

    /// Whether `lease_key` is being handed off by this worker.
    pub fn is_outgoing(&self, lease_key: &str) -> bool {
        self.outgoing.contains_key(lease_key)
    }

    /// Outgoing hand-offs whose consumer did not finish within the timeout: pass them
    /// on now. Each is returned once.
    pub fn overdue(&mut self, now_ms: u64) -> Vec<String> {
        let timeout_ms = self.timeout_ms;
        self.outgoing
            .iter_mut()
            .filter(|(_, o)| !o.forced && now_ms.saturating_sub(o.since_ms) >= timeout_ms)
            .map(|(k, o)| {
                o.forced = true;
                k.clone()
            })
            .collect()
    }

    /// The lease left this worker (passed on, lost or released): forget its hand-off.
    pub fn finished(&mut self, lease_key: &str) {
        self.outgoing.remove(lease_key);
    }

    /// From a scan of the table at `now_ms`, the leases handed to this worker that it
    /// should claim or take; `held` are the keys it holds already.
    pub fn plan_incoming(
        &mut self,
        scanned: &[Lease],
        held: &BTreeSet<String>,
        now_ms: u64,
    ) -> Vec<IncomingStep> {
        let mut steps = Vec::new();
        let mut still_marked = BTreeMap::new();
        for lease in scanned {
            if lease.lease_owner.as_deref() != Some(self.worker_id.as_str())
                || held.contains(&lease.lease_key)
                || lease.checkpoint.is_shard_end()
            {
                continue;
            }
            match lease.checkpoint_owner.as_deref() {
                None => steps.push(IncomingStep::Claim(lease.clone())),
                Some(from) if from == self.worker_id => {
                    // Handed to ourselves: nothing to wait for.
                    steps.push(IncomingStep::Claim(lease.clone()));
                }
                Some(_) => {
                    let since = self
                        .incoming
                        .get(&lease.lease_key)
                        .copied()
                        .unwrap_or(now_ms);
                    if now_ms.saturating_sub(since) >= self.timeout_ms {
                        steps.push(IncomingStep::Take(lease.clone()));
                    } else {
                        still_marked.insert(lease.lease_key.clone(), since);
                    }
                }
            }
        }
        self.incoming = still_marked;
        steps
    }

    /// Leases marked as handed to this worker, still waiting for their owner.
    pub fn pending_incoming(&self) -> usize {
        self.incoming.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended_sequence::ExtendedSequenceNumber;

    fn lease(key: &str, owner: Option<&str>, checkpoint_owner: Option<&str>) -> Lease {
        let mut l = Lease::new(key, ExtendedSequenceNumber::TrimHorizon);
        l.lease_owner = owner.map(str::to_string);
        l.checkpoint_owner = checkpoint_owner.map(str::to_string);
        l
    }

    #[test]
    fn an_outgoing_handoff_is_noticed_once_and_forced_after_the_timeout() {
        let mut h = LeaseHandoff::new("w1", 30_000);
        assert!(
            !h.observe_held(&lease("a", Some("w1"), None), 0),
            "plain lease"
        );
        assert!(h.observe_held(&lease("a", Some("w2"), Some("w1")), 1_000));
        assert!(
            !h.observe_held(&lease("a", Some("w2"), Some("w1")), 4_000),
            "already known"
        );
        assert_eq!(h.outgoing(), [("a".to_string(), "w2".to_string())]);
        assert!(h.is_outgoing("a"));
        assert!(h.overdue(30_999).is_empty());
        assert_eq!(h.overdue(31_000), ["a"]);
        assert!(h.overdue(40_000).is_empty(), "returned once");
        h.finished("a");
        assert!(!h.is_outgoing("a"));
        assert!(h.outgoing().is_empty());
    }

    #[test]
    fn a_handoff_of_someone_elses_lease_is_not_ours_to_finish() {
        let mut h = LeaseHandoff::new("w1", 30_000);
        assert!(!h.observe_held(&lease("a", Some("w3"), Some("w2")), 0));
        assert!(!h.observe_held(&lease("b", Some("w1"), Some("w1")), 0));
        assert!(h.outgoing().is_empty());
    }

    #[test]
    fn an_incoming_lease_is_claimed_once_passed_on_and_taken_after_the_timeout() {
        let mut h = LeaseHandoff::new("w2", 30_000);
        let held = BTreeSet::new();
        let marked = lease("a", Some("w2"), Some("w1"));
        assert!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 1_000)
                .is_empty()
        );
        assert_eq!(h.pending_incoming(), 1);
        assert!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 30_999)
                .is_empty()
        );
        assert_eq!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 31_000),
            [IncomingStep::Take(marked)]
        );

        let passed = lease("b", Some("w2"), None);
        assert_eq!(
            h.plan_incoming(std::slice::from_ref(&passed), &held, 40_000),
            [IncomingStep::Claim(passed.clone())]
        );
        assert_eq!(h.pending_incoming(), 0, "unmarked leases are forgotten");
        let held = BTreeSet::from(["b".to_string()]);
        assert!(
            h.plan_incoming(&[passed], &held, 40_000).is_empty(),
            "already held"
        );
    }

    #[test]
    fn the_timeout_counts_from_when_the_mark_was_first_seen() {
        let mut h = LeaseHandoff::new("w2", 10);
        let held = BTreeSet::new();
        let marked = lease("a", Some("w2"), Some("w1"));
        assert!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 100)
                .is_empty()
        );
        // The mark disappears (another worker took the lease) and comes back: the clock restarts.
        assert!(h.plan_incoming(&[], &held, 105).is_empty());
        assert!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 200)
                .is_empty()
        );
        assert_eq!(
            h.plan_incoming(std::slice::from_ref(&marked), &held, 210),
            [IncomingStep::Take(marked)]
        );
    }

    #[test]
    fn other_workers_and_finished_leases_are_left_alone() {
        let mut h = LeaseHandoff::new("w2", 0);
        let mut ended = lease("c", Some("w2"), None);
        ended.checkpoint = ExtendedSequenceNumber::ShardEnd;
        let scanned = [
            lease("a", Some("w3"), Some("w1")),
            lease("b", None, None),
            ended,
        ];
        assert!(h.plan_incoming(&scanned, &BTreeSet::new(), 0).is_empty());
    }
}
