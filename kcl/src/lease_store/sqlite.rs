//! A lease table in an SQLite file, shared by worker processes on one host.
//!
//! One table per application, columns named after the DynamoDB attributes.
//! Every conditional write is one `UPDATE … WHERE leaseKey = ? AND leaseCounter = ?
//! [AND <owner condition>] RETURNING …`, so SQLite's write lock makes the check and
//! the change atomic across processes; a write that matched no row is a conflict.
//! WAL mode lets readers (lease scans) proceed while a worker writes, and the busy
//! timeout turns lock contention between processes into short waits instead of errors.
//!
//! Calls run on tokio's blocking pool because a busy wait can last up to the
//! busy timeout and must not stall the async runtime.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kinesis_proto::hash_key::{HashRange, parse_hash_key};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, named_params};

use super::{LeaseStore, StoreFuture};
use crate::checkpoint::CheckpointUpdate;
use crate::coordinator_store::CoordinatorStore;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::leader_lock::LockItem;
use crate::lease::Lease;
use crate::worker_metrics::WorkerMetricStats;

/// How long a write waits for another process's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const COLUMNS: &str = "leaseKey, leaseOwner, leaseCounter, checkpoint, checkpointSubSequenceNumber, \
     pendingCheckpoint, pendingCheckpointSubSequenceNumber, pendingCheckpointState, \
     ownerSwitchesSinceCheckpoint, parentShardId, childShardIds, startingHashKey, endingHashKey, \
     checkpointOwner, throughputKBps, streamName, shardId";

/// The owner as the writer must find it: the actual owner (docs/kcl3-coordination.md).
const ACTUAL_OWNER: &str =
    " AND ((checkpointOwner IS NULL AND leaseOwner = :owner) OR checkpointOwner = :owner)";
/// The worker handing the lease off.
const HANDING_OFF: &str = " AND checkpointOwner = :owner";

/// A lease table stored in an SQLite database file; its futures must run on a Tokio runtime.
///
/// Clones share one connection; separate [`SqliteLeaseStore::open`] calls (or
/// processes) get separate connections and are fenced against each other by SQLite's locks.
#[derive(Debug, Clone)]
pub struct SqliteLeaseStore {
    conn: Arc<Mutex<Connection>>,
    table: Arc<str>,
    /// `<application>-CoordinatorState`, quoted.
    coordinator_table: Arc<str>,
    /// `<application>-WorkerMetricStats`, quoted.
    metrics_table: Arc<str>,
}

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

    /// Run `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, operation: &'static str, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, Error> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let table = Arc::clone(&self.table);
        tokio::task::spawn_blocking(move || f(&conn.lock(), &table))
            .await
            .map_err(|e| Error::store(operation, e))?
    }

    /// A fenced write: `set` (which may be empty) plus the counter bump, iff the
    /// counter matches and, when given, the owner clause holds for the owner.
    async fn conditional(
        &self,
        operation: &'static str,
        lease_key: &str,
        expected_counter: u64,
        owner: Option<(&str, &'static str)>,
        set: &'static str,
        values: Vec<(&'static str, SqlValue)>,
    ) -> Result<Lease, Error> {
        let lease_key = lease_key.to_string();
        let owner_clause = owner.map_or("", |(_, clause)| clause);
        let owner = owner.map(|(o, _)| o.to_string());
        self.run(operation, move |conn, table| {
            // No stored counter exceeds i64::MAX, so such an expectation cannot match.
            let Ok(expected) = i64::try_from(expected_counter) else {
                return Err(Error::conflict(&lease_key));
            };
            let sql = format!(
                "UPDATE {table} SET {set}leaseCounter = leaseCounter + 1 \
                 WHERE leaseKey = :key AND leaseCounter = :expected{owner_clause} RETURNING {COLUMNS}"
            );
            let mut params: Vec<(&str, &dyn ToSql)> =
                vec![(":key", &lease_key as &dyn ToSql), (":expected", &expected as &dyn ToSql)];
            if let Some(owner) = &owner {
                params.push((":owner", owner as &dyn ToSql));
            }
            for (name, value) in &values {
                params.push((*name, value as &dyn ToSql));
            }
            let rows = query_leases(conn, &sql, params.as_slice(), operation)?;
            let changed = conn.changes();
            match (changed, <[_; 1]>::try_from(rows)) {
                (1, Ok([lease])) => Ok(lease),
                (0, _) => Err(Error::conflict(&lease_key)),
                (n, _) => Err(Error::corrupt(&lease_key, format!("a keyed update changed {n} rows"))),
            }
        })
        .await
    }
}

/// An owned SQL parameter, so values can move to the blocking pool.
#[derive(Debug)]
enum SqlValue {
    Text(String),
    Int(i64),
    OptBlob(Option<Vec<u8>>),
    Real(f64),
}

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            SqlValue::Text(s) => s.to_sql(),
            SqlValue::Int(i) => i.to_sql(),
            SqlValue::OptBlob(b) => b.to_sql(),
            SqlValue::Real(r) => r.to_sql(),
        }
    }
}

/// Quote an application name as an SQL string literal.
fn quote_literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

/// Quote an application name as an SQL identifier, whatever characters it holds.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sub_sequence_param(position: &ExtendedSequenceNumber) -> Result<i64, Error> {
    let sub = position.sub_sequence_number();
    i64::try_from(sub).map_err(|_| Error::InvalidSubSequenceNumber(i128::from(sub)))
}

fn shard_ids_json(ids: &BTreeSet<String>) -> Result<String, Error> {
    serde_json::to_string(ids).map_err(|e| Error::store("encode shard ids", e))
}

fn query_leases(
    conn: &Connection,
    sql: &str,
    params: &[(&str, &dyn ToSql)],
    operation: &'static str,
) -> Result<Vec<Lease>, Error> {
    let db = |e| Error::store(operation, e);
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    let mut raw = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        raw.push(RawLease::from_row(row).map_err(db)?);
    }
    raw.into_iter().map(RawLease::into_lease).collect()
}

/// A row as SQLite holds it, before it is checked into a [`Lease`].
struct RawLease {
    lease_key: String,
    lease_owner: Option<String>,
    lease_counter: i64,
    checkpoint: String,
    checkpoint_sub: i64,
    pending: Option<String>,
    pending_sub: Option<i64>,
    pending_state: Option<Vec<u8>>,
    owner_switches: i64,
    parents: String,
    children: String,
    starting_hash_key: Option<String>,
    ending_hash_key: Option<String>,
    checkpoint_owner: Option<String>,
    throughput_kbps: Option<f64>,
    stream_name: Option<String>,
    shard_id: Option<String>,
}

impl RawLease {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawLease {
            lease_key: row.get(0)?,
            lease_owner: row.get(1)?,
            lease_counter: row.get(2)?,
            checkpoint: row.get(3)?,
            checkpoint_sub: row.get(4)?,
            pending: row.get(5)?,
            pending_sub: row.get(6)?,
            pending_state: row.get(7)?,
            owner_switches: row.get(8)?,
            parents: row.get(9)?,
            children: row.get(10)?,
            starting_hash_key: row.get(11)?,
            ending_hash_key: row.get(12)?,
            checkpoint_owner: row.get(13)?,
            throughput_kbps: row.get(14)?,
            stream_name: row.get(15)?,
            shard_id: row.get(16)?,
        })
    }

    fn into_lease(self) -> Result<Lease, Error> {
        let key = self.lease_key.as_str();
        let unsigned = |v: i64, what: &str| {
            u64::try_from(v).map_err(|_| Error::corrupt(key, format!("{what} is negative ({v})")))
        };
        let position = |checkpoint: &str, sub: i64, what: &str| {
            ExtendedSequenceNumber::parse(checkpoint, unsigned(sub, what)?)
                .map_err(|e| Error::corrupt(key, format!("{what}: {e}")))
        };
        let shard_ids = |json: &str, what: &str| {
            serde_json::from_str::<BTreeSet<String>>(json)
                .map_err(|e| Error::corrupt(key, format!("{what} is not a JSON string array: {e}")))
        };
        let hash_key = |s: &str| {
            parse_hash_key(s).ok_or_else(|| Error::corrupt(key, format!("{s:?} is not a hash key")))
        };
        let hash_key_range = match (&self.starting_hash_key, &self.ending_hash_key) {
            (Some(start), Some(end)) => Some(HashRange::new(hash_key(start)?, hash_key(end)?)),
            (None, None) => None,
            _ => {
                return Err(Error::corrupt(
                    key,
                    "only one end of the hash-key range is set",
                ));
            }
        };
        let pending_checkpoint = match &self.pending {
            Some(p) => Some(position(
                p,
                self.pending_sub.unwrap_or(0),
                "pendingCheckpoint",
            )?),
            None => None,
        };
        Ok(Lease {
            lease_owner: self.lease_owner,
            checkpoint_owner: self.checkpoint_owner,
            throughput_kbps: self.throughput_kbps.filter(|v| v.is_finite()),
            multi_stream: match (self.stream_name, self.shard_id) {
                (Some(stream_identifier), Some(shard_id)) => Some(crate::lease::MultiStreamIds {
                    stream_identifier,
                    shard_id,
                }),
                _ => None,
            },
            lease_counter: unsigned(self.lease_counter, "leaseCounter")?,
            checkpoint: position(&self.checkpoint, self.checkpoint_sub, "checkpoint")?,
            pending_checkpoint,
            pending_checkpoint_state: self.pending_state,
            owner_switches_since_checkpoint: unsigned(
                self.owner_switches,
                "ownerSwitchesSinceCheckpoint",
            )?,
            parent_shard_ids: shard_ids(&self.parents, "parentShardIds")?,
            child_shard_ids: shard_ids(&self.children, "childShardIds")?,
            hash_key_range,
            lease_key: self.lease_key,
        })
    }
}

impl LeaseStore for SqliteLeaseStore {
    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        let lease = lease.clone();
        Box::pin(self.run("create_if_absent", move |conn, table| {
            let too_big = |what: &str| Error::InvalidConfig(format!("{what} of lease {} exceeds i64", lease.lease_key));
            let counter = i64::try_from(lease.lease_counter).map_err(|_| too_big("leaseCounter"))?;
            let switches =
                i64::try_from(lease.owner_switches_since_checkpoint).map_err(|_| too_big("ownerSwitchesSinceCheckpoint"))?;
            let checkpoint_sub = sub_sequence_param(&lease.checkpoint)?;
            let pending_sub = lease.pending_checkpoint.as_ref().map(sub_sequence_param).transpose()?;
            let parents = shard_ids_json(&lease.parent_shard_ids)?;
            let children = shard_ids_json(&lease.child_shard_ids)?;
            let start = lease.hash_key_range.map(|r| r.start.to_string());
            let end = lease.hash_key_range.map(|r| r.end.to_string());
            let sql = format!(
                "INSERT INTO {table} ({COLUMNS}) VALUES (:key, :owner, :counter, :checkpoint, :checkpoint_sub, \
                 :pending, :pending_sub, :pending_state, :switches, :parents, :children, :start, :end, \
                 :checkpoint_owner, :throughput, :stream_name, :shard_id) \
                 ON CONFLICT(leaseKey) DO NOTHING"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(|e| Error::store("create_if_absent", e))?;
            let inserted = stmt
                .execute(named_params! {
                    ":key": lease.lease_key,
                    ":owner": lease.lease_owner,
                    ":counter": counter,
                    ":checkpoint": lease.checkpoint.checkpoint_str(),
                    ":checkpoint_sub": checkpoint_sub,
                    ":pending": lease.pending_checkpoint.as_ref().map(ExtendedSequenceNumber::checkpoint_str),
                    ":pending_sub": pending_sub,
                    ":pending_state": lease.pending_checkpoint_state,
                    ":switches": switches,
                    ":parents": parents,
                    ":children": children,
                    ":start": start,
                    ":end": end,
                    ":checkpoint_owner": lease.checkpoint_owner,
                    ":throughput": lease.throughput_kbps,
                    ":stream_name": lease.multi_stream.as_ref().map(|m| m.stream_identifier.clone()),
                    ":shard_id": lease.multi_stream.as_ref().map(|m| m.shard_id.clone()),
                })
                .map_err(|e| Error::store("create_if_absent", e))?;
            Ok(inserted == 1)
        }))
    }

    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(self.run("list", |conn, table| {
            query_leases(
                conn,
                &format!("SELECT {COLUMNS} FROM {table} ORDER BY leaseKey"),
                &[],
                "list",
            )
        }))
    }

    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>> {
        let lease_key = lease_key.to_string();
        Box::pin(self.run("get", move |conn, table| {
            let sql = format!("SELECT {COLUMNS} FROM {table} WHERE leaseKey = :key");
            Ok(
                query_leases(conn, &sql, &[(":key", &lease_key as &dyn ToSql)], "get")?
                    .into_iter()
                    .next(),
            )
        }))
    }

    fn renew<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.conditional(
            "renew",
            lease_key,
            expected_counter,
            Some((owner, ACTUAL_OWNER)),
            "",
            Vec::new(),
        ))
    }

    fn renew_with_throughput<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.conditional(
            "renew",
            lease_key,
            expected_counter,
            Some((owner, ACTUAL_OWNER)),
            "throughputKBps = :kbps, ",
            vec![(":kbps", SqlValue::Real(throughput_kbps))],
        ))
    }

    fn take<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        // SET expressions see the row as it was, so the switch count compares the old owner.
        let set = "ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint \
                   + (leaseOwner IS NOT NULL AND leaseOwner <> :new_owner), \
                   leaseOwner = :new_owner, checkpointOwner = NULL, ";
        let values = vec![(":new_owner", SqlValue::Text(new_owner.to_string()))];
        Box::pin(self.conditional("take", lease_key, expected_counter, None, set, values))
    }

    fn evict<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.conditional(
            "evict",
            lease_key,
            expected_counter,
            Some((owner, ACTUAL_OWNER)),
            // During a hand-off the lease goes on to the worker it was handed to.
            "leaseOwner = CASE WHEN checkpointOwner IS NULL THEN NULL ELSE leaseOwner END, \
             checkpointOwner = NULL, ",
            Vec::new(),
        ))
    }

    fn update_checkpoint<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let (set, values) = match update {
                CheckpointUpdate::Checkpoint(position) => (
                    "checkpoint = :checkpoint, checkpointSubSequenceNumber = :sub, \
                     pendingCheckpoint = NULL, pendingCheckpointSubSequenceNumber = NULL, \
                     pendingCheckpointState = NULL, ownerSwitchesSinceCheckpoint = 0, ",
                    vec![
                        (
                            ":checkpoint",
                            SqlValue::Text(position.checkpoint_str().to_string()),
                        ),
                        (":sub", SqlValue::Int(sub_sequence_param(position)?)),
                    ],
                ),
                CheckpointUpdate::Prepare { pending, state } => (
                    "pendingCheckpoint = :pending, pendingCheckpointSubSequenceNumber = :sub, \
                     pendingCheckpointState = :state, ",
                    vec![
                        (
                            ":pending",
                            SqlValue::Text(pending.checkpoint_str().to_string()),
                        ),
                        (":sub", SqlValue::Int(sub_sequence_param(pending)?)),
                        (":state", SqlValue::OptBlob(state.clone())),
                    ],
                ),
            };
            self.conditional(
                "update_checkpoint",
                lease_key,
                expected_counter,
                Some((owner, ACTUAL_OWNER)),
                set,
                values,
            )
            .await
        })
    }

    fn set_child_shards<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        child_shard_ids: &'a [String],
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let children = shard_ids_json(&child_shard_ids.iter().cloned().collect())?;
            let values = vec![(":children", SqlValue::Text(children))];
            self.conditional(
                "set_child_shards",
                lease_key,
                expected_counter,
                Some((owner, ACTUAL_OWNER)),
                "childShardIds = :children, ",
                values,
            )
            .await
        })
    }

    fn delete<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, bool> {
        let lease_key = lease_key.to_string();
        Box::pin(self.run("delete", move |conn, table| {
            let deleted = conn
                .execute(
                    &format!("DELETE FROM {table} WHERE leaseKey = :key"),
                    named_params! {":key": lease_key},
                )
                .map_err(|e| Error::store("delete", e))?;
            Ok(deleted == 1)
        }))
    }

    fn initiate_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        let lease_key = lease_key.to_string();
        let current_owner = current_owner.to_string();
        let new_owner = new_owner.to_string();
        Box::pin(self.run("initiate_handoff", move |conn, table| {
            // Unfenced by the counter, as in the KCL: the owner's renewals go on.
            let sql = format!(
                "UPDATE {table} SET leaseOwner = :new_owner, checkpointOwner = :owner \
                 WHERE leaseKey = :key AND leaseOwner = :owner AND checkpointOwner IS NULL \
                 RETURNING {COLUMNS}"
            );
            let params: [(&str, &dyn ToSql); 3] = [
                (":key", &lease_key),
                (":owner", &current_owner),
                (":new_owner", &new_owner),
            ];
            let rows = query_leases(conn, &sql, &params, "initiate_handoff")?;
            rows.into_iter()
                .next()
                .ok_or_else(|| Error::conflict(&lease_key))
        }))
    }

    fn complete_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        checkpoint_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.conditional(
            "complete_handoff",
            lease_key,
            expected_counter,
            Some((checkpoint_owner, HANDING_OFF)),
            "checkpointOwner = NULL, ",
            Vec::new(),
        ))
    }

    fn decline_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        let lease_key = lease_key.to_string();
        let new_owner = new_owner.to_string();
        Box::pin(self.run("decline_handoff", move |conn, table| {
            let sql = format!(
                "UPDATE {table} SET leaseOwner = checkpointOwner, checkpointOwner = NULL \
                 WHERE leaseKey = :key AND leaseOwner = :owner AND checkpointOwner IS NOT NULL \
                 RETURNING {COLUMNS}"
            );
            let params: [(&str, &dyn ToSql); 2] = [(":key", &lease_key), (":owner", &new_owner)];
            let rows = query_leases(conn, &sql, &params, "decline_handoff")?;
            rows.into_iter()
                .next()
                .ok_or_else(|| Error::conflict(&lease_key))
        }))
    }

    fn coordinator_store(&self) -> Option<&dyn CoordinatorStore> {
        Some(self)
    }
}

impl CoordinatorStore for SqliteLeaseStore {
    fn get_lock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<LockItem>> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        Box::pin(self.run("get_lock", move |conn, _| {
            let sql = format!(
                "SELECT ownerName, leaseDuration, recordVersionNumber, isReleased FROM {table} WHERE key = ?1"
            );
            let row = conn
                .query_row(&sql, [&key], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()
                .map_err(|e| Error::store("get_lock", e))?;
            row.map(|(owner_name, duration, record_version_number, released)| {
                let lease_duration_ms = duration
                    .parse()
                    .map_err(|_| Error::corrupt(&key, format!("leaseDuration {duration:?}")))?;
                Ok(LockItem {
                    owner_name,
                    lease_duration_ms,
                    record_version_number,
                    released,
                })
            })
            .transpose()
        }))
    }

    fn put_lock<'a>(
        &'a self,
        key: &'a str,
        item: &'a LockItem,
        expected: Option<&'a str>,
    ) -> StoreFuture<'a, bool> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        let item = item.clone();
        let expected = expected.map(str::to_string);
        Box::pin(self.run("put_lock", move |conn, _| {
            let sql = |e| Error::store("put_lock", e);
            let values = rusqlite::params![
                key,
                item.owner_name,
                item.lease_duration_ms.to_string(),
                item.record_version_number,
                item.released
            ];
            let changed = match &expected {
                None => conn
                    .execute(
                        &format!(
                            "INSERT INTO {table} (key, ownerName, leaseDuration, recordVersionNumber, isReleased) \
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO NOTHING"
                        ),
                        values,
                    )
                    .map_err(sql)?,
                Some(version) => conn
                    .execute(
                        &format!(
                            "UPDATE {table} SET ownerName = ?2, leaseDuration = ?3, recordVersionNumber = ?4, \
                             isReleased = ?5 WHERE key = ?1 AND recordVersionNumber = ?6"
                        ),
                        rusqlite::params![
                            key,
                            item.owner_name,
                            item.lease_duration_ms.to_string(),
                            item.record_version_number,
                            item.released,
                            version
                        ],
                    )
                    .map_err(sql)?,
            };
            Ok(changed == 1)
        }))
    }

    fn delete_lock<'a>(&'a self, key: &'a str, version: &'a str) -> StoreFuture<'a, bool> {
        let table = Arc::clone(&self.coordinator_table);
        let key = key.to_string();
        let version = version.to_string();
        Box::pin(self.run("delete_lock", move |conn, _| {
            let changed = conn
                .execute(
                    &format!("DELETE FROM {table} WHERE key = ?1 AND recordVersionNumber = ?2"),
                    [&key, &version],
                )
                .map_err(|e| Error::store("delete_lock", e))?;
            Ok(changed == 1)
        }))
    }

    fn put_worker_metrics<'a>(&'a self, stats: &'a WorkerMetricStats) -> StoreFuture<'a, ()> {
        let table = Arc::clone(&self.metrics_table);
        let stats = stats.clone();
        Box::pin(self.run("put_worker_metrics", move |conn, _| {
            let json = |e| Error::store("put_worker_metrics", e);
            let sts = serde_json::to_string(&stats.metric_stats).map_err(json)?;
            let opr = serde_json::to_string(&stats.operating_range).map_err(json)?;
            let lut = i64::try_from(stats.last_update_time).unwrap_or(i64::MAX);
            conn.execute(
                &format!(
                    "INSERT INTO {table} (wid, lut, sts, opr) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(wid) DO UPDATE SET lut = excluded.lut, sts = excluded.sts, opr = excluded.opr"
                ),
                rusqlite::params![stats.worker_id, lut, sts, opr],
            )
            .map_err(|e| Error::store("put_worker_metrics", e))?;
            Ok(())
        }))
    }

    fn list_worker_metrics(&self) -> StoreFuture<'_, Vec<WorkerMetricStats>> {
        let table = Arc::clone(&self.metrics_table);
        Box::pin(self.run("list_worker_metrics", move |conn, _| {
            let sql = |e| Error::store("list_worker_metrics", e);
            let mut statement = conn
                .prepare(&format!(
                    "SELECT wid, lut, sts, opr FROM {table} ORDER BY wid"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (wid, lut, sts, opr) = row.map_err(sql)?;
                let corrupt = |what: &str| Error::corrupt(&wid, format!("worker metrics {what}"));
                out.push(WorkerMetricStats {
                    last_update_time: u64::try_from(lut).map_err(|_| corrupt("lut"))?,
                    metric_stats: serde_json::from_str(&sts).map_err(|_| corrupt("sts"))?,
                    operating_range: serde_json::from_str(&opr).map_err(|_| corrupt("opr"))?,
                    worker_id: wid,
                });
            }
            Ok(out)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("app"), "\"app\"");
        assert_eq!(quote_identifier("a\"b; DROP"), "\"a\"\"b; DROP\"");
    }

    #[test]
    fn odd_application_names_get_their_own_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("leases.db");
        let odd =
            SqliteLeaseStore::open_blocking(&path, "my \"app\"; DROP TABLE x").expect("opens");
        assert_eq!(&*odd.table, "\"my \"\"app\"\"; DROP TABLE x\"");
        assert!(matches!(
            SqliteLeaseStore::open_blocking(&path, ""),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[tokio::test]
    async fn files_with_the_old_parent_column_name_are_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE \"it's\" (leaseKey TEXT PRIMARY KEY NOT NULL, leaseOwner TEXT, \
                 leaseCounter INTEGER NOT NULL, checkpoint TEXT NOT NULL, \
                 checkpointSubSequenceNumber INTEGER NOT NULL, pendingCheckpoint TEXT, \
                 pendingCheckpointSubSequenceNumber INTEGER, pendingCheckpointState BLOB, \
                 ownerSwitchesSinceCheckpoint INTEGER NOT NULL, parentShardIds TEXT NOT NULL, \
                 childShardIds TEXT NOT NULL, startingHashKey TEXT, endingHashKey TEXT) WITHOUT ROWID;
                 INSERT INTO \"it's\" VALUES ('shardId-000000000002', NULL, 3, 'TRIM_HORIZON', 0, \
                 NULL, NULL, NULL, 0, '[\"shardId-000000000000\"]', '[]', NULL, NULL);",
            )
            .expect("old layout");
        }
        let store = SqliteLeaseStore::open(&path, "it's")
            .await
            .expect("upgrades");
        let lease = store
            .get("shardId-000000000002")
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(
            lease.parent_shard_ids,
            BTreeSet::from(["shardId-000000000000".to_string()])
        );
        // Opening again finds the new name and changes nothing.
        drop(store);
        SqliteLeaseStore::open(&path, "it's")
            .await
            .expect("reopens");
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteLeaseStore::open(dir.path().join("leases.db"), "app")
            .await
            .expect("opens");
        let lease = Lease::new("s", ExtendedSequenceNumber::TrimHorizon);
        assert!(store.create_if_absent(&lease).await.expect("creates"));
        store
            .run("corrupt", |conn, table| {
                conn.execute(&format!("UPDATE {table} SET checkpoint = 'garbage'"), [])
                    .map_err(|e| Error::store("corrupt", e))
            })
            .await
            .expect("raw update");
        assert!(matches!(
            store.get("s").await,
            Err(Error::CorruptLease { .. })
        ));
        assert!(matches!(
            store.list().await,
            Err(Error::CorruptLease { .. })
        ));
    }
}
