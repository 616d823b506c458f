//! A Kinesis consumer worker: prints every user record's data, one per line, to
//! stdout, checkpoints after each batch, and on Ctrl-C or SIGTERM shuts down
//! gracefully (final checkpoints, leases released for the other workers).
//!
//! ```sh
//! cargo run --release --example consumer -- --endpoint http://127.0.0.1:4567 \
//!     --stream demo --app demo-app [--lease-db FILE | --lease-table NAME \
//!     [--dynamodb-endpoint URL]] [--from trim-horizon|latest] [--efo CONSUMER_NAME]
//! ```
//!
//! Leases live in an SQLite file (`--lease-db`, workers on one host) or in a DynamoDB
//! table (`--lease-table`, workers on any number of hosts, the table the Java KCL uses).
//! Without `--endpoint` it reads Amazon Kinesis in `--region`, with credentials from the
//! standard AWS chain.
//!
//! With `--efo` the shards are read with enhanced fan-out (SubscribeToShard) as
//! that stream consumer, registered if it does not exist yet; `--http2` sends
//! every call over HTTP/2 (some emulators stream events only that way).
//!
//! Run it several times with the same `--app` and `--lease-db` to spread the
//! shards over several worker processes. Logs go to stderr (`RUST_LOG=info`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::lease_store::{DynamoDbLeaseStore, LeaseStore, SqliteLeaseStore};
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::client::{Client, ClientConfig, Credentials};

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StartFrom {
    /// The oldest retained record.
    TrimHorizon,
    /// Records put from now on.
    Latest,
}

/// Consume a Kinesis stream and print each user record's data on its own line.
#[derive(Debug, Parser)]
struct Args {
    /// Kinesis endpoint, e.g. http://127.0.0.1:4567 (default: Amazon Kinesis in --region).
    #[arg(long)]
    endpoint: Option<String>,
    /// Stream to consume.
    #[arg(long)]
    stream: String,
    /// Application name: workers with the same name share the shards.
    #[arg(long)]
    app: String,
    /// SQLite lease table shared by the workers of one host (default `<app>.leases.sqlite`).
    #[arg(long, conflicts_with = "lease_table")]
    lease_db: Option<PathBuf>,
    /// DynamoDB lease table shared by workers on any host (the KCL's; created if absent).
    #[arg(long)]
    lease_table: Option<String>,
    /// DynamoDB endpoint for --lease-table (default: the region's).
    #[arg(long, requires = "lease_table")]
    dynamodb_endpoint: Option<String>,
    /// Where shards without a checkpoint start.
    #[arg(long, value_enum, default_value = "latest")]
    from: StartFrom,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Worker identifier (default: random).
    #[arg(long)]
    worker_id: Option<String>,
    /// Read with enhanced fan-out as this stream consumer (registered if needed).
    #[arg(long, value_name = "CONSUMER_NAME")]
    efo: Option<String>,
    /// Use HTTP/2 for every call (h2c on http://).
    #[arg(long)]
    http2: bool,
}

/// Prints each record, then checkpoints the batch.
struct Printer;

impl ShardRecordProcessor for Printer {
    async fn initialize(&mut self, input: InitializationInput) {
        tracing::info!(shard = %input.shard_id, from = %input.extended_sequence_number, "processing shard");
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        let written = {
            let mut out = std::io::stdout().lock();
            input
                .records
                .iter()
                .try_for_each(|r| {
                    out.write_all(&r.data)?;
                    out.write_all(b"\n")
                })
                .and_then(|()| out.flush())
        };
        if let Err(e) = written {
            // Not printed means not processed: exit without checkpointing, so
            // these records are delivered again to whoever takes the lease.
            eprintln!("cannot write to stdout ({e}); exiting");
            std::process::exit(1);
        }
        if let Err(e) = cp.checkpoint().await {
            tracing::warn!(shard = %cp.shard_id(), error = %e, "checkpoint failed");
        }
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        if let Err(e) = cp.checkpoint().await {
            tracing::warn!(shard = %cp.shard_id(), error = %e, "shard-end checkpoint failed");
        }
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        if let Err(e) = cp.checkpoint().await {
            tracing::warn!(shard = %cp.shard_id(), error = %e, "final checkpoint failed");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let mut client_config = ClientConfig::builder()
        .region(&args.region)
        .http2(args.http2);
    if let Some(endpoint) = &args.endpoint {
        client_config = client_config.endpoint(endpoint);
    }
    // Keys in the environment sign for the broker's --auth too; otherwise the
    // standard chain for AWS and the SigV4 test keys elsewhere.
    if let Some(credentials) = Credentials::from_env() {
        client_config = client_config.credentials(credentials);
    }
    let client_config = client_config.build();
    let client = Client::new(client_config.clone())?;
    let store: Arc<dyn LeaseStore> = match &args.lease_table {
        Some(table) => Arc::new(
            DynamoDbLeaseStore::for_kinesis_client(
                table,
                &client_config,
                args.dynamodb_endpoint.as_deref(),
            )
            .await?,
        ),
        None => {
            let lease_db = args
                .lease_db
                .unwrap_or_else(|| PathBuf::from(format!("{}.leases.sqlite", args.app)));
            Arc::new(SqliteLeaseStore::open(&lease_db, &args.app).await?)
        }
    };
    let mut config =
        Config::builder(&args.stream, &args.app).initial_position_in_stream(match args.from {
            StartFrom::TrimHorizon => InitialPositionInStream::TrimHorizon,
            StartFrom::Latest => InitialPositionInStream::Latest,
        });
    if let Some(id) = args.worker_id {
        config = config.worker_identifier(id);
    }
    if let Some(consumer_name) = args.efo {
        config = config.fan_out(consumer_name);
    }
    let scheduler = Scheduler::new(config.build()?, client, store, |_: &str| Printer)?;
    tracing::info!(worker = %scheduler.worker_identifier(), "starting");

    let shutdown = scheduler.shutdown_handle();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    eprintln!("cannot handle SIGTERM: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!(
            "shutting down: final checkpoints, then releasing leases (Ctrl-C again to quit at once)"
        );
        shutdown.request();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
    scheduler.run().await?;
    Ok(())
}
