//! The Kinesis Data Streams service limits the producer, the consumer and the broker all
//! follow (<https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html>).
//!
//! Sizes of a record count its data plus its partition key (in UTF-8 bytes).

/// The largest record the classic limits allow, in bytes (data plus partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The largest record size a stream can be configured for (`MaxRecordSizeInKiB`), in bytes.
pub const MAX_LARGE_RECORD_BYTES: usize = 10 * 1024 * 1024;
/// The longest partition key, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// The most entries in one PutRecords request.
pub const MAX_PUT_RECORDS_ENTRIES: usize = 500;
/// The largest PutRecords request, in bytes (data plus partition keys of all entries).
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// The most records one GetRecords may ask for (its `Limit`).
pub const MAX_GET_RECORDS_LIMIT: u32 = 10_000;
/// The most bytes one GetRecords returns.
pub const MAX_GET_RECORDS_BYTES: usize = 10 * 1024 * 1024;
/// A shard's write limit in records per second.
pub const SHARD_WRITE_RECORDS_PER_SEC: f64 = 1000.0;
/// A shard's write limit in bytes per second.
pub const SHARD_WRITE_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;
/// A shard's read throughput in bytes per second, shared by its polling readers.
pub const SHARD_READ_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;
