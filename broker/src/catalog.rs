//! A stream's description as the durable store keeps it: everything but the
//! records (settings, tags, consumers, and every shard with its lineage and
//! counters), captured under the stream's lock and restored at start-up. The
//! data itself is [`crate::stream_record`]'s.

use crate::counter::StreamCounter;
use crate::shard::Shard;
use crate::store::{ShardLog, Storage, StoreError};
use crate::stream::{ConsumerEntry, ConsumerStatus, Stream, StreamMeta, StreamMode, StreamStatus};
pub use crate::stream_record::{ConsumerRecord, FORMAT, ShardRecord, StreamRecord};
use kinesis_proto::hash_key::HashRange;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

impl ShardRecord {
    /// Describe `s` as it is now.
    pub fn of(s: &Shard) -> ShardRecord {
        let st = s.status();
        ShardRecord {
            index: s.index,
            parent: s.parent,
            adjacent_parent: s.adjacent_parent,
            hash_start: s.range.start.to_string(),
            hash_end: s.range.end.to_string(),
            start_counter: s.start_counter,
            created_ms: s.created_ms,
            end_counter: st.end_counter,
            closed_ms: st.closed_ms,
            floor_ms: Some(s.floor_ms()).filter(|&f| f != i64::MIN),
            reclaimed: s.is_reclaimed(),
        }
    }
}

fn bad(name: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("stream {name}: bad description: {what}"))
}

impl StreamRecord {
    /// Describe `stream` as `m` (its locked meta) has it now.
    pub fn capture(stream: &Stream, m: &StreamMeta) -> StreamRecord {
        StreamRecord {
            format: FORMAT,
            name: stream.name.clone(),
            arn: stream.arn.clone(),
            created_ms: stream.created_ms,
            status: m.status.as_str().to_string(),
            mode: m.mode.as_str().to_string(),
            retention_hours: m.retention_hours,
            tags: m.tags.clone(),
            kms_key: m.kms_key.clone(),
            shard_level_metrics: m.shard_level_metrics.clone(),
            consumers: m
                .consumers
                .values()
                .map(|c| ConsumerRecord {
                    name: c.name.clone(),
                    arn: c.arn.clone(),
                    status: c.status.as_str().to_string(),
                    created_ms: c.created_ms,
                })
                .collect(),
            shards: m.shards.iter().map(|s| ShardRecord::of(s)).collect(),
            counter: stream.counter.peek(),
            encryption_switches: m.encryption_switches.clone(),
            pending_reshard: m.pending_reshard.clone(),
        }
    }

    /// Rebuild the stream over its shards' logs (a missing log is made fresh by
    /// `storage`). A status that was waiting for a delay (CREATING, UPDATING) is
    /// over: the stream comes back ACTIVE; consumers likewise, and DELETING ones
    /// are gone. The counter continues above everything stored and above the
    /// saved `counter_ceiling`.
    pub fn restore(
        self,
        mut logs: BTreeMap<u32, Box<dyn ShardLog>>,
        counter_ceiling: u64,
        storage: &Arc<dyn Storage>,
    ) -> Result<Stream, StoreError> {
        if self.format > FORMAT {
            return Err(bad(
                &self.name,
                format!("format {} is newer than this broker", self.format),
            ));
        }
        let mode = match self.mode.as_str() {
            "ON_DEMAND" => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        let mut next = self.counter;
        let mut shards = Vec::with_capacity(self.shards.len());
        for (i, s) in self.shards.iter().enumerate() {
            if s.index as usize != i {
                return Err(bad(
                    &self.name,
                    format!("shard {} listed at position {i}", s.index),
                ));
            }
            let start: u128 = s.hash_start.parse().map_err(|e| bad(&self.name, e))?;
            let end: u128 = s.hash_end.parse().map_err(|e| bad(&self.name, e))?;
            let log = match logs.remove(&s.index) {
                _ if s.reclaimed => Box::new(crate::store::MemoryLog::new()),
                Some(l) => l,
                None => storage.create_log(&self.name, self.created_ms, s.index)?,
            };
            next = next.max(s.start_counter + 1);
            if let Some(end) = s.end_counter {
                next = next.max(end + 1);
            }
            if let Some(last) = log.last_counter() {
                next = next.max(last + 1);
            }
            let shard = Shard::new(
                s.index,
                s.parent,
                s.adjacent_parent,
                HashRange::new(start, end),
                s.start_counter,
                s.created_ms,
                log,
            );
            if let Some(end) = s.end_counter {
                shard.set_closed(end, s.closed_ms.unwrap_or(s.created_ms));
                if s.reclaimed {
                    shard.reclaim();
                }
            }
            if let Some(floor) = s.floor_ms {
                shard.trim(floor);
            }
            shards.push(Arc::new(shard));
        }
        let consumers = self
            .consumers
            .into_iter()
            .filter(|c| c.status != ConsumerStatus::Deleting.as_str())
            .map(|c| {
                let entry = ConsumerEntry {
                    name: c.name.clone(),
                    arn: c.arn,
                    status: ConsumerStatus::Active,
                    created_ms: c.created_ms,
                };
                (c.name, entry)
            })
            .collect();
        let mut meta = StreamMeta {
            encryption_switches: self.encryption_switches,
            pending_reshard: self.pending_reshard,
            status: StreamStatus::Active,
            status_epoch: 0,
            mode,
            retention_hours: self.retention_hours,
            tags: self.tags,
            shards,
            open: Vec::new(),
            kms_key: self.kms_key,
            shard_level_metrics: self.shard_level_metrics,
            consumers,
        };
        meta.rebuild_routing();
        Ok(Stream {
            counter: StreamCounter::on_storage(
                storage,
                &self.name,
                self.created_ms,
                next,
                counter_ceiling,
            ),
            name: self.name,
            arn: self.arn,
            created_ms: self.created_ms,
            meta: RwLock::new(meta),
        })
    }
}
