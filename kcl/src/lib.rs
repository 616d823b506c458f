//! A Kinesis consumer library modelled on the KCL: record processors fed by polling or
//! enhanced fan-out reads, deaggregation of KPL records, checkpoints down to the
//! sub-sequence number, and leases spread over workers that share a lease table, moved by
//! graceful hand-off and balanced by throughput as in the KCL 3.x (or taken as in 2.x),
//! for one stream or several.
//!
//! Running a consumer:
//! * [`scheduler`] – the worker: shard sync, lease taking/renewing, one shard consumer per lease.
//! * [`config`] – its settings, with KCL's names and defaults; [`polling_config`] for reads.
//! * [`fan_out`] – enhanced fan-out: consumer registration and SubscribeToShard reads.
//! * [`shard_record_processor`] – the trait an application implements, and its inputs.
//! * [`checkpointer`] – checkpoints (plain and two-phase) from inside a processor.
//! * [`record`] – the user record delivered; [`deaggregation`] – how pages become user records.
//! * [`record_stream`] – the simple case: a shard or a whole stream as a `Stream`, no leases.
//! * [`shard_sync`] – which leases to create for the stream's shard lineage.
//! * [`multi_stream`] – one scheduler over several streams: which, and their leases' clean-up.
//! * [`stream_identifier`] – streams and lease keys of a multi-stream application.
//! * [`metrics`] – Prometheus metrics of a worker.
//!
//! The runtime-free core underneath:
//! * [`extended_sequence`] – positions in a shard, sentinels included, and their order.
//! * [`checkpoint`] – the checkpointer's rules; produces the lease write to make.
//! * [`lease`] – the lease record.
//! * [`lease_store`] – the lease table with counter-fenced conditional writes, in
//!   memory, in an SQLite file shared by the worker processes of one host, or (feature
//!   `dynamodb`) in a DynamoDB table shared by workers anywhere and by the Java KCL.
//! * [`lease_config`] – lease timings and limits with KCL's defaults.
//! * [`lease_taker`] – which leases to take or steal each taker run.
//! * [`lease_balance`] – which leases move so that load, not lease count, is balanced.
//! * [`lease_throughput`] – each lease's measured rate, as written in `throughputKBps`.
//! * [`lease_handoff`] – graceful hand-off (KCL 3.x): when to pass a lease on, claim or take it.
//! * [`leader_lock`] – the KCL 3.x leader election: a lock item with expiry.
//! * [`worker_metrics`] – the worker-metrics item each worker writes, and who is alive.
//! * [`coordinator_store`] – the coordinator-state and worker-metrics tables beside the lease table.
//! * [`read_pace`] – when a shard may be read again, given what earlier calls returned.
//! * [`lease_renewer`] – which held leases to renew and which are lost.
//! * [`error`] – the crate's error type.
//!
//! The pure parts take time as milliseconds from any monotonic origin and never
//! sleep or do I/O, so a scheduler drives them and tests simulate them.
//!
//! ```
//! use kinesis_kcl::checkpoint::CheckpointTracker;
//! use kinesis_kcl::extended_sequence::ExtendedSequenceNumber;
//! use kinesis_kcl::lease::Lease;
//! use kinesis_kcl::lease_store::{InMemoryLeaseStore, LeaseStore};
//! use kinesis_kcl::Error;
//!
//! const SEQ: &str = "49600871682957036442365024926191073437251060580128653314";
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(async {
//!     let store = InMemoryLeaseStore::new();
//!     let shard = "shardId-000000000000";
//!     store.create_if_absent(&Lease::new(shard, ExtendedSequenceNumber::TrimHorizon)).await?;
//!
//!     // Take the lease: the write is fenced by the counter we saw (0).
//!     let lease = store.take(shard, "worker-1", 0).await?;
//!     assert!(store.take(shard, "worker-2", 0).await.is_err(), "stale counter loses");
//!
//!     // An aggregate at SEQ with user records 0..=2 was delivered to the processor.
//!     let mut tracker = CheckpointTracker::from_lease(&lease);
//!     tracker.set_largest_permitted(ExtendedSequenceNumber::parse(SEQ, 2)?);
//!     assert!(matches!(tracker.checkpoint_at(SEQ, 3), Err(Error::InvalidCheckpoint { .. })));
//!     assert!(matches!(tracker.checkpoint_at(SEQ, -1), Err(Error::InvalidSubSequenceNumber(-1))));
//!
//!     // A valid checkpoint yields the write to make; record it once the store accepted it.
//!     let update = tracker.checkpoint_at(SEQ, 1)?.expect("moves the checkpoint");
//!     let lease = store.update_checkpoint(shard, "worker-1", lease.lease_counter, &update).await?;
//!     tracker.record_written(&update);
//!     assert_eq!(lease.checkpoint, ExtendedSequenceNumber::parse(SEQ, 1)?);
//!     assert_eq!(tracker.checkpoint_at(SEQ, 1)?, None, "already stored: no-op");
//!     Ok::<_, Error>(())
//! })?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod checkpoint;
pub mod checkpointer;
pub mod config;
pub mod coordinator_store;
mod data_fetcher;
pub mod deaggregation;
pub mod error;
pub mod extended_sequence;
pub mod fan_out;
pub mod leader_lock;
pub mod lease;
pub mod lease_balance;
pub mod lease_config;
mod lease_coordinator;
pub mod lease_handoff;
pub mod lease_renewer;
pub mod lease_store;
pub mod lease_taker;
pub mod lease_throughput;
pub mod metrics;
pub mod multi_stream;
pub mod polling_config;
mod prefetch;
pub mod read_pace;
pub mod record;
pub mod record_stream;
pub mod scheduler;
mod shard_consumer;
pub mod shard_record_processor;
pub mod shard_sync;
pub mod store_future;
pub mod stream_identifier;
pub mod worker_metrics;

pub use checkpointer::{PreparedCheckpointer, RecordProcessorCheckpointer};
pub use config::{Config, Coordination, InitialPositionInStream, Retrieval};
pub use error::Error;
pub use record::{KinesisClientRecord, RejectedRecord};
pub use scheduler::{Scheduler, ShutdownHandle};
pub use shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor, ShardRecordProcessorFactory,
};
