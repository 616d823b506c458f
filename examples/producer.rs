//! Reads lines from stdin and puts each one as a user record (data = the line without its
//! newline, partition key = prefix + line number), then shuts down cleanly and prints how many
//! records succeeded and failed.
//!
//! ```sh
//! seq 1 100000 | cargo run --release --example producer -- \
//!     --endpoint http://127.0.0.1:4567 --stream demo [--partition-key-prefix P]
//! ```
//!
//! Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when set (else the SigV4
//! test keys, which the broker and emulators accept). Exits with status 1 if any record failed.

use clap::Parser;
use kinesis_kpl::{Config, Credentials, Error, Producer, Record};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

/// Put each line of stdin as one Kinesis user record.
#[derive(Debug, Parser)]
struct Args {
    /// Kinesis endpoint, e.g. http://127.0.0.1:4567.
    #[arg(long)]
    endpoint: String,
    /// Stream to write to.
    #[arg(long)]
    stream: String,
    /// Partition keys are this prefix followed by the line number.
    #[arg(long, default_value = "line-")]
    partition_key_prefix: String,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Send each line as its own Kinesis record instead of aggregating.
    #[arg(long)]
    no_aggregation: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config::builder()
        .endpoint(args.endpoint)
        .region(args.region)
        .credentials(Credentials::from_env().unwrap_or_else(Credentials::test))
        .aggregation_enabled(!args.no_aggregation)
        .build();
    let producer = match Producer::new(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start the producer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stream: Arc<str> = args.stream.into();
    // Lines are read on a plain thread (bytes, so any encoding goes through) and handed over
    // in order through a bounded channel.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("reading stdin: {e}");
                    break;
                }
            }
        }
    });
    let mut refused = 0u64;
    let mut n = 0u64;
    while let Some(line) = lines.recv().await {
        let key = format!("{}{n}", args.partition_key_prefix);
        n += 1;
        // The handle is dropped: the shutdown report counts every outcome and lists failures.
        match producer.put(Record::new(stream.clone(), key, line)).await {
            Ok(_handle) => {}
            Err(Error::InvalidRecord(e)) => {
                refused += 1;
                eprintln!("line {n} refused: {e}");
            }
            Err(e) => {
                eprintln!("producer stopped: {e}");
                break;
            }
        }
    }
    let report = producer.shutdown().await;
    for f in report.failures.iter().take(10) {
        eprintln!(
            "failed: partition key {}: {}",
            f.record.partition_key, f.failure
        );
    }
    println!(
        "{} records succeeded, {} failed",
        report.succeeded,
        report.failed + refused
    );
    if report.failed + refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
