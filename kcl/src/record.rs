//! The user record a processor receives (KCL `KinesisClientRecord`): one record
//! after deaggregation, with its position down to the sub-sequence number.

use std::sync::Arc;

use bytes::Bytes;
use kinesis_proto::codec::Timestamp;
use kinesis_proto::sequence::SequenceNumber;

use crate::extended_sequence::ExtendedSequenceNumber;

/// One user record as delivered to a [`ShardRecordProcessor`](crate::shard_record_processor::ShardRecordProcessor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisClientRecord {
    /// The sequence number of the Kinesis record that carried it.
    pub sequence_number: SequenceNumber,
    /// Its index inside a KPL aggregate; 0 for a record that was not aggregated.
    pub sub_sequence_number: u64,
    /// Its partition key (the user record's own, inside an aggregate); shared with
    /// the other user records of its aggregate that have the same key.
    pub partition_key: Arc<str>,
    /// Its explicit hash key, if the producer gave one inside an aggregate.
    pub explicit_hash_key: Option<Arc<str>>,
    /// Its payload.
    pub data: Bytes,
    /// When Kinesis stored the carrying record, if the service said.
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// `NONE` or `KMS`, if the service said.
    pub encryption_type: Option<String>,
    /// Whether it came out of a KPL aggregate.
    pub aggregated: bool,
}

impl KinesisClientRecord {
    /// Its checkpointable position `(sequence number, sub-sequence number)`.
    pub fn extended_sequence_number(&self) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::new(self.sequence_number.clone(), self.sub_sequence_number)
    }
}

/// A user record that cannot be delivered, reported to the processor instead
/// (in [`ProcessRecordsInput::rejected_records`](crate::shard_record_processor::ProcessRecordsInput::rejected_records)):
/// e.g. an aggregate entry whose partition key breaks Kinesis's length limit,
/// which no conforming producer writes. Checkpointing past it is allowed, so it
/// does not come back after a restart once later records are checkpointed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedRecord {
    /// The sequence number of the Kinesis record that carried it.
    pub sequence_number: SequenceNumber,
    /// Its index inside the aggregate.
    pub sub_sequence_number: u64,
    /// Why it was not delivered.
    pub reason: String,
}

impl RejectedRecord {
    /// Its checkpointable position `(sequence number, sub-sequence number)`.
    pub fn extended_sequence_number(&self) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::new(self.sequence_number.clone(), self.sub_sequence_number)
    }
}
