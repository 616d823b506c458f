//! The durable store: each shard's records in append-only segment files under a
//! data dir, each stream's description in an atomically replaced JSON file, and
//! recovery that drops a torn tail.
//!
//! ```text
//! DIR/LOCK                                   held while a broker runs on DIR
//! DIR/token.key                              the iterator-sealing key
//! DIR/streams/<name>.<created ms>/stream.json
//! DIR/streams/<name>.<created ms>/counter.ceiling  counters below it may have been used
//! DIR/streams/<name>.<created ms>/shardId-000000000000/<first counter>.seg
//! DIR/streams/<name>.<created ms>/shardId-000000000000/<first counter>.idx  once sealed
//! ```
//!
//! Start-up time does not grow with the data: when a segment is sealed (a
//! newer one is started) its bounds and sparse index are written to an index
//! file beside it ([`sealed_index`]), and opening a log reads those instead of
//! the records. Only the newest segment, bounded by
//! [`DurableConfig::segment_bytes`], is checked record by record and has a torn
//! tail cut off. A sealed segment whose index file is missing, damaged or
//! disagrees with the segment (its length, its last records) is scanned as
//! before, which also opens data dirs written before index files existed, and
//! gets a fresh index file. Damage inside a sealed segment with a good index
//! file is found when the damaged record is read: every read checks each
//! record's CRC and fails rather than serve it (`docs/durable-store.md`).
//!
//! Memory stays bounded: a log keeps, per segment, a sparse index (one entry
//! per [`DurableConfig::index_interval_bytes`] of records) and an open file for
//! the active segment only, and reads seek to the nearest index entry and
//! decode from the file.

use crate::store::commit::{CommitTicket, FsyncPolicy, GroupCommit, LogSync};
use crate::store::disk_faults::{DiskFaultHook, DiskFaults};
use crate::store::sealed_index;
use crate::store::segment::{self, Cursor, CursorError, Segment};
use crate::store::{LoadedStream, LogRecord, ReadBatch, ShardLog, Storage, StoreError};
use crate::stream_record::StreamRecord;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STREAMS_DIR: &str = "streams";
const STREAM_FILE: &str = "stream.json";
const CEILING_FILE: &str = "counter.ceiling";
const TOKEN_KEY_FILE: &str = "token.key";
const LOCK_FILE: &str = "LOCK";

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

/// The suffix a quarantined segment file gets.
pub const QUARANTINE_SUFFIX: &str = "quarantined";

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

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

/// Make a directory entry (a new file, a rename) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Replace `path` with `bytes` so that a crash leaves either the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("cannot write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io("cannot rename onto", path, e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Refuse to go on past a damaged sealed segment, or keep a copy of it aside,
/// as `policy` says; the copy's path.
fn quarantine(
    path: &Path,
    offset: u64,
    reason: &str,
    policy: RecoverCorrupt,
) -> Result<PathBuf, StoreError> {
    if policy == RecoverCorrupt::Refuse {
        return Err(StoreError::Io(format!(
            "sealed segment {} is damaged at byte {offset} ({reason}); cutting it there would drop \
             the intact records behind the damage, so the broker will not start. Restore the \
             file from a copy, or start with --recover-corrupt=quarantine to keep a copy aside \
             and lose only the records from the damage to the end of that segment",
            path.display()
        )));
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(".");
    aside.push(QUARANTINE_SUFFIX);
    let aside = PathBuf::from(aside);
    // The whole damaged file is kept for whoever can repair it; the segment
    // itself keeps serving the records before the damage.
    fs::copy(path, &aside)
        .and_then(|_| File::open(&aside))
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot quarantine", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(aside)
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", path, e)),
    }
}

/// Write the index file of sealed segment `seg`. A failure costs only a scan
/// of that segment at the next start, so it is reported, not returned.
fn write_index(seg: &Segment) {
    let path = sealed_index::path_for(&seg.path);
    if let Err(e) = write_atomically(&path, &sealed_index::encode(seg)) {
        tracing::warn!(error = %e, "cannot write a segment index file; the next start scans that segment");
    }
}

/// A sealed segment as its index file describes it, if the index file is
/// whole and agrees with the segment file: the segment must be exactly as
/// long as when it was sealed, follow `after`, and its last index run must
/// decode to records ending on the recorded last counter at the recorded end.
/// Records before that run are not read here; reads check each record's CRC
/// and fail rather than serve a damaged one (`docs/durable-store.md`).
fn sealed_from_index(path: &Path, after: Option<u64>) -> Result<Segment, String> {
    let index_path = sealed_index::path_for(path);
    let bytes = match fs::read(&index_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("no index file".into()),
        Err(e) => return Err(format!("cannot read {}: {e}", index_path.display())),
    };
    let seg = sealed_index::decode(path.to_path_buf(), &bytes).map_err(str::to_string)?;
    if after.is_some_and(|a| seg.first_counter <= a) {
        return Err("counters overlap the previous segment".into());
    }
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    if len != seg.size {
        return Err(format!(
            "the segment is {len} bytes, its index says {}",
            seg.size
        ));
    }
    let tail = seg.index.last().map_or(0, |e| e.offset);
    let mut cursor = Cursor::new(&file, tail, seg.size);
    let mut newest = None;
    loop {
        match cursor.next_record() {
            Ok(Some((_, r))) => newest = Some(r.counter),
            Ok(None) => break,
            Err(CursorError::Damaged { offset, reason }) => {
                return Err(format!("damaged record at byte {offset}: {reason}"));
            }
            Err(CursorError::Io(e)) => return Err(format!("cannot read: {e}")),
        }
    }
    if newest != Some(seg.last_counter) {
        return Err("the last record is not the one the index names".into());
    }
    Ok(seg)
}

/// Sizes a log works with.
#[derive(Debug, Clone, Copy)]
struct LogSettings {
    segment_bytes: u64,
    index_interval: u64,
    recover_corrupt: RecoverCorrupt,
}

/// A shard's records in segment files.
pub struct DurableLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    records: usize,
    settings: LogSettings,
    commit: Arc<GroupCommit>,
    sync: Arc<LogSync>,
    broken: Option<String>,
    scanned: usize,
}

impl std::fmt::Debug for DurableLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableLog")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Damage found while opening a log and cut off: a torn or corrupt tail of the
/// newest segment, or damage in a sealed segment under
/// [`RecoverCorrupt::Quarantine`] (whose whole file is then copied aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Where its valid part ends.
    pub offset: u64,
    /// Bytes dropped.
    pub dropped: u64,
    /// What was wrong.
    pub reason: &'static str,
    /// Where a copy of the whole file was kept, if it was a sealed segment.
    pub quarantined: Option<PathBuf>,
}

impl DurableLog {
    fn empty(dir: PathBuf, settings: LogSettings, commit: Arc<GroupCommit>) -> Self {
        let sync = commit.register(0, dir.clone());
        DurableLog {
            dir,
            segments: Vec::new(),
            records: 0,
            settings,
            commit,
            sync,
            broken: None,
            scanned: 0,
        }
    }

    /// A new, empty log in `dir`, replacing anything left there by an
    /// unfinished operation before a crash.
    fn create(
        dir: PathBuf,
        settings: LogSettings,
        commit: Arc<GroupCommit>,
    ) -> Result<Self, StoreError> {
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| io("cannot clear", &dir, e))?;
        }
        fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
            if let Some(grand) = parent.parent() {
                sync_dir(grand)?;
            }
        }
        Ok(Self::empty(dir, settings, commit))
    }

    /// Open the log in `dir`: check every record, cut off a torn or corrupt
    /// tail (reported in the result), and rebuild the sparse indexes.
    fn open(
        dir: PathBuf,
        settings: LogSettings,
        commit: Arc<GroupCommit>,
    ) -> Result<(Self, Vec<Damage>), StoreError> {
        let mut files: Vec<(u64, PathBuf)> = Vec::new();
        let entries = fs::read_dir(&dir).map_err(|e| io("cannot list", &dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io("cannot list", &dir, e))?.path();
            if let Some(first) = segment::parse_file_name(&path) {
                files.push((first, path));
            }
        }
        files.sort();
        let mut log = Self::empty(dir, settings, commit);
        let mut damage = Vec::new();
        let mut last: Option<u64> = None;
        let newest = files.len().saturating_sub(1);
        for (i, (_, path)) in files.into_iter().enumerate() {
            if i != newest {
                match sealed_from_index(&path, last) {
                    Ok(seg) => {
                        if let Some(prev) = log.segments.last_mut() {
                            prev.file = None;
                        }
                        last = Some(seg.last_counter);
                        log.records += seg.records as usize;
                        log.segments.push(seg);
                        continue;
                    }
                    Err(why) => {
                        tracing::info!(path = %path.display(), why, "scanning a sealed segment: its index file cannot be used");
                    }
                }
            }
            log.scanned += 1;
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| io("cannot open", &path, e))?;
            let file = Arc::new(file);
            let scan = segment::scan(
                path.clone(),
                Arc::clone(&file),
                last,
                settings.index_interval,
            )
            .map_err(|e| io("cannot read", &path, e))?;
            let mut seg = scan.segment;
            // Only the newest segment stays open; it may become the active one.
            if let Some(prev) = log.segments.last_mut() {
                prev.file = None;
            }
            if let Some((offset, reason)) = scan.damage {
                let len = file
                    .metadata()
                    .map_err(|e| io("cannot stat", &path, e))?
                    .len();
                // A sealed segment was fsynced whole when it was closed: its
                // damage is not a torn write, and intact records may follow it.
                let quarantined = if i == newest {
                    None
                } else {
                    Some(quarantine(&path, offset, reason, settings.recover_corrupt)?)
                };
                file.set_len(offset)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io("cannot truncate", &path, e))?;
                seg.size = offset;
                damage.push(Damage {
                    path: path.clone(),
                    offset,
                    dropped: len - offset,
                    reason,
                    quarantined,
                });
            }
            if seg.records == 0 {
                // Nothing valid in it: it tells nothing, and its name may not match
                // the counter of whatever is appended next.
                drop(seg);
                fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
                remove_if_present(&sealed_index::path_for(&path))?;
                continue;
            }
            if i != newest {
                // A data dir from before index files, or one whose index was
                // lost: the next start need not scan this segment again.
                write_index(&seg);
            }
            last = Some(seg.last_counter);
            log.records += seg.records as usize;
            log.segments.push(seg);
        }
        if let Some(active) = log.segments.last() {
            // The newest segment is the one appends go to (it is the newest
            // sealed one when an empty newer file was dropped above).
            remove_if_present(&sealed_index::path_for(&active.path))?;
        }
        if !damage.is_empty() {
            sync_dir(&log.dir)?;
        }
        if let Some(l) = last {
            log.sync.durable_to(l + 1);
        }
        Ok((log, damage))
    }

    /// Segment files that opening this log read record by record (the newest,
    /// and any sealed one without a usable index file); the rest were opened
    /// from their index files.
    pub fn scanned_segments(&self) -> usize {
        self.scanned
    }

    /// Sparse index entries held, over all segments (the log's memory is O(this)).
    pub fn index_entries(&self) -> usize {
        self.segments.iter().map(|s| s.index.len()).sum()
    }

    /// Records with counters below this are known to be on disk.
    pub fn durable_end(&self) -> u64 {
        self.sync.durable_end()
    }

    /// Segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of records on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Close the active segment and start one whose first record is `first_counter`.
    fn roll(&mut self, first_counter: u64) -> Result<(), StoreError> {
        if let Some(active) = self.segments.last_mut() {
            // The closed segment is never written again: put it on disk now, so
            // syncing "the active file" later covers everything.
            if let Some(f) = active.file.take() {
                f.sync_data()
                    .map_err(|e| io("cannot sync", &active.path, e))?;
            }
            self.sync.durable_to(active.last_counter + 1);
            write_index(active);
        }
        let path = self.dir.join(segment::file_name(first_counter));
        // Only a remnant of a crash can be there, and it describes nothing.
        remove_if_present(&sealed_index::path_for(&path))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot create", &path, e))?;
        // A leftover of the same name can only be an unreferenced remnant.
        file.set_len(0).map_err(|e| io("cannot reset", &path, e))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment::new(path, Arc::new(file)));
        Ok(())
    }

    /// Write `bytes`, the encoding of `batch`, to the active segment.
    fn write_chunk(&mut self, bytes: &[u8], batch: &[LogRecord]) -> Result<(), StoreError> {
        let interval = self.settings.index_interval;
        let Some(seg) = self.segments.last_mut() else {
            return Err(StoreError::Io("no active segment".into()));
        };
        let file = match &seg.file {
            Some(f) => Arc::clone(f),
            None => {
                // Reopen the newest segment for appending (after recovery it is closed).
                let f = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&seg.path)
                    .map_err(|e| io("cannot open", &seg.path, e))?;
                let f = Arc::new(f);
                seg.file = Some(Arc::clone(&f));
                f
            }
        };
        let start = seg.size;
        if let Err(e) = (&*file).write_all(bytes) {
            // Cut off whatever part landed so the next append starts on a record boundary.
            if let Err(e2) = file.set_len(start) {
                self.broken = Some(format!(
                    "cannot undo a failed write to {}: {e2}",
                    seg.path.display()
                ));
            }
            let err = io("cannot write", &seg.path, e);
            if seg.records == 0 {
                let seg = self.segments.pop();
                if let Some(seg) = seg {
                    let _ = fs::remove_file(&seg.path);
                }
            }
            return Err(err);
        }
        let mut offset = start;
        for r in batch {
            let len = segment::encoded_len(r) as u64;
            seg.note(r.counter, r.arrival_ms, offset, len, interval);
            offset += len;
        }
        self.records += batch.len();
        let upto = seg.last_counter + 1;
        self.commit.mark(&self.sync, &file, upto);
        Ok(())
    }

    fn damaged(&self, e: CursorError) -> StoreError {
        match e {
            CursorError::Io(e) => io("cannot read", &self.dir, e),
            CursorError::Damaged { offset, reason } => StoreError::Io(format!(
                "damaged record in {} at byte {offset}: {reason}",
                self.dir.display()
            )),
        }
    }
}

impl ShardLog for DurableLog {
    fn append(&mut self, batch: Vec<LogRecord>) -> Result<(), StoreError> {
        if let Some(b) = &self.broken {
            return Err(StoreError::Io(b.clone()));
        }
        self.commit.check()?;
        let limit = self.settings.segment_bytes;
        let mut i = 0;
        while i < batch.len() {
            let first_len = segment::encoded_len(&batch[i]) as u64;
            let roll = self
                .segments
                .last()
                .is_none_or(|s| s.records > 0 && s.size + first_len > limit);
            if roll {
                self.roll(batch[i].counter)?;
            }
            let mut fill = self.segments.last().map_or(0, |s| s.size);
            let start = i;
            // A fresh buffer per chunk: a shard keeps no buffer between writes.
            let mut bytes = Vec::new();
            while i < batch.len() {
                let len = segment::encoded_len(&batch[i]) as u64;
                if i > start && fill + len > limit {
                    break;
                }
                segment::encode(&batch[i], &mut bytes);
                fill += len;
                i += 1;
            }
            self.write_chunk(&bytes, &batch[start..i])?;
        }
        Ok(())
    }

    fn read(
        &self,
        from: u64,
        min_arrival_ms: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadBatch, StoreError> {
        if let Some(hook) = self.commit.faults() {
            hook.0
                .before_read(&self.dir)
                .map_err(|e| io("cannot read", &self.dir, e))?;
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut started = false;
        // Under `always`, readers see only what is on disk: a record a crash of
        // the machine could take back is never handed to a consumer.
        let visible_end = match self.commit.policy() {
            FsyncPolicy::Always => self.sync.durable_end(),
            FsyncPolicy::Interval(_) => u64::MAX,
        };
        let first = self
            .segments
            .partition_point(|s| s.first_counter <= from)
            .saturating_sub(1);
        for (si, seg) in self.segments.iter().enumerate().skip(first) {
            let mut run = if si == first {
                seg.run_for_counter(from)
            } else {
                0
            };
            if !started {
                // Records before `from`, then those retention hides, are skipped:
                // a run that is all expired is skipped without reading it.
                if seg.max_arrival < min_arrival_ms {
                    continue;
                }
                while run < seg.index.len() && seg.index[run].max_arrival < min_arrival_ms {
                    run += 1;
                }
            }
            let file = seg.reader().map_err(|e| io("cannot open", &seg.path, e))?;
            let mut cursor = Cursor::new(&file, seg.run_start(run), seg.size);
            while let Some((_, r)) = cursor.next_record().map_err(|e| self.damaged(e))? {
                if !started {
                    if r.counter < from || r.arrival_ms < min_arrival_ms {
                        continue;
                    }
                    started = true;
                }
                if r.counter >= visible_end {
                    return Ok(ReadBatch {
                        records: out,
                        next_arrival_ms: Some(r.arrival_ms),
                    });
                }
                let size = r.billed_size();
                if out.len() >= max_records || (!out.is_empty() && bytes + size > max_bytes) {
                    return Ok(ReadBatch {
                        records: out,
                        next_arrival_ms: Some(r.arrival_ms),
                    });
                }
                bytes += size;
                out.push(r);
            }
        }
        Ok(ReadBatch {
            records: out,
            next_arrival_ms: None,
        })
    }

    fn first_at_or_after(
        &self,
        ts_ms: i64,
        min_arrival_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let floor = ts_ms.max(min_arrival_ms);
        for seg in self.segments.iter().filter(|s| s.max_arrival >= floor) {
            let file = seg.reader().map_err(|e| io("cannot open", &seg.path, e))?;
            for (run, e) in seg.index.iter().enumerate() {
                if e.max_arrival < floor {
                    continue;
                }
                let mut cursor = Cursor::new(&file, e.offset, seg.run_end(run));
                while let Some((_, r)) = cursor.next_record().map_err(|e| self.damaged(e))? {
                    if r.arrival_ms >= floor {
                        return Ok(Some(r.counter));
                    }
                }
            }
        }
        Ok(None)
    }

    fn last_counter(&self) -> Option<u64> {
        self.segments.last().map(|s| s.last_counter)
    }

    fn last_arrival_ms(&self) -> Option<i64> {
        self.segments.last().map(|s| s.last_arrival)
    }

    fn trim(&mut self, min_arrival_ms: i64) {
        // Whole segments only, and never the active one: it also keeps the
        // highest counter on disk, which recovery continues from.
        while self.segments.len() > 1 && self.segments[0].max_arrival < min_arrival_ms {
            let path = self.segments[0].path.clone();
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete an expired segment");
                    return;
                }
            }
            if let Err(e) = remove_if_present(&sealed_index::path_for(&path)) {
                // Harmless: an index without its segment is never read.
                tracing::warn!(error = %e, "cannot delete the index file of an expired segment");
            }
            let seg = self.segments.remove(0);
            self.records -= seg.records as usize;
            tracing::debug!(path = %path.display(), records = seg.records, "deleted an expired segment");
        }
    }

    fn len(&self) -> usize {
        self.records
    }

    fn on_durable(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.sync.on_durable(wake);
    }
}

/// Stores shards as [`DurableLog`]s and stream descriptions as files under one data dir.
pub struct DurableStorage {
    config: DurableConfig,
    commit: Arc<GroupCommit>,
    /// Serialises description writes (they share temporary file names per stream).
    saving: Mutex<()>,
    _lock: File,
}

impl std::fmt::Debug for DurableStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStorage")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DurableStorage {
    /// Open (creating if needed) the data dir and take its lock, so two brokers
    /// never write one dir.
    pub fn open(config: DurableConfig) -> Result<DurableStorage, StoreError> {
        let root = &config.dir;
        fs::create_dir_all(root.join(STREAMS_DIR)).map_err(|e| io("cannot create", root, e))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io("cannot open", &lock_path, e))?;
        lock.try_lock().map_err(|e| {
            StoreError::Io(format!(
                "data dir {} is in use by another broker ({e})",
                root.display()
            ))
        })?;
        sync_dir(root)?;
        let commit = GroupCommit::with_faults(config.fsync, config.faults.clone());
        Ok(DurableStorage {
            config,
            commit,
            saving: Mutex::new(()),
            _lock: lock,
        })
    }

    /// The settings.
    pub fn config(&self) -> &DurableConfig {
        &self.config
    }

    /// The group commit all of this store's logs share.
    pub fn commit(&self) -> &Arc<GroupCommit> {
        &self.commit
    }

    /// The key that seals iterators, kept in the data dir so iterators and
    /// pagination tokens stay valid across restarts.
    pub fn token_key(&self) -> Result<[u8; 32], StoreError> {
        let path = self.config.dir.join(TOKEN_KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(key);
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "token key has the wrong size; making a new one")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot read", &path, e)),
        }
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(16) {
            chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        write_atomically(&path, &key)?;
        Ok(key)
    }

    fn stream_dir(&self, name: &str, created_ms: i64) -> PathBuf {
        self.config
            .dir
            .join(STREAMS_DIR)
            .join(format!("{name}.{created_ms}"))
    }

    fn settings(&self) -> LogSettings {
        LogSettings {
            segment_bytes: self.config.segment_bytes,
            index_interval: self.config.index_interval_bytes,
            recover_corrupt: self.config.recover_corrupt,
        }
    }

    /// Open an existing shard log (as recovery does), reporting any tail it cut off.
    pub fn open_log(
        &self,
        stream: &str,
        created_ms: i64,
        shard_index: u32,
    ) -> Result<(DurableLog, Vec<Damage>), StoreError> {
        let dir = self
            .stream_dir(stream, created_ms)
            .join(kinesis_proto::shard_id::format(shard_index));
        if !dir.exists() {
            return Ok((
                DurableLog::create(dir, self.settings(), Arc::clone(&self.commit))?,
                Vec::new(),
            ));
        }
        DurableLog::open(dir, self.settings(), Arc::clone(&self.commit))
    }

    /// Make a new, empty shard log (the concrete type, for tests and tools).
    pub fn create_durable_log(
        &self,
        stream: &str,
        created_ms: i64,
        shard_index: u32,
    ) -> Result<DurableLog, StoreError> {
        let dir = self
            .stream_dir(stream, created_ms)
            .join(kinesis_proto::shard_id::format(shard_index));
        if let Some(hook) = &self.config.faults {
            hook.0
                .before_create_log(&dir)
                .map_err(|e| io("cannot create", &dir, e))?;
        }
        DurableLog::create(dir, self.settings(), Arc::clone(&self.commit))
    }

    fn load_one(&self, dir: &Path) -> Result<Option<LoadedStream>, StoreError> {
        let desc = dir.join(STREAM_FILE);
        let text = match fs::read(&desc) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // CreateStream never finished (it answers only after this file exists).
                tracing::info!(dir = %dir.display(), "removing an unfinished stream");
                fs::remove_dir_all(dir).map_err(|e| io("cannot remove", dir, e))?;
                return Ok(None);
            }
            Err(e) => return Err(io("cannot read", &desc, e)),
        };
        let record: StreamRecord = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Io(format!("cannot parse {}: {e}", desc.display())))?;
        if record.status == "DELETING" {
            tracing::info!(stream = %record.name, "finishing the deletion of a stream");
            fs::remove_dir_all(dir).map_err(|e| io("cannot remove", dir, e))?;
            return Ok(None);
        }
        let ceiling_path = dir.join(CEILING_FILE);
        let counter_ceiling = match fs::read_to_string(&ceiling_path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                StoreError::Io(format!("cannot parse {}: {e}", ceiling_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io("cannot read", &ceiling_path, e)),
        };
        let mut logs: BTreeMap<u32, Box<dyn ShardLog>> = BTreeMap::new();
        for shard in record.shards.iter().filter(|s| !s.reclaimed) {
            let (log, damage) = self.open_log(&record.name, record.created_ms, shard.index)?;
            for d in damage {
                if let Some(aside) = &d.quarantined {
                    tracing::error!(
                        stream = %record.name,
                        shard = shard.index,
                        path = %d.path.display(),
                        quarantined_as = %aside.display(),
                        offset = d.offset,
                        reason = d.reason,
                        dropped_bytes = d.dropped,
                        "quarantined a damaged sealed segment: the records from the damage to its end are no longer served"
                    );
                    continue;
                }
                tracing::warn!(
                    stream = %record.name,
                    shard = shard.index,
                    path = %d.path.display(),
                    offset = d.offset,
                    dropped_bytes = d.dropped,
                    reason = d.reason,
                    "dropped a torn tail: the last record was incomplete or corrupt; everything before it is intact"
                );
            }
            logs.insert(shard.index, Box::new(log));
        }
        // Shard dirs the description does not name were made by a reshard that
        // did not finish; it was never answered, so nothing was written there.
        // A reclaimed shard's dir is left over from a stop before its deletion.
        let known: Vec<String> = record
            .shards
            .iter()
            .filter(|s| !s.reclaimed)
            .map(|s| kinesis_proto::shard_id::format(s.index))
            .collect();
        for entry in fs::read_dir(dir).map_err(|e| io("cannot list", dir, e))? {
            let path = entry.map_err(|e| io("cannot list", dir, e))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() && !known.iter().any(|k| k == name) {
                tracing::info!(dir = %path.display(), "removing a shard of an unfinished reshard");
                fs::remove_dir_all(&path).map_err(|e| io("cannot remove", &path, e))?;
            }
        }
        Ok(Some(LoadedStream {
            record,
            logs,
            counter_ceiling,
        }))
    }
}

impl Storage for DurableStorage {
    fn create_log(
        &self,
        stream: &str,
        created_ms: i64,
        shard_index: u32,
    ) -> Result<Box<dyn ShardLog>, StoreError> {
        Ok(Box::new(self.create_durable_log(
            stream,
            created_ms,
            shard_index,
        )?))
    }

    fn persists(&self) -> bool {
        true
    }

    fn save_stream(&self, record: &StreamRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| StoreError::Io(format!("cannot encode stream {}: {e}", record.name)))?;
        let dir = self.stream_dir(&record.name, record.created_ms);
        if let Some(hook) = &self.config.faults {
            hook.0
                .before_save_stream(&record.name)
                .map_err(|e| io("cannot save", &dir, e))?;
        }
        let _one_at_a_time = self.saving.lock();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        write_atomically(&dir.join(STREAM_FILE), &bytes)
    }

    fn save_counter_ceiling(
        &self,
        name: &str,
        created_ms: i64,
        ceiling: u64,
    ) -> Result<(), StoreError> {
        let dir = self.stream_dir(name, created_ms);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        write_atomically(&dir.join(CEILING_FILE), ceiling.to_string().as_bytes())
    }

    fn remove_log(
        &self,
        stream: &str,
        created_ms: i64,
        shard_index: u32,
    ) -> Result<(), StoreError> {
        let dir = self.stream_dir(stream, created_ms);
        let shard = dir.join(kinesis_proto::shard_id::format(shard_index));
        match fs::remove_dir_all(&shard) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot remove", &shard, e)),
        }
    }

    fn remove_stream(&self, name: &str, created_ms: i64) -> Result<(), StoreError> {
        let dir = self.stream_dir(name, created_ms);
        let _one_at_a_time = self.saving.lock();
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("cannot remove", &dir, e)),
        }
        match dir.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    fn load_streams(&self) -> Result<Vec<LoadedStream>, StoreError> {
        let root = self.config.dir.join(STREAMS_DIR);
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&root).map_err(|e| io("cannot list", &root, e))? {
            let path = entry.map_err(|e| io("cannot list", &root, e))?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        dirs.sort();
        let mut out: Vec<LoadedStream> = Vec::new();
        for dir in dirs {
            let Some(loaded) = self.load_one(&dir)? else {
                continue;
            };
            // Two live streams of one name cannot both have been answered; keep the newer.
            if let Some(i) = out.iter().position(|o| o.record.name == loaded.record.name) {
                tracing::warn!(stream = %loaded.record.name, "two copies of a stream; keeping the newer");
                if out[i].record.created_ms < loaded.record.created_ms {
                    out[i] = loaded;
                }
                continue;
            }
            out.push(loaded);
        }
        Ok(out)
    }

    fn commit_ticket(&self) -> Option<CommitTicket> {
        self.commit.ticket()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.commit.sync_blocking()
    }
}
