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

// The load tool is an application, so it picks its allocator (the libraries do not).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod charts;
mod cli;
mod consume;
mod produce;
mod report;
mod stats;
mod target;

use crate::charts::Sample;
use crate::cli::{Args, Consume, Produce};
use crate::consume::{fan_out_shard, poll_consumer};
use crate::produce::{kpl_entries, kpl_producer, kpl_window, raw_producer};
use crate::report::Finished;
use crate::stats::{Latency, Stats, proc_usage, q_ms};
use crate::target::{client, prepare_stream, stream_ref};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kinesis_broker::limiter::LimitsConfig;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_kcl::fan_out::register_stream_consumer;
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
    let own_before = proc_usage("self");

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
    let own_after = proc_usage("self");

    report::write(&Finished {
        args: &args,
        stats: &stats,
        in_process: broker.is_some(),
        endpoint: &endpoint,
        broker_pid: broker_pid.as_deref(),
        usage: (usage_before, usage_after),
        own_usage: (own_before, own_after),
        produce_secs,
        window: &window,
        samples: &samples,
    })?;
    if let Some(b) = broker {
        b.shutdown().await;
    }
    Ok(())
}
