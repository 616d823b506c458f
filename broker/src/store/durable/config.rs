//! Where and how the durable store keeps its data, and what it does with
//! damage it finds at start-up.

use crate::store::commit::FsyncPolicy;
use crate::store::disk_faults::{DiskFaultHook, DiskFaults};
use std::path::PathBuf;
use std::sync::Arc;

/// What start-up does with a damaged sealed segment (one that is not the
/// newest of its shard, so was fsynced whole when it was closed): damage there
/// is not a torn write, and cutting at it would drop intact records behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoverCorrupt {
    /// Refuse to start, naming the file (`--recover-corrupt=refuse`, the default).
    #[default]
    Refuse,
    /// Keep a copy of the whole segment aside (`<name>.seg.quarantined`),
    /// report it, and start serving the records before the damage and every
    /// later segment (`--recover-corrupt=quarantine`).
    Quarantine,
}

impl std::fmt::Display for RecoverCorrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecoverCorrupt::Refuse => "refuse",
            RecoverCorrupt::Quarantine => "quarantine",
        })
    }
}

impl std::str::FromStr for RecoverCorrupt {
    type Err = String;

    /// `refuse` or `quarantine`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "refuse" => Ok(RecoverCorrupt::Refuse),
            "quarantine" => Ok(RecoverCorrupt::Quarantine),
            other => Err(format!(
                "invalid recovery policy {other:?}: expected `refuse` or `quarantine`"
            )),
        }
    }
}

/// Where and how the durable store keeps its data. Build with [`DurableConfig::new`].
#[derive(Debug, Clone)]
pub struct DurableConfig {
    /// The data dir (`--data-dir`). Created if missing.
    pub dir: PathBuf,
    /// When a write counts as done (`--fsync`). Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// A segment file is closed and a new one started past this size. Default 64 MiB.
    pub segment_bytes: u64,
    /// Record bytes between two sparse-index entries. Default 64 KiB.
    pub index_interval_bytes: u64,
    /// What start-up does with a damaged sealed segment (`--recover-corrupt`).
    /// Default [`RecoverCorrupt::Refuse`].
    pub recover_corrupt: RecoverCorrupt,
    /// A test hook that makes chosen disk operations fail. Default none.
    pub faults: Option<DiskFaultHook>,
}

impl DurableConfig {
    /// Defaults for a data dir.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DurableConfig {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: 64 * 1024,
            recover_corrupt: RecoverCorrupt::Refuse,
            faults: None,
        }
    }

    /// Set what start-up does with a damaged sealed segment.
    pub fn recover_corrupt(mut self, policy: RecoverCorrupt) -> Self {
        self.recover_corrupt = policy;
        self
    }

    /// Consult `faults` before disk operations (a test hook: see [`DiskFaults`]).
    pub fn disk_faults(mut self, faults: Arc<dyn DiskFaults>) -> Self {
        self.faults = Some(DiskFaultHook(faults));
        self
    }

    /// Set the fsync policy.
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Set the segment size (at least 1 byte: every segment holds at least one record).
    pub fn segment_bytes(mut self, n: u64) -> Self {
        self.segment_bytes = n.max(1);
        self
    }

    /// Set the sparse-index spacing (at least 1 byte).
    pub fn index_interval_bytes(mut self, n: u64) -> Self {
        self.index_interval_bytes = n.max(1);
        self
    }
}
