//! Fenced writes: every change is an `UpdateItem` naming only the attributes it changes and
//! conditional on `leaseCounter` (and the owner where the trait says so); a refusal after an
//! ambiguous attempt is resolved by reading the item back.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::DynamoDbLeaseStore;
use super::call::Conditional;
use super::item::{self, Item, n, s};
use crate::error::Error;
use crate::lease::Lease;

/// The owner as the writer must find it: the actual owner (docs/kcl3-coordination.md).
const ACTUAL_OWNER: &str = "(attribute_not_exists(checkpointOwner) AND leaseOwner = :owner) \
     OR checkpointOwner = :owner";

impl DynamoDbLeaseStore {
    /// A consistent read of one item.
    pub(super) async fn get_item(&self, lease_key: &str) -> Result<Option<Lease>, Error> {
        let answer = self
            .call("get", || {
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .set_key(Some(item::key(lease_key)))
                    .consistent_read(true)
                    .send()
            })
            .await
            .map_err(|e| self.fatal("get", e))?;
        match answer {
            Conditional::Applied(out) => out.item().map(item::lease_from_item).transpose(),
            Conditional::Refused { .. } => Err(self.failed("get", "a read was refused")),
        }
    }

    /// A fenced `UpdateItem`: `update` plus the counter bump, iff the counter is
    /// `expected_counter` and `condition` (beyond that) holds. `mine` tells, on a refusal
    /// after an ambiguous attempt, whether the stored lease is exactly our write.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update(
        &self,
        operation: &'static str,
        lease_key: &str,
        expected_counter: u64,
        condition: &str,
        update: &str,
        values: Vec<(&'static str, AttributeValue)>,
        mine: impl Fn(&Lease) -> bool,
    ) -> Result<Result<Lease, ()>, Error> {
        self.update_item(
            operation,
            lease_key,
            Some(expected_counter),
            condition,
            update,
            values,
            mine,
        )
        .await
    }

    /// An `UpdateItem` iff `condition` holds and, when given, the counter is
    /// `expected_counter`; see [`update`](Self::update).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_item(
        &self,
        operation: &'static str,
        lease_key: &str,
        expected_counter: Option<u64>,
        condition: &str,
        update: &str,
        values: Vec<(&'static str, AttributeValue)>,
        mine: impl Fn(&Lease) -> bool,
    ) -> Result<Result<Lease, ()>, Error> {
        let mut expression_values: Item = values
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        let mut clauses = Vec::new();
        if let Some(expected) = expected_counter {
            expression_values.insert(":expected".into(), n(expected));
            clauses.push("leaseCounter = :expected".to_string());
        }
        if !condition.is_empty() {
            clauses.push(format!("({condition})"));
        }
        let condition = clauses.join(" AND ");
        if update.contains("{COUNTER}") {
            expression_values.insert(":one".into(), n(1));
        }
        let update = update.replace("{COUNTER}", "leaseCounter = leaseCounter + :one");
        let answer = self
            .call(operation, || {
                self.client
                    .update_item()
                    .table_name(&self.config.table_name)
                    .set_key(Some(item::key(lease_key)))
                    .condition_expression(&condition)
                    .update_expression(&update)
                    .set_expression_attribute_values(Some(expression_values.clone()))
                    .return_values(ReturnValue::AllNew)
                    .send()
            })
            .await
            .map_err(|e| self.fatal(operation, e))?;
        match answer {
            Conditional::Applied(out) => match out.attributes() {
                Some(attributes) => item::lease_from_item(attributes).map(Ok),
                None => Err(self.failed(operation, "UpdateItem returned no attributes")),
            },
            Conditional::Refused { after_ambiguous } => {
                if after_ambiguous
                    && let Some(stored) = self.get_item(lease_key).await?
                    && expected_counter.is_none_or(|c| stored.lease_counter == c.saturating_add(1))
                    && mine(&stored)
                {
                    return Ok(Ok(stored));
                }
                Ok(Err(()))
            }
        }
    }

    /// [`update`](Self::update) for the owner's own writes: refused means lease lost.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn owner_update(
        &self,
        operation: &'static str,
        lease_key: &str,
        owner: &str,
        expected_counter: u64,
        update: &str,
        mut values: Vec<(&'static str, AttributeValue)>,
        mine: impl Fn(&Lease) -> bool,
    ) -> Result<Lease, Error> {
        values.push((":owner", s(owner)));
        self.update(
            operation,
            lease_key,
            expected_counter,
            ACTUAL_OWNER,
            update,
            values,
            mine,
        )
        .await?
        .map_err(|()| Error::conflict(lease_key))
    }
}
