//! A lease table in Amazon DynamoDB, shared by workers on any number of hosts and
//! by the Java KCL (docs/kcl-leases.md).
//!
//! Every change is an `UpdateItem` that names only the attributes it changes and is
//! conditional on `leaseCounter` (and the owner where the trait says so), so
//! attributes this library does not know (`entityType`, a newer KCL's, …) survive,
//! and a refused condition (`ConditionalCheckFailedException`) is
//! [`Error::LeaseConflict`]. Throttles, 5xx answers, timeouts and connection failures
//! are retried here with jittered backoff (the SDK's own retries are off, so this
//! loop knows when an earlier attempt may have been applied); they become
//! [`Error::Store`] once the attempts run out, never a conflict.
//!
//! A write whose earlier attempt timed out may have been applied before the retry
//! is refused, because the retry's condition saw our own first write. Then the
//! item is read back (consistently): if it shows exactly our write, the call
//! succeeded; otherwise it is a conflict. Either way no two workers can both
//! believe a write of theirs won, since each write still needs the counter its
//! writer saw.

mod call;
mod config;
mod coordinator;
mod fenced_write;
mod item;
mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use call::Conditional;
pub use config::{BillingMode, DynamoDbConfig, DynamoDbConfigBuilder};
use item::{Item, n, s};
pub use table::LEASE_OWNER_INDEX;

use super::{LeaseStore, StoreFuture};
use crate::checkpoint::CheckpointUpdate;
use crate::error::Error;
use crate::lease::Lease;

/// A lease table in DynamoDB; clones share one client and one set of call counters.
#[derive(Debug, Clone)]
pub struct DynamoDbLeaseStore {
    client: Client,
    config: Arc<DynamoDbConfig>,
    calls: Arc<AtomicU64>,
    /// Set once the KCL 3.x side tables are known to exist.
    side_tables: Arc<tokio::sync::OnceCell<()>>,
}

impl DynamoDbLeaseStore {
    /// Connect to the table, creating it when absent (key `leaseKey`, the configured
    /// billing, the KCL 3.x owner index) and waiting until it is ACTIVE; an existing
    /// table is used as it is.
    pub async fn open(config: DynamoDbConfig) -> Result<Self, Error> {
        if config.table_name.is_empty() {
            return Err(Error::InvalidConfig("the lease table name is empty".into()));
        }
        if config.max_attempts == 0 || config.attempt_timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "max_attempts and attempt_timeout must be positive".into(),
            ));
        }
        let sdk_config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .endpoint_url(config.effective_endpoint())
            .credentials_provider(config.sdk_credentials())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(config.attempt_timeout)
                    .connect_timeout(config.attempt_timeout)
                    .build(),
            )
            .build();
        let store = DynamoDbLeaseStore {
            client: Client::from_conf(sdk_config),
            config: Arc::new(config),
            calls: Arc::new(AtomicU64::new(0)),
            side_tables: Arc::new(tokio::sync::OnceCell::new()),
        };
        store.ensure_table().await?;
        Ok(store)
    }

    /// [`open`](Self::open) the table `table` with the Kinesis client's region and
    /// credentials, at `endpoint` (`None`: the region's DynamoDB endpoint).
    pub async fn for_kinesis_client(
        table: &str,
        kinesis: &kinesis_proto::client::ClientConfig,
        endpoint: Option<&str>,
    ) -> Result<Self, Error> {
        let mut config = DynamoDbConfig::builder(table).client_config(kinesis);
        if let Some(endpoint) = endpoint {
            config = config.endpoint(endpoint);
        }
        Self::open(config.build()).await
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.config.table_name
    }

    /// DynamoDB requests sent so far by this store and its clones (every attempt counts).
    pub fn request_count(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl LeaseStore for DynamoDbLeaseStore {
    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let record = item::item_from_lease(lease);
            let answer = self
                .call("create_if_absent", || {
                    self.client
                        .put_item()
                        .table_name(&self.config.table_name)
                        .set_item(Some(record.clone()))
                        .condition_expression("attribute_not_exists(leaseKey)")
                        .send()
                })
                .await
                .map_err(|e| self.fatal("create_if_absent", e))?;
            // A retry refused after our own first attempt landed reads as "exists":
            // the lease is there either way, which is all a creator needs.
            Ok(matches!(answer, Conditional::Applied(_)))
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(async move {
            let mut leases = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let answer = self
                    .call("list", || {
                        self.client
                            .scan()
                            .table_name(&self.config.table_name)
                            .consistent_read(true)
                            .set_exclusive_start_key(start.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| self.fatal("list", e))?;
                let Conditional::Applied(page) = answer else {
                    return Err(self.failed("list", "a scan was refused"));
                };
                for record in page.items() {
                    leases.push(item::lease_from_item(record)?);
                }
                match page.last_evaluated_key() {
                    Some(last) if !last.is_empty() => start = Some(last.clone()),
                    _ => break,
                }
            }
            leases.sort_by(|a, b| a.lease_key.cmp(&b.lease_key));
            Ok(leases)
        })
    }

    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(self.get_item(lease_key))
    }

    fn renew<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.owner_update(
            "renew",
            lease_key,
            owner,
            expected_counter,
            "SET {COUNTER}",
            Vec::new(),
            move |stored| stored.is_owned_by(owner),
        ))
    }

    fn renew_with_throughput<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(self.owner_update(
            "renew",
            lease_key,
            owner,
            expected_counter,
            "SET throughputKBps = :kbps, {COUNTER}",
            vec![(":kbps", item::decimal(throughput_kbps))],
            move |stored| stored.is_owned_by(owner),
        ))
    }

    fn take<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            // DynamoDB cannot add conditionally inside one update, so the owner switch is
            // counted by choosing between two writes: unowned (or ours) first, the common
            // case of a take, then held by another worker. A conflict costs both.
            let mine = |stored: &Lease| stored.is_owned_by(new_owner);
            let values = || vec![(":owner", s(new_owner))];
            let plain = self
                .update(
                    "take",
                    lease_key,
                    expected_counter,
                    "attribute_not_exists(leaseOwner) OR leaseOwner = :owner",
                    "SET leaseOwner = :owner, {COUNTER} REMOVE checkpointOwner",
                    values(),
                    mine,
                )
                .await?;
            if let Ok(lease) = plain {
                return Ok(lease);
            }
            self.update(
                "take",
                lease_key,
                expected_counter,
                "leaseOwner <> :owner",
                "SET leaseOwner = :owner, {COUNTER}, \
                 ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint + :one \
                 REMOVE checkpointOwner",
                values(),
                mine,
            )
            .await?
            .map_err(|()| Error::conflict(lease_key))
        })
    }

    fn evict<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            // DynamoDB cannot choose what to remove by the item's state, so the two
            // cases are two writes: no hand-off (the common case) first, then a hand-off,
            // where the lease goes on to the worker it was handed to, as in the KCL.
            let values = || vec![(":owner", s(owner))];
            let plain = self
                .update(
                    "evict",
                    lease_key,
                    expected_counter,
                    "attribute_not_exists(checkpointOwner) AND leaseOwner = :owner",
                    "SET {COUNTER} REMOVE leaseOwner, checkpointOwner",
                    values(),
                    |stored| stored.lease_owner.is_none(),
                )
                .await?;
            if let Ok(lease) = plain {
                return Ok(lease);
            }
            self.update(
                "evict",
                lease_key,
                expected_counter,
                "checkpointOwner = :owner",
                "SET {COUNTER} REMOVE checkpointOwner",
                values(),
                |stored| stored.checkpoint_owner.is_none(),
            )
            .await?
            .map_err(|()| Error::conflict(lease_key))
        })
    }

    fn update_checkpoint<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let (expression, values, expected) = match update {
                CheckpointUpdate::Checkpoint(position) => (
                    "SET checkpoint = :checkpoint, checkpointSubSequenceNumber = :sub, \
                     ownerSwitchesSinceCheckpoint = :zero, {COUNTER} \
                     REMOVE pendingCheckpoint, pendingCheckpointSubSequenceNumber, \
                     pendingCheckpointState"
                        .to_string(),
                    vec![
                        (":checkpoint", s(position.checkpoint_str())),
                        (":sub", n(position.sub_sequence_number())),
                        (":zero", n(0)),
                    ],
                    (position.clone(), None),
                ),
                CheckpointUpdate::Prepare { pending, state } => {
                    let mut values = vec![
                        (":pending", s(pending.checkpoint_str())),
                        (":sub", n(pending.sub_sequence_number())),
                    ];
                    let state_clause = match state {
                        Some(bytes) => {
                            values.push((":state", AttributeValue::B(Blob::new(bytes.clone()))));
                            ", pendingCheckpointState = :state"
                        }
                        None => "",
                    };
                    let remove = if state.is_none() {
                        " REMOVE pendingCheckpointState"
                    } else {
                        ""
                    };
                    (
                        format!(
                            "SET pendingCheckpoint = :pending, \
                             pendingCheckpointSubSequenceNumber = :sub{state_clause}, \
                             {{COUNTER}}{remove}"
                        ),
                        values,
                        (pending.clone(), Some(pending.clone())),
                    )
                }
            };
            let (position, pending) = expected;
            self.owner_update(
                "update_checkpoint",
                lease_key,
                owner,
                expected_counter,
                &expression,
                values,
                move |stored| match &pending {
                    None => stored.is_owned_by(owner) && stored.checkpoint == position,
                    Some(p) => {
                        stored.is_owned_by(owner) && stored.pending_checkpoint.as_ref() == Some(p)
                    }
                },
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
            let children: std::collections::BTreeSet<String> =
                child_shard_ids.iter().cloned().collect();
            let (expression, values) = match item::string_set(&children) {
                Some(set) => (
                    "SET childShardIds = :children, {COUNTER}",
                    vec![(":children", set)],
                ),
                // An empty set cannot be stored: no children is no attribute.
                None => ("SET {COUNTER} REMOVE childShardIds", Vec::new()),
            };
            self.owner_update(
                "set_child_shards",
                lease_key,
                owner,
                expected_counter,
                expression,
                values,
                move |stored| stored.is_owned_by(owner) && stored.child_shard_ids == children,
            )
            .await
        })
    }

    fn delete<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let answer = self
                .call("delete", || {
                    self.client
                        .delete_item()
                        .table_name(&self.config.table_name)
                        .set_key(Some(item::key(lease_key)))
                        .return_values(ReturnValue::AllOld)
                        .send()
                })
                .await
                .map_err(|e| self.fatal("delete", e))?;
            Ok(match answer {
                Conditional::Applied(out) => out.attributes().is_some_and(|a| !a.is_empty()),
                Conditional::Refused { .. } => false,
            })
        })
    }

    fn initiate_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            // Unfenced by the counter and without bumping it, as the KCL 3.x writes it:
            // the owner's renewals and checkpoints go on.
            self.update_item(
                "initiate_handoff",
                lease_key,
                None,
                "attribute_exists(leaseKey) AND leaseOwner = :owner \
                 AND attribute_not_exists(checkpointOwner)",
                "SET leaseOwner = :new_owner, checkpointOwner = :owner",
                vec![(":owner", s(current_owner)), (":new_owner", s(new_owner))],
                |stored| {
                    stored.lease_owner.as_deref() == Some(new_owner)
                        && stored.checkpoint_owner.as_deref() == Some(current_owner)
                },
            )
            .await?
            .map_err(|()| Error::conflict(lease_key))
        })
    }

    fn complete_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        checkpoint_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.update(
                "complete_handoff",
                lease_key,
                expected_counter,
                "checkpointOwner = :owner",
                "SET {COUNTER} REMOVE checkpointOwner",
                vec![(":owner", s(checkpoint_owner))],
                |stored| stored.checkpoint_owner.is_none(),
            )
            .await?
            .map_err(|()| Error::conflict(lease_key))
        })
    }

    fn decline_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.update_item(
                "decline_handoff",
                lease_key,
                None,
                "leaseOwner = :owner AND attribute_exists(checkpointOwner)",
                "SET leaseOwner = checkpointOwner REMOVE checkpointOwner",
                vec![(":owner", s(new_owner))],
                |stored| stored.checkpoint_owner.is_none() && !stored.is_owned_by(new_owner),
            )
            .await?
            .map_err(|()| Error::conflict(lease_key))
        })
    }

    fn coordinator_store(&self) -> Option<&dyn crate::coordinator_store::CoordinatorStore> {
        Some(self)
    }
}
