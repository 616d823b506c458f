//! For the simple case: a shard, or a whole stream, as a [`Stream`] of
//! deaggregated user records, without leases, checkpoints or a scheduler.
//!
//! [`shard_records`] reads one shard from a starting position to its end.
//! [`stream_records`] reads every shard, following resharding: a child shard
//! is read only once all its parents have been read to their end, so records
//! of one partition key keep their order across splits and merges.
//!
//! A page is fetched no sooner than `idle_time_between_reads` after the
//! previous one when that returned no records, and no sooner than the Kinesis
//! limit of five reads per second per shard otherwise, so a stream behind the
//! tip catches up at full speed. Errors that retrying cannot fix end the
//! affected shard's reading with an `Err` item; throttling and transient
//! failures are retried inside. A shard the service does not know (any more)
//! counts as ended, as in the scheduler. A user record that cannot be delivered
//! comes as an [`Error::RecordRejected`] item in its place; reading goes on after it.
//!
//! ```no_run
//! use futures::StreamExt;
//! use kinesis_kcl::config::InitialPositionInStream;
//! use kinesis_kcl::polling_config::PollingConfig;
//! use kinesis_kcl::record_stream::stream_records;
//! use kinesis_proto::client::{Client, ClientConfig};
//! use kinesis_proto::model::StreamRef;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::builder().endpoint("http://127.0.0.1:4567").build())?;
//! let records = stream_records(
//!     client,
//!     StreamRef::name("orders"),
//!     InitialPositionInStream::TrimHorizon,
//!     PollingConfig::default(),
//! )?;
//! futures::pin_mut!(records);
//! while let Some(item) = records.next().await {
//!     let item = item?;
//!     println!("{} {}", item.shard_id, String::from_utf8_lossy(&item.record.data));
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use kinesis_proto::client::Client;
use kinesis_proto::codec::Timestamp;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::StreamRef;
use tokio::time::Instant;

use crate::config::InitialPositionInStream;
use crate::data_fetcher::DataFetcher;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;
use crate::polling_config::{MIN_IDLE_TIME_BETWEEN_READS, PollingConfig};
use crate::record::{KinesisClientRecord, RejectedRecord};
use crate::shard_sync::{list_all_shards, new_leases};

/// Where [`shard_records`] starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest retained record.
    TrimHorizon,
    /// Records put from now on.
    Latest,
    /// The first record at or after this time.
    AtTimestamp(Timestamp),
    /// Right after this user record, e.g. a position saved earlier; the rest of
    /// its aggregate is read.
    After(ExtendedSequenceNumber),
}

/// A user record with the shard it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The shard.
    pub shard_id: Arc<str>,
    /// The user record.
    pub record: KinesisClientRecord,
    /// `MillisBehindLatest` of the page it came in.
    pub millis_behind_latest: Option<i64>,
}

/// What a single shard's reader yields inside.
enum ShardEvent {
    Record(StreamRecord),
    End { shard_id: Arc<str> },
}

struct ShardReader {
    fetcher: DataFetcher,
    shard_id: Arc<str>,
    idle: std::time::Duration,
    /// The page's user records and rejected records, in shard order.
    buffered: VecDeque<Result<KinesisClientRecord, RejectedRecord>>,
    millis_behind_latest: Option<i64>,
    next_call: Option<Instant>,
    ended: bool,
    finished: bool,
}

fn shard_events(
    client: Client,
    stream: StreamRef,
    shard_id: &str,
    range: Option<HashRange>,
    start: ExtendedSequenceNumber,
    timestamp: Option<Timestamp>,
    polling: PollingConfig,
) -> BoxStream<'static, Result<ShardEvent, Error>> {
    let reader = ShardReader {
        idle: polling.idle_time_between_reads,
        fetcher: DataFetcher::new(
            client, stream, shard_id, range, polling, start, timestamp, None,
        ),
        shard_id: shard_id.into(),
        buffered: VecDeque::new(),
        millis_behind_latest: None,
        next_call: None,
        ended: false,
        finished: false,
    };
    futures::stream::unfold(reader, |mut r| async move {
        loop {
            if r.finished {
                return None;
            }
            match r.buffered.pop_front() {
                Some(Ok(record)) => {
                    let item = StreamRecord {
                        shard_id: Arc::clone(&r.shard_id),
                        record,
                        millis_behind_latest: r.millis_behind_latest,
                    };
                    return Some((Ok(ShardEvent::Record(item)), r));
                }
                Some(Err(rejected)) => return Some((Err(Error::RecordRejected(rejected)), r)),
                None => {}
            }
            if r.ended {
                r.finished = true;
                let end = ShardEvent::End {
                    shard_id: Arc::clone(&r.shard_id),
                };
                return Some((Ok(end), r));
            }
            if let Some(at) = r.next_call {
                tokio::time::sleep_until(at).await;
            }
            let started = Instant::now();
            match r.fetcher.fetch().await {
                Ok(page) => {
                    let wait = if page.records.is_empty() {
                        r.idle
                    } else {
                        MIN_IDLE_TIME_BETWEEN_READS
                    };
                    r.next_call = Some(started + wait);
                    r.millis_behind_latest = page.millis_behind_latest;
                    r.buffered
                        .extend(in_shard_order(page.records, page.rejected));
                    r.ended = page.at_shard_end;
                }
                Err(e) => {
                    r.finished = true;
                    return Some((Err(e), r));
                }
            }
        }
    })
    .boxed()
}

/// Delivered and rejected user records merged back into their shard order.
fn in_shard_order(
    records: Vec<KinesisClientRecord>,
    rejected: Vec<RejectedRecord>,
) -> Vec<Result<KinesisClientRecord, RejectedRecord>> {
    if rejected.is_empty() {
        return records.into_iter().map(Ok).collect();
    }
    let mut merged: Vec<Result<KinesisClientRecord, RejectedRecord>> = records
        .into_iter()
        .map(Ok)
        .chain(rejected.into_iter().map(Err))
        .collect();
    merged.sort_by_key(|item| match item {
        Ok(r) => r.extended_sequence_number(),
        Err(r) => r.extended_sequence_number(),
    });
    merged
}

fn start_of(position: StartingPosition) -> (ExtendedSequenceNumber, Option<Timestamp>) {
    match position {
        StartingPosition::TrimHorizon => (ExtendedSequenceNumber::TrimHorizon, None),
        StartingPosition::Latest => (ExtendedSequenceNumber::Latest, None),
        StartingPosition::AtTimestamp(t) => (ExtendedSequenceNumber::AtTimestamp, Some(t)),
        StartingPosition::After(p) => (p, None),
    }
}

/// One shard's user records from `start` until the shard's end (never, while it is open).
///
/// No hash-range check applies here (the shard's range is not looked up); use
/// [`stream_records`] for that.
pub fn shard_records(
    client: Client,
    stream: StreamRef,
    shard_id: &str,
    start: StartingPosition,
    polling: PollingConfig,
) -> Result<impl Stream<Item = Result<StreamRecord, Error>> + Send + 'static, Error> {
    polling.validate()?;
    let (position, timestamp) = start_of(start);
    Ok(
        shard_events(client, stream, shard_id, None, position, timestamp, polling).filter_map(
            |event| async move {
                match event {
                    Ok(ShardEvent::Record(r)) => Some(Ok(r)),
                    Ok(ShardEvent::End { .. }) => None,
                    Err(e) => Some(Err(e)),
                }
            },
        ),
    )
}

/// A shard known to the whole-stream reader that has not started yet.
struct Pending {
    blocking_parents: BTreeSet<String>,
    start: ExtendedSequenceNumber,
    range: Option<HashRange>,
}

struct StreamReader {
    client: Client,
    stream: StreamRef,
    polling: PollingConfig,
    initial: InitialPositionInStream,
    listed: bool,
    active: SelectAll<BoxStream<'static, Result<ShardEvent, Error>>>,
    pending: BTreeMap<String, Pending>,
    known: BTreeSet<String>,
    ended: BTreeSet<String>,
}

impl StreamReader {
    fn add(
        &mut self,
        shard_id: String,
        parents: impl IntoIterator<Item = String>,
        start: ExtendedSequenceNumber,
        range: Option<HashRange>,
    ) {
        if !self.known.insert(shard_id.clone()) {
            return;
        }
        // Parents this reader never reads (before a LATEST start) do not block.
        let blocking_parents = parents
            .into_iter()
            .filter(|p| self.known.contains(p) && !self.ended.contains(p))
            .collect();
        self.pending.insert(
            shard_id,
            Pending {
                blocking_parents,
                start,
                range,
            },
        );
    }

    fn start_ready(&mut self) {
        let ready: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.blocking_parents.iter().all(|b| self.ended.contains(b)))
            .map(|(k, _)| k.clone())
            .collect();
        for id in ready {
            if let Some(p) = self.pending.remove(&id) {
                self.active.push(shard_events(
                    self.client.clone(),
                    self.stream.clone(),
                    &id,
                    p.range,
                    p.start,
                    self.initial.timestamp(),
                    self.polling.clone(),
                ));
            }
        }
    }

    /// List the shards and add those to read, parents before children, as the
    /// scheduler's shard sync would lease them (shards already known count as leased).
    async fn list(&mut self) -> Result<(), Error> {
        let shards = list_all_shards(&self.client, &self.stream).await?;
        let known: Vec<Lease> = self
            .known
            .iter()
            .map(|k| Lease::new(k.clone(), ExtendedSequenceNumber::TrimHorizon))
            .collect();
        for lease in new_leases(&shards, &known, &self.initial) {
            self.add(
                lease.lease_key,
                lease.parent_shard_ids,
                lease.checkpoint,
                lease.hash_key_range,
            );
        }
        self.start_ready();
        Ok(())
    }

    /// A shard was read to its end: find its children (and, for a merge, the other
    /// parent's lineage) in a fresh listing rather than from `ChildShards` alone, so
    /// a merge child also waits for a parent this reader has not reached yet.
    async fn shard_ended(&mut self, shard_id: &str) -> Result<(), Error> {
        self.ended.insert(shard_id.to_string());
        self.list().await
    }
}

/// Every shard's user records from `initial`, parents before children; ends when
/// every shard read is closed and fully read.
pub fn stream_records(
    client: Client,
    stream: StreamRef,
    initial: InitialPositionInStream,
    polling: PollingConfig,
) -> Result<impl Stream<Item = Result<StreamRecord, Error>> + Send + 'static, Error> {
    polling.validate()?;
    let reader = StreamReader {
        client,
        stream,
        polling,
        initial,
        listed: false,
        active: SelectAll::new(),
        pending: BTreeMap::new(),
        known: BTreeSet::new(),
        ended: BTreeSet::new(),
    };
    Ok(futures::stream::unfold(reader, |mut r| async move {
        if !r.listed {
            r.listed = true;
            if let Err(e) = r.list().await {
                return Some((Err(e), r));
            }
        }
        loop {
            match r.active.next().await {
                Some(Ok(ShardEvent::Record(record))) => return Some((Ok(record), r)),
                Some(Ok(ShardEvent::End { shard_id, .. })) => {
                    if let Err(e) = r.shard_ended(&shard_id).await {
                        return Some((Err(e), r));
                    }
                }
                Some(Err(e)) => return Some((Err(e), r)),
                None if r.pending.is_empty() => return None,
                None => {
                    // Unreachable in a consistent lineage; start the rest rather than stall.
                    for p in r.pending.values_mut() {
                        p.blocking_parents.clear();
                    }
                    r.start_ready();
                }
            }
        }
    }))
}
