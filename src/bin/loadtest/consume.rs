//! The consumers: polling (GetRecords) or enhanced fan-out (SubscribeToShard), counting
//! delivered records and their put-to-delivery latency.

use crate::cli::Args;
use crate::stats::{Stats, local_hist};
use crate::target::stream_ref;
use hdrhistogram::Histogram;
use kinesis_proto::aggregation::deaggregate;
use kinesis_proto::client::Client;
use kinesis_proto::model::{
    GetRecordsInput, GetShardIteratorInput, ShardIteratorType, StartingPosition,
    SubscribeToShardInput,
};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Count delivered user records (deaggregating) and their put-to-delivery latency,
/// read from the send time in each record's first 8 bytes.
pub(crate) fn record_delivery(
    records: Vec<kinesis_proto::model::Record>,
    local: &mut Histogram<u64>,
    stats: &Stats,
) {
    let now = stats.micros_since_epoch();
    let mut n = 0u64;
    let mut bytes = 0u64;
    for r in records {
        for u in deaggregate(&r.partition_key, None, r.data.0) {
            n += 1;
            bytes += u.data.len() as u64;
            if u.data.len() >= 8 {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&u.data[..8]);
                let sent = u64::from_le_bytes(ts);
                let _ = local.record(now.saturating_sub(sent).max(1));
            }
        }
    }
    if n > 0 {
        stats.delivered.fetch_add(n, Relaxed);
        stats.delivered_bytes.fetch_add(bytes, Relaxed);
        stats
            .delivery_latency
            .lock()
            .expect("not poisoned")
            .merge(local);
        local.reset();
    }
}

/// Read one shard by SubscribeToShard, resubscribing after each response ends
/// (at most once a second, as the service allows).
pub(crate) async fn fan_out_shard(
    c: Client,
    consumer_arn: String,
    shard: String,
    stats: Arc<Stats>,
) {
    let mut position = StartingPosition {
        position_type: ShardIteratorType::TrimHorizon,
        ..Default::default()
    };
    let mut local = local_hist();
    while !stats.stop_consuming.load(Relaxed) {
        let started = Instant::now();
        let input = SubscribeToShardInput {
            consumer_arn: Some(consumer_arn.clone()),
            shard_id: Some(shard.clone()),
            starting_position: Some(position.clone()),
        };
        match c.subscribe_to_shard(&input).await {
            Ok(mut sub) => loop {
                let event = tokio::select! {
                    e = sub.next_event() => e,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stats.stop_consuming.load(Relaxed) { return; }
                        continue;
                    }
                };
                match event {
                    Ok(Some(ev)) => {
                        record_delivery(ev.records, &mut local, &stats);
                        match ev.continuation_sequence_number {
                            Some(seq) if !seq.is_empty() => {
                                position = StartingPosition {
                                    position_type: ShardIteratorType::AfterSequenceNumber,
                                    sequence_number: Some(seq),
                                    timestamp: None,
                                };
                            }
                            // Shard end: nothing more to read here.
                            _ => return,
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if e.is_throttling() {
                            stats.throttled.fetch_add(1, Relaxed);
                        } else {
                            stats.errors.fetch_add(1, Relaxed);
                        }
                        break;
                    }
                }
            },
            Err(_) => {
                stats.errors.fetch_add(1, Relaxed);
            }
        }
        let wait = Duration::from_secs(1).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
    }
}

/// Polls `shards` with GetRecords until told to stop, counting what is delivered.
pub(crate) async fn poll_consumer(
    c: Client,
    stream: String,
    shards: Vec<String>,
    args: Args,
    stats: Arc<Stats>,
) {
    let mut iters = Vec::new();
    for s in &shards {
        match c
            .get_shard_iterator(&GetShardIteratorInput {
                stream: stream_ref(&stream),
                shard_id: Some(s.clone()),
                shard_iterator_type: Some(ShardIteratorType::TrimHorizon),
                ..Default::default()
            })
            .await
        {
            Ok(o) => iters.push(Some(o.shard_iterator)),
            Err(_) => {
                stats.errors.fetch_add(1, Relaxed);
            }
        }
    }
    let idle = Duration::from_millis(args.poll_idle_ms);
    let mut local = local_hist();
    while !stats.stop_consuming.load(Relaxed) {
        let mut got_any = false;
        for it in iters.iter_mut() {
            let Some(cur) = it.clone() else { continue };
            match c
                .get_records(&GetRecordsInput {
                    shard_iterator: Some(cur),
                    limit: Some(10_000),
                    stream_arn: None,
                })
                .await
            {
                Ok(out) => {
                    got_any |= !out.records.is_empty();
                    record_delivery(out.records, &mut local, &stats);
                    *it = out.next_shard_iterator;
                }
                Err(e) if e.is_throttling() => {
                    stats.throttled.fetch_add(1, Relaxed);
                }
                Err(_) => {
                    stats.errors.fetch_add(1, Relaxed);
                }
            }
        }
        if !got_any {
            // The KCL sleeps its idle time after an empty read; so do we.
            let until = Instant::now() + idle;
            while Instant::now() < until && !stats.stop_consuming.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(20).min(idle)).await;
            }
        }
    }
}
