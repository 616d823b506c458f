//! Producer throughput: 100-byte user records through `Producer::put` into an in-process broker
//! (limits off, 4 shards), with and without aggregation.
//!
//! ```sh
//! cargo bench --bench kpl
//! ```
//!
//! Criterion times `put` of a batch of records through `shutdown` (every record resolved).
//! Before that, one timed pass per mode prints user records/s and CPU time per record (process
//! CPU, so the broker's share is included), and the aggregated/unaggregated ratios.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_kpl::{Config, Producer, Record};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{CreateStreamInput, DescribeStreamSummaryInput, StreamRef};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SHARDS: i64 = 4;
const KEYS: usize = 10_000;

/// Process CPU time (user + system) from `/proc/self/stat`, in clock ticks of 10 ms.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

struct Bench {
    rt: Runtime,
    broker: RunningBroker,
    keys: Vec<String>,
    data: Bytes,
}

impl Bench {
    fn new() -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = rt.block_on(async {
            let broker = Broker::start(
                BrokerConfig::builder()
                    .port(0)
                    .state_delays(Duration::ZERO)
                    .limit_profile(LimitProfile::Off)
                    .metrics(false)
                    .retention_hour(Duration::from_secs(60))
                    .build(),
            )
            .await
            .expect("broker");
            let client = Client::new(ClientConfig::builder().endpoint(broker.endpoint()).build())
                .expect("client");
            client
                .create_stream(&CreateStreamInput {
                    stream_name: Some("bench".into()),
                    shard_count: Some(SHARDS),
                    ..Default::default()
                })
                .await
                .expect("create stream");
            for _ in 0..1000 {
                let s = client
                    .describe_stream_summary(&DescribeStreamSummaryInput {
                        stream: StreamRef::name("bench"),
                    })
                    .await
                    .expect("describe");
                if s.stream_description_summary.stream_status == "ACTIVE" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            broker
        });
        Bench {
            rt,
            broker,
            keys: (0..KEYS).map(|i| format!("partition-key-{i:06}")).collect(),
            data: Bytes::from(vec![b'x'; 100]),
        }
    }

    /// Puts `n` records and waits for all of them; returns the wall time.
    fn produce(&self, aggregated: bool, n: usize) -> Duration {
        self.rt.block_on(async {
            let p = Producer::new(
                Config::builder()
                    .endpoint(self.broker.endpoint())
                    .aggregation_enabled(aggregated)
                    .seed(1)
                    .build(),
            )
            .expect("producer");
            let stream: Arc<str> = "bench".into();
            let start = Instant::now();
            for i in 0..n {
                let record = Record::new(
                    stream.clone(),
                    self.keys[i % KEYS].clone(),
                    self.data.clone(),
                );
                // Handles are dropped; the shutdown report counts outcomes.
                drop(p.put(record).await.expect("put"));
            }
            let m = p.metrics().clone();
            let report = p.shutdown().await;
            let elapsed = start.elapsed();
            if std::env::var_os("KPL_BENCH_METRICS").is_some() {
                for line in m.to_text().lines() {
                    if line.contains("_sum") || line.contains("_count") || line.starts_with("KinesisRecordsPut") {
                        eprintln!("{line}");
                    }
                }
            }
            assert_eq!((report.succeeded, report.failed), (n as u64, 0));
            elapsed
        })
    }
}

fn records_for(aggregated: bool) -> usize {
    if aggregated { 200_000 } else { 40_000 }
}

fn summary(bench: &Bench) {
    let mut rates = Vec::new();
    for aggregated in [true, false] {
        let n = records_for(aggregated);
        // Warm up connections and allocations, then measure.
        bench.produce(aggregated, n / 10);
        let cpu0 = cpu_time();
        let wall = bench.produce(aggregated, n);
        let cpu = cpu_time().saturating_sub(cpu0);
        let rate = n as f64 / wall.as_secs_f64();
        let cpu_per_record = cpu.as_secs_f64() * 1e6 / n as f64;
        println!(
            "kpl {}: {n} x 100 B in {wall:.2?}: {rate:.0} user records/s, {cpu_per_record:.2} us CPU/record (producer + in-process broker)",
            if aggregated {
                "aggregated"
            } else {
                "unaggregated"
            }
        );
        rates.push((rate, cpu_per_record));
    }
    println!(
        "kpl aggregated vs unaggregated: {:.1}x the records/s, {:.2}x the CPU per record",
        rates[0].0 / rates[1].0,
        rates[0].1 / rates[1].1
    );
}

fn main() {
    let bench = Bench::new();
    summary(&bench);
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = c.benchmark_group("kpl_put_100B");
    for aggregated in [true, false] {
        let n = records_for(aggregated) / 4;
        group.throughput(Throughput::Elements(n as u64));
        let name = if aggregated {
            "aggregated"
        } else {
            "unaggregated"
        };
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| bench.produce(aggregated, n)).sum())
        });
    }
    group.finish();
    c.final_summary();
    let Bench { rt, broker, .. } = bench;
    rt.block_on(broker.shutdown());
}
