//! Copy an application's leases, checkpoints included, between lease tables: from an
//! SQLite file to a DynamoDB table (one host to a fleet), back, or from a Java KCL
//! table into either. Owners are cleared, so the new table's workers take the leases
//! afresh and resume each shard right after its checkpoint. Leases the target already
//! has are left alone and listed. Stop every worker of both tables first.
//!
//! ```sh
//! # SQLite → DynamoDB (the table is created if absent)
//! cargo run --example lease_migrate -- --app demo-app \
//!     --from sqlite:demo-app.leases.sqlite --to dynamodb:demo-app [--dynamodb-endpoint URL]
//! # DynamoDB → SQLite
//! cargo run --example lease_migrate -- --app demo-app \
//!     --from dynamodb:demo-app --to sqlite:copy.sqlite
//! ```
//!
//! Credentials and region for DynamoDB come from the standard AWS chain and `--region`
//! (the SigV4 test keys for a local endpoint such as dynalite).

use std::sync::Arc;

use clap::Parser;
use kinesis_kcl::lease_store::{
    DynamoDbConfig, DynamoDbLeaseStore, LeaseStore, SqliteLeaseStore, copy_leases,
};

/// Copy leases between lease tables.
#[derive(Debug, Parser)]
struct Args {
    /// Application name: the SQLite table name inside the file.
    #[arg(long)]
    app: String,
    /// Source: `sqlite:FILE` or `dynamodb:TABLE`.
    #[arg(long)]
    from: String,
    /// Target: `sqlite:FILE` or `dynamodb:TABLE`.
    #[arg(long)]
    to: String,
    /// DynamoDB endpoint (default: the region's).
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// Signing region for DynamoDB.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

async fn open(args: &Args, spec: &str) -> Result<Arc<dyn LeaseStore>, Box<dyn std::error::Error>> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteLeaseStore::open(path, &args.app).await?));
    }
    if let Some(table) = spec.strip_prefix("dynamodb:") {
        let mut config = DynamoDbConfig::builder(table).region(&args.region);
        if let Some(endpoint) = &args.dynamodb_endpoint {
            config = config.endpoint(endpoint);
        }
        return Ok(Arc::new(DynamoDbLeaseStore::open(config.build()).await?));
    }
    Err(format!("{spec:?} is neither sqlite:FILE nor dynamodb:TABLE").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let from = open(&args, &args.from).await?;
    let to = open(&args, &args.to).await?;
    let report = copy_leases(from.as_ref(), to.as_ref()).await?;
    for key in &report.copied {
        println!("copied {key}");
    }
    for key in &report.already_present {
        println!("kept   {key} (already in the target)");
    }
    println!(
        "{} leases copied, {} already present",
        report.copied.len(),
        report.already_present.len()
    );
    Ok(())
}
