//! Group commit: when a write is on disk, and who pays for the fsync.
//!
//! Appends only `write` (under the shard's lock) and mark their log dirty.
//! Under [`FsyncPolicy::Always`] a PutRecord's reply waits on a
//! [`CommitTicket`]: the first waiter starts a round (a task of its own) that
//! fsyncs every dirty log at once, outside any shard lock, and releases every
//! waiter whose writes that covered. A failed fsync fails every waiter and
//! every later write: what reached the disk is then unknown. Writers that arrive meanwhile queue behind the leader and
//! are covered by the next round, so concurrent writers share one fsync per
//! round instead of paying one each. Under [`FsyncPolicy::Interval`] a
//! background thread does the same every few milliseconds and nobody waits.

use crate::store::StoreError;
use crate::store::disk_faults::DiskFaultHook;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// A PutRecord/PutRecords is answered only after its records are fsynced
    /// (concurrent writers share fsyncs). Default with a data dir.
    #[default]
    Always,
    /// Fsync every so often; a crash of the machine (not just the broker) may
    /// lose the writes of the last interval.
    Interval(Duration),
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Interval(d) => write!(f, "interval={}", d.as_millis()),
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = String;

    /// `always` or `interval=MS` (MS at least 1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid fsync policy {s:?}: expected `always` or `interval=MS`");
        match s.trim() {
            "always" => Ok(FsyncPolicy::Always),
            other => {
                let ms = other
                    .strip_prefix("interval=")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|&ms| ms > 0)
                    .ok_or_else(bad)?;
                Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// A log's standing with the group commit: how far its records are known to be on disk.
///
/// Under [`FsyncPolicy::Always`] readers are held back to [`durable_end`](Self::durable_end):
/// a record nobody has seen cannot be skipped by a consumer if a crash of the
/// machine takes it back. Under [`FsyncPolicy::Interval`] a record is readable
/// once written; a crash of the machine may then take back records a reader
/// saw, and the stream's counter ceiling keeps their numbers from being reused.
pub struct LogSync {
    id: u64,
    dir: PathBuf,
    durable_end: AtomicU64,
    listener: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for LogSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSync")
            .field("dir", &self.dir)
            .field("durable_end", &self.durable_end())
            .finish_non_exhaustive()
    }
}

impl LogSync {
    /// Records with counters below this are on disk.
    pub fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    /// Everything below `end` is known to be on disk (e.g. synced at a segment roll).
    pub fn durable_to(&self, end: u64) {
        let before = self.durable_end.fetch_max(end, Ordering::AcqRel);
        if end > before
            && let Some(wake) = self.listener.get()
        {
            wake();
        }
    }

    /// Call `wake` whenever more of the log becomes durable (readers held back
    /// to the durable end wait for it). Only the first listener is kept.
    pub fn on_durable(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.listener.set(wake);
    }
}

struct Pending {
    sync: Arc<LogSync>,
    file: Arc<File>,
    upto: u64,
}

#[derive(Default)]
struct State {
    appended: u64,
    dirty: HashMap<u64, Pending>,
}

/// What one fsync round covers: a snapshot of the dirty logs, which stay
/// listed until the round succeeds (so an abandoned round loses nothing).
struct Round {
    epoch: u64,
    files: Vec<(Arc<LogSync>, Arc<File>, u64)>,
}

/// One data dir's group commit.
pub struct GroupCommit {
    policy: FsyncPolicy,
    state: Mutex<State>,
    synced: AtomicU64,
    rounds: AtomicU64,
    leader: tokio::sync::Mutex<()>,
    failure: Mutex<Option<String>>,
    next_id: AtomicU64,
    faults: Option<DiskFaultHook>,
}

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("policy", &self.policy)
            .field("rounds", &self.rounds.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// A group commit with this policy; under `Interval` it starts its syncing thread,
    /// which ends once the group commit is dropped.
    pub fn new(policy: FsyncPolicy) -> Arc<Self> {
        Self::with_faults(policy, None)
    }

    /// [`new`](Self::new), consulting `faults` before every fsync (a test hook).
    pub fn with_faults(policy: FsyncPolicy, faults: Option<DiskFaultHook>) -> Arc<Self> {
        let commit = Arc::new(GroupCommit {
            policy,
            state: Mutex::new(State::default()),
            synced: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
            leader: tokio::sync::Mutex::new(()),
            failure: Mutex::new(None),
            next_id: AtomicU64::new(0),
            faults,
        });
        if let FsyncPolicy::Interval(every) = policy {
            let weak = Arc::downgrade(&commit);
            let spawned = std::thread::Builder::new()
                .name("kinesis-fsync".into())
                .spawn(move || interval_loop(weak, every));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the fsync thread; refusing writes");
                *commit.failure.lock() = Some(format!("cannot start the fsync thread: {e}"));
            }
        }
        commit
    }

    /// The policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// The test hook consulted before disk operations, if any.
    pub fn faults(&self) -> Option<&DiskFaultHook> {
        self.faults.as_ref()
    }

    /// Fsync rounds run so far (each covers every write made before it began).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Enrol the log in `dir` whose records below `durable_end` are already on disk.
    pub fn register(&self, durable_end: u64, dir: PathBuf) -> Arc<LogSync> {
        Arc::new(LogSync {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            dir,
            durable_end: AtomicU64::new(durable_end),
            listener: OnceLock::new(),
        })
    }

    /// Refuse writes once an fsync has failed: what is on disk is then unknown
    /// until a restart checks the logs again.
    pub fn check(&self) -> Result<(), StoreError> {
        match &*self.failure.lock() {
            Some(e) => Err(StoreError::Io(e.clone())),
            None => Ok(()),
        }
    }

    /// Note a write to `file` making `sync`'s records below `upto` need an fsync.
    pub fn mark(&self, sync: &Arc<LogSync>, file: &Arc<File>, upto: u64) {
        let mut s = self.state.lock();
        s.appended += 1;
        let p = s.dirty.entry(sync.id).or_insert_with(|| Pending {
            sync: Arc::clone(sync),
            file: Arc::clone(file),
            upto,
        });
        p.file = Arc::clone(file);
        p.upto = p.upto.max(upto);
    }

    /// A ticket for everything written so far; `None` when replies need not wait.
    pub fn ticket(self: &Arc<Self>) -> Option<CommitTicket> {
        if self.policy != FsyncPolicy::Always {
            return None;
        }
        let target = self.state.lock().appended;
        Some(CommitTicket {
            commit: Arc::clone(self),
            target,
        })
    }

    fn snapshot(&self) -> Round {
        let s = self.state.lock();
        Round {
            epoch: s.appended,
            files: s
                .dirty
                .values()
                .map(|p| (Arc::clone(&p.sync), Arc::clone(&p.file), p.upto))
                .collect(),
        }
    }

    fn fsync(&self, sync: &LogSync, file: &File) -> Result<(), String> {
        if let Some(hook) = &self.faults {
            hook.0
                .before_fsync(&sync.dir)
                .map_err(|e| format!("cannot sync {}: {e}", sync.dir.display()))?;
        }
        file.sync_data()
            .map_err(|e| format!("cannot sync {}: {e}", sync.dir.display()))
    }

    fn finish(&self, round: Round, result: Result<(), String>) -> Result<(), StoreError> {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                {
                    let mut s = self.state.lock();
                    for (sync, _, upto) in &round.files {
                        // Later writes keep the log listed for the next round.
                        if s.dirty.get(&sync.id).is_some_and(|p| p.upto <= *upto) {
                            s.dirty.remove(&sync.id);
                        }
                    }
                }
                for (sync, _, upto) in &round.files {
                    sync.durable_to(*upto);
                }
                self.synced.fetch_max(round.epoch, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "fsync failed; refusing further writes until a restart");
                let mut f = self.failure.lock();
                let msg = f.get_or_insert(e).clone();
                Err(StoreError::Io(msg))
            }
        }
    }

    /// Fsync every dirty log now, from a thread outside the async runtime.
    pub fn sync_blocking(&self) -> Result<(), StoreError> {
        let _leader = self.leader.blocking_lock();
        self.check()?;
        let round = self.snapshot();
        let result = round
            .files
            .iter()
            .try_for_each(|(sync, file, _)| self.fsync(sync, file));
        self.finish(round, result)
    }

    /// Run fsync rounds until the writes counted up to `target` are on disk or
    /// a round fails. Runs as a task of its own (see [`CommitTicket::wait`]).
    async fn lead_until(self: Arc<Self>, target: u64) -> Result<(), StoreError> {
        loop {
            self.check()?;
            if self.synced.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let _leader = self.leader.lock().await;
            self.check()?;
            if self.synced.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            let round = self.snapshot();
            // One blocking task per file: the fsyncs of different shards overlap.
            let jobs = round.files.iter().map(|(sync, file, _)| {
                let (commit, sync, file) = (Arc::clone(&self), Arc::clone(sync), Arc::clone(file));
                tokio::task::spawn_blocking(move || commit.fsync(&sync, &file))
            });
            let mut result = Ok(());
            for joined in futures::future::join_all(jobs).await {
                match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err(e),
                    Err(e) => result = Err(format!("fsync task failed: {e}")),
                }
            }
            self.finish(round, result)?;
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        if self.failure.get_mut().is_some() {
            return;
        }
        // The last log is gone: whatever is still dirty goes to disk.
        for p in self.state.get_mut().dirty.values() {
            if let Err(e) = p.file.sync_data() {
                tracing::warn!(error = %e, "cannot sync a log while closing the store");
            }
        }
    }
}

fn interval_loop(commit: Weak<GroupCommit>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(c) = commit.upgrade() else { return };
        if c.sync_blocking().is_err() {
            // The failure is logged and sticky; writes are refused from now on.
            return;
        }
    }
}

/// A promise that the writes made before it was issued reach the disk.
#[derive(Debug)]
pub struct CommitTicket {
    commit: Arc<GroupCommit>,
    target: u64,
}

impl CommitTicket {
    /// Wait until the writes are on disk, leading an fsync round if nobody else is.
    ///
    /// The round runs in a task of its own, not in the waiter's future: a waiter
    /// dropped mid-round (its client reset the stream, shutdown aborted the
    /// connection) leaves the round to finish and record its outcome, so the
    /// next waiter learns of a failed fsync instead of finding nothing to do.
    pub async fn wait(self) -> Result<(), StoreError> {
        let c = self.commit;
        c.check()?;
        if c.synced.load(Ordering::Acquire) >= self.target {
            return Ok(());
        }
        match tokio::spawn(c.lead_until(self.target)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Io(format!("fsync round failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        assert_eq!("always".parse(), Ok(FsyncPolicy::Always));
        assert_eq!(
            "interval=25".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_millis(25)))
        );
        assert!("interval=0".parse::<FsyncPolicy>().is_err());
        assert!("interval=x".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_millis(7)).to_string(),
            "interval=7"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writers_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(File::create(dir.path().join("f")).unwrap());
        let commit = GroupCommit::new(FsyncPolicy::Always);
        let syncs: Vec<Arc<LogSync>> = (0..4)
            .map(|i| commit.register(0, dir.path().join(i.to_string())))
            .collect();
        // 64 writes land before anyone waits: the first waiter's round covers all.
        let mut tickets = Vec::new();
        for i in 0..64u64 {
            commit.mark(&syncs[(i % 4) as usize], &file, i + 1);
            tickets.push(commit.ticket().unwrap());
        }
        assert!(syncs.iter().all(|s| s.durable_end() == 0));
        let waits = tickets.into_iter().map(|t| tokio::spawn(t.wait()));
        for w in futures::future::join_all(waits).await {
            w.unwrap().unwrap();
        }
        assert_eq!(commit.rounds(), 1);
        assert_eq!(syncs[3].durable_end(), 64);
        // Nothing dirty: a ticket is immediately good.
        commit.ticket().unwrap().wait().await.unwrap();
        assert!(
            GroupCommit::new(FsyncPolicy::Interval(Duration::from_millis(5)))
                .ticket()
                .is_none()
        );
    }
}
