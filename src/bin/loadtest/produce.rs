//! The producers: raw PutRecords or the kpl, paced to the target rate, and what the kpl
//! reports about its load window.

use crate::cli::Args;
use crate::stats::{Stats, local_hist};
use crate::target::stream_ref;
use bytes::Bytes;
use futures::FutureExt as _;
use kinesis_proto::client::{Client, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A payload of `size` bytes whose first 8 carry the send time (µs since the epoch).
pub(crate) fn payload(stats: &Stats, size: usize) -> Bytes {
    let mut v = vec![b'x'; size.max(8)];
    v[..8].copy_from_slice(&stats.micros_since_epoch().to_le_bytes());
    Bytes::from(v)
}

/// `pk-<key>`, written without the formatter: the load tool builds one per record, and its
/// own cost counts against the producer it measures.
fn partition_key(key: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = key;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(3 + digits.len() - at);
    out.push_str("pk-");
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
    out
}

/// Waits until `sent` records fit the target rate for one producer; no wait when unlimited.
pub(crate) async fn pace(start: Instant, sent: u64, per_producer_rate: f64) {
    if per_producer_rate > 0.0 {
        let due = start + Duration::from_secs_f64(sent as f64 / per_producer_rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Puts batches of records with raw PutRecords at the target rate until told to stop.
pub(crate) async fn raw_producer(
    c: Client,
    stream: String,
    args: Args,
    stats: Arc<Stats>,
    seed: usize,
) {
    let rate = args.rate as f64 / args.producers as f64;
    // At low rates send small batches so pacing stays smooth.
    let batch = if rate > 0.0 {
        args.batch.min(((rate / 100.0).ceil() as usize).max(1))
    } else {
        args.batch
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut key = seed as u64 * 1_000_003;
    while !stats.stop_producing.load(Relaxed) {
        pace(start, sent, rate).await;
        if stats.stop_producing.load(Relaxed) {
            break;
        }
        let records: Vec<PutRecordsRequestEntry> = (0..batch)
            .map(|_| {
                key += 1;
                PutRecordsRequestEntry {
                    data: Some(Blob(payload(&stats, args.record_size))),
                    explicit_hash_key: None,
                    partition_key: Some(format!("pk-{key}")),
                }
            })
            .collect();
        let t0 = Instant::now();
        let res = c
            .put_records(&PutRecordsInput {
                records: Some(records),
                stream: stream_ref(&stream),
            })
            .await;
        let micros = t0.elapsed().as_micros() as u64;
        sent += batch as u64;
        match res {
            Ok(out) => {
                let mut ok = 0u64;
                for r in &out.records {
                    match r.error_code.as_deref() {
                        None => ok += 1,
                        Some("ProvisionedThroughputExceededException") => {
                            stats.throttled.fetch_add(1, Relaxed);
                        }
                        Some(_) => {
                            stats.errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                stats.put_records.fetch_add(ok, Relaxed);
                stats
                    .put_bytes
                    .fetch_add(ok * args.record_size as u64, Relaxed);
                let mut h = stats.put_latency.lock().expect("not poisoned");
                let _ = h.total.record(micros.max(1));
                let _ = h.interval.record(micros.max(1));
            }
            Err(e) if e.is_throttling() => {
                stats.throttled.fetch_add(batch as u64, Relaxed);
            }
            Err(_) => {
                stats.errors.fetch_add(batch as u64, Relaxed);
            }
        }
    }
}

/// Puts user records through a kpl producer at the target rate until told to stop, then
/// drains it.
pub(crate) async fn kpl_producer(
    endpoint: String,
    stream: String,
    args: Args,
    stats: Arc<Stats>,
    seed: usize,
) {
    let producer = match kinesis_kpl::Producer::new(
        kinesis_kpl::Config::builder()
            .endpoint(endpoint)
            .region("us-east-1")
            .credentials(Credentials::new("AKIDLOADTEST", "loadtest-secret"))
            // By default the load test measures the broker: no client-side shard rate limit.
            .rate_limit(args.kpl_rate_limit.unwrap_or(u64::MAX / 4))
            .adaptive_rate(args.kpl_rate_limit.is_some() && !args.kpl_fixed_rate)
            .aggregation_enabled(!args.kpl_no_aggregation)
            .max_connections(args.kpl_max_connections)
            .max_buffered_bytes(64 << 20)
            .build(),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kpl: {e}");
            stats.errors.fetch_add(1, Relaxed);
            return;
        }
    };
    stats
        .kpl_metrics
        .lock()
        .expect("not poisoned")
        .push(producer.metrics().clone());
    let stream: Arc<str> = stream.into();
    let rate = args.rate as f64 / args.producers as f64;
    // Handles travel to the collector a batch at a time, with when their batch was put.
    // --batch 1 puts record by record; more hands the producer whole batches (put_all). Small
    // batches at low rates keep the pacing smooth.
    let batch = if rate > 0.0 {
        args.batch.min(((rate / 100.0).ceil() as usize).max(1))
    } else {
        args.batch
    }
    .max(1);
    // Up to 1,000,000 handles wait for the collector (the producer's default record budget),
    // however they are batched: fewer would cap the records in flight below what the
    // producer buffers and so cap throughput at that number over the put latency.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(
        Instant,
        Vec<Result<kinesis_kpl::PutHandle, kinesis_kpl::Error>>,
    )>((1_000_000 / batch).max(1));
    let collector = {
        let stats = stats.clone();
        let size = args.record_size as u64;
        tokio::spawn(async move {
            let mut local = local_hist();
            let mut ok = 0u64;
            let mut total = 0u64;
            while let Some((t0, handles)) = rx.recv().await {
                // When each record was seen resolved: the clock is read again only after a
                // wait, so a run of handles already resolved costs no clock read each.
                let mut seen = Instant::now();
                for h in handles {
                    let outcome = match h {
                        Ok(mut h) => match (&mut h).now_or_never() {
                            Some(outcome) => outcome,
                            None => {
                                let outcome = h.await;
                                seen = Instant::now();
                                outcome
                            }
                        },
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(_) => {
                            total += 1;
                            let micros = seen.saturating_duration_since(t0).as_micros() as u64;
                            let _ = local.record(micros.max(1));
                            ok += 1;
                        }
                        Err(e) => {
                            if format!("{e}").contains("Throughput") {
                                stats.throttled.fetch_add(1, Relaxed);
                            } else {
                                stats.errors.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
                if ok >= 1000 || (rx.is_empty() && ok > 0) {
                    stats.put_records.fetch_add(ok, Relaxed);
                    stats.put_bytes.fetch_add(ok * size, Relaxed);
                    stats
                        .put_latency
                        .lock()
                        .expect("not poisoned")
                        .merge(&local);
                    local.reset();
                    ok = 0;
                }
            }
            stats
                .kpl_per_producer
                .lock()
                .expect("not poisoned")
                .push(total);
            stats.put_records.fetch_add(ok, Relaxed);
            stats.put_bytes.fetch_add(ok * size, Relaxed);
            stats
                .put_latency
                .lock()
                .expect("not poisoned")
                .merge(&local);
        })
    };
    // The generator runs on a thread of its own, as an application's source of records would
    // (a parser, a socket reader): on the runtime's workers it shared one worker with the
    // producer's pipeline task and left the other half idle.
    let generator = {
        let producer = producer.clone();
        let stats = stats.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                let start = Instant::now();
                let mut sent = 0u64;
                let mut key = seed as u64 * 1_000_003;
                while !stats.stop_producing.load(Relaxed) {
                    pace(start, sent, rate).await;
                    let t0 = Instant::now();
                    // One payload per batch, shared: its records were all sent at the same time.
                    let data = payload(&stats, args.record_size);
                    let record = |key: u64| {
                        kinesis_kpl::Record::new(stream.clone(), partition_key(key), data.clone())
                    };
                    let handles = if batch == 1 {
                        key += 1;
                        vec![producer.put(record(key)).await]
                    } else {
                        let records = (0..batch)
                            .map(|_| {
                                key += 1;
                                record(key)
                            })
                            .collect();
                        producer.put_all(records).await
                    };
                    sent += handles.len() as u64;
                    if tx.send((t0, handles)).await.is_err() {
                        break;
                    }
                }
            })
        })
    };
    let _ = generator.await;
    // The generator dropped its sender: the collector ends once it has every handle.
    let metrics = producer.metrics().clone();
    let report = producer.shutdown().await;
    let _ = report;
    let _ = collector.await;
    stats
        .kpl_entries_put
        .fetch_add(metrics.counter_sum("KinesisRecordsPut", &[]), Relaxed);
    stats
        .kpl_kinesis_bytes
        .fetch_add(metrics.counter_sum("KinesisRecordsDataPut", &[]), Relaxed);
    {
        let mut per_shard = stats.kpl_shard_bytes.lock().expect("not poisoned");
        for family in metrics.registry().gather() {
            if family.name() != "KinesisRecordsDataPut" {
                continue;
            }
            for m in family.get_metric() {
                if let Some(shard) = m.get_label().iter().find(|l| l.name() == "shard") {
                    *per_shard.entry(shard.value().to_string()).or_default() +=
                        m.get_counter().get_value() as u64;
                }
            }
        }
    }
    stats.kpl_entries_throttled.fetch_add(
        metrics.counter_sum(
            "ErrorsByCode",
            &[("error_code", "ProvisionedThroughputExceededException")],
        ),
        Relaxed,
    );
}

/// What the kpl producers had done when the load window of `secs` ended: Kinesis MiB/s
/// accepted, in all and per producer, and the share of Kinesis records throttled.
pub(crate) fn kpl_window(stats: &Stats, secs: f64) -> serde_json::Value {
    let metrics = stats.kpl_metrics.lock().expect("not poisoned");
    if metrics.is_empty() {
        return serde_json::Value::Null;
    }
    let mib = |b: u64| b as f64 / secs / 1048576.0;
    let per: Vec<f64> = metrics
        .iter()
        .map(|m| mib(m.counter_sum("KinesisRecordsDataPut", &[])))
        .collect();
    let put: u64 = metrics
        .iter()
        .map(|m| m.counter_sum("KinesisRecordsPut", &[]))
        .sum();
    let throttled: u64 = metrics
        .iter()
        .map(|m| {
            m.counter_sum(
                "ErrorsByCode",
                &[("error_code", "ProvisionedThroughputExceededException")],
            )
        })
        .sum();
    // Per shard, over all producers: Kinesis records and bytes accepted.
    let mut shards: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for m in metrics.iter() {
        for family in m.registry().gather() {
            let records = match family.name() {
                "KinesisRecordsPut" => true,
                "KinesisRecordsDataPut" => false,
                _ => continue,
            };
            for c in family.get_metric() {
                if let Some(shard) = c.get_label().iter().find(|l| l.name() == "shard") {
                    let e = shards.entry(shard.value().to_string()).or_default();
                    let v = c.get_counter().get_value() as u64;
                    if records { e.0 += v } else { e.1 += v }
                }
            }
        }
    }
    let spread = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        json!({"min": at(0.0), "median": at(0.5), "max": at(1.0)})
    };
    // What the generator managed to offer: below the shards' limits, the limiter never
    // binds and the figures measure this machine, not the rate.
    let offered: u64 = metrics
        .iter()
        .map(|m| m.counter_sum("UserRecordsReceived", &[]))
        .sum();
    json!({
        "secs": secs,
        "offered_user_records_per_sec": offered as f64 / secs,
        "mib_per_sec": per.iter().sum::<f64>(),
        "records_per_sec": put as f64 / secs,
        "per_producer_mib_per_sec": per,
        "throttled_pct": 100.0 * throttled as f64 / (put + throttled).max(1) as f64,
        "shards": shards.len(),
        "per_shard_records_per_sec": spread(shards.values().map(|s| s.0 as f64 / secs).collect()),
        "per_shard_mib_per_sec": spread(shards.values().map(|s| mib(s.1)).collect()),
    })
}

/// Kinesis records the kpl producers have had accepted and throttled so far.
pub(crate) fn kpl_entries(stats: &Stats) -> (u64, u64) {
    let metrics = stats.kpl_metrics.lock().expect("not poisoned");
    metrics.iter().fold((0, 0), |(put, throttled), m| {
        (
            put + m.counter_sum("KinesisRecordsPut", &[]),
            throttled
                + m.counter_sum(
                    "ErrorsByCode",
                    &[("error_code", "ProvisionedThroughputExceededException")],
                ),
        )
    })
}

/// The least, median and most MiB/s of Kinesis bytes the kpl put into one shard.
pub(crate) fn shard_spread(stats: &Stats, secs: f64) -> serde_json::Value {
    let mut rates: Vec<f64> = stats
        .kpl_shard_bytes
        .lock()
        .expect("not poisoned")
        .values()
        .map(|b| *b as f64 / secs / 1048576.0)
        .collect();
    rates.sort_by(f64::total_cmp);
    let at = |q: f64| {
        rates
            .get(((rates.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    json!({"shards": rates.len(), "min": at(0.0), "median": at(0.5), "max": at(1.0)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_match_the_formatter() {
        for key in [0, 7, 10, 999, 1_000_003, u64::MAX] {
            assert_eq!(partition_key(key), format!("pk-{key}"));
        }
    }
}
