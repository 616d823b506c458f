//! One flow's reading loop: look at the files matching the pattern, let the tracker decide
//! what to read, cut records, process them and hand them to the sender.

use crate::config::FlowConfig;
use crate::file_tracker::{
    Event, FINGERPRINT_BYTES, FileId, FileTracker, Fingerprint, Observed, glob_match, is_compressed,
};
use crate::metrics::Metrics;
use crate::processing::apply_all;
use crate::record_splitter::{Flush, RecordSplitter, SplitState};
use crate::sender::{Closed, PARTITION_KEY_LEN, Sender};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Most bytes read from a file at once.
pub const READ_CHUNK: usize = 2 * 1024 * 1024;

/// The checkpoint key of a flow: its pattern and stream.
pub fn flow_key(flow: &FlowConfig) -> String {
    format!("{} -> {}", flow.file_pattern, flow.kinesis_stream)
}

/// The files matching `pattern` (wildcards in the last component), with what the tracker
/// needs to know of each. Files that vanish while being looked at are left out.
pub fn observe(pattern: &str) -> Vec<Observed> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name_pattern)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name_pattern = name_pattern.to_string_lossy();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dirent in listing.flatten() {
        let name = dirent.file_name();
        let name = name.to_string_lossy();
        if !glob_match(&name_pattern, &name) || is_compressed(&name) {
            continue;
        }
        let path = dirent.path();
        // Opening a FIFO would block: look before opening.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let mut head = vec![0u8; FINGERPRINT_BYTES];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        head.truncate(got);
        out.push(Observed {
            path,
            id: FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            head,
        });
    }
    out
}

/// One flow being read.
pub struct Tailer {
    flow: FlowConfig,
    key: String,
    tracker: Arc<Mutex<FileTracker>>,
    splitter: RecordSplitter,
    sender: Sender,
    metrics: Arc<Metrics>,
    states: HashMap<u64, SplitState>,
    lag_paths: HashSet<String>,
    epoch: Instant,
}

struct Progress {
    consumed: u64,
    done: bool,
}

impl Tailer {
    /// A tailer for `flow` reading into `sender`, deciding with `tracker`.
    pub fn new(
        flow: FlowConfig,
        tracker: Arc<Mutex<FileTracker>>,
        sender: Sender,
        metrics: Arc<Metrics>,
    ) -> Tailer {
        let start = flow
            .multi_line_start_pattern
            .as_deref()
            .and_then(|p| regex::Regex::new(p).ok());
        let splitter = RecordSplitter::new(
            start,
            crate::config::MAX_RECORD_BYTES - PARTITION_KEY_LEN,
            flow.truncated_record_terminator.as_bytes(),
        );
        Tailer {
            key: flow_key(&flow),
            flow,
            tracker,
            splitter,
            sender,
            metrics,
            states: HashMap::new(),
            lag_paths: HashSet::new(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Reads until `stop` turns true or the sender closes.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let poll = self.flow.min_time_between_file_polls;
        while !*stop.borrow() {
            let progressed = match self.cycle().await {
                Ok(p) => p,
                Err(Closed) => return,
            };
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn cycle(&mut self) -> Result<bool, Closed> {
        let pattern = self.flow.file_pattern.clone();
        let observed = tokio::task::spawn_blocking(move || observe(&pattern))
            .await
            .unwrap_or_default();
        let now = self.now_ms();
        let (events, readable) = {
            let mut t = self.tracker.lock();
            let events = t.update(observed, now);
            let readable: Vec<u64> = t
                .entries()
                .filter(|e| e.size > e.read)
                .map(|e| e.seq)
                .collect();
            (events, readable)
        };
        for ev in events {
            match ev {
                Event::New { path, offset } => {
                    tracing::info!(flow = %self.key, path = %path.display(), offset, "tailing")
                }
                Event::Truncated { path } => {
                    tracing::info!(flow = %self.key, path = %path.display(), "truncated or replaced; reading from its start")
                }
                Event::CopyAdopted { copy, original } => tracing::info!(
                    flow = %self.key, copy = %copy.display(), original = %original.display(),
                    "copy-truncate rotation; finishing the copy"
                ),
                Event::Vanished { path, unread } => {
                    if unread > 0 {
                        tracing::warn!(flow = %self.key, path = %path.display(), unread, "file vanished before it was read to its end")
                    }
                }
            }
        }
        self.update_lag();
        let live: HashSet<u64> = self.tracker.lock().entries().map(|e| e.seq).collect();
        self.states.retain(|seq, _| live.contains(seq));
        let mut progressed = false;
        for seq in readable {
            let p = self.read_entry(seq).await?;
            progressed |= p.consumed > 0;
            if !p.done {
                // Finish this file before a newer one.
                break;
            }
        }
        Ok(progressed)
    }

    fn update_lag(&mut self) {
        let t = self.tracker.lock();
        let mut now_paths = HashSet::new();
        for e in t.entries() {
            let path = e.path.display().to_string();
            self.metrics
                .file_lag
                .with_label_values(&[&self.key, &path])
                .set(e.size.saturating_sub(e.committed) as i64);
            now_paths.insert(path);
        }
        for gone in self.lag_paths.difference(&now_paths) {
            let _ = self
                .metrics
                .file_lag
                .remove_label_values(&[&self.key, gone]);
        }
        self.lag_paths = now_paths;
    }

    async fn read_entry(&mut self, seq: u64) -> Result<Progress, Closed> {
        let now = self.now_ms();
        let (path, id, fingerprint, read, size, from_start, rotated, idle) = {
            let t = self.tracker.lock();
            let Some(e) = t.entry(seq) else {
                return Ok(Progress {
                    consumed: 0,
                    done: true,
                });
            };
            // Idle long enough that a writer mid-line or mid-stack-trace would have finished.
            let idle_after = (self.flow.min_time_between_file_polls * 5)
                .max(Duration::from_millis(500))
                .as_millis() as u64;
            (
                e.path.clone(),
                e.id,
                e.fingerprint,
                e.read,
                e.size,
                e.from_start,
                t.has_newer(seq),
                now.saturating_sub(e.changed_at_ms) >= idle_after,
            )
        };
        let read_file =
            tokio::task::spawn_blocking(move || read_at(&path, id, fingerprint, read, READ_CHUNK));
        let Some(buf) = read_file.await.ok().flatten() else {
            return Ok(Progress {
                consumed: 0,
                done: false,
            });
        };
        let at_end = read + buf.len() as u64 >= size;
        let flush = match (at_end, rotated, idle) {
            (true, true, true) => Flush::All,
            (true, _, true) | (true, true, false) => Flush::Records,
            _ => Flush::None,
        };
        let skip_header = self.flow.skip_header_lines;
        let state = self.states.entry(seq).or_insert_with(|| SplitState {
            header_left: if from_start && read == 0 {
                skip_header
            } else {
                0
            },
            skipping: false,
        });
        let split = self.splitter.split(&buf, flush, state);
        let lines = self.metrics.lines_read.with_label_values(&[&self.key]);
        let filtered = self
            .metrics
            .records_filtered
            .with_label_values(&[&self.key]);
        let wall = SystemTime::now();
        let mut last_end = 0usize;
        for piece in &split.pieces {
            lines.inc();
            let data = self.splitter.data(&buf, piece);
            let end = read + piece.end as u64;
            match apply_all(&self.flow.data_processing_options, &data, wall) {
                Some(out) if !out.is_empty() => self.sender.send(seq, end, out).await?,
                _ => {
                    filtered.inc();
                    self.sender.skip(seq, end).await?;
                }
            }
            last_end = piece.end;
        }
        if split.consumed > last_end {
            // Header lines or a dropped tail: nothing to send, but done with.
            self.sender.skip(seq, read + split.consumed as u64).await?;
        }
        let new_read = read + split.consumed as u64;
        self.tracker.lock().advance(seq, new_read);
        Ok(Progress {
            consumed: split.consumed as u64,
            done: new_read >= size,
        })
    }
}

/// Up to `max` bytes of the file at `path` from `offset`, if it still is file `id` with
/// `fingerprint` once they are read (a truncation racing the read discards it).
fn read_at(
    path: &PathBuf,
    id: FileId,
    fingerprint: Fingerprint,
    offset: u64,
    max: usize,
) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    if meta.dev() != id.dev || meta.ino() != id.ino {
        // Rotated between looking and reading: the next look sorts it out.
        return None;
    }
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::with_capacity(max.min(meta.len().saturating_sub(offset) as usize));
    (&mut f).take(max as u64).read_to_end(&mut buf).ok()?;
    let mut head = vec![0u8; fingerprint.len];
    f.seek(SeekFrom::Start(0)).ok()?;
    f.read_exact(&mut head).ok()?;
    fingerprint.matches(&head).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_lists_regular_matching_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("app.log"), b"live\n").unwrap();
        std::fs::write(d.join("app.log.1"), vec![b'x'; 3000]).unwrap();
        std::fs::write(d.join("other.txt"), b"no\n").unwrap();
        // Compressed archives are skipped, as the Java agent skips them.
        std::fs::write(d.join("app.log.2.gz"), b"\x1f\x8b").unwrap();
        std::fs::write(d.join("app.log.3.BZ2"), b"BZh").unwrap();
        std::fs::create_dir(d.join("app.log.d")).unwrap();
        // A FIFO matching the pattern: opening it would block the agent.
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("app.log.pipe"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let mut seen = observe(&format!("{}/app.log*", d.display()));
        seen.sort_by(|a, b| a.path.cmp(&b.path));
        let names: Vec<_> = seen
            .iter()
            .map(|o| o.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["app.log", "app.log.1"]);
        assert_eq!(seen[0].head, b"live\n");
        assert_eq!(seen[1].size, 3000);
        assert_eq!(seen[1].head.len(), FINGERPRINT_BYTES);
        assert!(observe(&format!("{}/missing/*.log", d.display())).is_empty());
    }
}
