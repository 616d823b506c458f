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

/// How often the checkpoint is written when it changed.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

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
        cp.flows.insert(f.key.clone(), f.tracker.lock().saved());
    }
    cp
}

async fn store(cp: Checkpoint, path: std::path::PathBuf) {
    let r = tokio::task::spawn_blocking(move || cp.store(&path)).await;
    if let Ok(Err(e)) = r {
        tracing::error!(error = %e, "cannot write the checkpoint");
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
        tokio::spawn(async move {
            let mut last = None;
            while !*stop.borrow() {
                let cp = snapshot(&flows);
                if last.as_ref() != Some(&cp) {
                    store(cp.clone(), path.clone()).await;
                    last = Some(cp);
                }
                tokio::select! {
                    _ = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
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
    for t in tailers {
        let _ = t.await;
    }
    for p in &producers {
        let _ = p.flush().await;
    }
    for c in completions {
        let _ = c.await;
    }
    let _ = writer.await;
    store(snapshot(&flows), config.checkpoint_file.clone()).await;
    for p in producers {
        if let Ok(p) = Arc::try_unwrap(p) {
            p.shutdown().await;
        }
    }
    Ok(())
}
