//! Leader election by a lock item with expiry, as the KCL 3.x elects the worker that
//! assigns leases (its `DynamoDBLockBasedLeaderDecider` on the DynamoDB lock client;
//! docs/kcl3-coordination.md, "The leader"), as a pure state machine.
//!
//! The lock is one item, key `Leader`, in the coordinator-state table. It names its
//! owner and a `recordVersionNumber` that the owner replaces with a fresh one at every
//! heartbeat. Every write is conditional on the version the writer last read, so only
//! one worker can win. A lock is expired for a worker once that worker has seen the
//! same version for longer than the lock's `leaseDuration` by its own clock: clocks
//! of other workers never matter. A leader acts as leader only while its last
//! successful write is younger than the lease duration, so an old leader stops
//! before anyone else can take over.
//!
//! Time is milliseconds from any monotonic origin the caller chooses.

/// The key of the leader lock item in the coordinator-state table.
pub const LEADER_KEY: &str = "Leader";

/// A lock item as stored (the DynamoDB lock client's attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    /// `ownerName`: the worker holding the lock.
    pub owner_name: String,
    /// `leaseDuration` (a string of milliseconds): how long the lock lives unrenewed.
    pub lease_duration_ms: u64,
    /// `recordVersionNumber`: replaced at every write.
    pub record_version_number: String,
    /// `isReleased`: the owner gave it up without deleting the item.
    pub released: bool,
}

/// What a worker should write after reading the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStep {
    /// Write `item` iff the stored lock's version is `expected` (`None`: no item).
    Write {
        /// The version the write is conditional on.
        expected: Option<String>,
        /// The lock to store.
        item: LockItem,
    },
    /// Nothing to write now.
    Wait,
}

/// One worker's side of the leader election.
#[derive(Debug, Clone)]
pub struct LeaderLock {
    worker_id: String,
    lease_duration_ms: u64,
    heartbeat_ms: u64,
    /// Another worker's lock: its version and when this worker first saw it.
    seen: Option<(String, u64)>,
    /// Our lock: its version and when the write that stored it was sent.
    held: Option<(String, u64)>,
}

impl LeaderLock {
    /// The election of `worker_id`, whose lock lives `lease_duration_ms` and is renewed
    /// every `heartbeat_ms`.
    pub fn new(worker_id: impl Into<String>, lease_duration_ms: u64, heartbeat_ms: u64) -> Self {
        LeaderLock {
            worker_id: worker_id.into(),
            lease_duration_ms,
            heartbeat_ms,
            seen: None,
            held: None,
        }
    }

    /// The worker this election runs for.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Given the lock as just read at `now_ms`, what to write; `new_version` is the fresh
    /// `recordVersionNumber` a write would store.
    pub fn step(
        &mut self,
        stored: Option<&LockItem>,
        now_ms: u64,
        new_version: String,
    ) -> LockStep {
        let mine = LockItem {
            owner_name: self.worker_id.clone(),
            lease_duration_ms: self.lease_duration_ms,
            record_version_number: new_version,
            released: false,
        };
        let Some(stored) = stored else {
            self.seen = None;
            return LockStep::Write {
                expected: None,
                item: mine,
            };
        };
        let version = stored.record_version_number.clone();
        if let Some((held, written_ms)) = &self.held
            && *held == version
            && !stored.released
        {
            if now_ms.saturating_sub(*written_ms) >= self.heartbeat_ms {
                return LockStep::Write {
                    expected: Some(version),
                    item: mine,
                };
            }
            return LockStep::Wait;
        }
        // Not (or no longer) ours.
        self.held = None;
        if stored.released {
            self.seen = None;
            return LockStep::Write {
                expected: Some(version),
                item: mine,
            };
        }
        match &self.seen {
            Some((seen, since_ms)) if *seen == version => {
                if now_ms.saturating_sub(*since_ms) > stored.lease_duration_ms {
                    LockStep::Write {
                        expected: Some(version),
                        item: mine,
                    }
                } else {
                    LockStep::Wait
                }
            }
            _ => {
                self.seen = Some((version, now_ms));
                LockStep::Wait
            }
        }
    }

    /// The write of `item`, sent at `sent_ms`, succeeded: this worker holds the lock.
    pub fn record_written(&mut self, item: &LockItem, sent_ms: u64) {
        self.seen = None;
        self.held = Some((item.record_version_number.clone(), sent_ms));
    }

    /// A write was refused (someone else wrote first) or the lock was released.
    pub fn record_lost(&mut self) {
        self.held = None;
    }

    /// Whether this worker may act as leader at `now_ms`: it holds the lock and its last
    /// write is younger than the lease duration.
    pub fn is_leader(&self, now_ms: u64) -> bool {
        self.held
            .as_ref()
            .is_some_and(|(_, written)| now_ms.saturating_sub(*written) < self.lease_duration_ms)
    }

    /// The version of the lock this worker holds, to delete it when shutting down.
    pub fn held_version(&self) -> Option<&str> {
        self.held.as_ref().map(|(v, _)| v.as_str())
    }
}

/// A fresh `recordVersionNumber`: a random UUID (version 4), as the lock client writes.
pub fn new_record_version_number<R: rand::Rng>(rng: &mut R) -> String {
    use rand::RngExt;
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn apply(stored: &mut Option<LockItem>, step: LockStep) -> Option<LockItem> {
        match step {
            LockStep::Write { expected, item } => {
                let current = stored.as_ref().map(|s| s.record_version_number.clone());
                if current == expected {
                    *stored = Some(item.clone());
                    Some(item)
                } else {
                    None
                }
            }
            LockStep::Wait => None,
        }
    }

    #[test]
    fn the_first_worker_takes_a_missing_lock_and_heartbeats_it() {
        let mut table = None;
        let mut a = LeaderLock::new("a", 1_000, 250);
        let step = a.step(table.as_ref(), 0, "v1".into());
        let written = apply(&mut table, step).expect("absent lock is taken");
        a.record_written(&written, 0);
        assert!(a.is_leader(0));
        assert_eq!(a.step(table.as_ref(), 100, "v2".into()), LockStep::Wait);
        let step = a.step(table.as_ref(), 250, "v3".into());
        assert!(matches!(&step, LockStep::Write { expected: Some(v), .. } if v == "v1"));
        let written = apply(&mut table, step).expect("heartbeat");
        a.record_written(&written, 250);
        assert!(a.is_leader(1_200));
        assert!(
            !a.is_leader(1_250),
            "stops leading before the lock can expire"
        );
    }

    #[test]
    fn a_live_lock_is_left_alone_and_an_expired_one_taken_over() {
        let mut table = None;
        let mut a = LeaderLock::new("a", 1_000, 250);
        let mut b = LeaderLock::new("b", 1_000, 250);
        let step = a.step(table.as_ref(), 0, "a1".into());
        let w = apply(&mut table, step).unwrap();
        a.record_written(&w, 0);
        assert_eq!(b.step(table.as_ref(), 10, "b1".into()), LockStep::Wait);
        // a heartbeats: b's clock restarts with the new version.
        let step = a.step(table.as_ref(), 500, "a2".into());
        let w = apply(&mut table, step).unwrap();
        a.record_written(&w, 500);
        assert_eq!(b.step(table.as_ref(), 900, "b2".into()), LockStep::Wait);
        assert_eq!(b.step(table.as_ref(), 1_900, "b3".into()), LockStep::Wait);
        // a dies; b sees "a2" unchanged for longer than the lease duration.
        let step = b.step(table.as_ref(), 1_901, "b4".into());
        let w = apply(&mut table, step).expect("expired lock taken");
        b.record_written(&w, 1_901);
        assert!(b.is_leader(1_901));
        assert!(!a.is_leader(1_901));
        // a comes back: it sees another's lock and lets go.
        assert_eq!(a.step(table.as_ref(), 2_000, "a3".into()), LockStep::Wait);
        assert!(!a.is_leader(2_000));
    }

    #[test]
    fn two_contenders_for_one_lock_have_one_winner() {
        let mut table = None;
        let mut a = LeaderLock::new("a", 1_000, 250);
        let mut b = LeaderLock::new("b", 1_000, 250);
        let sa = a.step(table.as_ref(), 0, "a1".into());
        let sb = b.step(table.as_ref(), 0, "b1".into());
        let wa = apply(&mut table, sa).unwrap();
        a.record_written(&wa, 0);
        assert!(apply(&mut table, sb).is_none());
        b.record_lost();
        assert!(a.is_leader(1) && !b.is_leader(1));
    }

    #[test]
    fn a_released_lock_is_free_at_once() {
        let mut b = LeaderLock::new("b", 1_000, 250);
        let released = LockItem {
            owner_name: "a".into(),
            lease_duration_ms: 1_000,
            record_version_number: "a9".into(),
            released: true,
        };
        assert!(matches!(
            b.step(Some(&released), 0, "b1".into()),
            LockStep::Write { expected: Some(v), .. } if v == "a9"
        ));
    }

    #[test]
    fn versions_look_like_uuids() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let v = new_record_version_number(&mut rng);
        assert_eq!(v.len(), 36);
        assert_eq!(v.as_bytes()[14], b'4');
        assert_ne!(v, new_record_version_number(&mut rng));
    }
}
