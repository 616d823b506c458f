//! kcl draining a backlog from one shard under the service's read limits: throughput as a
//! share of the shard's 2 MiB/s and GetRecords throttled per call, for one application, and
//! for two applications reading the same shard at once, both in this process (they share
//! its read pace) and as if in two processes (the second reaches the broker as `localhost`,
//! so the pace does not know of it and the two meet each other's reads as throttles).
//!
//! ```sh
//! cargo bench --bench kcl_drain              # 64 MiB backlog, 64 MiB shared
//! KCL_DRAIN_MIB=1024 KCL_SHARED_MIB=64 cargo bench --bench kcl_drain
//! ```
//!
//! The backlogs are written into a durable broker with limits off, which is then restarted
//! with the service's limits, so the write limit does not decide how long the set-up takes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::store::durable::DurableConfig;
use kinesis_broker::{Broker, BrokerConfig};
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::lease_store::InMemoryLeaseStore;
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, PutRecordsInput, PutRecordsRequestEntry,
    StreamRef, StreamStatus,
};

const RECORD: usize = 1_000;

/// Counts the bytes and records it is given.
struct Tally(Arc<(AtomicU64, AtomicU64)>);

impl ShardRecordProcessor for Tally {
    async fn initialize(&mut self, _input: InitializationInput) {}

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        _cp: &RecordProcessorCheckpointer,
    ) {
        let bytes: usize = input
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        self.0.0.fetch_add(bytes as u64, Ordering::Relaxed);
        self.0
            .1
            .fetch_add(input.records.len() as u64, Ordering::Relaxed);
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, _cp: &RecordProcessorCheckpointer) {}
}

async fn fill(endpoint: &str, stream: &str, mib: usize) -> (u64, u64) {
    let client = Client::new(ClientConfig::builder().endpoint(endpoint).build()).expect("client");
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(stream.into()),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("create");
    while client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name(stream),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_status
        != StreamStatus::Active
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let data = Bytes::from(vec![b'x'; RECORD]);
    let records = mib * 1024 * 1024 / RECORD;
    let mut bytes = 0u64;
    for chunk in 0..records.div_ceil(500) {
        let n = 500.min(records - chunk * 500);
        let entries: Vec<_> = (0..n)
            .map(|i| PutRecordsRequestEntry {
                data: Some(Blob(data.clone())),
                partition_key: Some(format!("pk-{}", i % 100)),
                explicit_hash_key: None,
            })
            .collect();
        bytes += entries
            .iter()
            .map(|e| (RECORD + e.partition_key.as_ref().map_or(0, String::len)) as u64)
            .sum::<u64>();
        let out = client
            .put_records(&PutRecordsInput {
                records: Some(entries),
                stream: StreamRef::name(stream),
            })
            .await
            .expect("put");
        assert_eq!(out.failed_record_count, 0, "limits are off");
    }
    (records as u64, bytes)
}

/// Drain `stream` with one application per endpoint, all at once; per application:
/// seconds, throttled calls and answered calls.
async fn drain(endpoints: &[String], stream: &str, records: u64) -> Vec<(f64, u64, u64)> {
    let apps = endpoints.len();
    let mut runs = Vec::new();
    for (a, endpoint) in endpoints.iter().enumerate() {
        let client =
            Client::new(ClientConfig::builder().endpoint(endpoint).build()).expect("client");
        let tally = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let t = Arc::clone(&tally);
        let config = Config::builder(stream, format!("app-{a}-of-{apps}"))
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .idle_time_between_reads(Duration::from_millis(200))
            .build()
            .expect("config");
        let scheduler = Scheduler::new(
            config,
            client.clone(),
            Arc::new(InMemoryLeaseStore::new()),
            move |_: &str| Tally(Arc::clone(&t)),
        )
        .expect("scheduler");
        let metrics = scheduler.metrics().clone();
        let handle = scheduler.shutdown_handle();
        let run = tokio::spawn(scheduler.run());
        runs.push((tally, metrics, handle, run, Instant::now()));
    }
    let mut out = Vec::new();
    for (tally, metrics, handle, run, started) in runs {
        while tally.1.load(Ordering::Relaxed) < records {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        handle.request();
        let _ = run.await;
        let shard = ["shardId-000000000000"];
        let throttled = metrics
            .get_records_throttled
            .with_label_values(&shard)
            .get();
        let answered = metrics.get_records_calls.with_label_values(&shard).get();
        out.push((secs, throttled, answered));
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("kcl_drain: bench");
        return;
    }
    let env_mib = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(64)
    };
    let (mib, shared_mib) = (env_mib("KCL_DRAIN_MIB"), env_mib("KCL_SHARED_MIB"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = |limits| {
            BrokerConfig::builder()
                .port(0)
                .state_delays(Duration::ZERO)
                .limit_profile(limits)
                .durable(DurableConfig::new(dir.path()))
                .build()
        };
        let writer = Broker::start(config(LimitProfile::Off)).await.expect("broker");
        let filled = [
            ("drain", fill(&writer.endpoint(), "drain", mib).await, mib),
            (
                "shared",
                fill(&writer.endpoint(), "shared", shared_mib).await,
                shared_mib,
            ),
        ];
        writer.shutdown().await;
        let limit = 2.0 * 1024.0 * 1024.0;
        let broker = Broker::start(config(LimitProfile::Aws)).await.expect("broker");
        let here = broker.endpoint();
        let elsewhere = format!("http://localhost:{}", broker.local_addr().port());
        let runs = [
            ("one application", 0, vec![here.clone()]),
            ("two applications, one process", 1, vec![here.clone(), here.clone()]),
            ("two applications, two processes", 1, vec![here.clone(), elsewhere]),
        ];
        for (what, stream, endpoints) in runs {
            let (name, (records, bytes), mib) = filled[stream];
            let results = drain(&endpoints, name, records).await;
            let throttled: u64 = results.iter().map(|r| r.1).sum();
            let answered: u64 = results.iter().map(|r| r.2).sum();
            let calls = throttled + answered;
            for (i, (secs, t, a)) in results.iter().enumerate() {
                println!(
                    "{what}, app {i}: {mib} MiB in {secs:.1} s = {:.1} % of 2 MiB/s; {a} GetRecords answered, {t} throttled",
                    100.0 * bytes as f64 / secs / limit
                );
            }
            println!(
                "{what}: {calls} GetRecords, {throttled} throttled ({:.1} % of calls); together {:.1} % of the shard's 2 MiB/s",
                100.0 * throttled as f64 / calls.max(1) as f64,
                100.0 * (bytes as f64 * results.len() as f64)
                    / results.iter().map(|r| r.0).fold(0.0, f64::max)
                    / limit
            );
        }
        broker.shutdown().await;
    });
}
