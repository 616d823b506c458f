//! What an application implements to consume a shard (KCL `ShardRecordProcessor`
//! and `ShardRecordProcessorFactory`, docs/kcl-behaviour.md §2).
//!
//! Per lease the scheduler creates one processor and calls, in order:
//! `initialize`, then `process_records` for each batch, then exactly one of
//! `lease_lost` (another worker has the lease; checkpointing is no longer
//! possible), `shard_ended` (the shard is fully read and closed: the processor
//! must call `checkpointer.checkpoint()`, which stores `SHARD_END`, or the
//! shard's children never start) or `shutdown_requested` (graceful shutdown:
//! checkpoint now if wanted; the lease is then released and `lease_lost` follows).
//!
//! Methods are `async` in implementations (`async fn process_records(...)`); the
//! futures must be `Send` because each shard runs on its own task.

use std::future::Future;
use std::time::Instant;

use kinesis_proto::model::ChildShard;

use crate::checkpointer::RecordProcessorCheckpointer;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::record::{KinesisClientRecord, RejectedRecord};

/// `InitializationInput`: where the shard's processing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitializationInput {
    /// The shard id.
    pub shard_id: String,
    /// The checkpoint processing resumes after (a sentinel for a new lease).
    pub extended_sequence_number: ExtendedSequenceNumber,
    /// A prepared but uncommitted checkpoint left by the previous owner, if any.
    pub pending_checkpoint_sequence_number: Option<ExtendedSequenceNumber>,
    /// The application state stored with that prepared checkpoint.
    pub pending_checkpoint_state: Option<Vec<u8>>,
}

/// `ProcessRecordsInput`: one batch of user records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessRecordsInput {
    /// The user records, deaggregated, in shard order.
    pub records: Vec<KinesisClientRecord>,
    /// User records of this batch that cannot be delivered (see [`RejectedRecord`]),
    /// in shard order; checkpointing past them is allowed.
    pub rejected_records: Vec<RejectedRecord>,
    /// How far the read was behind the shard's tip, in ms, when this batch was fetched.
    pub millis_behind_latest: Option<i64>,
    /// Whether this is the shard's last batch (`shard_ended` follows).
    pub is_at_shard_end: bool,
    /// The shard's children, on the last batch of a closed shard.
    pub child_shards: Vec<ChildShard>,
    /// When the batch was fetched (entered the prefetch queue).
    pub cache_entry_time: Instant,
    /// When it left the prefetch queue for the processor.
    pub cache_exit_time: Instant,
}

/// A record processor for one shard; see the module docs for the call order.
pub trait ShardRecordProcessor: Send + 'static {
    /// Called once before any records, with the starting position.
    fn initialize(&mut self, input: InitializationInput) -> impl Future<Output = ()> + Send;

    /// Process one batch; checkpoint through `checkpointer` when the work is durable.
    fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &RecordProcessorCheckpointer,
    ) -> impl Future<Output = ()> + Send;

    /// The lease is gone (taken by another worker, expired, or released); do not checkpoint.
    fn lease_lost(&mut self) -> impl Future<Output = ()> + Send;

    /// The shard is fully read; must call `checkpointer.checkpoint()` to store `SHARD_END`.
    fn shard_ended(
        &mut self,
        checkpointer: &RecordProcessorCheckpointer,
    ) -> impl Future<Output = ()> + Send;

    /// The worker is shutting down gracefully; a last chance to checkpoint.
    fn shutdown_requested(
        &mut self,
        checkpointer: &RecordProcessorCheckpointer,
    ) -> impl Future<Output = ()> + Send;
}

/// Makes a processor per shard (KCL `ShardRecordProcessorFactory`).
pub trait ShardRecordProcessorFactory: Send + Sync + 'static {
    /// The processor type.
    type Processor: ShardRecordProcessor;

    /// A fresh processor for `shard_id`.
    fn shard_record_processor(&self, shard_id: &str) -> Self::Processor;
}

impl<P, F> ShardRecordProcessorFactory for F
where
    P: ShardRecordProcessor,
    F: Fn(&str) -> P + Send + Sync + 'static,
{
    type Processor = P;

    fn shard_record_processor(&self, shard_id: &str) -> P {
        self(shard_id)
    }
}
