//! One held lease's processing (KCL `ShardConsumer`, docs/kcl-behaviour.md §2):
//! `WAITING_ON_PARENT_SHARDS → INITIALIZING → PROCESSING → SHUTTING_DOWN`.
//!
//! The consumer first waits until every parent's lease is at `SHARD_END` (a
//! missing parent lease does not block), so no record of a child shard is
//! processed before all records of its parents. It then initialises the
//! processor, feeds it prefetched batches, and ends with exactly one of
//! `lease_lost`, `shard_ended` or `shutdown_requested` (+ release or hand-off +
//! `lease_lost`). A batch being processed is always finished first.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use kinesis_proto::client::Client;
use kinesis_proto::model::{ChildShard, StreamRef};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::checkpoint::CheckpointTracker;
use crate::checkpointer::RecordProcessorCheckpointer;
use crate::config::{Config, Retrieval};
use crate::data_fetcher::{DataFetcher, Fetched};
use crate::error::Error;
use crate::fan_out::FanOutReader;
use crate::lease::Lease;
use crate::lease_coordinator::LeaseCoordinator;
use crate::lease_store::LeaseStore;
use crate::metrics::Metrics;
use crate::prefetch::Prefetcher;
use crate::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor, ShardRecordProcessorFactory,
};
use crate::shard_sync::{list_all_shards, new_leases, parents_of};

/// What the scheduler wants a consumer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Keep processing.
    Run,
    /// The lease is gone: stop without checkpointing.
    LeaseLost,
    /// Graceful shutdown: final checkpoint, then release the lease.
    Shutdown,
    /// Graceful hand-off (docs/kcl3-coordination.md): final checkpoint, then pass
    /// the lease on to its next owner.
    Handoff,
}

/// How a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The lease was lost (or never usable).
    LeaseLost,
    /// The shard was finished: `SHARD_END` is checkpointed (now or earlier).
    ShardEnded,
    /// Shut down on request; the lease was released.
    ShutDown,
}

/// What every consumer of a worker shares.
pub(crate) struct ConsumerContext {
    pub client: Client,
    pub stream: StreamRef,
    pub config: Arc<Config>,
    pub coordinator: Arc<LeaseCoordinator>,
    pub metrics: Metrics,
    /// The registered fan-out consumer's ARN, when reading with enhanced fan-out.
    pub consumer_arn: Option<String>,
    /// The stream's leases keyed by shard id: the whole table for a single stream, a
    /// [`StreamScopedStore`](crate::lease_store::StreamScopedStore) for one of many.
    pub leases: Arc<dyn LeaseStore>,
    /// What the stream's lease keys start with before the shard id (empty for a single stream).
    pub key_prefix: String,
}

/// Run the lease `lease_key` to one of its ends.
pub(crate) async fn run<F: ShardRecordProcessorFactory>(
    ctx: Arc<ConsumerContext>,
    factory: Arc<F>,
    lease_key: String,
    mut control: watch::Receiver<Control>,
) -> Exit {
    let Some(lease) = ctx.coordinator.held_lease(&lease_key) else {
        return Exit::LeaseLost;
    };
    let shard_id = lease_key
        .strip_prefix(&ctx.key_prefix)
        .unwrap_or(&lease_key)
        .to_string();

    // WAITING_ON_PARENT_SHARDS
    loop {
        match current(&control) {
            Control::Run => {}
            Control::LeaseLost => return Exit::LeaseLost,
            // Nothing was processed, so there is nothing to checkpoint: just release.
            Control::Shutdown => return release(&ctx, &lease_key).await,
            Control::Handoff => return hand_off(&ctx, &lease_key).await,
        }
        match parents_done(&ctx, &lease).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(shard = %lease_key, error = %e, "cannot read the parents' leases")
            }
        }
        wait(&mut control, ctx.config.parent_shard_poll_interval).await;
    }

    if lease.checkpoint.is_shard_end() {
        // Finished by an earlier owner; its children are already leased.
        return Exit::ShardEnded;
    }

    // INITIALIZING
    let mut processor = factory.shard_record_processor(&lease_key);
    processor
        .initialize(InitializationInput {
            shard_id: shard_id.clone(),
            extended_sequence_number: lease.checkpoint.clone(),
            pending_checkpoint_sequence_number: lease.pending_checkpoint.clone(),
            pending_checkpoint_state: lease.pending_checkpoint_state.clone(),
        })
        .await;
    let tracker = Arc::new(Mutex::new(CheckpointTracker::from_lease(&lease)));
    let checkpointer = RecordProcessorCheckpointer::new(
        &lease_key,
        Arc::clone(&tracker),
        Arc::clone(&ctx.coordinator),
    );
    let polling = &ctx.config.polling;
    let mut prefetcher = match (&ctx.consumer_arn, &ctx.config.retrieval) {
        (Some(consumer_arn), Retrieval::FanOut { consumer_name }) => Prefetcher::start_fan_out(
            FanOutReader {
                client: ctx.client.clone(),
                stream: ctx.stream.clone(),
                consumer_name: consumer_name.clone(),
                consumer_arn: consumer_arn.clone(),
                shard_id: shard_id.clone(),
                shard_range: lease.hash_key_range,
                polling: polling.clone(),
                start: lease.checkpoint.clone(),
                timestamp: ctx.config.initial_position_in_stream.timestamp(),
                metrics: Some(ctx.metrics.clone()),
            },
            polling.max_pending_process_records_input,
        ),
        _ => Prefetcher::start(
            DataFetcher::new(
                ctx.client.clone(),
                ctx.stream.clone(),
                &shard_id,
                lease.hash_key_range,
                polling.clone(),
                lease.checkpoint.clone(),
                ctx.config.initial_position_in_stream.timestamp(),
                Some(ctx.metrics.clone()),
            ),
            format!(
                "{}|{:?}|{}",
                ctx.client.config().effective_endpoint(),
                ctx.stream,
                lease_key
            ),
            polling.idle_time_between_reads,
            polling.max_pending_process_records_input,
            polling.retry_backoff_cap,
        ),
    };

    // PROCESSING
    loop {
        let page = tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    // The scheduler is gone: nobody renews the lease any more.
                    processor.lease_lost().await;
                    return Exit::LeaseLost;
                }
                None
            }
            page = prefetcher.next() => page,
        };
        let lost = ctx.coordinator.held_lease(&lease_key).is_none();
        match current(&control) {
            Control::LeaseLost => {
                processor.lease_lost().await;
                return Exit::LeaseLost;
            }
            _ if lost => {
                processor.lease_lost().await;
                return Exit::LeaseLost;
            }
            Control::Shutdown => {
                drop(prefetcher);
                processor.shutdown_requested(&checkpointer).await;
                let exit = release(&ctx, &lease_key).await;
                processor.lease_lost().await;
                return exit;
            }
            Control::Handoff => {
                // The next owner starts right after the checkpoint made here.
                drop(prefetcher);
                processor.shutdown_requested(&checkpointer).await;
                let exit = hand_off(&ctx, &lease_key).await;
                processor.lease_lost().await;
                return exit;
            }
            Control::Run => {}
        }
        let Some(page) = page else {
            // Only a control change wakes us without a page; the prefetcher never
            // ends before delivering the shard's end.
            continue;
        };
        let at_end = page.at_shard_end;
        let children = page.child_shards.clone();
        deliver(
            &ctx,
            &lease_key,
            &mut processor,
            &tracker,
            &checkpointer,
            page,
        )
        .await;
        if at_end {
            drop(prefetcher);
            return shard_end(
                &ctx,
                &lease,
                &shard_id,
                &mut processor,
                &tracker,
                &checkpointer,
                children,
                &mut control,
            )
            .await;
        }
    }
}

fn current(control: &watch::Receiver<Control>) -> Control {
    *control.borrow()
}

/// Sleep `interval` or until the scheduler changes its instruction.
async fn wait(control: &mut watch::Receiver<Control>, interval: std::time::Duration) {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        changed = control.changed() => {
            if changed.is_err() {
                // Sender gone: avoid spinning; the caller re-checks the lease.
                tokio::time::sleep(interval).await;
            }
        }
    }
}

async fn parents_done(ctx: &ConsumerContext, lease: &Lease) -> Result<bool, Error> {
    for parent in &lease.parent_shard_ids {
        if let Some(p) = ctx.leases.get(parent).await?
            && !p.checkpoint.is_shard_end()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn release(ctx: &ConsumerContext, lease_key: &str) -> Exit {
    if let Err(e) = ctx.coordinator.release(lease_key).await {
        tracing::warn!(shard = %lease_key, error = %e, "releasing the lease failed; it will expire");
    }
    Exit::ShutDown
}

async fn hand_off(ctx: &ConsumerContext, lease_key: &str) -> Exit {
    // A failure leaves the lease to the hand-off timeout.
    let _ = ctx.coordinator.complete_handoff(lease_key).await;
    Exit::ShutDown
}

async fn deliver<P: ShardRecordProcessor>(
    ctx: &ConsumerContext,
    shard: &str,
    processor: &mut P,
    tracker: &Mutex<CheckpointTracker>,
    checkpointer: &RecordProcessorCheckpointer,
    page: Fetched,
) {
    if page.records.is_empty()
        && page.rejected.is_empty()
        && !ctx.config.call_process_records_even_for_empty_record_list
    {
        return;
    }
    let last_delivered = page.records.last().map(|r| r.extended_sequence_number());
    let last_rejected = page.rejected.last().map(|r| r.extended_sequence_number());
    if let Some(last) = last_delivered.max(last_rejected) {
        tracker.lock().set_largest_permitted(last);
    }
    if let Some(first) = page.rejected.first() {
        // One line per batch: a single aggregate can hold 100,000 rejected records.
        tracing::error!(
            shard = %shard,
            count = page.rejected.len(),
            sequence_number = %first.sequence_number.as_str(),
            sub_sequence_number = first.sub_sequence_number,
            reason = %first.reason,
            "user records cannot be delivered; reporting them to the processor"
        );
    }
    let bytes: usize = page.records.iter().map(|r| r.data.len()).sum();
    ctx.coordinator
        .record_delivery(shard, u64::try_from(bytes).unwrap_or(u64::MAX));
    let count = page.records.len();
    let input = ProcessRecordsInput {
        records: page.records,
        rejected_records: page.rejected,
        millis_behind_latest: page.millis_behind_latest,
        is_at_shard_end: page.at_shard_end,
        child_shards: page.child_shards,
        cache_entry_time: page.fetched_at,
        cache_exit_time: Instant::now(),
    };
    let started = Instant::now();
    processor.process_records(input, checkpointer).await;
    let m = &ctx.metrics;
    m.process_records_time
        .with_label_values(&[shard])
        .observe(started.elapsed().as_secs_f64());
    m.records_processed
        .with_label_values(&[shard])
        .inc_by(count as u64);
    m.data_bytes_processed
        .with_label_values(&[shard])
        .inc_by(bytes as u64);
}

/// The shard is read to its end: lease the children, then `shard_ended` until it
/// checkpoints `SHARD_END` (KCL `ShutdownTask`, which also retries).
#[allow(clippy::too_many_arguments)]
async fn shard_end<P: ShardRecordProcessor>(
    ctx: &ConsumerContext,
    lease: &Lease,
    shard_id: &str,
    processor: &mut P,
    tracker: &Mutex<CheckpointTracker>,
    checkpointer: &RecordProcessorCheckpointer,
    children: Vec<ChildShard>,
    control: &mut watch::Receiver<Control>,
) -> Exit {
    let key = lease.lease_key.as_str();
    let children = match create_child_leases(ctx, shard_id, children).await {
        Ok(ids) => ids,
        Err(e) => {
            // The periodic shard sync creates them instead.
            tracing::warn!(shard = %key, error = %e, "cannot create the child shards' leases");
            Vec::new()
        }
    };
    if !children.is_empty()
        && let Err(e) = ctx.coordinator.set_child_shards(key, &children).await
    {
        if e.is_lease_conflict() {
            processor.lease_lost().await;
            return Exit::LeaseLost;
        }
        tracing::warn!(shard = %key, error = %e, "cannot record the child shards");
    }
    tracker.lock().mark_shard_ended();
    loop {
        processor.shard_ended(checkpointer).await;
        if tracker.lock().last_checkpoint().is_shard_end() {
            return Exit::ShardEnded;
        }
        if ctx.coordinator.held_lease(key).is_none() {
            return Exit::LeaseLost;
        }
        tracing::error!(
            shard = %key,
            "the record processor did not checkpoint at shard end; its children cannot start \
             (call checkpointer.checkpoint() in shard_ended)"
        );
        wait(control, ctx.config.parent_shard_poll_interval).await;
        match current(control) {
            Control::Run => {}
            Control::LeaseLost => return Exit::LeaseLost,
            Control::Shutdown => return release(ctx, key).await,
            Control::Handoff => return hand_off(ctx, key).await,
        }
    }
}

/// Lease the children (and any other missing shard of the lineage) so they can
/// start without waiting for the next shard sync; returns the children's ids.
///
/// The leases come from a full shard sync rather than from the page's
/// `ChildShards` alone: a merge child's other parent may not have a lease yet
/// (its own parent is still being read), and a child whose parent has no lease
/// would not wait for it. The sync creates parents before children.
async fn create_child_leases(
    ctx: &ConsumerContext,
    parent: &str,
    children: Vec<ChildShard>,
) -> Result<Vec<String>, Error> {
    let shards = list_all_shards(&ctx.client, &ctx.stream).await?;
    let store = &ctx.leases;
    let existing = store.list().await?;
    for lease in new_leases(&shards, &existing, &ctx.config.initial_position_in_stream) {
        store.create_if_absent(&lease).await?;
    }
    let mut ids: BTreeSet<String> = children.into_iter().map(|c| c.shard_id).collect();
    ids.extend(
        shards
            .iter()
            .filter(|s| parents_of(s).any(|p| p == parent))
            .map(|s| s.shard_id.clone()),
    );
    Ok(ids.into_iter().collect())
}
