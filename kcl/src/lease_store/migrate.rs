//! Copying an application's leases from one lease table to another (SQLite to
//! DynamoDB and back, or a Java KCL table to kcl), keeping every checkpoint.

use super::LeaseStore;
use crate::error::Error;

/// What [`copy_leases`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Lease keys written to the target.
    pub copied: Vec<String>,
    /// Lease keys the target already had, left as they were.
    pub already_present: Vec<String>,
}

/// Copy every lease of `from` into `to` with its checkpoints, lineage and hash range,
/// its owner cleared so that the workers of the new table take the leases afresh.
///
/// Leases the target already has are left untouched and listed in the report: a copy
/// never moves a checkpoint backwards. Stop every worker of both tables first, or a
/// checkpoint written during the copy may be missed.
pub async fn copy_leases(
    from: &dyn LeaseStore,
    to: &dyn LeaseStore,
) -> Result<MigrationReport, Error> {
    let mut report = MigrationReport::default();
    for mut lease in from.list().await? {
        lease.lease_owner = None;
        if to.create_if_absent(&lease).await? {
            report.copied.push(lease.lease_key);
        } else {
            report.already_present.push(lease.lease_key);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended_sequence::ExtendedSequenceNumber;
    use crate::lease::Lease;
    use crate::lease_store::InMemoryLeaseStore;

    #[tokio::test]
    async fn copies_checkpoints_clears_owners_and_keeps_existing_leases() {
        let from = InMemoryLeaseStore::new();
        let to = InMemoryLeaseStore::new();
        let seq =
            ExtendedSequenceNumber::parse("4960087168295703644236502492619107343", 2).expect("seq");
        let mut owned = Lease::new("shardId-000000000001", seq);
        owned.lease_owner = Some("w1".into());
        owned.lease_counter = 7;
        assert!(from.create_if_absent(&owned).await.expect("create"));
        let ended = Lease::new("shardId-000000000000", ExtendedSequenceNumber::ShardEnd);
        assert!(from.create_if_absent(&ended).await.expect("create"));
        let newer = Lease::new("shardId-000000000000", ExtendedSequenceNumber::Latest);
        assert!(to.create_if_absent(&newer).await.expect("create"));

        let report = copy_leases(&from, &to).await.expect("copy");
        assert_eq!(report.copied, vec!["shardId-000000000001".to_string()]);
        assert_eq!(
            report.already_present,
            vec!["shardId-000000000000".to_string()]
        );
        let copied = to
            .get("shardId-000000000001")
            .await
            .expect("get")
            .expect("copied");
        assert_eq!(copied.lease_owner, None);
        assert_eq!(copied.checkpoint, owned.checkpoint);
        assert_eq!(copied.lease_counter, 7);
        assert_eq!(
            to.get("shardId-000000000000").await.expect("get"),
            Some(newer)
        );
    }
}
