//! The KCL 3.x side tables in DynamoDB: `<lease table>-CoordinatorState` (key `key`,
//! the leader lock as the DynamoDB lock client writes it) and
//! `<lease table>-WorkerMetricStats` (key `wid`); docs/kcl3-coordination.md. Each is
//! created on first use (on-demand billing) when absent.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode as SdkBillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

use super::call::Conditional;
use super::{DynamoDbLeaseStore, item};
use crate::coordinator_store::CoordinatorStore;
use crate::error::Error;
use crate::leader_lock::LockItem;
use crate::store_future::StoreFuture;
use crate::worker_metrics::WorkerMetricStats;

const KEY: &str = "key";
const OWNER_NAME: &str = "ownerName";
const LEASE_DURATION: &str = "leaseDuration";
const RECORD_VERSION_NUMBER: &str = "recordVersionNumber";
const IS_RELEASED: &str = "isReleased";
const WID: &str = "wid";
const LUT: &str = "lut";
const STS: &str = "sts";
const OPR: &str = "opr";

impl DynamoDbLeaseStore {
    /// `<lease table>-CoordinatorState`.
    pub fn coordinator_state_table(&self) -> String {
        format!("{}-CoordinatorState", self.config.table_name)
    }

    /// `<lease table>-WorkerMetricStats`.
    pub fn worker_metrics_table(&self) -> String {
        format!("{}-WorkerMetricStats", self.config.table_name)
    }

    /// Create both side tables when absent and wait until they are ACTIVE; once per store.
    async fn ensure_side_tables(&self) -> Result<(), Error> {
        self.side_tables
            .get_or_try_init(|| async {
                self.ensure_side_table(self.coordinator_state_table(), KEY)
                    .await?;
                self.ensure_side_table(self.worker_metrics_table(), WID)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn ensure_side_table(&self, table: String, hash_key: &str) -> Result<(), Error> {
        let deadline = Instant::now() + self.config.table_active_timeout;
        let mut created = false;
        loop {
            let answer = self
                .call("describe_table", || {
                    self.client.describe_table().table_name(&table).send()
                })
                .await;
            let status = match answer {
                Ok(Conditional::Applied(out)) => {
                    out.table().and_then(|t| t.table_status()).cloned()
                }
                Ok(Conditional::Refused { .. }) => None,
                Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => None,
                Err(e) => return Err(self.fatal("describe_table", e)),
            };
            match status {
                Some(TableStatus::Active | TableStatus::Updating) => return Ok(()),
                None if !created => {
                    let build = |e: aws_sdk_dynamodb::error::BuildError| {
                        self.failed("create_table", e.to_string())
                    };
                    let request = self
                        .client
                        .create_table()
                        .table_name(&table)
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(hash_key)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .map_err(build)?,
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(hash_key)
                                .key_type(KeyType::Hash)
                                .build()
                                .map_err(build)?,
                        )
                        .billing_mode(SdkBillingMode::PayPerRequest);
                    match self.call("create_table", || request.clone().send()).await {
                        Ok(_) => tracing::info!(%table, "KCL 3.x side table created"),
                        Err(e) if e.code.as_deref() == Some("ResourceInUseException") => {}
                        Err(e) => return Err(self.fatal("create_table", e)),
                    }
                    created = true;
                    continue;
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(self.failed("open", format!("{table} did not become ACTIVE")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn string(record: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    record.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn lock_from_item(key: &str, record: &HashMap<String, AttributeValue>) -> Result<LockItem, Error> {
    let corrupt = |what: &str| Error::corrupt(key, format!("lock item: {what}"));
    let duration = string(record, LEASE_DURATION).ok_or_else(|| corrupt(LEASE_DURATION))?;
    Ok(LockItem {
        owner_name: string(record, OWNER_NAME).ok_or_else(|| corrupt(OWNER_NAME))?,
        lease_duration_ms: duration.parse().map_err(|_| corrupt(LEASE_DURATION))?,
        record_version_number: string(record, RECORD_VERSION_NUMBER)
            .ok_or_else(|| corrupt(RECORD_VERSION_NUMBER))?,
        released: record
            .get(IS_RELEASED)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

fn metrics_from_item(record: &HashMap<String, AttributeValue>) -> Result<WorkerMetricStats, Error> {
    let wid =
        string(record, WID).ok_or_else(|| Error::corrupt("?", "worker metrics without wid"))?;
    let corrupt = |what: &str| Error::corrupt(&wid, format!("worker metrics {what}"));
    let lut = record
        .get(LUT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| corrupt(LUT))?;
    let map = |name: &str| -> Result<BTreeMap<String, Vec<String>>, Error> {
        let Some(value) = record.get(name) else {
            return Ok(BTreeMap::new());
        };
        let m = value.as_m().map_err(|_| corrupt(name))?;
        m.iter()
            .map(|(k, v)| {
                let list = v.as_l().map_err(|_| corrupt(name))?;
                let numbers = list
                    .iter()
                    .map(|x| x.as_n().cloned().map_err(|_| corrupt(name)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((k.clone(), numbers))
            })
            .collect()
    };
    let metric_stats = map(STS)?
        .into_iter()
        .map(|(k, v)| {
            let values = v
                .iter()
                .map(|x| x.parse::<f64>().map_err(|_| corrupt(STS)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((k, values))
        })
        .collect::<Result<_, Error>>()?;
    let operating_range = map(OPR)?
        .into_iter()
        .map(|(k, v)| {
            let values = v
                .iter()
                .map(|x| x.parse::<u64>().map_err(|_| corrupt(OPR)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((k, values))
        })
        .collect::<Result<_, Error>>()?;
    Ok(WorkerMetricStats {
        worker_id: wid.clone(),
        last_update_time: lut,
        metric_stats,
        operating_range,
    })
}

impl CoordinatorStore for DynamoDbLeaseStore {
    fn get_lock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<LockItem>> {
        Box::pin(async move {
            self.ensure_side_tables().await?;
            let table = self.coordinator_state_table();
            let answer = self
                .call("get_lock", || {
                    self.client
                        .get_item()
                        .table_name(&table)
                        .key(KEY, AttributeValue::S(key.to_string()))
                        .consistent_read(true)
                        .send()
                })
                .await
                .map_err(|e| self.fatal("get_lock", e))?;
            match answer {
                Conditional::Applied(out) => out.item().map(|r| lock_from_item(key, r)).transpose(),
                Conditional::Refused { .. } => Err(self.failed("get_lock", "a read was refused")),
            }
        })
    }

    fn put_lock<'a>(
        &'a self,
        key: &'a str,
        lock: &'a LockItem,
        expected: Option<&'a str>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.ensure_side_tables().await?;
            let table = self.coordinator_state_table();
            let mut record = HashMap::from([
                (KEY.to_string(), AttributeValue::S(key.to_string())),
                (
                    OWNER_NAME.to_string(),
                    AttributeValue::S(lock.owner_name.clone()),
                ),
                (
                    LEASE_DURATION.to_string(),
                    AttributeValue::S(lock.lease_duration_ms.to_string()),
                ),
                (
                    RECORD_VERSION_NUMBER.to_string(),
                    AttributeValue::S(lock.record_version_number.clone()),
                ),
            ]);
            if lock.released {
                record.insert(IS_RELEASED.to_string(), AttributeValue::Bool(true));
            }
            let answer = self
                .call("put_lock", || {
                    let request = self
                        .client
                        .put_item()
                        .table_name(&table)
                        .set_item(Some(record.clone()));
                    match expected {
                        None => request.condition_expression("attribute_not_exists(#k)"),
                        Some(version) => request
                            .condition_expression("attribute_exists(#k) AND #v = :v")
                            .expression_attribute_names("#v", RECORD_VERSION_NUMBER)
                            .expression_attribute_values(":v", AttributeValue::S(version.into())),
                    }
                    .expression_attribute_names("#k", KEY)
                    .send()
                })
                .await
                .map_err(|e| self.fatal("put_lock", e))?;
            match answer {
                Conditional::Applied(_) => Ok(true),
                Conditional::Refused {
                    after_ambiguous: false,
                } => Ok(false),
                // A retry refused after an attempt that may have landed: ours if it shows our version.
                Conditional::Refused {
                    after_ambiguous: true,
                } => Ok(self.get_lock(key).await?.is_some_and(|stored| {
                    stored.record_version_number == lock.record_version_number
                })),
            }
        })
    }

    fn delete_lock<'a>(&'a self, key: &'a str, version: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.ensure_side_tables().await?;
            let table = self.coordinator_state_table();
            let answer = self
                .call("delete_lock", || {
                    self.client
                        .delete_item()
                        .table_name(&table)
                        .key(KEY, AttributeValue::S(key.to_string()))
                        .condition_expression("#v = :v")
                        .expression_attribute_names("#v", RECORD_VERSION_NUMBER)
                        .expression_attribute_values(":v", AttributeValue::S(version.into()))
                        .send()
                })
                .await
                .map_err(|e| self.fatal("delete_lock", e))?;
            Ok(matches!(answer, Conditional::Applied(_)))
        })
    }

    fn put_worker_metrics<'a>(&'a self, stats: &'a WorkerMetricStats) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.ensure_side_tables().await?;
            let table = self.worker_metrics_table();
            let sts = stats
                .metric_stats
                .iter()
                .map(|(k, v)| {
                    let list = v.iter().map(|x| AttributeValue::N(x.to_string())).collect();
                    (k.clone(), AttributeValue::L(list))
                })
                .collect();
            let opr = stats
                .operating_range
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        AttributeValue::L(v.iter().map(|x| item::n(*x)).collect()),
                    )
                })
                .collect();
            let record = HashMap::from([
                (WID.to_string(), AttributeValue::S(stats.worker_id.clone())),
                (LUT.to_string(), item::n(stats.last_update_time)),
                (STS.to_string(), AttributeValue::M(sts)),
                (OPR.to_string(), AttributeValue::M(opr)),
            ]);
            self.call("put_worker_metrics", || {
                self.client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(record.clone()))
                    .send()
            })
            .await
            .map_err(|e| self.fatal("put_worker_metrics", e))?;
            Ok(())
        })
    }

    fn list_worker_metrics(&self) -> StoreFuture<'_, Vec<WorkerMetricStats>> {
        Box::pin(async move {
            self.ensure_side_tables().await?;
            let table = self.worker_metrics_table();
            let mut out = Vec::new();
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let answer = self
                    .call("list_worker_metrics", || {
                        self.client
                            .scan()
                            .table_name(&table)
                            .consistent_read(true)
                            .set_exclusive_start_key(start.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| self.fatal("list_worker_metrics", e))?;
                let Conditional::Applied(page) = answer else {
                    return Err(self.failed("list_worker_metrics", "a scan was refused"));
                };
                for record in page.items() {
                    out.push(metrics_from_item(record)?);
                }
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    return Ok(out);
                }
            }
        })
    }
}
