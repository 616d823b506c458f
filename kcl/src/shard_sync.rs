//! Shard discovery and lease creation (KCL `HierarchicalShardSyncer`, docs/kcl-behaviour.md
//! B.6), and the clean-up of finished parents' leases.
//!
//! Lease creation follows the shard lineage, parents before children:
//! * a shard that has a lease, or any of whose descendants has one, is covered
//!   (already processed, or being processed through its descendants);
//! * an uncovered shard gets a lease if it is open, if one of its parents has a
//!   lease, or if the initial position is not `LATEST` (so `TRIM_HORIZON` and
//!   `AT_TIMESTAMP` read the retained history, closed shards included);
//! * its checkpoint is `TRIM_HORIZON` when a parent's lease already existed
//!   (children of shards being processed are read from their start), else the
//!   initial position (`TRIM_HORIZON` for a `LATEST` app's descendants).
//!
//! Every lease records its parents, so a child is processed only once its
//! parents' leases reach `SHARD_END` (or are deleted).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kinesis_proto::client::Client;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::{Shard, StreamRef};

use crate::config::InitialPositionInStream;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;
use crate::lease_store::LeaseStore;

/// Every shard of the stream, closed ones included, through all ListShards pages
/// ([`Client::list_all_shards`] with this crate's error).
pub async fn list_all_shards(client: &Client, stream: &StreamRef) -> Result<Vec<Shard>, Error> {
    client
        .list_all_shards(stream)
        .await
        .map_err(|e| Error::kinesis("ListShards", e))
}

/// The parent ids a shard names.
pub(crate) fn parents_of(shard: &Shard) -> impl Iterator<Item = &str> {
    shard
        .parent_shard_id
        .as_deref()
        .into_iter()
        .chain(shard.adjacent_parent_shard_id.as_deref())
}

/// The leases to create for `shards`, given the leases that exist.
pub fn new_leases(
    shards: &[Shard],
    existing: &[Lease],
    initial: &InitialPositionInStream,
) -> Vec<Lease> {
    let by_id: BTreeMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id.as_str(), s)).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in shards {
        for p in parents_of(s) {
            children.entry(p).or_default().push(s.shard_id.as_str());
        }
    }
    let leased: HashSet<&str> = existing.iter().map(|l| l.lease_key.as_str()).collect();

    // Covered: leased, or some descendant is (memoised, iterative to bound the depth).
    let mut covered: BTreeMap<&str, bool> = BTreeMap::new();
    for id in topological_order(&by_id).into_iter().rev() {
        let c = leased.contains(id)
            || children
                .get(id)
                .is_some_and(|cs| cs.iter().any(|c| covered.get(c).copied().unwrap_or(false)));
        covered.insert(id, c);
    }

    let mut created: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for id in topological_order(&by_id) {
        if covered.get(id).copied().unwrap_or(false) {
            continue;
        }
        let shard = by_id[id];
        let parent_leased = parents_of(shard).any(|p| leased.contains(p));
        let parent_created = parents_of(shard).any(|p| created.contains(p));
        let open = shard.sequence_number_range.ending_sequence_number.is_none();
        let wanted = open
            || parent_leased
            || parent_created
            || !matches!(initial, InitialPositionInStream::Latest);
        if !wanted {
            continue;
        }
        let checkpoint = if parent_leased {
            ExtendedSequenceNumber::TrimHorizon
        } else if parent_created {
            match initial {
                InitialPositionInStream::AtTimestamp(_) => ExtendedSequenceNumber::AtTimestamp,
                _ => ExtendedSequenceNumber::TrimHorizon,
            }
        } else {
            initial.checkpoint()
        };
        let mut lease = Lease::new(id, checkpoint).with_parent_shard_ids(parents_of(shard));
        if let Some(range) = HashRange::from_wire(&shard.hash_key_range) {
            lease = lease.with_hash_key_range(range);
        }
        created.insert(id);
        out.push(lease);
    }
    out
}

/// Shard ids with every listed parent before its children.
fn topological_order<'a>(by_id: &BTreeMap<&'a str, &'a Shard>) -> Vec<&'a str> {
    let mut order = Vec::with_capacity(by_id.len());
    let mut done: HashSet<&str> = HashSet::new();
    for &root in by_id.keys() {
        // Explicit stack: (shard, parents pushed yet?).
        let mut stack = vec![(root, false)];
        while let Some((id, expanded)) = stack.pop() {
            if done.contains(id) {
                continue;
            }
            if expanded {
                done.insert(id);
                order.push(id);
                continue;
            }
            stack.push((id, true));
            for p in parents_of(by_id[id]) {
                if let Some((&pid, _)) = by_id.get_key_value(p)
                    && !done.contains(pid)
                {
                    stack.push((pid, false));
                }
            }
        }
    }
    order
}

/// Finished leases whose children have all started, so nobody needs them any more.
pub fn completed_leases_to_delete(leases: &[Lease], shards: &[Shard]) -> Vec<String> {
    let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.lease_key.as_str(), l)).collect();
    let mut listed_children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in shards {
        for p in parents_of(s) {
            listed_children
                .entry(p)
                .or_default()
                .insert(s.shard_id.as_str());
        }
    }
    leases
        .iter()
        .filter(|l| l.checkpoint.is_shard_end())
        .filter(|l| {
            let mut children: BTreeSet<&str> =
                l.child_shard_ids.iter().map(String::as_str).collect();
            if let Some(listed) = listed_children.get(l.lease_key.as_str()) {
                children.extend(listed);
            }
            !children.is_empty()
                && children.iter().all(|c| {
                    by_key.get(c).is_some_and(|child| {
                        !child.checkpoint.is_sentinel() || child.checkpoint.is_shard_end()
                    })
                })
        })
        .map(|l| l.lease_key.clone())
        .collect()
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Leases created.
    pub created: Vec<String>,
    /// Finished leases deleted.
    pub deleted: Vec<String>,
}

/// List the shards, create the missing leases, and (if `cleanup`) delete finished ones.
pub async fn sync_shards(
    client: &Client,
    stream: &StreamRef,
    store: &dyn LeaseStore,
    initial: &InitialPositionInStream,
    cleanup: bool,
) -> Result<SyncOutcome, Error> {
    let shards = list_all_shards(client, stream).await?;
    let existing = store.list().await?;
    let mut outcome = SyncOutcome::default();
    for lease in new_leases(&shards, &existing, initial) {
        if store.create_if_absent(&lease).await? {
            outcome.created.push(lease.lease_key);
        }
    }
    if cleanup {
        for key in completed_leases_to_delete(&existing, &shards) {
            if store.delete(&key).await? {
                outcome.deleted.push(key);
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_proto::model::{HashKeyRange, SequenceNumberRange};

    fn shard(id: u32, parents: &[u32], open: bool) -> Shard {
        let name = |i: u32| format!("shardId-{i:012}");
        Shard {
            shard_id: name(id),
            parent_shard_id: parents.first().map(|&p| name(p)),
            adjacent_parent_shard_id: parents.get(1).map(|&p| name(p)),
            hash_key_range: HashKeyRange {
                starting_hash_key: "0".into(),
                ending_hash_key: "100".into(),
            },
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: "1".into(),
                ending_sequence_number: (!open).then(|| "2".into()),
            },
        }
    }

    fn lease(id: u32, checkpoint: ExtendedSequenceNumber) -> Lease {
        Lease::new(format!("shardId-{id:012}"), checkpoint)
    }

    fn keys(leases: &[Lease]) -> Vec<String> {
        leases
            .iter()
            .map(|l| format!("{}={}", &l.lease_key[8..], l.checkpoint))
            .collect()
    }

    /// 0 split into 1 and 2; 1 and 2 merged into 3; 4 is an unrelated open shard.
    fn history() -> Vec<Shard> {
        vec![
            shard(3, &[1, 2], true),
            shard(0, &[], false),
            shard(1, &[0], false),
            shard(2, &[0], false),
            shard(4, &[], true),
        ]
    }

    #[test]
    fn fresh_latest_app_leases_only_open_shards() {
        let l = new_leases(&history(), &[], &InitialPositionInStream::Latest);
        assert_eq!(keys(&l), ["000000000003=LATEST", "000000000004=LATEST"]);
        assert_eq!(
            l[0].parent_shard_ids.len(),
            2,
            "parents are recorded even without leases"
        );
        assert_eq!(l[0].hash_key_range, Some(HashRange::new(0, 100)));
    }

    #[test]
    fn fresh_trim_horizon_app_leases_the_whole_lineage_parents_first() {
        let l = new_leases(&history(), &[], &InitialPositionInStream::TrimHorizon);
        assert_eq!(
            keys(&l),
            [
                "000000000000=TRIM_HORIZON",
                "000000000001=TRIM_HORIZON",
                "000000000002=TRIM_HORIZON",
                "000000000003=TRIM_HORIZON",
                "000000000004=TRIM_HORIZON",
            ]
        );
    }

    #[test]
    fn at_timestamp_descendants_of_new_leases_keep_the_timestamp() {
        let l = new_leases(
            &history(),
            &[],
            &InitialPositionInStream::AtTimestamp(kinesis_proto::codec::Timestamp::from_millis(1)),
        );
        assert!(
            l.iter()
                .all(|l| l.checkpoint == ExtendedSequenceNumber::AtTimestamp)
        );
    }

    #[test]
    fn children_of_a_processed_shard_start_at_trim_horizon() {
        // A LATEST app was reading 0 when it split.
        let shards = vec![
            shard(0, &[], false),
            shard(1, &[0], true),
            shard(2, &[0], true),
        ];
        let existing = [lease(0, ExtendedSequenceNumber::Latest)];
        let l = new_leases(&shards, &existing, &InitialPositionInStream::Latest);
        assert_eq!(
            keys(&l),
            ["000000000001=TRIM_HORIZON", "000000000002=TRIM_HORIZON"]
        );
        assert!(l[0].parent_shard_ids.contains("shardId-000000000000"));
    }

    #[test]
    fn a_closed_child_of_a_processed_shard_is_not_skipped() {
        // 0 split into 1 and 2, then 1 split again into 5 and 6 before the sync ran.
        let shards = vec![
            shard(0, &[], false),
            shard(1, &[0], false),
            shard(2, &[0], true),
            shard(5, &[1], true),
            shard(6, &[1], true),
        ];
        let existing = [lease(0, ExtendedSequenceNumber::ShardEnd)];
        let l = new_leases(&shards, &existing, &InitialPositionInStream::Latest);
        assert_eq!(
            keys(&l),
            [
                "000000000001=TRIM_HORIZON",
                "000000000002=TRIM_HORIZON",
                "000000000005=TRIM_HORIZON",
                "000000000006=TRIM_HORIZON",
            ]
        );
    }

    #[test]
    fn a_merge_childs_other_parent_is_leased_before_the_child() {
        // 0 split into 2 and 3 while 0 was still being read; then 3 merged with 1 into 4.
        let shards = vec![
            shard(0, &[], false),
            shard(1, &[], false),
            shard(2, &[0], true),
            shard(3, &[0], false),
            shard(4, &[1, 3], true),
        ];
        let existing = [
            lease(0, ExtendedSequenceNumber::TrimHorizon),
            lease(1, ExtendedSequenceNumber::ShardEnd),
        ];
        let l = new_leases(&shards, &existing, &InitialPositionInStream::Latest);
        // Created in this order, so a reader of 4 always finds 3's lease and waits for it.
        assert_eq!(
            keys(&l),
            [
                "000000000002=TRIM_HORIZON",
                "000000000003=TRIM_HORIZON",
                "000000000004=TRIM_HORIZON",
            ]
        );
    }

    #[test]
    fn shards_whose_descendants_have_leases_are_covered() {
        // 0's lease was cleaned up after 1 and 2 started.
        let shards = vec![
            shard(0, &[], false),
            shard(1, &[0], true),
            shard(2, &[0], true),
        ];
        let existing = [
            lease(1, ExtendedSequenceNumber::parse("5", 0).expect("valid")),
            lease(2, ExtendedSequenceNumber::TrimHorizon),
        ];
        assert!(new_leases(&shards, &existing, &InitialPositionInStream::TrimHorizon).is_empty());
    }

    #[test]
    fn finished_parents_are_deleted_once_all_children_started() {
        let shards = vec![
            shard(0, &[], false),
            shard(1, &[0], true),
            shard(2, &[0], true),
        ];
        let started = ExtendedSequenceNumber::parse("5", 0).expect("valid");
        let parent = lease(0, ExtendedSequenceNumber::ShardEnd);
        let one_started = [
            parent.clone(),
            lease(1, started.clone()),
            lease(2, ExtendedSequenceNumber::TrimHorizon),
        ];
        assert!(completed_leases_to_delete(&one_started, &shards).is_empty());
        let both = [
            parent.clone(),
            lease(1, started.clone()),
            lease(2, ExtendedSequenceNumber::ShardEnd),
        ];
        assert_eq!(
            completed_leases_to_delete(&both, &shards),
            ["shardId-000000000000"]
        );
        // A finished lease whose children are unknown stays.
        assert!(completed_leases_to_delete(&[parent], &[]).is_empty());
        // An unfinished lease stays whatever its children do.
        let running = [lease(0, started.clone()), lease(1, started)];
        assert!(completed_leases_to_delete(&running, &shards).is_empty());
    }
}
