//! Load test for any Kinesis endpoint: produce through raw PutRecords or the kpl, consume by
//! polling (GetRecords), or both at once, and report throughput, put and put-to-delivery
//! latency (HDR histograms), throttles, errors and the broker's CPU time and peak memory.
//!
//! ```text
//! cargo run --release --bin loadtest -- --produce raw --consume poll --duration 10
//! cargo run --release --bin loadtest -- --endpoint http://127.0.0.1:4567 --broker-pid 1234
//! ```
//!
//! Writes `<out>/<name>.json` (summary and a per-second series) and `<out>/<name>.svg`
//! (throughput and latency over time).

mod charts;
mod cli;
mod consume;
mod produce;
mod stats;
mod target;

use crate::charts::{Sample, chart};
use crate::cli::{Args, Consume, Produce};
use crate::consume::{fan_out_shard, poll_consumer};
use crate::produce::{kpl_entries, kpl_producer, kpl_window, raw_producer, shard_spread};
use crate::stats::{Latency, Stats, percentiles, proc_usage, q_ms};
use crate::target::{client, prepare_stream, stream_ref};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kinesis_broker::limiter::LimitsConfig;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_kcl::fan_out::register_stream_consumer;
use serde_json::json;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.record_size < 8 {
        return Err("--record-size must be at least 8 (the send time)".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut broker: Option<RunningBroker> = None;
    let endpoint = if args.endpoint == "in-process" {
        let limits: LimitsConfig = args
            .limits
            .parse()
            .map_err(|e| format!("--limits {}: {e}", args.limits))?;
        let b = Broker::start(
            BrokerConfig::builder()
                .port(0)
                .state_delays(Duration::ZERO)
                .limits(limits)
                .build(),
        )
        .await?;
        let ep = b.endpoint();
        broker = Some(b);
        ep
    } else {
        args.endpoint.clone()
    };
    let broker_pid = match (&broker, args.broker_pid) {
        (Some(_), _) => Some("self".to_string()),
        (None, Some(p)) => Some(p.to_string()),
        (None, None) => None,
    };
    let stream = args
        .stream
        .clone()
        .unwrap_or_else(|| format!("loadtest-{}", args.name));
    let admin = client(&endpoint, 1)?;
    let shards = prepare_stream(&admin, &stream, args.shards).await?;

    let stats = Arc::new(Stats {
        epoch: Instant::now(),
        put_records: AtomicU64::new(0),
        put_bytes: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        delivered_bytes: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        kpl_entries_put: AtomicU64::new(0),
        kpl_entries_throttled: AtomicU64::new(0),
        kpl_kinesis_bytes: AtomicU64::new(0),
        kpl_per_producer: Mutex::new(Vec::new()),
        kpl_shard_bytes: Mutex::new(std::collections::BTreeMap::new()),
        kpl_metrics: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        put_latency: Mutex::new(Latency::new()),
        delivery_latency: Mutex::new(Latency::new()),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
    });
    let usage_before = broker_pid.as_deref().and_then(proc_usage);

    let mut consumers = Vec::new();
    if args.consume == Consume::Poll {
        let n = args.consumers.max(1).min(shards.len().max(1));
        for i in 0..n {
            let mine: Vec<String> = shards
                .iter()
                .enumerate()
                .filter(|(j, _)| j % n == i)
                .map(|(_, s)| s.clone())
                .collect();
            let c = client(&endpoint, 1)?;
            consumers.push(tokio::spawn(poll_consumer(
                c,
                stream.clone(),
                mine,
                args.clone(),
                stats.clone(),
            )));
        }
    }
    if args.consume == Consume::Fanout {
        let c = client(&endpoint, 2)?;
        let arn = register_stream_consumer(&c, &stream_ref(&stream), "loadtest").await?;
        for s in &shards {
            // One connection per subscription: each is a long-lived response.
            let c = client(&endpoint, 1)?;
            consumers.push(tokio::spawn(fan_out_shard(
                c,
                arn.clone(),
                s.clone(),
                stats.clone(),
            )));
        }
    }
    let mut producers = Vec::new();
    let started = Instant::now();
    for i in 0..args.producers {
        match args.produce {
            Produce::Raw => {
                let c = client(&endpoint, 1)?;
                producers.push(tokio::spawn(raw_producer(
                    c,
                    stream.clone(),
                    args.clone(),
                    stats.clone(),
                    i,
                )));
            }
            Produce::Kpl => producers.push(tokio::spawn(kpl_producer(
                endpoint.clone(),
                stream.clone(),
                args.clone(),
                stats.clone(),
                i,
            ))),
            Produce::None => {}
        }
    }

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.duration)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut samples: Vec<Sample> = Vec::new();
    let mut last_put = 0u64;
    let mut last_del = 0u64;
    let mut last_kpl = (0u64, 0u64);
    let mut last_t = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let deadline = started + Duration::from_secs(args.duration);
    let expect_delivery = args.consume != Consume::None && args.produce != Produce::None;
    // Drain: after producing stops, wait up to 10 s (and at least one poll idle) for delivery.
    let drain_limit = Duration::from_secs(10).max(Duration::from_millis(args.poll_idle_ms * 2));
    let mut drain_started: Option<Instant> = None;
    let mut produce_secs = args.duration as f64;
    let mut window = serde_json::Value::Null;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let dt = now.duration_since(last_t).as_secs_f64();
        last_t = now;
        let put = stats.put_records.load(Relaxed);
        let del = stats.delivered.load(Relaxed);
        let (pp50, pp99) = {
            let mut h = stats.put_latency.lock().expect("not poisoned");
            let r = (q_ms(&h.interval, 0.5), q_ms(&h.interval, 0.99));
            h.interval.reset();
            r
        };
        let (dp50, dp99) = {
            let mut h = stats.delivery_latency.lock().expect("not poisoned");
            let r = (q_ms(&h.interval, 0.5), q_ms(&h.interval, 0.99));
            h.interval.reset();
            r
        };
        let kpl = kpl_entries(&stats);
        let s = Sample {
            kpl_put_rps: kpl.0.saturating_sub(last_kpl.0) as f64 / dt,
            kpl_throttled_rps: kpl.1.saturating_sub(last_kpl.1) as f64 / dt,
            t: now.duration_since(started).as_secs_f64(),
            put_rps: (put - last_put) as f64 / dt,
            delivered_rps: (del - last_del) as f64 / dt,
            put_p50_ms: pp50,
            put_p99_ms: pp99,
            delivery_p50_ms: dp50,
            delivery_p99_ms: dp99,
        };
        last_put = put;
        last_del = del;
        last_kpl = kpl;
        bar.set_position(s.t.min(args.duration as f64) as u64);
        bar.set_message(format!(
            "put {:.0}/s  delivered {:.0}/s  put p99 {:.1} ms  throttled {} errors {}",
            s.put_rps,
            s.delivered_rps,
            s.put_p99_ms,
            stats.throttled.load(Relaxed),
            stats.errors.load(Relaxed)
        ));
        samples.push(s);
        if now >= deadline && drain_started.is_none() {
            window = kpl_window(&stats, started.elapsed().as_secs_f64());
            stats.stop_producing.store(true, Relaxed);
            for p in producers.drain(..) {
                let _ = p.await;
            }
            produce_secs = started.elapsed().as_secs_f64();
            drain_started = Some(Instant::now());
        }
        if let Some(d) = drain_started {
            let caught_up = !expect_delivery
                || stats.delivered.load(Relaxed) >= stats.put_records.load(Relaxed);
            if caught_up || d.elapsed() >= drain_limit {
                break;
            }
        }
    }
    stats.stop_consuming.store(true, Relaxed);
    for c in consumers {
        let _ = c.await;
    }
    bar.finish_and_clear();
    let usage_after = broker_pid.as_deref().and_then(proc_usage);

    let put = stats.put_records.load(Relaxed);
    let put_bytes = stats.put_bytes.load(Relaxed);
    let delivered = stats.delivered.load(Relaxed);
    let (put_lat, del_lat) = {
        let p = stats.put_latency.lock().expect("not poisoned");
        let d = stats.delivery_latency.lock().expect("not poisoned");
        (percentiles(&p.total), percentiles(&d.total))
    };
    let broker_usage = match (usage_before, usage_after) {
        (Some(a), Some(b)) => {
            let cpu = b.cpu_secs - a.cpu_secs;
            json!({
                "pid": broker_pid,
                "scope": if broker.is_some() { "this process (broker and load generator)" } else { "broker process" },
                "cpu_secs": cpu,
                "cpu_us_per_record": if put > 0 { cpu * 1e6 / put as f64 } else { f64::NAN },
                "peak_rss_mib": b.peak_rss_bytes as f64 / (1024.0 * 1024.0),
                // What the broker keeps per record written (records stay held
                // within retention): resident growth over the run per record put.
                "rss_growth_bytes_per_record": if put > 0 {
                    (b.rss_bytes as f64 - a.rss_bytes as f64) / put as f64
                } else { f64::NAN },
            })
        }
        _ => serde_json::Value::Null,
    };
    let report = json!({
        "name": args.name,
        "broker": args.broker_name,
        "endpoint": if broker.is_some() { "in-process".to_string() } else { endpoint.clone() },
        "params": {
            "produce": format!("{:?}", args.produce).to_lowercase(),
            "consume": format!("{:?}", args.consume).to_lowercase(),
            "shards": args.shards, "producers": args.producers, "consumers": args.consumers,
            "record_size": args.record_size, "batch": args.batch, "rate": args.rate,
            "duration_s": args.duration, "limits": args.limits, "poll_idle_ms": args.poll_idle_ms,
            "kpl_rate_limit": args.kpl_rate_limit, "kpl_fixed_rate": args.kpl_fixed_rate,
            "kpl_no_aggregation": args.kpl_no_aggregation,
            "kpl_max_connections": args.kpl_max_connections,
        },
        "produce_secs": produce_secs,
        "put_records": put,
        "put_records_per_sec": put as f64 / produce_secs,
        "put_mb_per_sec": put_bytes as f64 / produce_secs / 1e6,
        "delivered_records": delivered,
        "throttled": stats.throttled.load(Relaxed),
        "errors": stats.errors.load(Relaxed),
        "kpl_entries_put": stats.kpl_entries_put.load(Relaxed),
        "kpl_entries_throttled": stats.kpl_entries_throttled.load(Relaxed),
        "kpl_kinesis_mib_per_sec": stats.kpl_kinesis_bytes.load(Relaxed) as f64 / produce_secs / 1048576.0,
        "kpl_per_producer": stats.kpl_per_producer.lock().expect("not poisoned").clone(),
        "kpl_shard_mib_per_sec": shard_spread(&stats, produce_secs),
        "kpl_load_window": window,
        "put_latency": put_lat,
        "delivery_latency": del_lat,
        "broker_usage": broker_usage,
        "series": samples,
    });
    std::fs::create_dir_all(&args.out)?;
    let json_path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    let svg_path = args.out.join(format!("{}.svg", args.name));
    chart(
        &svg_path,
        &format!("{} / {}", args.broker_name, args.name),
        &samples,
    )?;
    println!(
        "{}: put {} records ({:.0}/s, {:.2} MB/s), delivered {}, throttled {}, errors {}",
        args.name,
        put,
        put as f64 / produce_secs,
        put_bytes as f64 / produce_secs / 1e6,
        delivered,
        stats.throttled.load(Relaxed),
        stats.errors.load(Relaxed)
    );
    let (kpl_put, kpl_throttled) = (
        stats.kpl_entries_put.load(Relaxed),
        stats.kpl_entries_throttled.load(Relaxed),
    );
    if kpl_put + kpl_throttled > 0 {
        println!(
            "  kpl: {kpl_put} Kinesis records accepted ({:.3} MiB/s of Kinesis bytes), {kpl_throttled} throttled ({:.2} % of entries sent); user records per producer {:?}",
            stats.kpl_kinesis_bytes.load(Relaxed) as f64 / produce_secs / 1048576.0,
            100.0 * kpl_throttled as f64 / (kpl_put + kpl_throttled) as f64,
            stats.kpl_per_producer.lock().expect("not poisoned")
        );
        if !window.is_null() {
            println!(
                "  kpl in the {}-s load window (before draining): {window}",
                args.duration
            );
        }
        let spread = shard_spread(&stats, produce_secs);
        if spread["shards"].as_u64().unwrap_or(0) > 1 {
            println!("  kpl: MiB/s of Kinesis bytes per shard: {spread}");
        }
    }
    println!("  put latency: {put_lat}");
    println!("  put-to-delivery latency: {del_lat}");
    println!("  broker: {broker_usage}");
    println!("  wrote {} and {}", json_path.display(), svg_path.display());
    if let Some(b) = broker {
        b.shutdown().await;
    }
    Ok(())
}
