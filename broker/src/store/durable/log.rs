//! One shard's records in segment files ([`DurableLog`]): appends, reads,
//! trimming, segment rolls with their index files, and recovery at open.

use super::config::RecoverCorrupt;
use super::files::{io, quarantine, remove_if_present, sync_dir, write_atomically};
use crate::store::commit::{FsyncPolicy, GroupCommit, LogSync};
use crate::store::sealed_index;
use crate::store::segment::{self, Cursor, CursorError, Segment};
use crate::store::{LogRecord, ReadBatch, ShardLog, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
pub(super) struct LogSettings {
    pub(super) segment_bytes: u64,
    pub(super) index_interval: u64,
    pub(super) recover_corrupt: RecoverCorrupt,
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
    pub(super) fn create(
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
    pub(super) fn open(
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
