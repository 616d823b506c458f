//! Reading one shard with GetRecords (KCL `KinesisDataFetcher`, docs/kcl-behaviour.md §6).
//!
//! The first iterator comes from the starting position: a checkpoint sentinel
//! maps to its iterator type, a real checkpoint to `AT_SEQUENCE_NUMBER`, after
//! which the user records up to the checkpointed sub-sequence number are skipped.
//! Later iterators, when one expires, are `AFTER_SEQUENCE_NUMBER` of the last
//! Kinesis record read. Throttling and transient failures back off and retry;
//! only errors that retrying cannot fix (access is denied, an argument is
//! invalid) are returned.
//!
//! A shard the service answers `ResourceNotFoundException` for has ended, as the
//! Java KCL treats it: a parent that aged out of retention after a reshard (or a
//! lease left from a deleted stream) would otherwise never reach `SHARD_END`, and
//! its children would never start.

use std::time::Instant;

use kinesis_proto::client::{Client, ClientError};
use kinesis_proto::codec::Timestamp;
use kinesis_proto::error::ErrorCode;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::{
    ChildShard, GetRecordsInput, GetShardIteratorInput, ShardIteratorType, StreamRef,
};

use crate::deaggregation::{Deaggregated, deaggregate_records};
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::metrics::Metrics;
use crate::polling_config::PollingConfig;
use crate::record::{KinesisClientRecord, RejectedRecord};

/// One GetRecords page, deaggregated.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// The user records to deliver.
    pub records: Vec<KinesisClientRecord>,
    /// The user records that cannot be delivered, to report.
    pub rejected: Vec<RejectedRecord>,
    /// `MillisBehindLatest` of the page.
    pub millis_behind_latest: Option<i64>,
    /// The shard's children, when the page is its last.
    pub child_shards: Vec<ChildShard>,
    /// Whether the shard is closed and fully read.
    pub at_shard_end: bool,
    /// When the page arrived.
    pub fetched_at: Instant,
    /// Bytes of the Kinesis records read (data and partition keys, as the shard counts them).
    pub kinesis_bytes: usize,
}

impl Fetched {
    /// The empty last page of a shard that is finished (or gone).
    pub(crate) fn shard_end() -> Self {
        Fetched {
            records: Vec::new(),
            rejected: Vec::new(),
            millis_behind_latest: None,
            child_shards: Vec::new(),
            at_shard_end: true,
            fetched_at: Instant::now(),
            kinesis_bytes: 0,
        }
    }
}

/// The iterator of one shard and the position reached.
#[derive(Debug)]
pub(crate) struct DataFetcher {
    client: Client,
    stream: StreamRef,
    shard_id: String,
    shard_range: Option<HashRange>,
    polling: PollingConfig,
    /// Where reading starts: a sentinel or the position to resume after.
    start: ExtendedSequenceNumber,
    /// The time of `AT_TIMESTAMP`.
    timestamp: Option<Timestamp>,
    iterator: Option<String>,
    last_fetched_sequence: Option<String>,
    /// Set once the service said the shard does not exist.
    gone: bool,
    metrics: Option<Metrics>,
}

impl DataFetcher {
    /// A fetcher for `shard_id` resuming after `start` (or at the sentinel it names).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: Client,
        stream: StreamRef,
        shard_id: &str,
        shard_range: Option<HashRange>,
        polling: PollingConfig,
        start: ExtendedSequenceNumber,
        timestamp: Option<Timestamp>,
        metrics: Option<Metrics>,
    ) -> Self {
        DataFetcher {
            client,
            stream,
            shard_id: shard_id.to_string(),
            shard_range,
            polling,
            start,
            timestamp,
            iterator: None,
            last_fetched_sequence: None,
            gone: false,
            metrics,
        }
    }

    /// The shard read.
    pub(crate) fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// Forget the iterator so the next fetch gets a new one from the position reached.
    pub(crate) fn reset_iterator(&mut self) {
        self.iterator = None;
    }

    fn iterator_request(&self) -> GetShardIteratorInput {
        let mut input = GetShardIteratorInput {
            stream: self.stream.clone(),
            shard_id: Some(self.shard_id.clone()),
            ..GetShardIteratorInput::default()
        };
        let (kind, sequence) = match (&self.last_fetched_sequence, &self.start) {
            (Some(last), _) => (ShardIteratorType::AfterSequenceNumber, Some(last.clone())),
            (
                None,
                ExtendedSequenceNumber::Sequence {
                    sequence_number, ..
                },
            ) => (
                ShardIteratorType::AtSequenceNumber,
                Some(sequence_number.as_str().to_string()),
            ),
            (None, ExtendedSequenceNumber::AtTimestamp) => {
                input.timestamp = Some(self.timestamp.unwrap_or(Timestamp::from_millis(0)));
                (ShardIteratorType::AtTimestamp, None)
            }
            (None, ExtendedSequenceNumber::Latest) => (ShardIteratorType::Latest, None),
            // SHARD_END never reaches here (fetch returns at once); TRIM_HORIZON is the rest.
            (None, _) => (ShardIteratorType::TrimHorizon, None),
        };
        input.shard_iterator_type = Some(kind);
        input.starting_sequence_number = sequence;
        input
    }

    /// One page: retries throttling, transient failures and expired iterators inside.
    pub(crate) async fn fetch(&mut self) -> Result<Fetched, Error> {
        if self.start.is_shard_end() || self.gone {
            return Ok(Fetched::shard_end());
        }
        let mut failures = 0u32;
        loop {
            let iterator = match &self.iterator {
                Some(it) => it.clone(),
                None => match self
                    .client
                    .get_shard_iterator(&self.iterator_request())
                    .await
                {
                    Ok(out) => {
                        self.iterator = Some(out.shard_iterator.clone());
                        out.shard_iterator
                    }
                    Err(e) if e.is_code(ErrorCode::ResourceNotFound) => {
                        return Ok(self.shard_gone("GetShardIterator", &e));
                    }
                    Err(e) => {
                        self.retry_or_fail("GetShardIterator", e, &mut failures)
                            .await?;
                        continue;
                    }
                },
            };
            let request = GetRecordsInput {
                shard_iterator: Some(iterator),
                limit: Some(i64::from(self.polling.max_records)),
                stream_arn: None,
            };
            match self.client.get_records(&request).await {
                Ok(out) => {
                    if let Some(last) = out.records.last() {
                        self.last_fetched_sequence = Some(last.sequence_number.clone());
                    }
                    self.iterator = out.next_shard_iterator;
                    let kinesis_bytes: usize = out
                        .records
                        .iter()
                        .map(|r| r.data.0.len() + r.partition_key.len())
                        .sum();
                    if let Some(m) = &self.metrics {
                        m.get_records_calls
                            .with_label_values(&[&self.shard_id])
                            .inc();
                        m.get_records_bytes
                            .with_label_values(&[&self.shard_id])
                            .inc_by(kinesis_bytes as u64);
                    }
                    let resume_after = (!self.start.is_sentinel()).then_some(&self.start);
                    let Deaggregated {
                        records,
                        dropped_out_of_range,
                        rejected,
                        ..
                    } = deaggregate_records(out.records, self.shard_range, resume_after);
                    if let Some(m) = &self.metrics {
                        if !rejected.is_empty() {
                            m.records_rejected
                                .with_label_values(&[&self.shard_id])
                                .inc_by(rejected.len() as u64);
                        }
                        if dropped_out_of_range > 0 {
                            m.records_dropped_out_of_range
                                .with_label_values(&[&self.shard_id])
                                .inc_by(dropped_out_of_range as u64);
                        }
                        if let Some(behind) = out.millis_behind_latest {
                            m.millis_behind_latest
                                .with_label_values(&[&self.shard_id])
                                .set(behind);
                        }
                    }
                    return Ok(Fetched {
                        records,
                        rejected,
                        millis_behind_latest: out.millis_behind_latest,
                        child_shards: out.child_shards.unwrap_or_default(),
                        at_shard_end: self.iterator.is_none(),
                        fetched_at: Instant::now(),
                        kinesis_bytes,
                    });
                }
                Err(e) if e.is_code(ErrorCode::ExpiredIterator) => {
                    if let Some(m) = &self.metrics {
                        m.expired_iterators
                            .with_label_values(&[&self.shard_id])
                            .inc();
                    }
                    tracing::debug!(shard = %self.shard_id, "shard iterator expired; getting a new one");
                    self.iterator = None;
                    // A fresh iterator expiring again would be a broken service: back off then.
                    if failures > 0 {
                        self.retry_or_fail("GetRecords", e, &mut failures).await?;
                    } else {
                        failures = 1;
                    }
                }
                Err(e) if e.is_code(ErrorCode::ResourceNotFound) => {
                    return Ok(self.shard_gone("GetRecords", &e));
                }
                Err(e) => self.retry_or_fail("GetRecords", e, &mut failures).await?,
            }
        }
    }

    /// The service does not know the shard (any more): its end, with no children known.
    fn shard_gone(&mut self, operation: &'static str, error: &ClientError) -> Fetched {
        tracing::info!(
            shard = %self.shard_id,
            operation,
            error = %error,
            "the shard does not exist (expired after a reshard, or its stream was deleted); \
             treating it as ended"
        );
        self.gone = true;
        self.iterator = None;
        Fetched::shard_end()
    }

    /// Back off if `error` is worth retrying, otherwise return it.
    async fn retry_or_fail(
        &self,
        operation: &'static str,
        error: ClientError,
        failures: &mut u32,
    ) -> Result<(), Error> {
        let retryable = error.is_retryable() || error.is_code(ErrorCode::ExpiredIterator);
        if !retryable {
            return Err(Error::kinesis(operation, error));
        }
        if error.is_throttling()
            && let Some(m) = &self.metrics
        {
            m.get_records_throttled
                .with_label_values(&[&self.shard_id])
                .inc();
        }
        *failures = failures.saturating_add(1);
        let delay = self.polling.backoff(*failures);
        tracing::debug!(shard = %self.shard_id, operation, error = %error, ?delay, "backing off");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}
