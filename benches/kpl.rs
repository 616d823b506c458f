//! Producer throughput: 100-byte user records through `Producer::put` (and `put_all`) into an in-process broker
//! (limits off, 4 shards, the producer's rate limit lifted), with and without aggregation.
//!
//! ```sh
//! cargo bench --bench kpl
//! ```
//!
//! Criterion times `put` of a batch of records through `shutdown` (every record resolved).
//! Before that, one timed pass per mode prints user records/s and CPU time per record, split
//! between the producer (its runtime and the thread calling `put`) and the broker (its own
//! runtime), and the aggregated/unaggregated ratios.

// This bench reads no settings from the environment and makes its own client.
#[allow(dead_code)]
#[path = "support/in_process.rs"]
mod in_process;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_kpl::{Config, Producer, Record};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, StreamRef, StreamStatus,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SHARDS: i64 = 4;
const KEYS: usize = 10_000;

struct Bench {
    rt: Runtime,
    /// The broker runs on its own threads (named `broker`) so its CPU can be told apart.
    broker_rt: Runtime,
    broker: RunningBroker,
    keys: Vec<String>,
    data: Bytes,
}

impl Bench {
    fn new() -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kpl")
            .enable_all()
            .build()
            .expect("runtime");
        let broker_rt = in_process::broker_runtime();
        let broker = broker_rt.block_on(async {
            Broker::start(
                BrokerConfig::builder()
                    .port(0)
                    .state_delays(Duration::ZERO)
                    .limit_profile(LimitProfile::Off)
                    .metrics(false)
                    .retention_hour(Duration::from_secs(60))
                    .build(),
            )
            .await
            .expect("broker")
        });
        rt.block_on(async {
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
                if s.stream_description_summary.stream_status == StreamStatus::Active {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Bench {
            rt,
            broker_rt,
            broker,
            keys: (0..KEYS).map(|i| format!("partition-key-{i:06}")).collect(),
            data: Bytes::from(vec![b'x'; 100]),
        }
    }

    /// Puts `n` records (`batch` per `put_all` call, or one `put` each when 1) and waits for
    /// all of them; returns the wall time.
    fn produce(&self, aggregated: bool, batch: usize, n: usize) -> Duration {
        self.rt.block_on(async {
            let p = Producer::new(
                Config::builder()
                    .endpoint(self.broker.endpoint())
                    .aggregation_enabled(aggregated)
                    // The client-side limit (150 % of 1 MiB/s per shard) would otherwise be
                    // what is measured: the broker's limits are off.
                    .rate_limit(1_000_000)
                    .adaptive_rate(false)
                    // Two cores: a few large requests in flight beat the KPL's 24 here.
                    .max_connections(4)
                    .seed(1)
                    .build(),
            )
            .expect("producer");
            let stream: Arc<str> = "bench".into();
            let start = Instant::now();
            let record = |i: usize| {
                Record::new(
                    stream.clone(),
                    self.keys[i % KEYS].clone(),
                    self.data.clone(),
                )
            };
            // Handles are dropped; the shutdown report counts outcomes.
            if batch <= 1 {
                for i in 0..n {
                    drop(p.put(record(i)).await.expect("put"));
                }
            } else {
                for start in (0..n).step_by(batch) {
                    let records = (start..(start + batch).min(n)).map(record).collect();
                    for handle in p.put_all(records).await {
                        drop(handle.expect("put"));
                    }
                }
            }
            let report = p.shutdown().await;
            let elapsed = start.elapsed();
            assert_eq!((report.succeeded, report.failed), (n as u64, 0));
            elapsed
        })
    }
}

fn records_for(aggregated: bool) -> usize {
    if aggregated { 1_000_000 } else { 200_000 }
}

fn summary(bench: &Bench) {
    let mut rates = Vec::new();
    // (aggregated, records per put_all call; 1: put per record)
    for (aggregated, batch) in [(true, 1), (true, 500), (false, 1)] {
        let n = records_for(aggregated);
        // Warm up connections and allocations, then measure.
        bench.produce(aggregated, batch, n / 10);
        let (all0, broker0) = (
            in_process::cpu_time(None),
            in_process::cpu_time(Some("broker")),
        );
        let wall = bench.produce(aggregated, batch, n);
        let broker = in_process::cpu_time(Some("broker")).saturating_sub(broker0);
        let producer = in_process::cpu_time(None)
            .saturating_sub(all0)
            .saturating_sub(broker);
        let rate = n as f64 / wall.as_secs_f64();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "kpl {}, {}: {n} x 100 B in {wall:.2?}: {rate:.0} user records/s; CPU per record: producer {:.2} us, broker {:.2} us",
            if aggregated {
                "aggregated"
            } else {
                "unaggregated"
            },
            if batch > 1 {
                format!("put_all of {batch}")
            } else {
                "put".to_string()
            },
            per(producer),
            per(broker),
        );
        rates.push((rate, per(producer)));
    }
    println!(
        "kpl aggregated vs unaggregated (put): {:.1}x the records/s, {:.2}x the producer CPU per record",
        rates[0].0 / rates[2].0,
        rates[0].1 / rates[2].1
    );
    println!(
        "kpl put_all of 500 vs put (aggregated): {:.2}x the records/s, {:.2}x the producer CPU per record",
        rates[1].0 / rates[0].0,
        rates[1].1 / rates[0].1
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
            b.iter_custom(|iters| (0..iters).map(|_| bench.produce(aggregated, 1, n)).sum())
        });
    }
    group.finish();
    c.final_summary();
    let Bench {
        broker_rt, broker, ..
    } = bench;
    broker_rt.block_on(broker.shutdown());
}
