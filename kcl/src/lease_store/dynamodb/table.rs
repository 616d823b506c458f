//! The lease table itself: created when absent (key `leaseKey`, the configured billing, the
//! KCL 3.x owner index) and awaited until ACTIVE.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode as SdkBillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, TableStatus,
};

use super::call::Conditional;
use super::config::BillingMode;
use super::{DynamoDbLeaseStore, item};
use crate::error::Error;

/// The KCL 3.x index of leases by owner (`leaseOwner` HASH, `leaseKey` RANGE, keys only).
pub const LEASE_OWNER_INDEX: &str = "LeaseOwnerToLeaseKeyIndex";

impl DynamoDbLeaseStore {
    async fn describe_status(&self) -> Result<Option<TableStatus>, Error> {
        let table = self.config.table_name.clone();
        let answer = self
            .call("describe_table", || {
                self.client.describe_table().table_name(&table).send()
            })
            .await;
        match answer {
            Ok(Conditional::Applied(out)) => {
                Ok(out.table().and_then(|t| t.table_status()).cloned())
            }
            Ok(Conditional::Refused { .. }) => Ok(None),
            Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(self.fatal("describe_table", e)),
        }
    }

    /// Create the table if absent and wait (bounded) until it is ACTIVE.
    pub(super) async fn ensure_table(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.config.table_active_timeout;
        let mut created = false;
        loop {
            match self.describe_status().await? {
                Some(TableStatus::Active | TableStatus::Updating) => return Ok(()),
                Some(_) => {}
                None if !created => {
                    self.create_table().await?;
                    created = true;
                    continue;
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(self.failed(
                    "open",
                    format!(
                        "the table did not become ACTIVE within {:?}",
                        self.config.table_active_timeout
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_table(&self) -> Result<(), Error> {
        let build =
            |e: aws_sdk_dynamodb::error::BuildError| self.failed("create_table", e.to_string());
        let key_element = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build)
        };
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)
        };
        let throughput = match self.config.billing_mode {
            BillingMode::OnDemand => None,
            BillingMode::Provisioned {
                read_capacity,
                write_capacity,
            } => Some(
                ProvisionedThroughput::builder()
                    .read_capacity_units(read_capacity)
                    .write_capacity_units(write_capacity)
                    .build()
                    .map_err(build)?,
            ),
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(LEASE_OWNER_INDEX)
            .key_schema(key_element(item::LEASE_OWNER, KeyType::Hash)?)
            .key_schema(key_element(item::LEASE_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .set_provisioned_throughput(throughput.clone())
            .build()
            .map_err(build)?;
        let billing = match self.config.billing_mode {
            BillingMode::OnDemand => SdkBillingMode::PayPerRequest,
            BillingMode::Provisioned { .. } => SdkBillingMode::Provisioned,
        };
        let request = self
            .client
            .create_table()
            .table_name(&self.config.table_name)
            .attribute_definitions(string_attribute(item::LEASE_KEY)?)
            .attribute_definitions(string_attribute(item::LEASE_OWNER)?)
            .key_schema(key_element(item::LEASE_KEY, KeyType::Hash)?)
            .global_secondary_indexes(index)
            .billing_mode(billing)
            .set_provisioned_throughput(throughput);
        match self.call("create_table", || request.clone().send()).await {
            Ok(_) => {
                tracing::info!(table = %self.config.table_name, "lease table created");
                Ok(())
            }
            // Another worker created it first: wait for it like for ours.
            Err(e) if e.code.as_deref() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(self.fatal("create_table", e)),
        }
    }
}
