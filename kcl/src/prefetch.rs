//! Reading ahead of the processor (KCL `PrefetchRecordsPublisher`): a task per
//! shard calls GetRecords no more often than `idleTimeBetweenReadsInMillis` and
//! queues up to `maxPendingProcessRecordsInput` pages, so a slow processor
//! stops the reads instead of piling pages up in memory.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::data_fetcher::{DataFetcher, Fetched};
use crate::fan_out::FanOutReader;

/// The queue of fetched pages; dropping it stops the reading task.
pub(crate) struct Prefetcher {
    pages: mpsc::Receiver<Fetched>,
    task: JoinHandle<()>,
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Prefetcher {
    /// Start reading with `fetcher`, at most one call per `idle`, `depth` pages ahead.
    pub(crate) fn start(
        mut fetcher: DataFetcher,
        idle: Duration,
        depth: usize,
        error_backoff: Duration,
    ) -> Self {
        let (tx, pages) = mpsc::channel(depth.max(1));
        let task = tokio::spawn(async move {
            let mut last_call: Option<Instant> = None;
            loop {
                if let Some(last) = last_call {
                    tokio::time::sleep_until(last + idle).await;
                }
                last_call = Some(Instant::now());
                match fetcher.fetch().await {
                    Ok(page) => {
                        let end = page.at_shard_end;
                        if tx.send(page).await.is_err() || end {
                            return;
                        }
                    }
                    Err(e) => {
                        // Not fixable by retrying soon (e.g. access denied); keep
                        // the lease and try again slowly, as KCL's consumer does.
                        tracing::error!(shard = %fetcher.shard_id(), error = %e, "reading the shard failed");
                        fetcher.reset_iterator();
                        tokio::time::sleep(error_backoff).await;
                    }
                }
            }
        });
        Prefetcher { pages, task }
    }

    /// Read with enhanced fan-out: `reader` pushes each event's page, `depth` ahead.
    pub(crate) fn start_fan_out(reader: FanOutReader, depth: usize) -> Self {
        let (tx, pages) = mpsc::channel(depth.max(1));
        let task = tokio::spawn(reader.run(tx));
        Prefetcher { pages, task }
    }

    /// The next page; `None` once the shard end was delivered.
    pub(crate) async fn next(&mut self) -> Option<Fetched> {
        self.pages.recv().await
    }
}
