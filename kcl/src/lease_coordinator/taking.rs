//! The taker run: claim leases handed to this worker, then take unowned and expired leases
//! and steal by the KCL algorithm (a steal being a hand-off request under KCL 3.x), or by
//! load once leases carry throughput measurements.

use std::collections::BTreeSet;

use super::LeaseCoordinator;
use crate::config::Coordination;
use crate::error::Error;
use crate::lease_balance;
use crate::lease_handoff::IncomingStep;
use crate::lease_taker::{TakePlan, TakeReason};

impl LeaseCoordinator {
    /// Start holding a lease handed to this worker (`Claim`: a renewal, as the KCL's
    /// lease discovery does) or taken after a timed-out hand-off (`Take`).
    async fn acquire(&self, step: IncomingStep) -> bool {
        let (lease, claim) = match step {
            IncomingStep::Claim(lease) => (lease, true),
            IncomingStep::Take(lease) => (lease, false),
        };
        let key = lease.lease_key.as_str();
        let lock = self.write_lock(key);
        let _guard = lock.lock().await;
        let sent_ms = self.now_ms();
        let result = if claim {
            self.store
                .renew(key, &self.worker_id, lease.lease_counter)
                .await
        } else {
            self.store
                .take(key, &self.worker_id, lease.lease_counter)
                .await
        };
        match result {
            Ok(acquired) => {
                if claim {
                    tracing::info!(worker = %self.worker_id, lease = key, "handed-off lease claimed");
                    if self.elects_leader() {
                        // The leader asked for the move; the receiver counts it as
                        // its steal, as a 2.x worker counts the leases it steals.
                        self.metrics.leases_stolen.inc();
                    }
                } else {
                    tracing::warn!(worker = %self.worker_id, lease = key, "graceful hand-off timed out; lease taken");
                }
                self.taker.lock().record_taken(&acquired, sent_ms);
                self.seed_throughput(&acquired, sent_ms);
                self.renewer.lock().add(acquired, sent_ms);
                self.metrics.leases_taken.inc();
                true
            }
            // Moved on since the scan: the next scan tells.
            Err(e) if e.is_lease_conflict() => false,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "acquiring a handed-off lease failed");
                false
            }
        }
    }

    /// Replace a count-based steal with the load-based one once the table carries
    /// throughput measurements: this worker asks for the leases the balancing plan
    /// (the same on every worker for the same table) gives it.
    fn balance_by_load(&self, plan: &mut TakePlan, now: u64) {
        let (live, others) = {
            let taker = self.taker.lock();
            (taker.live_leases(now), taker.live_owners(now))
        };
        if !lease_balance::has_measurements(&live) {
            return;
        }
        let mut workers: BTreeSet<String> = others.into_keys().collect();
        workers.insert(self.worker_id.clone());
        plan.leases_to_take = lease_balance::plan(&live, &workers, &self.config.balance)
            .into_iter()
            .filter(|m| m.to == self.worker_id)
            .map(|m| m.lease)
            .collect();
        plan.reason = if plan.leases_to_take.is_empty() {
            TakeReason::Nothing
        } else {
            TakeReason::Steal
        };
    }

    /// One taker run: scan the table, claim leases handed to this worker, then take or
    /// steal what the KCL algorithm says (a steal being a hand-off request with
    /// [`Coordination::Kcl3`]).
    pub(crate) async fn take_leases(&self) -> Result<(), Error> {
        let scanned = self.store.list().await?;
        let now = self.now_ms();
        let mut taken_any = false;
        if self.coordination == Coordination::Kcl3 {
            let held: BTreeSet<String> = self.renewer.lock().held_keys();
            let steps = self.handoff.lock().plan_incoming(&scanned, &held, now);
            for step in steps {
                taken_any |= self.acquire(step).await;
            }
        }
        let mut plan = self.taker.lock().plan(&scanned, now);
        if self.coordination == Coordination::Kcl3 && self.elects_leader() {
            // The leader moves leases; every worker still takes unowned and expired ones.
            if plan.reason == TakeReason::Steal {
                plan.leases_to_take.clear();
                plan.reason = TakeReason::Nothing;
            }
            if plan.expired_leases == 0 && self.leader.lock().is_leader(self.now_ms()) {
                self.assign_as_leader(now).await;
            }
        } else if self.coordination == Coordination::Kcl3
            && matches!(plan.reason, TakeReason::Steal | TakeReason::Nothing)
        {
            self.balance_by_load(&mut plan, now);
        }
        if plan.leases_to_take.is_empty() {
            if taken_any {
                self.signal_change();
            }
            return Ok(());
        }
        tracing::debug!(
            worker = %self.worker_id,
            reason = ?plan.reason,
            total = plan.total_leases,
            workers = plan.num_workers,
            target = plan.target,
            mine = plan.my_leases,
            taking = plan.leases_to_take.len(),
            "taking leases"
        );
        for lease in &plan.leases_to_take {
            let key = lease.lease_key.as_str();
            if plan.reason == TakeReason::Steal
                && self.coordination == Coordination::Kcl3
                && let Some(victim) = lease.lease_owner.as_deref()
            {
                // The owner finishes its batch, checkpoints and passes the lease on;
                // a later run claims it (docs/kcl3-coordination.md).
                match self
                    .store
                    .initiate_handoff(key, victim, &self.worker_id)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(worker = %self.worker_id, lease = key, from = victim, "graceful hand-off requested");
                        self.metrics.leases_stolen.inc();
                    }
                    Err(e) if e.is_lease_conflict() => {}
                    Err(e) => {
                        tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "hand-off request failed");
                    }
                }
                continue;
            }
            let lock = self.write_lock(key);
            let _guard = lock.lock().await;
            let sent_ms = self.now_ms();
            match self
                .store
                .take(key, &self.worker_id, lease.lease_counter)
                .await
            {
                Ok(taken) => {
                    let stolen = plan.reason == TakeReason::Steal;
                    tracing::info!(worker = %self.worker_id, lease = key, stolen, "lease taken");
                    self.taker.lock().record_taken(&taken, sent_ms);
                    self.seed_throughput(&taken, sent_ms);
                    self.renewer.lock().add(taken, sent_ms);
                    self.metrics.leases_taken.inc();
                    if stolen {
                        self.metrics.leases_stolen.inc();
                    }
                    taken_any = true;
                }
                // Another worker won the race: not ours, nothing to do.
                Err(e) if e.is_lease_conflict() => {}
                Err(e) => {
                    tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "lease take failed");
                }
            }
        }
        if taken_any {
            self.signal_change();
        }
        Ok(())
    }
}
