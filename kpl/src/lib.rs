//! A native async Kinesis producer with the KPL's wire behaviour: KPL aggregation
//! (byte-compatible), per-shard buffering and rate limiting, PutRecords batching, retries with
//! backoff until `RecordTtl`, a future per record, and a bounded memory budget with
//! back-pressure.
//!
//! ```no_run
//! use kinesis_kpl::{Config, Producer, Record};
//! # async fn demo() -> Result<(), kinesis_kpl::Error> {
//! let producer = Producer::new(
//!     Config::builder()
//!         .endpoint("http://127.0.0.1:4567")
//!         .max_buffered_bytes(64 << 20)
//!         .build(),
//! )?;
//! let stream: std::sync::Arc<str> = "orders".into();
//! let mut handles = Vec::new();
//! for i in 0..1000 {
//!     // Waits when 64 MiB are buffered or in flight: back-pressure, bounded memory.
//!     handles.push(producer.put(Record::new(stream.clone(), format!("k{i}"), "data")).await?);
//! }
//! for h in handles {
//!     let put = h.await?; // shard id, sequence number, sub-sequence number, attempts
//!     assert!(put.attempts.last().is_some_and(|a| a.success));
//! }
//! let report = producer.shutdown().await;
//! println!("{} put, {} failed", report.succeeded, report.failed);
//! # Ok(())
//! # }
//! ```
//!
//! Pipeline, one module a stage: [`shard_map`] → [`aggregator`] (per predicted shard) →
//! [`limiter`] → [`collector`] → PutRecords → [`retrier`], wired by the pure `pipeline` module
//! and driven by [`Producer`].

#![warn(missing_docs)]

pub mod aggregator;
pub mod attempt;
mod budget;
pub mod collector;
pub mod config;
pub mod error;
pub mod handle;
pub mod limiter;
pub mod metrics;
mod outstanding;
mod partition_key;
mod pipeline;
mod producer;
pub mod rate_controller;
pub mod record;
pub mod retrier;
pub mod shard_map;
#[cfg(test)]
mod shard_sim;

pub use config::{Config, ConfigBuilder, Ordering};
pub use error::{Error, RecordFailure};
pub use handle::{Attempt, Attempts, PutHandle, PutOutcome, PutResult};
pub use kinesis_proto::client::Credentials;
pub use metrics::Metrics;
pub use producer::{FailedRecord, Producer, ShutdownReport};
pub use record::{Record, Rejected};
