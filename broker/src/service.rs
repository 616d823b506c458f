//! The Kinesis service state: every stream, and what all operations share
//! (stream lookup, status transitions, retention, tokens).

use crate::config::BrokerConfig;
use crate::store::{MemoryStorage, Storage};
use crate::stream::{Stream, StreamStatus};
use crate::token::TokenSealer;
use kinesis_proto::KinesisError;
use kinesis_proto::model::StreamRef;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The broker's state and operations, independent of HTTP.
pub struct Service {
    /// Settings.
    pub config: BrokerConfig,
    /// Makes shard logs.
    pub storage: Arc<dyn Storage>,
    /// Streams by name.
    pub streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Seals iterators and pagination tokens.
    pub sealer: TokenSealer,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    kinesis_proto::codec::Timestamp::now().millis()
}

impl Service {
    /// A service with in-memory storage.
    pub fn new(config: BrokerConfig) -> Arc<Self> {
        Self::with_storage(config, Arc::new(MemoryStorage), TokenSealer::random())
    }

    /// A service on the given storage.
    pub fn with_storage(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        sealer: TokenSealer,
    ) -> Arc<Self> {
        Arc::new(Service {
            config,
            storage,
            streams: RwLock::new(BTreeMap::new()),
            sealer,
        })
    }

    /// This broker's ARN for a stream name.
    pub fn stream_arn(&self, name: &str) -> String {
        crate::arn::stream_arn(&self.config.region, &self.config.account_id, name)
    }

    /// "Stream X under account N not found."
    pub fn not_found(&self, name: &str) -> KinesisError {
        KinesisError::not_found(format!(
            "Stream {name} under account {} not found.",
            self.config.account_id
        ))
    }

    /// Resolve a StreamName/StreamARN pair to its name, checking they agree.
    pub fn stream_name_of(&self, r: &StreamRef) -> Result<String, KinesisError> {
        let mut v = crate::validation::Violations::new();
        if let Some(n) = &r.stream_name {
            v.name("streamName", n);
        }
        if let Some(a) = &r.stream_arn {
            v.stream_arn("streamARN", a);
        }
        v.finish()?;
        let from_arn = r
            .stream_arn
            .as_deref()
            .and_then(crate::arn::parse_stream_arn)
            .map(|(_, _, name)| name.to_string());
        match (&r.stream_name, from_arn) {
            (None, None) => Err(KinesisError::invalid(
                "Neither StreamName nor StreamARN was provided.",
            )),
            (Some(n), None) => Ok(n.clone()),
            (None, Some(a)) => Ok(a),
            (Some(n), Some(a)) if *n == a => Ok(a),
            (Some(n), Some(a)) => Err(KinesisError::invalid(format!(
                "StreamARN stream {a} and StreamName {n} do not refer to the same stream."
            ))),
        }
    }

    /// The stream a request names, whatever its status.
    pub fn stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let name = self.stream_name_of(r)?;
        self.stream_by_name(&name)
    }

    /// The stream called `name`.
    pub fn stream_by_name(&self, name: &str) -> Result<Arc<Stream>, KinesisError> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// The stream, refusing data-plane calls while it is CREATING.
    pub fn readable_stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let s = self.stream(r)?;
        if s.meta.read().status == StreamStatus::Creating {
            return Err(self.not_found(&s.name));
        }
        Ok(s)
    }

    /// "Stream X under account N not ACTIVE, instead in state S".
    pub fn not_active(&self, s: &Stream, status: StreamStatus) -> KinesisError {
        KinesisError::in_use(format!(
            "Stream {} under account {} not ACTIVE, instead in state {}",
            s.name,
            self.config.account_id,
            status.as_str()
        ))
    }

    /// Retention cut-off for a stream: records that arrived before it are gone.
    pub fn min_arrival_ms(&self, retention_hours: u32, now: i64) -> i64 {
        let hour_ms = self.config.retention_hour.as_millis() as i64;
        now.saturating_sub(hour_ms.saturating_mul(i64::from(retention_hours)))
    }

    /// Move a stream to `status` now, and to `then` after `delay` unless
    /// something else changed its status first.
    pub fn transition(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        status: StreamStatus,
        then: StreamStatus,
        delay: Duration,
    ) {
        let epoch = {
            let mut m = stream.meta.write();
            m.status = status;
            m.status_epoch += 1;
            if delay.is_zero() {
                m.status = then;
                m.status_epoch += 1;
                return;
            }
            m.status_epoch
        };
        let stream = Arc::clone(stream);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut m = stream.meta.write();
            if m.status_epoch == epoch {
                m.status = then;
                m.status_epoch += 1;
            }
        });
    }

    /// Remove a DELETING stream after `delay`.
    pub fn remove_after(self: &Arc<Self>, stream: &Arc<Stream>, delay: Duration) {
        let svc = Arc::clone(self);
        let stream = Arc::clone(stream);
        let remove = move || {
            let mut all = svc.streams.write();
            if all
                .get(&stream.name)
                .is_some_and(|s| Arc::ptr_eq(s, &stream))
            {
                all.remove(&stream.name);
            }
        };
        if delay.is_zero() {
            remove();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                remove();
            });
        }
    }

    /// Drop records past retention from every shard, and forget closed shards
    /// whose records have all expired from listings (their logs stay empty).
    pub fn trim_expired(&self, now: i64) {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        for s in streams {
            let m = s.meta.read();
            let min = self.min_arrival_ms(m.retention_hours, now);
            for shard in &m.shards {
                shard.trim(min);
            }
        }
    }

    /// Open shards across all streams (for the quota).
    pub fn open_shard_count(&self) -> usize {
        self.streams
            .read()
            .values()
            .map(|s| s.meta.read().open.len())
            .sum()
    }
}
