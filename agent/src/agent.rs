//! Wires the flows together: one producer, tracker, sender, completion task and tailer per
//! flow; a checkpoint writer; a graceful stop that sends what was read and checkpoints it.

use crate::checkpoint::Checkpoint;
use crate::config::AgentConfig;
use crate::file_tracker::FileTracker;
use crate::metrics::Metrics;
use crate::sender::{Sender, complete, kpl_config};
use crate::tailer::{Tailer, flow_key};
use kinesis_kpl::Producer;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Least time between two checkpoint writes; a write follows acknowledged records by at most
/// this much (plus the write itself), which bounds what a SIGKILL makes the restart resend
/// beyond the records in flight.
pub const CHECKPOINT_MIN_GAP: Duration = Duration::from_millis(10);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The checkpoint file could not be read.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] std::io::Error),
    /// A flow's producer settings were refused.
    #[error("producer: {0}")]
    Producer(#[from] kinesis_kpl::Error),
}

struct Flow {
    key: String,
    tracker: Arc<Mutex<FileTracker>>,
}

fn snapshot(flows: &[Flow]) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for f in flows {
        let t = f.tracker.lock();
        // A flow that has not looked at its files yet has nothing to say; saving it empty
        // would make a restart treat every existing file as new.
        if t.started() {
            cp.flows.insert(f.key.clone(), t.saved());
        }
    }
    cp
}

/// Writes the checkpoint; logs a failure once per distinct error, not every interval.
async fn store(cp: Checkpoint, path: std::path::PathBuf, last_error: &mut Option<String>) {
    let r = tokio::task::spawn_blocking(move || cp.store(&path)).await;
    match r {
        Ok(Err(e)) => {
            let msg = e.to_string();
            if last_error.as_ref() != Some(&msg) {
                tracing::error!(error = %msg, "cannot write the checkpoint");
                *last_error = Some(msg);
            }
        }
        _ => *last_error = None,
    }
}

/// Runs every flow of `config` until `stop` turns true, then sends what was read, writes the
/// last checkpoint and returns.
pub async fn run(
    config: AgentConfig,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> Result<(), StartError> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let saved = Checkpoint::load(&config.checkpoint_file)?.unwrap_or_default();
    let had_checkpoint = config.checkpoint_file.exists();
    let mut flows = Vec::new();
    let mut producers = Vec::new();
    let mut tailers = Vec::new();
    let mut completions = Vec::new();
    // Signalled by the completion tasks when offsets move, to write the checkpoint promptly.
    let committed = Arc::new(tokio::sync::Notify::new());
    for (i, fc) in config.flows.iter().enumerate() {
        let key = flow_key(fc);
        let tracker = match saved.flows.get(&key) {
            Some(files) if had_checkpoint => {
                FileTracker::restore(fc.initial_position, files.clone())
            }
            _ => FileTracker::new(fc.initial_position),
        };
        let tracker = Arc::new(Mutex::new(tracker));
        let producer = Arc::new(Producer::new(kpl_config(&config, fc))?);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32)
            ^ i as u64;
        let (sender, rx) = Sender::new(
            producer.clone(),
            &fc.kinesis_stream,
            fc.partition_key_option,
            seed,
        );
        completions.push(tokio::spawn(complete(
            rx,
            producer.clone(),
            tracker.clone(),
            metrics.clone(),
            key.clone(),
            committed.clone(),
        )));
        let tailer = Tailer::new(fc.clone(), tracker.clone(), sender, metrics.clone());
        tailers.push(tokio::spawn(tailer.run(stop.clone())));
        producers.push(producer);
        flows.push(Flow { key, tracker });
    }
    let flows = Arc::new(flows);
    let writer = {
        let flows = flows.clone();
        let path = config.checkpoint_file.clone();
        let mut stop = stop.clone();
        let committed = committed.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut last_error = None;
            while !*stop.borrow() {
                let cp = snapshot(&flows);
                if last.as_ref() != Some(&cp) {
                    store(cp.clone(), path.clone(), &mut last_error).await;
                    if last_error.is_none() {
                        last = Some(cp);
                    }
                }
                tokio::time::sleep(CHECKPOINT_MIN_GAP).await;
                tokio::select! {
                    _ = committed.notified() => {}
                    // Files come and go without records being acknowledged.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    };
    let mut stop_wait = stop.clone();
    while !*stop_wait.borrow() {
        if stop_wait.changed().await.is_err() {
            break;
        }
    }
    let aborts: Vec<_> = tailers
        .iter()
        .chain(&completions)
        .map(|t| t.abort_handle())
        .collect();
    let drain = async {
        for t in tailers {
            let _ = t.await;
        }
        for p in &producers {
            let _ = p.flush().await;
        }
        for c in completions {
            let _ = c.await;
        }
    };
    let drained = tokio::time::timeout(config.shutdown_timeout, drain)
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            timeout = ?config.shutdown_timeout,
            "records still in flight at shutdownTimeoutMillis; they are sent again after a restart"
        );
        for a in aborts {
            a.abort();
        }
    }
    let _ = writer.await;
    store(snapshot(&flows), config.checkpoint_file.clone(), &mut None).await;
    if drained {
        for p in producers {
            if let Ok(p) = Arc::try_unwrap(p) {
                p.shutdown().await;
            }
        }
    }
    Ok(())
}
