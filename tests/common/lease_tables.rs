//! The lease tables of the kcl tests and their worker processes, named by a worker spec's
//! store field: `dynamodb=<endpoint>` or an SQLite file path. Included (`#[path]`) by
//! tests/kcl.rs and by the `kcl-test-worker` binary (tests/bin/kcl_worker.rs), so both read
//! the field the same way.

use std::sync::Arc;
use std::time::Duration;

use kinesis_kcl::lease_store::{DynamoDbConfig, DynamoDbLeaseStore, LeaseStore, SqliteLeaseStore};

/// The lease table a worker spec names: `dynamodb=<endpoint>` (the table is the
/// application name), else an SQLite file path.
pub async fn open_store(db: &str, app: &str) -> Arc<dyn LeaseStore> {
    match db.strip_prefix("dynamodb=") {
        Some(endpoint) => Arc::new(dynamodb_store(endpoint, app).await),
        None => Arc::new(SqliteLeaseStore::open(db, app).await.expect("lease db")),
    }
}

/// The DynamoDB lease table `table` at `endpoint` (created if absent).
pub async fn dynamodb_store(endpoint: &str, table: &str) -> DynamoDbLeaseStore {
    DynamoDbLeaseStore::open(
        DynamoDbConfig::builder(table)
            .endpoint(endpoint)
            .attempt_timeout(Duration::from_millis(500))
            .max_attempts(3)
            .build(),
    )
    .await
    .expect("DynamoDB lease table")
}
