//! The leases a worker holds, and which of them it has lost (KCL `DynamoDBLeaseRenewer`'s
//! bookkeeping, without the I/O).
//!
//! Each renewer interval the caller renews [`LeaseRenewer::leases_to_renew`] through
//! the lease store and reports every outcome back. A refused renewal means someone
//! else took the lease: it is lost at once. Any other failure (store unreachable)
//! keeps the lease only until `failover_time` has passed since its last successful
//! write, because by then other workers consider it expired and may take it; the
//! worker must stop processing it before that happens, so a lease past that point is
//! no longer reported as held even before [`LeaseRenewer::drop_expired`] removes it.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::lease::Lease;
use crate::lease_config::LeaseConfig;

#[derive(Debug, Clone)]
struct HeldLease {
    lease: Lease,
    last_renewed_ms: u64,
}

/// The set of leases one worker holds, with the time each was last confirmed in the store.
#[derive(Debug, Clone)]
pub struct LeaseRenewer {
    worker_id: String,
    failover_ms: u64,
    held: BTreeMap<String, HeldLease>,
}

impl LeaseRenewer {
    /// An empty set for worker `worker_id`.
    pub fn new(worker_id: impl Into<String>, config: &LeaseConfig) -> Self {
        LeaseRenewer {
            worker_id: worker_id.into(),
            failover_ms: config.failover_millis(),
            held: BTreeMap::new(),
        }
    }

    /// The worker these leases belong to.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Start holding a lease just taken at `now_ms`; `false` (and ignored) if another worker owns it.
    pub fn add(&mut self, lease: Lease, now_ms: u64) -> bool {
        if !lease.is_owned_by(&self.worker_id) {
            return false;
        }
        self.held.insert(
            lease.lease_key.clone(),
            HeldLease {
                lease,
                last_renewed_ms: now_ms,
            },
        );
        true
    }

    /// The held, unexpired leases to renew now, each carrying the counter to expect.
    pub fn leases_to_renew(&self, now_ms: u64) -> Vec<Lease> {
        self.live(now_ms).cloned().collect()
    }

    /// Record a successful fenced write (renew, checkpoint, child shards) sent at `sent_ms`.
    ///
    /// The send time, not the reply time, counts as the renewal: the store may
    /// have applied the write as early as that. Returns `false` if the lease is not
    /// held (or no longer ours), in which case nothing is recorded.
    pub fn record_write(&mut self, lease: Lease, sent_ms: u64) -> bool {
        if !lease.is_owned_by(&self.worker_id) {
            self.held.remove(&lease.lease_key);
            return false;
        }
        match self.held.get_mut(&lease.lease_key) {
            Some(held) => {
                held.last_renewed_ms = held.last_renewed_ms.max(sent_ms);
                held.lease = lease;
                true
            }
            None => false,
        }
    }

    /// Record a failed renewal; a conflict loses the lease, which is removed and returned.
    pub fn record_renew_failure(&mut self, lease_key: &str, error: &Error) -> Option<Lease> {
        if error.is_lease_conflict() {
            self.held.remove(lease_key).map(|h| h.lease)
        } else {
            None
        }
    }

    /// Remove and return the leases not confirmed within the failover time.
    pub fn drop_expired(&mut self, now_ms: u64) -> Vec<Lease> {
        let failover_ms = self.failover_ms;
        let expired: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| is_expired(h, now_ms, failover_ms))
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.held.remove(&k).map(|h| h.lease))
            .collect()
    }

    /// Every lease in the set, expired or not (not to be claimed again while here).
    pub fn held_keys(&self) -> std::collections::BTreeSet<String> {
        self.held.keys().cloned().collect()
    }

    /// The leases this worker may process now (KCL `getCurrentlyHeldLeases`).
    pub fn held_leases(&self, now_ms: u64) -> Vec<&Lease> {
        self.live(now_ms).collect()
    }

    /// One held, unexpired lease: the counter to use for the next write to it.
    pub fn get(&self, lease_key: &str, now_ms: u64) -> Option<&Lease> {
        self.held
            .get(lease_key)
            .filter(|h| !is_expired(h, now_ms, self.failover_ms))
            .map(|h| &h.lease)
    }

    /// Stop holding a lease (released, evicted or its shard is done).
    pub fn remove(&mut self, lease_key: &str) -> Option<Lease> {
        self.held.remove(lease_key).map(|h| h.lease)
    }

    /// How many leases are held, expired or not.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no lease is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn live(&self, now_ms: u64) -> impl Iterator<Item = &Lease> {
        self.held
            .values()
            .filter(move |h| !is_expired(h, now_ms, self.failover_ms))
            .map(|h| &h.lease)
    }
}

fn is_expired(held: &HeldLease, now_ms: u64, failover_ms: u64) -> bool {
    now_ms.saturating_sub(held.last_renewed_ms) > failover_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended_sequence::ExtendedSequenceNumber;

    fn lease(key: &str, owner: &str, counter: u64) -> Lease {
        let mut l = Lease::new(key, ExtendedSequenceNumber::TrimHorizon);
        l.lease_owner = Some(owner.into());
        l.lease_counter = counter;
        l
    }

    fn keys(leases: &[Lease]) -> Vec<&str> {
        leases.iter().map(|l| l.lease_key.as_str()).collect()
    }

    #[test]
    fn renews_what_it_holds_with_the_latest_counter() {
        let mut r = LeaseRenewer::new("me", &LeaseConfig::default());
        assert!(r.add(lease("a", "me", 1), 0));
        assert!(r.add(lease("b", "me", 7), 0));
        assert!(!r.add(lease("c", "other", 1), 0), "not ours");
        assert_eq!(keys(&r.leases_to_renew(100)), ["a", "b"]);
        assert!(r.record_write(lease("a", "me", 2), 100));
        assert_eq!(r.get("a", 100).map(|l| l.lease_counter), Some(2));
        assert!(!r.record_write(lease("zzz", "me", 2), 100), "never held");
    }

    #[test]
    fn a_conflict_loses_the_lease_at_once() {
        let mut r = LeaseRenewer::new("me", &LeaseConfig::default());
        r.add(lease("a", "me", 1), 0);
        let lost = r.record_renew_failure("a", &Error::conflict("a"));
        assert_eq!(lost.map(|l| l.lease_key), Some("a".to_string()));
        assert!(r.is_empty());
    }

    #[test]
    fn other_failures_keep_the_lease_until_failover() {
        let mut r = LeaseRenewer::new("me", &LeaseConfig::default());
        r.add(lease("a", "me", 1), 0);
        let outage = Error::store("renew", std::io::Error::other("database locked"));
        assert_eq!(r.record_renew_failure("a", &outage), None);
        assert_eq!(
            r.held_leases(10_000).len(),
            1,
            "exactly failover: still held"
        );
        assert!(
            r.held_leases(10_001).is_empty(),
            "past failover: not to be processed"
        );
        assert!(r.leases_to_renew(10_001).is_empty());
        assert_eq!(r.len(), 1);
        assert_eq!(keys(&r.drop_expired(10_001)), ["a"]);
        assert!(r.is_empty());
    }

    #[test]
    fn a_write_showing_another_owner_drops_the_lease() {
        let mut r = LeaseRenewer::new("me", &LeaseConfig::default());
        r.add(lease("a", "me", 1), 0);
        let mut evicted = lease("a", "me", 2);
        evicted.lease_owner = None;
        assert!(!r.record_write(evicted, 5));
        assert!(r.is_empty());
    }

    #[test]
    fn renewal_time_is_the_send_time_and_never_goes_back() {
        let mut r = LeaseRenewer::new("me", &LeaseConfig::default());
        r.add(lease("a", "me", 1), 1_000);
        r.record_write(lease("a", "me", 2), 500);
        assert!(r.get("a", 11_000).is_some());
        assert!(r.get("a", 11_001).is_none());
        r.record_write(lease("a", "me", 3), 4_000);
        assert!(r.get("a", 14_000).is_some());
        assert_eq!(r.remove("a").map(|l| l.lease_counter), Some(3));
        assert_eq!(r.worker_id(), "me");
    }
}
