//! Opening the file: the pragmas, the lease table and the KCL 3.x side tables, and the
//! in-place upgrades of files written by earlier versions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

use super::SqliteLeaseStore;
use crate::error::Error;

/// How long a write waits for another process's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
impl SqliteLeaseStore {
    /// Open (creating if needed) the file and the application's table, off the async runtime.
    pub async fn open(path: impl AsRef<Path>, application_name: &str) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let application_name = application_name.to_string();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, &application_name))
            .await
            .map_err(|e| Error::store("open", e))?
    }

    /// Open (creating if needed) the file and the application's table, blocking the caller.
    pub fn open_blocking(path: impl AsRef<Path>, application_name: &str) -> Result<Self, Error> {
        if application_name.is_empty() {
            return Err(Error::InvalidConfig(
                "the application name (lease table name) is empty".into(),
            ));
        }
        let sql = |e| Error::store("open", e);
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // The pragma answers with the mode it ended up in; a file system without
        // shared memory stays in rollback-journal mode, which is slower but still correct.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql)?;
        // In WAL mode NORMAL loses at most the last commits on power loss, never
        // on a process crash; a re-delivered batch is within at-least-once.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let table = quote_identifier(application_name);
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                leaseKey TEXT PRIMARY KEY NOT NULL,
                leaseOwner TEXT,
                leaseCounter INTEGER NOT NULL,
                checkpoint TEXT NOT NULL,
                checkpointSubSequenceNumber INTEGER NOT NULL,
                pendingCheckpoint TEXT,
                pendingCheckpointSubSequenceNumber INTEGER,
                pendingCheckpointState BLOB,
                ownerSwitchesSinceCheckpoint INTEGER NOT NULL,
                parentShardId TEXT NOT NULL,
                childShardIds TEXT NOT NULL,
                startingHashKey TEXT,
                endingHashKey TEXT,
                checkpointOwner TEXT,
                throughputKBps REAL,
                streamName TEXT,
                shardId TEXT
            ) WITHOUT ROWID"
        ))
        .map_err(sql)?;
        let has_column = |name: &str| -> Result<bool, Error> {
            let n: i64 = conn
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM pragma_table_info({}) WHERE name = {}",
                        quote_literal(application_name),
                        quote_literal(name)
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            Ok(n > 0)
        };
        // Files from before the KCL 3.x attributes lack this column; adding a
        // nullable column is atomic and leaves every row as it was.
        for (column, column_type) in [
            ("checkpointOwner", "TEXT"),
            ("throughputKBps", "REAL"),
            ("streamName", "TEXT"),
            ("shardId", "TEXT"),
        ] {
            if !has_column(column)? {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {column_type}"
                ))
                .map_err(sql)?;
            }
        }
        // Files written before the columns took the KCL's names call this one
        // `parentShardIds`; rename it in place (atomic, and a no-op once done).
        if has_column("parentShardIds")? {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} RENAME COLUMN parentShardIds TO parentShardId"
            ))
            .map_err(sql)?;
        }
        // The KCL 3.x side tables live in the same file (docs/kcl3-coordination.md).
        let coordinator_table = quote_identifier(&format!("{application_name}-CoordinatorState"));
        let metrics_table = quote_identifier(&format!("{application_name}-WorkerMetricStats"));
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {coordinator_table} (
                key TEXT PRIMARY KEY NOT NULL,
                ownerName TEXT NOT NULL,
                leaseDuration TEXT NOT NULL,
                recordVersionNumber TEXT NOT NULL,
                isReleased INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS {metrics_table} (
                wid TEXT PRIMARY KEY NOT NULL,
                lut INTEGER NOT NULL,
                sts TEXT NOT NULL,
                opr TEXT NOT NULL
            ) WITHOUT ROWID"
        ))
        .map_err(sql)?;
        Ok(SqliteLeaseStore {
            conn: Arc::new(Mutex::new(conn)),
            table: table.into(),
            coordinator_table: coordinator_table.into(),
            metrics_table: metrics_table.into(),
        })
    }
}

/// Quote an application name as an SQL string literal.
fn quote_literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

/// Quote an application name as an SQL identifier, whatever characters it holds.
pub(super) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
