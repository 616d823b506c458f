//! The whole toolkit in one process, with nothing to install:
//! starts the broker in memory, creates a stream, produces 100,000 records
//! through the producer (kpl, aggregation on) while a consumer scheduler (kcl)
//! consumes them, and prints throughput and put-to-process latency.
//!
//! ```sh
//! cargo run --release --example quickstart [-- --lease-table NAME --dynamodb-endpoint URL]
//! ```
//!
//! Leases are kept in memory, in an SQLite file with `--lease-db FILE`, or in a DynamoDB
//! table with `--lease-table NAME` (at `--dynamodb-endpoint`, e.g. dynalite or DynamoDB Local).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kinesis_broker::{Broker, BrokerConfig};
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::lease_store::{
    DynamoDbLeaseStore, InMemoryLeaseStore, LeaseStore, SqliteLeaseStore,
};
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, StreamRef, StreamStatus,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Where the consumer keeps its leases.
#[derive(Debug, clap::Parser)]
struct Args {
    /// SQLite lease table file (default: leases in memory).
    #[arg(long, conflicts_with = "lease_table")]
    lease_db: Option<std::path::PathBuf>,
    /// DynamoDB lease table (created if absent).
    #[arg(long)]
    lease_table: Option<String>,
    /// DynamoDB endpoint for --lease-table (default: the region's).
    #[arg(long, requires = "lease_table")]
    dynamodb_endpoint: Option<String>,
}

const STREAM: &str = "quickstart";
const SHARDS: i64 = 4;
const RECORDS: u64 = 100_000;

/// What the processors share: a count, the put-to-process latencies, a wake-up.
struct Tally {
    origin: Instant,
    processed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    last_processed: Mutex<Option<Instant>>,
    all_done: Notify,
}

/// Counts records and measures each one's latency from the put time it carries.
struct Counter(Arc<Tally>);

impl ShardRecordProcessor for Counter {
    async fn initialize(&mut self, _input: InitializationInput) {}

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        let now_us = self.0.origin.elapsed().as_micros() as u64;
        let mut latencies = Vec::with_capacity(input.records.len());
        for r in &input.records {
            // Data is "<index> <microseconds since start at put>".
            let put_us = std::str::from_utf8(&r.data)
                .ok()
                .and_then(|s| s.split(' ').nth(1))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some(put_us) = put_us {
                latencies.push(now_us.saturating_sub(put_us));
            }
        }
        self.0.latencies_us.lock().extend(latencies);
        *self.0.last_processed.lock() = Some(Instant::now());
        let n = input.records.len() as u64;
        if self.0.processed.fetch_add(n, Ordering::SeqCst) + n >= RECORDS {
            self.0.all_done.notify_one();
        }
        if let Err(e) = cp.checkpoint().await {
            eprintln!("checkpoint failed: {e}");
        }
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Duration::from_micros(sorted[i])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    // 1. The broker, in this process, in memory, on a free port.
    let broker = Broker::start(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .build(),
    )
    .await?;
    let endpoint = broker.endpoint();
    println!("broker listening on {endpoint}");

    // 2. A stream.
    let client = Client::new(ClientConfig::builder().endpoint(&endpoint).build())?;
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(STREAM.into()),
            shard_count: Some(SHARDS),
            ..Default::default()
        })
        .await?;
    while client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name(STREAM),
        })
        .await?
        .stream_description_summary
        .stream_status
        != StreamStatus::Active
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("stream {STREAM} with {SHARDS} shards is ACTIVE");

    // 3. A consumer worker (kcl) reading from the start of every shard.
    let tally = Arc::new(Tally {
        origin: Instant::now(),
        processed: AtomicU64::new(0),
        latencies_us: Mutex::new(Vec::with_capacity(RECORDS as usize)),
        last_processed: Mutex::new(None),
        all_done: Notify::new(),
    });
    let config = Config::builder(STREAM, "quickstart-app")
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .idle_time_between_reads(Duration::from_millis(200))
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(100))
        .build()?;
    let store: Arc<dyn LeaseStore> = match (&args.lease_table, &args.lease_db) {
        (Some(table), _) => Arc::new(
            DynamoDbLeaseStore::for_kinesis_client(
                table,
                client.config(),
                args.dynamodb_endpoint.as_deref(),
            )
            .await?,
        ),
        (None, Some(path)) => Arc::new(SqliteLeaseStore::open(path, "quickstart-app").await?),
        (None, None) => Arc::new(InMemoryLeaseStore::new()),
    };
    let t = Arc::clone(&tally);
    let scheduler = Scheduler::new(config, client.clone(), store, move |_: &str| {
        Counter(Arc::clone(&t))
    })?;
    let shutdown = scheduler.shutdown_handle();
    let worker = tokio::spawn(scheduler.run());

    // 4. The producer (kpl, aggregation on): 100,000 records, each carrying its put time.
    let producer =
        kinesis_kpl::Producer::new(kinesis_kpl::Config::builder().endpoint(&endpoint).build())?;
    let stream: Arc<str> = STREAM.into();
    let started = Instant::now();
    let mut handles = Vec::with_capacity(RECORDS as usize);
    for i in 0..RECORDS {
        let put_us = tally.origin.elapsed().as_micros();
        let record = kinesis_kpl::Record::new(
            Arc::clone(&stream),
            format!("key-{i}"),
            format!("{i} {put_us}"),
        );
        handles.push(producer.put(record).await?);
    }
    let mut failed = 0u64;
    for h in handles {
        if h.await.is_err() {
            failed += 1;
        }
    }
    let produced_in = started.elapsed();
    let report = producer.shutdown().await;
    println!(
        "produced {} records in {:.2?} ({:.0} records/s), {} failed",
        report.succeeded,
        produced_in,
        report.succeeded as f64 / produced_in.as_secs_f64(),
        failed
    );

    // 5. Wait until the consumer has seen them all, then shut everything down.
    let wanted = RECORDS - failed;
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        while tally.processed.load(Ordering::SeqCst) < wanted {
            tokio::select! {
                _ = tally.all_done.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    let consumed = tally.processed.load(Ordering::SeqCst);
    let consumed_in = tally
        .last_processed
        .lock()
        .map_or(started.elapsed(), |t| t.duration_since(started));
    shutdown.graceful_shutdown().await;
    worker.await??;
    broker.shutdown().await;
    if waited.is_err() {
        return Err(
            format!("only {consumed} of {wanted} records were consumed within 120 s").into(),
        );
    }

    let mut latencies = std::mem::take(&mut *tally.latencies_us.lock());
    latencies.sort_unstable();
    println!(
        "consumed {consumed} records in {:.2?} ({:.0} records/s end to end)",
        consumed_in,
        consumed as f64 / consumed_in.as_secs_f64()
    );
    println!(
        "put-to-process latency: p50 {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    println!(
        "(the producer buffers up to 100 ms to aggregate; the consumer polls each shard every 200 ms)"
    );
    Ok(())
}
