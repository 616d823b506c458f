//! `kinesis-broker`: run the reference broker.

use clap::Parser;
use kinesis_broker::admin::AdminToken;
use kinesis_broker::limiter::LimitsConfig;
use kinesis_broker::store::commit::FsyncPolicy;
use kinesis_broker::store::durable::{DurableConfig, RecoverCorrupt};
use kinesis_broker::{Broker, BrokerConfig, ConnectionLimits, TlsFiles};
use std::path::PathBuf;
use std::time::Duration;

/// A Kinesis Data Streams compatible broker.
#[derive(Debug, Parser)]
#[command(name = "kinesis-broker", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "KINESIS_BROKER_HOST")]
    host: String,
    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 4567, env = "KINESIS_BROKER_PORT")]
    port: u16,
    /// PEM certificate chain: serve HTTPS (HTTP/2 by ALPN, and HTTP/1.1).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Milliseconds a new stream stays CREATING.
    #[arg(long, default_value_t = 100)]
    create_delay_ms: u64,
    /// Milliseconds a resharded stream stays UPDATING.
    #[arg(long, default_value_t = 100)]
    update_delay_ms: u64,
    /// Milliseconds a deleted stream stays DELETING.
    #[arg(long, default_value_t = 100)]
    delete_delay_ms: u64,
    /// Milliseconds a new enhanced fan-out consumer stays CREATING.
    #[arg(long, default_value_t = 100)]
    consumer_delay_ms: u64,
    /// Region used in ARNs.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id used in ARNs.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
    /// Open-shard quota.
    #[arg(long, default_value_t = 10_000)]
    shard_limit: u32,
    /// Seconds a SubscribeToShard response lasts before the client must resubscribe.
    #[arg(long, default_value_t = 300)]
    subscription_lifetime_secs: u64,
    /// Throughput limits: "aws" (the service's), "off", or "scale=<factor>",
    /// plus per-stream overrides, e.g. "aws,bulk:scale=100,scratch:off".
    #[arg(long, default_value = "aws", env = "KINESIS_BROKER_LIMITS")]
    limits: LimitsConfig,
    /// JSON fault-injection plan to apply from the start (see `PUT /admin/faults`).
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// Keep streams and records in this directory so they survive restarts
    /// (default: in memory only).
    #[arg(long, value_name = "DIR", env = "KINESIS_BROKER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// With --data-dir: "always" answers writes only once they are on disk
    /// (concurrent writers share fsyncs); "interval=MS" fsyncs every MS ms.
    #[arg(long, default_value = "always", requires = "data_dir")]
    fsync: FsyncPolicy,
    /// With --data-dir: bytes after which a shard starts a new segment file.
    #[arg(long, default_value_t = 64 * 1024 * 1024, requires = "data_dir")]
    segment_bytes: u64,
    /// With --data-dir: what start-up does when a sealed (not the newest)
    /// segment of a shard is damaged: "refuse" to start, naming the file, or
    /// "quarantine" it (keep a copy as *.seg.quarantined, serve the records
    /// before the damage, and start).
    #[arg(long, default_value = "refuse", requires = "data_dir")]
    recover_corrupt: RecoverCorrupt,
    /// Accept only requests SigV4-signed with a key listed in FILE (AWS
    /// shared-credentials format: `[name]` sections with aws_access_key_id and
    /// aws_secret_access_key). Default: no signature check.
    #[arg(long, value_name = "FILE", env = "KINESIS_BROKER_AUTH")]
    auth: Option<PathBuf>,
    /// With --auth: seconds a request's X-Amz-Date may be from the broker's clock.
    #[arg(long, default_value_t = 900, requires = "auth")]
    auth_max_skew_secs: u64,
    /// Opens /admin/faults (and /metrics with --protect-metrics) to requests
    /// with `Authorization: Bearer TOKEN`. With --auth or this, those endpoints
    /// need credentials; without either they are open.
    #[arg(long, value_name = "TOKEN", env = "KINESIS_BROKER_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Serve /metrics only to the credentials /admin/faults needs (a signed
    /// request from a listed key, or the admin token). Needs --auth or --admin-token.
    #[arg(long)]
    protect_metrics: bool,
    /// Most connections served at once; more are closed when accepted.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Most request-body bytes held at once by all requests together.
    #[arg(long, default_value_t = ConnectionLimits::default().max_inflight_body_bytes)]
    max_inflight_body_bytes: usize,
    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, default_value_t = ConnectionLimits::default().h2_max_concurrent_streams,
          value_parser = clap::value_parser!(u32).range(1..))]
    h2_max_concurrent_streams: u32,
    /// Seconds a connection without a request in progress may take to send a
    /// complete request head (also the HTTP/1.1 keep-alive idle time).
    #[arg(long, default_value_t = ConnectionLimits::default().header_read_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_secs: u64,
    /// Seconds a request body may take to arrive in full.
    #[arg(long, default_value_t = ConnectionLimits::default().body_read_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    body_read_timeout_secs: u64,
    /// Seconds a connection may move no bytes at all, even mid-request.
    #[arg(long, default_value_t = ConnectionLimits::default().idle_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
    /// Seconds a TLS handshake may take.
    #[arg(long, default_value_t = ConnectionLimits::default().tls_handshake_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    tls_handshake_timeout_secs: u64,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, default_value = "info", env = "KINESIS_BROKER_LOG")]
    log_level: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut config = BrokerConfig::builder()
        .host(args.host)
        .port(args.port)
        .create_delay(Duration::from_millis(args.create_delay_ms))
        .update_delay(Duration::from_millis(args.update_delay_ms))
        .delete_delay(Duration::from_millis(args.delete_delay_ms))
        .region(args.region)
        .account_id(args.account_id)
        .shard_limit(args.shard_limit)
        .subscription_lifetime(Duration::from_secs(args.subscription_lifetime_secs))
        .limits(args.limits);
    if let Some(path) = &args.faults {
        config = match config.faults_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kinesis-broker: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    }
    let mut config = config.build();
    config.consumer_delay = Duration::from_millis(args.consumer_delay_ms);
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsFiles { cert, key });
    }
    if let Some(path) = &args.auth {
        match kinesis_broker::auth::AuthKeys::from_file(path) {
            Ok(keys) => {
                tracing::info!(
                    keys = keys.len(),
                    "requests must be signed with a listed key"
                );
                config.auth =
                    Some(keys.with_max_skew(Duration::from_secs(args.auth_max_skew_secs)));
            }
            Err(e) => {
                eprintln!("kinesis-broker: --auth: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if let Some(token) = args.admin_token {
        match AdminToken::new(token) {
            Some(t) => config.admin_token = Some(t),
            None => {
                eprintln!("kinesis-broker: --admin-token must not be empty");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if args.protect_metrics && config.auth.is_none() && config.admin_token.is_none() {
        eprintln!("kinesis-broker: --protect-metrics needs --auth or --admin-token");
        return std::process::ExitCode::FAILURE;
    }
    config.protect_metrics = args.protect_metrics;
    config.connection_limits = ConnectionLimits {
        max_connections: args.max_connections,
        max_inflight_body_bytes: args.max_inflight_body_bytes,
        h2_max_concurrent_streams: args.h2_max_concurrent_streams,
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        tls_handshake_timeout: Duration::from_secs(args.tls_handshake_timeout_secs),
    };
    #[cfg(target_os = "linux")]
    if let Some(files) = open_file_limit()
        && files < args.max_connections as u64 + 64
    {
        tracing::warn!(
            open_file_limit = files,
            max_connections = args.max_connections,
            "the open-file limit is below --max-connections; raise it (ulimit -n) or lower --max-connections"
        );
    }
    if let Some(dir) = args.data_dir {
        config.durable = Some(
            DurableConfig::new(dir)
                .fsync(args.fsync)
                .segment_bytes(args.segment_bytes)
                .recover_corrupt(args.recover_corrupt),
        );
    }
    let broker = match Broker::start(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kinesis-broker: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Tests and scripts wait for this line to know the port is ready.
    println!("Listening on {}", broker.endpoint());
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("kinesis-broker: cannot watch SIGTERM: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    broker.shutdown().await;
    std::process::ExitCode::SUCCESS
}

/// The process's soft limit on open files, from `/proc/self/limits`.
#[cfg(target_os = "linux")]
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
