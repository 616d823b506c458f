//! Sends records through kpl and turns their outcomes into checkpointable offsets.
//!
//! The reader puts a record and queues its handle with the file offset where the record ends;
//! one completion task per flow awaits the handles in queue order, so the offset it commits
//! is always that of a record all of whose predecessors are in the stream. A record that
//! fails (after kpl's own retries) is put again, never skipped.
//!
//! Back-pressure: bytes in flight (put, not yet resolved) are bounded by a semaphore, and
//! kpl's memory budget bounds what it buffers, so a throttling stream makes `send` wait and
//! the reader stops reading, instead of memory growing.

use crate::config::{AgentConfig, FlowConfig, MAX_RECORD_BYTES, PartitionKeyOption};
use crate::file_tracker::FileTracker;
use crate::metrics::Metrics;
use kinesis_kpl::{Config, Credentials, Ordering, Producer, PutHandle, Record};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Bytes of records put and not yet resolved, per flow.
pub const IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// Records put and not yet resolved, per flow.
pub const IN_FLIGHT_RECORDS: usize = 50_000;
/// Longest partition key the agent makes (RANDOM and DETERMINISTIC are 32 hex digits).
pub const PARTITION_KEY_LEN: usize = 32;

/// The kpl settings of a flow: the flow's buffer settings mapped onto kpl's, aggregation on,
/// retries ordered per shard so a file's lines stay in order on a shard.
pub fn kpl_config(agent: &AgentConfig, flow: &FlowConfig) -> Config {
    let mut b = Config::builder()
        .region(agent.region())
        .aggregation_enabled(true)
        // One aggregated record can carry up to a Kinesis record's worth of lines.
        .aggregation_max_size((MAX_RECORD_BYTES - 4096).min(flow.max_buffer_size_bytes.max(64)))
        .collection_max_count(flow.max_buffer_size_records)
        .collection_max_size(flow.max_buffer_size_bytes.max(52_224))
        .record_max_buffered_time(flow.max_buffer_age)
        // The Java agent retries until the record is in; a long TTL keeps kpl retrying and
        // the completion task puts again whatever still fails.
        .record_ttl(Duration::from_secs(3600))
        .retry_backoff(
            flow.retry_initial_backoff,
            flow.retry_max_backoff.max(flow.retry_initial_backoff),
        )
        .max_buffered_bytes(2 * IN_FLIGHT_BYTES)
        .ordering(Ordering::PerPartitionKey);
    if let Some(n) = agent.max_connections {
        b = b.max_connections(n);
    }
    if let Some(t) = agent.connection_timeout {
        b = b.connect_timeout(t);
    }
    if let Some(t) = agent.socket_timeout {
        b = b.request_timeout(t);
    }
    if let Some(ep) = &agent.kinesis_endpoint {
        b = b.endpoint(ep.clone());
    }
    if let Some((id, secret)) = &agent.static_credentials {
        b = b.credentials(Credentials::new(id.clone(), secret.clone()));
    }
    b.build()
}

/// A record put and not yet resolved, or an offset with nothing to send.
#[derive(Debug)]
pub enum InFlight {
    /// A record: its file, where it ends, its handle, itself (to put again) and its share of
    /// the in-flight budget.
    Put {
        /// File sequence number.
        seq: u64,
        /// Offset after the record.
        end: u64,
        /// kpl's handle.
        handle: PutHandle,
        /// The record, to put again if it fails.
        record: Record,
        /// Released when the record resolves.
        permit: OwnedSemaphorePermit,
    },
    /// Bytes consumed without a record (filtered out): committed once earlier records are.
    Skip {
        /// File sequence number.
        seq: u64,
        /// Offset after the skipped bytes.
        end: u64,
    },
}

/// The sending side of one flow.
#[derive(Debug)]
pub struct Sender {
    producer: Arc<Producer>,
    stream: Arc<str>,
    partition_key: PartitionKeyOption,
    rng: u64,
    budget: Arc<Semaphore>,
    queue: mpsc::Sender<InFlight>,
}

/// Errors of sending: the completion task or the producer is gone (shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the sender is shut down")]
pub struct Closed;

impl Sender {
    /// A sender and the receiving end its completion task drains.
    pub fn new(
        producer: Arc<Producer>,
        stream: &str,
        partition_key: PartitionKeyOption,
        seed: u64,
    ) -> (Sender, mpsc::Receiver<InFlight>) {
        let (tx, rx) = mpsc::channel(IN_FLIGHT_RECORDS);
        (
            Sender {
                producer,
                stream: stream.into(),
                partition_key,
                rng: seed | 1,
                budget: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
                queue: tx,
            },
            rx,
        )
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: partition keys only need to spread, not to be secret.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn key_for(&mut self, data: &[u8]) -> String {
        match self.partition_key {
            PartitionKeyOption::Random => {
                format!("{:016x}{:016x}", self.next_random(), self.next_random())
            }
            PartitionKeyOption::Deterministic => {
                let digest = Md5::digest(data);
                digest.iter().map(|b| format!("{b:02x}")).collect()
            }
        }
    }

    /// Puts `data`, the record of file `seq` ending at `end`; waits while the in-flight budget
    /// or kpl's buffer is full.
    pub async fn send(&mut self, seq: u64, end: u64, data: Vec<u8>) -> Result<(), Closed> {
        let cost = data.len().clamp(1, IN_FLIGHT_BYTES) as u32;
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| Closed)?;
        let key = self.key_for(&data);
        let record = Record::new(self.stream.clone(), key, data);
        let handle = match self.producer.put(record.clone()).await {
            Ok(h) => h,
            Err(kinesis_kpl::Error::InvalidRecord(e)) => {
                // Cannot happen for records cut to the maximum size; never block the file on it.
                tracing::error!(error = %e, "record refused by kpl; skipped");
                return self.skip(seq, end).await;
            }
            Err(_) => return Err(Closed),
        };
        self.queue
            .send(InFlight::Put {
                seq,
                end,
                handle,
                record,
                permit,
            })
            .await
            .map_err(|_| Closed)
    }

    /// Marks bytes up to `end` of file `seq` done without a record.
    pub async fn skip(&mut self, seq: u64, end: u64) -> Result<(), Closed> {
        self.queue
            .send(InFlight::Skip { seq, end })
            .await
            .map_err(|_| Closed)
    }
}

/// Awaits every queued record in order, puts failed ones again, and commits offsets into the
/// tracker. Ends when the sender is dropped and the queue is drained.
pub async fn complete(
    mut rx: mpsc::Receiver<InFlight>,
    producer: Arc<Producer>,
    tracker: Arc<Mutex<FileTracker>>,
    metrics: Arc<Metrics>,
    flow: String,
    committed: Arc<tokio::sync::Notify>,
) {
    let sent = metrics.records_sent.with_label_values(&[&flow]);
    let bytes = metrics.bytes_sent.with_label_values(&[&flow]);
    let failures = metrics.failures.with_label_values(&[&flow]);
    while let Some(item) = rx.recv().await {
        match item {
            InFlight::Skip { seq, end } => {
                tracker.lock().commit(seq, end);
                committed.notify_one();
            }
            InFlight::Put {
                seq,
                end,
                mut handle,
                record,
                permit,
            } => {
                let mut delay = Duration::from_millis(100);
                loop {
                    match handle.await {
                        Ok(_) => break,
                        Err(e) => {
                            failures.inc();
                            tracing::warn!(error = %e, "put failed; sending the record again");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                            match producer.put(record.clone()).await {
                                Ok(h) => handle = h,
                                // Shut down: the record stays uncommitted and is read again
                                // after a restart.
                                Err(_) => return,
                            }
                        }
                    }
                }
                sent.inc();
                bytes.inc_by(record.data.len() as u64);
                tracker.lock().commit(seq, end);
                committed.notify_one();
                drop(permit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn partition_keys() {
        let producer = Arc::new(
            Producer::new(Config::builder().endpoint("http://127.0.0.1:1").build()).unwrap(),
        );
        let (mut det, _rx) =
            Sender::new(producer.clone(), "s", PartitionKeyOption::Deterministic, 1);
        // The MD5 of the data, in hex: equal lines land on one shard.
        assert_eq!(det.key_for(b"hello\n"), det.key_for(b"hello\n"));
        assert_eq!(det.key_for(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let (mut random, _rx) = Sender::new(producer, "s", PartitionKeyOption::Random, 1);
        let keys: std::collections::HashSet<String> =
            (0..1000).map(|_| random.key_for(b"same")).collect();
        assert_eq!(keys.len(), 1000);
        assert!(keys.iter().all(|k| k.len() == PARTITION_KEY_LEN));
    }

    #[test]
    fn flow_settings_map_onto_kpl() {
        let agent = AgentConfig::parse(
            r#"{"kinesis.endpoint":"http://127.0.0.1:1","kinesis.region":"eu-west-1",
                "awsAccessKeyId":"AK","awsSecretAccessKey":"SK","maxConnections":4,
                "flows":[{"filePattern":"/a","kinesisStream":"s","maxBufferAgeMillis":2000,
                          "maxBufferSizeRecords":100,"maxBufferSizeBytes":262144,
                          "retryInitialBackoffMillis":50,"retryMaxBackoffMillis":400}]}"#,
        )
        .unwrap();
        let c = kpl_config(&agent, &agent.flows[0]);
        c.validate().unwrap();
        assert!(c.aggregation_enabled);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(
            c.credentials.as_ref().map(|c| c.access_key_id.as_str()),
            Some("AK")
        );
        assert_eq!(c.record_max_buffered_time, Duration::from_secs(2));
        assert_eq!(c.collection_max_count, 100);
        assert_eq!(c.collection_max_size, 262_144);
        assert_eq!(c.aggregation_max_size, 262_144);
        assert_eq!(c.max_connections, 4);
        assert_eq!(c.retry_backoff_base, Duration::from_millis(50));
        assert_eq!(c.retry_backoff_cap, Duration::from_millis(400));
        assert_eq!(c.ordering, Ordering::PerPartitionKey);
        // Defaults: a whole PutRecords, aggregates up to a Kinesis record.
        let agent =
            AgentConfig::parse(r#"{"flows":[{"filePattern":"/a","kinesisStream":"s"}]}"#).unwrap();
        let c = kpl_config(&agent, &agent.flows[0]);
        c.validate().unwrap();
        assert_eq!(c.collection_max_size, 5 * 1024 * 1024);
        assert_eq!(c.aggregation_max_size, MAX_RECORD_BYTES - 4096);
    }
}
