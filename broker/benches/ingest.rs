//! Ingest through the real HTTP front door with the durable store under
//! `--fsync always` and `--fsync interval=10`, and with the in-memory store,
//! reported side by side as records/s and as ratios to memory. Also shows how
//! many writes each fsync round covered (group commit at work). Each figure
//! is the median of three runs.
//!
//! Run with `cargo bench -p kinesis-broker --bench ingest`.

use bytes::Bytes;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::service::Service;
use kinesis_broker::store::commit::FsyncPolicy;
use kinesis_broker::store::durable::{DurableConfig, DurableStorage};
use kinesis_broker::store::{MemoryStorage, Storage};
use kinesis_broker::token::TokenSealer;
use kinesis_broker::{Broker, BrokerConfig};
use kinesis_proto::client::{Client, ClientConfig, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Mode {
    Memory,
    Always,
    Interval,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::Always => "fsync always",
            Mode::Interval => "fsync interval=10",
        }
    }
}

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    writers: usize,
    requests: usize,
    batch: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "PutRecord, 1 writer",
        writers: 1,
        requests: 500,
        batch: 1,
    },
    Workload {
        name: "PutRecord, 16 writers",
        writers: 16,
        requests: 200,
        batch: 1,
    },
    Workload {
        name: "PutRecords 100 x 100 B, 4 writers",
        writers: 4,
        requests: 100,
        batch: 100,
    },
];

struct Outcome {
    records_per_sec: f64,
    fsync_rounds: Option<u64>,
    requests: usize,
}

async fn run(mode: Mode, w: Workload) -> Outcome {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let config = BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .limits(LimitsConfig::uniform(LimitProfile::Off))
        .build();
    let durable = match mode {
        Mode::Memory => None,
        Mode::Always => Some(FsyncPolicy::Always),
        Mode::Interval => Some(FsyncPolicy::Interval(Duration::from_millis(10))),
    }
    .map(|p| {
        Arc::new(DurableStorage::open(DurableConfig::new(dir.path()).fsync(p)).expect("store"))
    });
    let storage: Arc<dyn Storage> = match &durable {
        Some(d) => Arc::clone(d) as Arc<dyn Storage>,
        None => Arc::new(MemoryStorage),
    };
    let svc = Service::with_storage(config, storage, TokenSealer::random());
    let broker = Broker::start_service(svc).await.expect("broker");
    let client = |endpoint: &str| {
        Client::new(
            ClientConfig::builder()
                .endpoint(endpoint)
                .region("us-east-1")
                .credentials(Credentials::test())
                .max_attempts(1)
                .build(),
        )
        .expect("client")
    };
    let admin = client(&broker.endpoint());
    admin
        .create_stream(&CreateStreamInput {
            stream_name: Some("bench".into()),
            shard_count: Some(4),
            ..Default::default()
        })
        .await
        .expect("create");
    let payload = Bytes::from(vec![b'x'; 100]);
    let rounds_before = durable.as_ref().map(|d| d.commit().rounds());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..w.writers {
        let c = client(&broker.endpoint());
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..w.requests {
                if w.batch == 1 {
                    c.put_record(&PutRecordInput {
                        stream: StreamRef::name("bench"),
                        data: Some(Blob(payload.clone())),
                        partition_key: Some(format!("{writer}-{n}")),
                        ..Default::default()
                    })
                    .await
                    .expect("put record");
                } else {
                    let out = c
                        .put_records(&PutRecordsInput {
                            stream: StreamRef::name("bench"),
                            records: Some(
                                (0..w.batch)
                                    .map(|i| PutRecordsRequestEntry {
                                        data: Some(Blob(payload.clone())),
                                        partition_key: Some(format!("{writer}-{n}-{i}")),
                                        ..Default::default()
                                    })
                                    .collect(),
                            ),
                        })
                        .await
                        .expect("put records");
                    assert_eq!(out.failed_record_count, 0);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let fsync_rounds = durable
        .as_ref()
        .zip(rounds_before)
        .map(|(d, before)| d.commit().rounds() - before);
    broker.shutdown().await;
    Outcome {
        records_per_sec: (w.writers * w.requests * w.batch) as f64 / elapsed,
        fsync_rounds,
        requests: w.writers * w.requests,
    }
}

/// Median records/s (and the fsync figure of that run) per mode, from three
/// rounds in which the modes take turns, after one warm-up round, so that
/// warm-up and drifting machine load do not favour one mode.
fn measure(rt: &tokio::runtime::Runtime, w: Workload) -> Vec<(Mode, Outcome)> {
    let modes = [Mode::Memory, Mode::Interval, Mode::Always];
    for mode in modes {
        rt.block_on(run(mode, w));
    }
    let mut runs: Vec<Vec<Outcome>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..3 {
        for (i, mode) in modes.iter().enumerate() {
            runs[i].push(rt.block_on(run(*mode, w)));
        }
    }
    modes
        .into_iter()
        .zip(runs)
        .map(|(mode, mut r)| {
            r.sort_by(|a, b| a.records_per_sec.total_cmp(&b.records_per_sec));
            (mode, r.swap_remove(1))
        })
        .collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:<36} {:<18} {:>12} {:>10} {:>22}",
        "workload", "store", "records/s", "vs memory", "requests per fsync"
    );
    for w in WORKLOADS {
        let results = measure(&rt, w);
        let memory = results[0].1.records_per_sec;
        for (mode, o) in results {
            let per_fsync = match (mode, o.fsync_rounds) {
                (Mode::Always, Some(r)) if r > 0 => format!("{:.1}", o.requests as f64 / r as f64),
                _ => "-".to_string(),
            };
            println!(
                "{:<36} {:<18} {:>12.0} {:>10.3} {:>22}",
                w.name,
                mode.name(),
                o.records_per_sec,
                o.records_per_sec / memory,
                per_fsync
            );
        }
    }
}
