//! `kinesis-agent`: ships log files to Kinesis Data Streams, configured by `agent.json`.

use clap::Parser;
use kinesis_agent::config::{AgentConfig, DEFAULT_CONFIG_PATH};
use kinesis_agent::metrics::Metrics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Tails log files into Kinesis Data Streams, configured as the Amazon Kinesis Agent.
#[derive(Debug, Parser)]
#[command(name = "kinesis-agent", version)]
struct Args {
    /// The agent.json to read.
    #[arg(long, short = 'c', default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match AgentConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kinesis-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(addr = %l.local_addr().unwrap_or(addr), "metrics");
                tokio::spawn(kinesis_agent::metrics::serve(l, metrics.clone()));
            }
            Err(e) => {
                eprintln!("kinesis-agent: cannot listen on {addr}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("stopping: sending what was read, then checkpointing");
        let _ = stop_tx.send(true);
    });
    match kinesis_agent::agent::run(config, metrics, stop_rx).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kinesis-agent: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
