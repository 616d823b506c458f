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

mod coordinator;
mod row;
mod schema;

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, ToSql, named_params};

use row::{COLUMNS, SqlValue, query_leases, shard_ids_json, sub_sequence_param};

use super::{LeaseStore, StoreFuture};
use crate::checkpoint::CheckpointUpdate;
use crate::coordinator_store::CoordinatorStore;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;

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

#[cfg(test)]
mod tests {
    use super::schema::quote_identifier;
    use super::*;
    use std::collections::BTreeSet;

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
