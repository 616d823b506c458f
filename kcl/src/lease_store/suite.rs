//! One behavioural suite for every [`LeaseStore`], instantiated per implementation:
//! here for the in-memory and SQLite stores, in the workspace's tests for DynamoDB
//! (feature `test-suite` exposes it). [`lease_store_suite!`](crate::lease_store_suite)
//! turns it into one test per behaviour.

use std::collections::BTreeSet;
use std::sync::Arc;

use kinesis_proto::hash_key::HashRange;
use tokio::sync::Barrier;

use super::LeaseStore;
#[cfg(test)]
use super::{InMemoryLeaseStore, SqliteLeaseStore};
use crate::checkpoint::CheckpointUpdate;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease::Lease;

const SEQ: &str = "49600871682957036442365024926191073437251060580128653314";
const SEQ2: &str = "49600871682957036442365024926191073437251060580128653399";

fn pos(s: &str, sub: u64) -> ExtendedSequenceNumber {
    ExtendedSequenceNumber::parse(s, sub).expect("valid test sequence number")
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::LeaseConflict { .. }))
}

/// A lease with every optional field filled, to check nothing is lost in storage.
fn full_lease() -> Lease {
    let mut l = Lease::new("shardId-000000000007", pos(SEQ, 3))
        .with_parent_shard_ids(["shardId-000000000001", "shardId-000000000002"])
        .with_hash_key_range(HashRange::new(1 << 100, u128::MAX));
    l.lease_owner = Some("worker-a".into());
    l.checkpoint_owner = Some("worker-b".into());
    l.throughput_kbps = Some(12.345678);
    l.multi_stream = Some(crate::lease::MultiStreamIds {
        stream_identifier: "123456789012:orders:1700000000".into(),
        shard_id: "shardId-000000000007".into(),
    });
    l.lease_counter = 41;
    l.pending_checkpoint = Some(pos(SEQ2, 9));
    l.pending_checkpoint_state = Some(vec![0, 1, 2, 255]);
    l.owner_switches_since_checkpoint = 5;
    l.child_shard_ids = set(&["shardId-000000000009"]);
    l
}

/// Create an owned lease at counter 1 for the write tests.
async fn owned<S: LeaseStore>(store: &S, key: &str, owner: &str) -> Lease {
    assert!(
        store
            .create_if_absent(&Lease::new(key, ExtendedSequenceNumber::TrimHorizon))
            .await
            .expect("create")
    );
    store.take(key, owner, 0).await.expect("take")
}

/// One behaviour of the suite.
pub async fn create_get_list<S: LeaseStore>(store: &S) {
    let full = full_lease();
    assert!(store.create_if_absent(&full).await.expect("create"));
    assert_eq!(
        store.get(&full.lease_key).await.expect("get"),
        Some(full.clone())
    );

    let mut again = Lease::new(full.lease_key.clone(), ExtendedSequenceNumber::Latest);
    again.lease_counter = 99;
    assert!(
        !store.create_if_absent(&again).await.expect("create"),
        "existing lease kept"
    );
    assert_eq!(
        store.get(&full.lease_key).await.expect("get"),
        Some(full.clone())
    );

    let plain = Lease::new("shardId-000000000000", ExtendedSequenceNumber::AtTimestamp);
    assert!(store.create_if_absent(&plain).await.expect("create"));
    assert_eq!(store.get("shardId-404").await.expect("get"), None);
    let keys: Vec<_> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.lease_key)
        .collect();
    assert_eq!(keys, ["shardId-000000000000", "shardId-000000000007"]);
    assert_eq!(store.get(&plain.lease_key).await.expect("get"), Some(plain));
}

/// One behaviour of the suite.
pub async fn renew_is_fenced<S: LeaseStore>(store: &S) {
    let l = owned(store, "s", "w1").await;
    assert_eq!(l.lease_counter, 1);
    let r = store.renew("s", "w1", 1).await.expect("renew");
    assert_eq!((r.lease_counter, r.lease_owner.as_deref()), (2, Some("w1")));
    assert!(
        is_conflict(&store.renew("s", "w1", 1).await),
        "stale counter"
    );
    assert!(is_conflict(&store.renew("s", "w2", 2).await), "wrong owner");
    assert!(
        is_conflict(&store.renew("missing", "w1", 0).await),
        "absent lease"
    );

    // Stolen: the old owner's next renewal with its counter fails.
    store.take("s", "w2", 2).await.expect("steal");
    assert!(is_conflict(&store.renew("s", "w1", 2).await));
    assert_eq!(
        store.get("s").await.expect("get").map(|l| l.lease_counter),
        Some(3)
    );

    store
        .create_if_absent(&Lease::new("unowned", ExtendedSequenceNumber::Latest))
        .await
        .expect("create");
    assert!(
        is_conflict(&store.renew("unowned", "w1", 0).await),
        "nobody owns it"
    );
}

/// One behaviour of the suite.
pub async fn take_counts_owner_switches<S: LeaseStore>(store: &S) {
    store
        .create_if_absent(&Lease::new("s", ExtendedSequenceNumber::Latest))
        .await
        .expect("create");
    let t = store.take("s", "w1", 0).await.expect("take unowned");
    assert_eq!(
        (
            t.lease_owner.as_deref(),
            t.lease_counter,
            t.owner_switches_since_checkpoint
        ),
        (Some("w1"), 1, 0)
    );
    let t = store.take("s", "w1", 1).await.expect("retake own");
    assert_eq!((t.lease_counter, t.owner_switches_since_checkpoint), (2, 0));
    let t = store.take("s", "w2", 2).await.expect("steal");
    assert_eq!(
        (
            t.lease_owner.as_deref(),
            t.lease_counter,
            t.owner_switches_since_checkpoint
        ),
        (Some("w2"), 3, 1)
    );
    assert!(
        is_conflict(&store.take("s", "w3", 2).await),
        "stale counter"
    );
    assert!(is_conflict(&store.take("missing", "w3", 0).await));
    assert_eq!(store.get("s").await.expect("get"), Some(t));
}

/// One behaviour of the suite.
pub async fn evict_releases_ownership<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    assert!(is_conflict(&store.evict("s", "w2", 1).await), "wrong owner");
    assert!(
        is_conflict(&store.evict("s", "w1", 0).await),
        "stale counter"
    );
    let e = store.evict("s", "w1", 1).await.expect("evict");
    assert_eq!((e.lease_owner, e.lease_counter), (None, 2));
    let t = store.take("s", "w2", 2).await.expect("take released");
    assert_eq!(
        t.owner_switches_since_checkpoint, 0,
        "taking an unowned lease is no switch"
    );
}

/// One behaviour of the suite.
pub async fn checkpoints_are_fenced_and_reset_switches<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    let stolen = store.take("s", "w2", 1).await.expect("steal");
    assert_eq!(stolen.owner_switches_since_checkpoint, 1);

    let prepare = CheckpointUpdate::Prepare {
        pending: pos(SEQ2, 4),
        state: Some(b"app-state".to_vec()),
    };
    assert!(
        is_conflict(&store.update_checkpoint("s", "w1", 2, &prepare).await),
        "not the owner"
    );
    assert!(
        is_conflict(&store.update_checkpoint("s", "w2", 1, &prepare).await),
        "stale counter"
    );
    let p = store
        .update_checkpoint("s", "w2", 2, &prepare)
        .await
        .expect("prepare");
    assert_eq!(p.lease_counter, 3);
    assert_eq!(p.checkpoint, ExtendedSequenceNumber::TrimHorizon);
    assert_eq!(p.pending_checkpoint, Some(pos(SEQ2, 4)));
    assert_eq!(
        p.pending_checkpoint_state.as_deref(),
        Some(&b"app-state"[..])
    );
    assert_eq!(p.owner_switches_since_checkpoint, 1);

    let c = store
        .update_checkpoint("s", "w2", 3, &CheckpointUpdate::Checkpoint(pos(SEQ2, 4)))
        .await
        .expect("checkpoint");
    assert_eq!(c.lease_counter, 4);
    assert_eq!(c.checkpoint, pos(SEQ2, 4));
    assert_eq!(
        (c.pending_checkpoint, c.pending_checkpoint_state),
        (None, None)
    );
    assert_eq!(c.owner_switches_since_checkpoint, 0);

    let end = store
        .update_checkpoint(
            "s",
            "w2",
            4,
            &CheckpointUpdate::Checkpoint(ExtendedSequenceNumber::ShardEnd),
        )
        .await
        .expect("shard end");
    assert_eq!(store.get("s").await.expect("get"), Some(end.clone()));
    assert_eq!(end.checkpoint, ExtendedSequenceNumber::ShardEnd);
}

/// One behaviour of the suite.
pub async fn child_shards_are_fenced<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    let children = vec![
        "shardId-000000000003".to_string(),
        "shardId-000000000002".to_string(),
    ];
    assert!(is_conflict(
        &store.set_child_shards("s", "w2", 1, &children).await
    ));
    assert!(is_conflict(
        &store.set_child_shards("s", "w1", 0, &children).await
    ));
    let l = store
        .set_child_shards("s", "w1", 1, &children)
        .await
        .expect("set children");
    assert_eq!(
        l.child_shard_ids,
        set(&["shardId-000000000002", "shardId-000000000003"])
    );
    assert_eq!(l.lease_counter, 2);
    assert_eq!(store.get("s").await.expect("get"), Some(l));
}

/// One behaviour of the suite.
pub async fn delete_is_unconditional<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    assert!(store.delete("s").await.expect("delete"));
    assert!(!store.delete("s").await.expect("delete again"));
    assert_eq!(store.get("s").await.expect("get"), None);
    assert!(is_conflict(&store.renew("s", "w1", 1).await));
    assert!(store.list().await.expect("list").is_empty());
}

/// `stores[i % len]` races as worker `i`; exactly one take of counter 0 may win.
/// One behaviour of the suite.
pub async fn racing_takers_have_one_winner<S: LeaseStore + 'static>(
    stores: Vec<Arc<S>>,
    racers: usize,
) {
    let first = Arc::clone(&stores[0]);
    assert!(
        first
            .create_if_absent(&Lease::new(
                "contested",
                ExtendedSequenceNumber::TrimHorizon
            ))
            .await
            .expect("create")
    );
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let me = format!("worker-{i}");
                barrier.wait().await;
                store.take("contested", &me, 0).await.map(|l| (me, l))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(won) => winners.push(won),
            Err(e) => assert!(e.is_lease_conflict(), "losers see a conflict, got {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let (me, lease) = &winners[0];
    assert_eq!(lease.lease_counter, 1);
    assert_eq!(
        first.get("contested").await.expect("get"),
        Some(lease.clone())
    );
    assert!(lease.is_owned_by(me));
}

/// The suite through `Arc<dyn LeaseStore>`, as a scheduler choosing its store at run time holds it.
pub async fn handoff_passes_the_lease_after_the_owners_checkpoint<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    let h = store
        .initiate_handoff("s", "w1", "w2")
        .await
        .expect("initiate");
    assert_eq!(
        (
            h.lease_owner.as_deref(),
            h.checkpoint_owner.as_deref(),
            h.lease_counter
        ),
        (Some("w2"), Some("w1"), 1),
        "marked, counter untouched"
    );
    assert!(
        is_conflict(&store.initiate_handoff("s", "w2", "w3").await),
        "one hand-off at a time"
    );
    assert!(
        is_conflict(&store.initiate_handoff("s", "w1", "w3").await),
        "w1 is no longer the lease owner"
    );

    // The handing-off owner keeps renewing and checkpointing; the next owner cannot yet.
    let r = store.renew("s", "w1", 1).await.expect("old owner renews");
    assert_eq!(r.checkpoint_owner.as_deref(), Some("w1"));
    assert!(is_conflict(&store.renew("s", "w2", 2).await));
    assert!(is_conflict(
        &store
            .update_checkpoint("s", "w2", 2, &CheckpointUpdate::Checkpoint(pos(SEQ, 0)))
            .await
    ));
    let c = store
        .update_checkpoint("s", "w1", 2, &CheckpointUpdate::Checkpoint(pos(SEQ, 4)))
        .await
        .expect("final checkpoint");
    assert_eq!(c.lease_counter, 3);
    assert!(
        is_conflict(&store.complete_handoff("s", "w2", 3).await),
        "only the checkpoint owner passes it on"
    );
    assert!(
        is_conflict(&store.complete_handoff("s", "w1", 2).await),
        "stale counter"
    );
    let done = store.complete_handoff("s", "w1", 3).await.expect("pass on");
    assert_eq!(
        (
            done.lease_owner.as_deref(),
            done.checkpoint_owner.as_deref(),
            done.lease_counter,
            done.checkpoint.clone()
        ),
        (Some("w2"), None, 4, pos(SEQ, 4))
    );
    assert!(
        is_conflict(&store.renew("s", "w1", 4).await),
        "the old owner is out"
    );
    let r = store.renew("s", "w2", 4).await.expect("new owner renews");
    assert_eq!(r.lease_counter, 5);
    assert_eq!(store.get("s").await.expect("get"), Some(r));
    assert!(is_conflict(
        &store.initiate_handoff("missing", "w1", "w2").await
    ));
}

/// One behaviour of the suite.
pub async fn a_take_or_release_ends_a_handoff<S: LeaseStore>(store: &S) {
    // The timeout's fallback: the next owner takes the lease, fencing the old one out.
    owned(store, "t", "w1").await;
    store
        .initiate_handoff("t", "w1", "w2")
        .await
        .expect("initiate");
    let t = store.take("t", "w2", 1).await.expect("take");
    assert_eq!(
        (
            t.lease_owner.as_deref(),
            t.checkpoint_owner.as_deref(),
            t.lease_counter
        ),
        (Some("w2"), None, 2)
    );
    assert!(is_conflict(&store.renew("t", "w1", 1).await));
    assert!(is_conflict(&store.complete_handoff("t", "w1", 2).await));

    // Releasing during a hand-off leaves the lease to the worker it was handed to.
    owned(store, "r", "w1").await;
    store
        .initiate_handoff("r", "w1", "w2")
        .await
        .expect("initiate");
    let e = store.evict("r", "w1", 1).await.expect("release");
    assert_eq!(
        (
            e.lease_owner.as_deref(),
            e.checkpoint_owner.as_deref(),
            e.lease_counter
        ),
        (Some("w2"), None, 2)
    );
    // Without a hand-off, a release leaves it unowned.
    let e = store.evict("r", "w2", 2).await.expect("release");
    assert_eq!((e.lease_owner, e.checkpoint_owner), (None, None));

    // A next owner shutting down declines: the lease is back with its owner, unfenced.
    owned(store, "d", "w1").await;
    store
        .initiate_handoff("d", "w1", "w2")
        .await
        .expect("initiate");
    assert!(
        is_conflict(&store.decline_handoff("d", "w3").await),
        "not w3's"
    );
    let d = store.decline_handoff("d", "w2").await.expect("decline");
    assert_eq!(
        (
            d.lease_owner.as_deref(),
            d.checkpoint_owner.as_deref(),
            d.lease_counter
        ),
        (Some("w1"), None, 1)
    );
    assert!(
        is_conflict(&store.decline_handoff("d", "w1").await),
        "no hand-off pending"
    );
    store.renew("d", "w1", 1).await.expect("the owner goes on");
}

/// One behaviour of the suite.
pub async fn renewals_report_throughput<S: LeaseStore>(store: &S) {
    owned(store, "s", "w1").await;
    let r = store
        .renew_with_throughput("s", "w1", 1, 2.5)
        .await
        .expect("renew");
    assert_eq!((r.lease_counter, r.throughput_kbps), (2, Some(2.5)));
    assert!(
        is_conflict(&store.renew_with_throughput("s", "w2", 2, 1.0).await),
        "fenced like a renewal"
    );
    let r = store.renew("s", "w1", 2).await.expect("plain renew");
    assert_eq!(r.throughput_kbps, Some(2.5), "kept by a plain renewal");
    let r = store
        .renew_with_throughput("s", "w1", 3, 1_048_576.000001)
        .await
        .expect("renew");
    assert_eq!(r.throughput_kbps, Some(1_048_576.000001));
    assert_eq!(
        store
            .get("s")
            .await
            .expect("get")
            .and_then(|l| l.throughput_kbps),
        Some(1_048_576.000001)
    );
}

/// One behaviour of the suite.
pub async fn works_as_trait_object(store: Arc<dyn LeaseStore>) {
    let l = owned(&store, "s", "w1").await;
    let r = store
        .renew(&l.lease_key, "w1", l.lease_counter)
        .await
        .expect("renew");
    assert_eq!(r.lease_counter, 2);
}

/// One behaviour of the suite: the leader lock's writes are conditional on the version
/// last read, and only one of two racing contenders wins.
pub async fn leader_lock_is_conditional<S: LeaseStore>(store: &S) {
    use crate::leader_lock::{LEADER_KEY, LockItem};
    let coordinator = store
        .coordinator_store()
        .expect("the store keeps the coordinator-state table");
    let lock = |owner: &str, version: &str| LockItem {
        owner_name: owner.into(),
        lease_duration_ms: 120_000,
        record_version_number: version.into(),
        released: false,
    };
    assert_eq!(coordinator.get_lock(LEADER_KEY).await.expect("get"), None);
    let (a, b) = (lock("a", "v-a1"), lock("b", "v-b1"));
    let (won_a, won_b) = tokio::join!(
        coordinator.put_lock(LEADER_KEY, &a, None),
        coordinator.put_lock(LEADER_KEY, &b, None)
    );
    let (won_a, won_b) = (won_a.expect("put a"), won_b.expect("put b"));
    assert!(won_a ^ won_b, "exactly one contender wins: {won_a} {won_b}");
    let (winner, loser) = if won_a { (a, b) } else { (b, a) };
    assert_eq!(
        coordinator.get_lock(LEADER_KEY).await.expect("get"),
        Some(winner.clone())
    );
    // A heartbeat needs the current version; a stale one is refused.
    let beat = lock(&winner.owner_name, "v-2");
    assert!(
        !coordinator
            .put_lock(LEADER_KEY, &beat, Some(&loser.record_version_number))
            .await
            .expect("stale heartbeat")
    );
    assert!(
        coordinator
            .put_lock(LEADER_KEY, &beat, Some(&winner.record_version_number))
            .await
            .expect("heartbeat")
    );
    assert!(
        !coordinator
            .delete_lock(LEADER_KEY, &winner.record_version_number)
            .await
            .expect("stale delete")
    );
    let released = LockItem {
        released: true,
        ..lock(&winner.owner_name, "v-3")
    };
    assert!(
        coordinator
            .put_lock(LEADER_KEY, &released, Some("v-2"))
            .await
            .expect("release")
    );
    assert_eq!(
        coordinator.get_lock(LEADER_KEY).await.expect("get"),
        Some(released)
    );
    assert!(
        coordinator
            .delete_lock(LEADER_KEY, "v-3")
            .await
            .expect("delete")
    );
    assert_eq!(coordinator.get_lock(LEADER_KEY).await.expect("get"), None);
}

/// One behaviour of the suite: worker metrics items are written, replaced and listed.
pub async fn worker_metrics_are_kept_per_worker<S: LeaseStore>(store: &S) {
    use crate::worker_metrics::WorkerMetricStats;
    let coordinator = store
        .coordinator_store()
        .expect("the store keeps the worker-metrics table");
    assert!(
        coordinator
            .list_worker_metrics()
            .await
            .expect("list")
            .is_empty()
    );
    let mut a = WorkerMetricStats::throughput_only("worker-a", 1_700_000_000);
    a.metric_stats.insert("C".into(), vec![12.5, 40.0]);
    a.operating_range.insert("C".into(), vec![100]);
    let b = WorkerMetricStats::throughput_only("worker-b", 1_700_000_001);
    coordinator.put_worker_metrics(&a).await.expect("put a");
    coordinator.put_worker_metrics(&b).await.expect("put b");
    a.last_update_time = 1_700_000_030;
    coordinator.put_worker_metrics(&a).await.expect("replace a");
    let mut listed = coordinator.list_worker_metrics().await.expect("list");
    listed.sort_by(|x, y| x.worker_id.cmp(&y.worker_id));
    assert_eq!(listed, vec![a, b]);
}

/// One `#[tokio::test]` per behaviour of the suite, in a module `$name`, each on a fresh
/// store made by `$make` (an expression, `.await` allowed, giving `(store, guard)`).
#[macro_export]
macro_rules! lease_store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn create_get_list() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::create_get_list(&store).await;
            }

            #[tokio::test]
            async fn renew_is_fenced() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::renew_is_fenced(&store).await;
            }

            #[tokio::test]
            async fn take_counts_owner_switches() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::take_counts_owner_switches(&store).await;
            }

            #[tokio::test]
            async fn evict_releases_ownership() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::evict_releases_ownership(&store).await;
            }

            #[tokio::test]
            async fn checkpoints_are_fenced_and_reset_switches() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::checkpoints_are_fenced_and_reset_switches(&store).await;
            }

            #[tokio::test]
            async fn child_shards_are_fenced() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::child_shards_are_fenced(&store).await;
            }

            #[tokio::test]
            async fn delete_is_unconditional() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::delete_is_unconditional(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_takers_have_one_winner() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::racing_takers_have_one_winner(
                    vec![std::sync::Arc::new(store)],
                    16,
                )
                .await;
            }

            #[tokio::test]
            async fn handoff_passes_the_lease_after_the_owners_checkpoint() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::handoff_passes_the_lease_after_the_owners_checkpoint(
                    &store,
                )
                .await;
            }

            #[tokio::test]
            async fn a_take_or_release_ends_a_handoff() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::a_take_or_release_ends_a_handoff(&store).await;
            }

            #[tokio::test]
            async fn renewals_report_throughput() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::renewals_report_throughput(&store).await;
            }

            #[tokio::test]
            async fn leader_lock_is_conditional() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::leader_lock_is_conditional(&store).await;
            }

            #[tokio::test]
            async fn worker_metrics_are_kept_per_worker() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::worker_metrics_are_kept_per_worker(&store).await;
            }

            #[tokio::test]
            async fn works_as_trait_object() {
                let (store, _keep) = $make;
                $crate::lease_store::suite::works_as_trait_object(std::sync::Arc::new(store)).await;
            }
        }
    };
}

#[cfg(test)]
fn scoped_store() -> (super::StreamScopedStore, InMemoryLeaseStore) {
    let table = InMemoryLeaseStore::new();
    let stream =
        crate::stream_identifier::StreamIdentifier::parse("123456789012:orders:1700000000")
            .expect("valid");
    (
        super::StreamScopedStore::new(Arc::new(table.clone()), stream),
        table,
    )
}

#[cfg(test)]
#[tokio::test]
async fn a_stream_scoped_view_writes_multi_stream_keys_and_attributes() {
    let (scoped, table) = scoped_store();
    let other = super::StreamScopedStore::new(
        Arc::new(table.clone()),
        crate::stream_identifier::StreamIdentifier::parse("123456789012:other:1").expect("valid"),
    );
    let lease = Lease::new("shardId-000000000001", ExtendedSequenceNumber::TrimHorizon)
        .with_parent_shard_ids(["shardId-000000000000"]);
    assert!(scoped.create_if_absent(&lease).await.expect("create"));
    assert!(other.create_if_absent(&lease).await.expect("create"));
    let stored = table.list().await.expect("list");
    assert_eq!(
        stored
            .iter()
            .map(|l| l.lease_key.as_str())
            .collect::<Vec<_>>(),
        [
            "123456789012:orders:1700000000:shardId-000000000001",
            "123456789012:other:1:shardId-000000000001"
        ]
    );
    assert_eq!(
        stored[0].multi_stream,
        Some(crate::lease::MultiStreamIds {
            stream_identifier: "123456789012:orders:1700000000".into(),
            shard_id: "shardId-000000000001".into(),
        })
    );
    assert_eq!(
        stored[0].parent_shard_ids,
        set(&["shardId-000000000000"]),
        "parents stay shard ids"
    );
    assert_eq!(scoped.list().await.expect("list").len(), 1);
    // Writes through the view reach the prefixed lease and come back keyed by shard id.
    let taken = scoped
        .take("shardId-000000000001", "w1", 0)
        .await
        .expect("take");
    assert_eq!(taken.lease_key, "shardId-000000000001");
    scoped
        .initiate_handoff("shardId-000000000001", "w1", "w2")
        .await
        .expect("initiate");
    let passed = scoped
        .complete_handoff("shardId-000000000001", "w1", 1)
        .await
        .expect("pass on");
    assert_eq!(passed.lease_owner.as_deref(), Some("w2"));
    assert_eq!(
        table
            .get("123456789012:orders:1700000000:shardId-000000000001")
            .await
            .expect("get")
            .and_then(|l| l.lease_owner),
        Some("w2".to_string())
    );
    let deleted = super::delete_stream_leases(&table, other.stream())
        .await
        .expect("delete");
    assert_eq!(deleted, ["123456789012:other:1:shardId-000000000001"]);
    assert_eq!(table.list().await.expect("list").len(), 1);
}

#[cfg(test)]
async fn sqlite_store() -> (SqliteLeaseStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteLeaseStore::open(dir.path().join("leases.db"), "suite-app")
        .await
        .expect("open");
    (store, dir)
}

crate::lease_store_suite!(in_memory, (InMemoryLeaseStore::new(), ()));
crate::lease_store_suite!(sqlite, sqlite_store().await);

/// Separate connections to one file, as separate worker processes would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_separate_connections_race_with_one_winner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(
            SqliteLeaseStore::open(&path, "shared-app")
                .await
                .expect("open"),
        ));
    }
    racing_takers_have_one_winner(stores, 16).await;
}

#[tokio::test]
async fn sqlite_separate_connections_fence_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let a = SqliteLeaseStore::open(&path, "app").await.expect("open a");
    let b = SqliteLeaseStore::open(&path, "app").await.expect("open b");
    let mine = owned(&a, "s", "wa").await;
    let stolen = b
        .take("s", "wb", mine.lease_counter)
        .await
        .expect("b steals");
    assert!(is_conflict(&a.renew("s", "wa", mine.lease_counter).await));
    assert_eq!(a.get("s").await.expect("get"), Some(stolen));

    // Another application's table in the same file is independent.
    let other = SqliteLeaseStore::open(&path, "other-app")
        .await
        .expect("open other");
    assert!(other.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leases.db");
    let full = full_lease();
    {
        let s = SqliteLeaseStore::open(&path, "app").await.expect("open");
        assert!(s.create_if_absent(&full).await.expect("create"));
    }
    let s = SqliteLeaseStore::open(&path, "app").await.expect("reopen");
    assert_eq!(s.list().await.expect("list"), vec![full]);
}

#[tokio::test]
async fn in_memory_clones_share_one_table() {
    let a = InMemoryLeaseStore::new();
    let b = a.clone();
    owned(&a, "s", "w").await;
    assert_eq!(b.list().await.expect("list").len(), 1);
}
