//! A lease as an SQLite row: the columns, the owned parameters written and the checks a
//! row read back must pass to become a [`Lease`].

use std::collections::BTreeSet;

use kinesis_proto::hash_key::{HashRange, parse_hash_key};
use rusqlite::{Connection, Row, ToSql};

use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;

pub(super) const COLUMNS: &str = "leaseKey, leaseOwner, leaseCounter, checkpoint, checkpointSubSequenceNumber, \
     pendingCheckpoint, pendingCheckpointSubSequenceNumber, pendingCheckpointState, \
     ownerSwitchesSinceCheckpoint, parentShardId, childShardIds, startingHashKey, endingHashKey, \
     checkpointOwner, throughputKBps, streamName, shardId";

/// An owned SQL parameter, so values can move to the blocking pool.
#[derive(Debug)]
pub(super) enum SqlValue {
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

pub(super) fn sub_sequence_param(position: &ExtendedSequenceNumber) -> Result<i64, Error> {
    let sub = position.sub_sequence_number();
    i64::try_from(sub).map_err(|_| Error::InvalidSubSequenceNumber(i128::from(sub)))
}

pub(super) fn shard_ids_json(ids: &BTreeSet<String>) -> Result<String, Error> {
    serde_json::to_string(ids).map_err(|e| Error::store("encode shard ids", e))
}

pub(super) fn query_leases(
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
