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
//! file beside it ([`super::sealed_index`]), and opening a log reads those instead of
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

mod config;
mod files;
mod log;

pub use config::{DurableConfig, RecoverCorrupt};
pub use files::QUARANTINE_SUFFIX;
pub use log::{Damage, DurableLog};

use crate::store::commit::{CommitTicket, GroupCommit};
use crate::store::{LoadedStream, ShardLog, Storage, StoreError};
use crate::stream_record::StreamRecord;
use files::{io, sync_dir, write_atomically};
use log::LogSettings;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STREAMS_DIR: &str = "streams";
const STREAM_FILE: &str = "stream.json";
const CEILING_FILE: &str = "counter.ceiling";
const TOKEN_KEY_FILE: &str = "token.key";
const LOCK_FILE: &str = "LOCK";

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
