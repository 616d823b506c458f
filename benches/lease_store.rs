//! Lease-table round trips a worker pays for: a renewal and a checkpoint, against the
//! SQLite store (baseline) and the DynamoDB store talking to dynalite on loopback
//! (installed under target/peers on first use, as the tests install it).
//!
//! ```sh
//! cargo bench --bench lease_store
//! ```
//!
//! Before criterion's own runs, one timed pass per store prints the mean and p99 of each
//! call and the DynamoDB/SQLite ratio, the figure to compare across machines.

#[path = "../tests/common/peers.rs"]
mod peers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kinesis_kcl::checkpoint::CheckpointUpdate;
use kinesis_kcl::extended_sequence::ExtendedSequenceNumber;
use kinesis_kcl::lease::Lease;
use kinesis_kcl::lease_store::{DynamoDbConfig, DynamoDbLeaseStore, LeaseStore, SqliteLeaseStore};
use tokio::runtime::Runtime;

const SEQ: &str = "49600871682957036442365024926191073437251060580128653314";

/// A store holding one lease owned by `w`, and that lease's counter.
async fn owned(store: &dyn LeaseStore) -> u64 {
    let key = "shardId-000000000000";
    store
        .create_if_absent(&Lease::new(key, ExtendedSequenceNumber::TrimHorizon))
        .await
        .expect("create");
    store.take(key, "w", 0).await.expect("take").lease_counter
}

/// One renewal or one checkpoint, whichever `checkpoint` says; the new counter.
async fn round_trip(store: &dyn LeaseStore, counter: u64, checkpoint: bool) -> u64 {
    let key = "shardId-000000000000";
    if checkpoint {
        let position = ExtendedSequenceNumber::parse(SEQ, counter).expect("seq");
        store
            .update_checkpoint(key, "w", counter, &CheckpointUpdate::Checkpoint(position))
            .await
            .expect("checkpoint")
            .lease_counter
    } else {
        store
            .renew(key, "w", counter)
            .await
            .expect("renew")
            .lease_counter
    }
}

/// Mean and p99 of `n` sequential calls.
async fn timed(
    store: &dyn LeaseStore,
    counter: &mut u64,
    checkpoint: bool,
    n: usize,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        *counter = round_trip(store, *counter, checkpoint).await;
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    (mean, samples[n * 99 / 100])
}

fn main() {
    let runtime = Runtime::new().expect("runtime");
    let dynalite = peers::Dynalite::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<(&str, Arc<dyn LeaseStore>)> = runtime.block_on(async {
        let sqlite = SqliteLeaseStore::open(dir.path().join("bench.sqlite"), "bench")
            .await
            .expect("sqlite");
        let dynamodb = DynamoDbLeaseStore::open(
            DynamoDbConfig::builder("bench")
                .endpoint(&dynalite.endpoint)
                .build(),
        )
        .await
        .expect("dynamodb");
        vec![
            ("sqlite", Arc::new(sqlite) as Arc<dyn LeaseStore>),
            (
                "dynamodb (dynalite)",
                Arc::new(dynamodb) as Arc<dyn LeaseStore>,
            ),
        ]
    });
    let mut counters: Vec<u64> = stores
        .iter()
        .map(|(_, s)| runtime.block_on(owned(s.as_ref())))
        .collect();

    let mut means = Vec::new();
    for ((name, store), counter) in stores.iter().zip(counters.iter_mut()) {
        let (renew_mean, renew_p99) = runtime.block_on(timed(store.as_ref(), counter, false, 500));
        let (cp_mean, cp_p99) = runtime.block_on(timed(store.as_ref(), counter, true, 500));
        println!(
            "{name}: renew mean {renew_mean:.2?} p99 {renew_p99:.2?}; checkpoint mean {cp_mean:.2?} p99 {cp_p99:.2?}"
        );
        means.push((renew_mean, cp_mean));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "dynamodb/sqlite: renew {:.1}x, checkpoint {:.1}x",
        ratio(means[1].0, means[0].0),
        ratio(means[1].1, means[0].1)
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("lease_store");
    for ((name, store), counter) in stores.iter().zip(counters.iter_mut()) {
        for (what, checkpoint) in [("renew", false), ("checkpoint", true)] {
            group.bench_function(format!("{name}/{what}"), |b| {
                b.iter(|| {
                    *counter = runtime.block_on(round_trip(store.as_ref(), *counter, checkpoint))
                })
            });
        }
    }
    group.finish();
    c.final_summary();
}
