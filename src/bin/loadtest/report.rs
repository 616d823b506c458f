//! The end of a run: its summary and series as `<out>/<name>.json`, its chart as
//! `<out>/<name>.svg`, and a few lines on stdout.

use crate::charts::{Sample, chart};
use crate::cli::Args;
use crate::produce::shard_spread;
use crate::stats::{ProcUsage, Stats, percentiles};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;

/// What a finished run hands to the report.
pub(crate) struct Finished<'a> {
    /// The command line.
    pub(crate) args: &'a Args,
    /// The run's counters and histograms.
    pub(crate) stats: &'a Stats,
    /// Whether the broker ran inside this process.
    pub(crate) in_process: bool,
    /// The endpoint load was sent to.
    pub(crate) endpoint: &'a str,
    /// The process whose CPU and memory were measured (`self` for the in-process broker).
    pub(crate) broker_pid: Option<&'a str>,
    /// That process's usage before and after the run.
    pub(crate) usage: (Option<ProcUsage>, Option<ProcUsage>),
    /// This process's usage before and after the run.
    pub(crate) own_usage: (Option<ProcUsage>, Option<ProcUsage>),
    /// How long producing lasted, in seconds.
    pub(crate) produce_secs: f64,
    /// What the kpl producers had done when the load window ended.
    pub(crate) window: &'a serde_json::Value,
    /// One sample per second.
    pub(crate) samples: &'a [Sample],
}

/// Writes the JSON summary and the chart, and prints the summary.
pub(crate) fn write(run: &Finished<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let &Finished {
        args,
        stats,
        in_process,
        endpoint,
        broker_pid,
        usage: (usage_before, usage_after),
        own_usage: (own_before, own_after),
        produce_secs,
        window,
        samples,
    } = run;
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
                "scope": if in_process { "this process (broker and load generator)" } else { "broker process" },
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
    // The load tool's own CPU: its generator, the client under test (the kpl producer, or the
    // SDK's PutRecords calls) and its collector of answers. With the broker in this process
    // it would include the broker, so it is left out.
    let load_tool_usage = match (own_before, own_after) {
        (Some(a), Some(b)) if !in_process => {
            let cpu = b.cpu_secs - a.cpu_secs;
            json!({
                "scope": "load tool process (generator, client, collector)",
                "cpu_secs": cpu,
                "cpu_us_per_record": if put > 0 { cpu * 1e6 / put as f64 } else { f64::NAN },
            })
        }
        _ => serde_json::Value::Null,
    };
    let report = json!({
        "name": args.name,
        "broker": args.broker_name,
        "endpoint": if in_process { "in-process".to_string() } else { endpoint.to_string() },
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
        "kpl_shard_mib_per_sec": shard_spread(stats, produce_secs),
        "kpl_load_window": window,
        "put_latency": put_lat,
        "delivery_latency": del_lat,
        "broker_usage": broker_usage,
        "load_tool_usage": load_tool_usage,
        "series": samples,
    });
    std::fs::create_dir_all(&args.out)?;
    let json_path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    let svg_path = args.out.join(format!("{}.svg", args.name));
    chart(
        &svg_path,
        &format!("{} / {}", args.broker_name, args.name),
        samples,
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
        let spread = shard_spread(stats, produce_secs);
        if spread["shards"].as_u64().unwrap_or(0) > 1 {
            println!("  kpl: MiB/s of Kinesis bytes per shard: {spread}");
        }
    }
    println!("  put latency: {put_lat}");
    println!("  put-to-delivery latency: {del_lat}");
    println!("  broker: {broker_usage}");
    println!("  load tool: {load_tool_usage}");
    println!("  wrote {} and {}", json_path.display(), svg_path.display());
    Ok(())
}
