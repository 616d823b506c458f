//! Reading ahead of the processor (KCL `PrefetchRecordsPublisher`): a task per
//! shard calls GetRecords no more often than `idleTimeBetweenReadsInMillis`, nor
//! before the shard has recovered from what earlier calls read ([`crate::read_pace`]),
//! and queues up to `maxPendingProcessRecordsInput` pages, so a slow processor
//! stops the reads instead of piling pages up in memory.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::data_fetcher::{DataFetcher, Fetched};
use crate::fan_out::FanOutReader;
use crate::read_pace::ReadPace;

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
    /// Start reading with `fetcher`, at most one call per `idle`, `depth` pages ahead;
    /// `pace_key` names the shard among every reader of this process (endpoint, stream, shard).
    pub(crate) fn start(
        mut fetcher: DataFetcher,
        pace_key: String,
        idle: Duration,
        depth: usize,
        error_backoff: Duration,
    ) -> Self {
        let (tx, pages) = mpsc::channel(depth.max(1));
        let task = tokio::spawn(async move {
            let pace = ReadPace::global();
            let mut next_call: Option<Instant> = None;
            loop {
                if let Some(next) = next_call {
                    tokio::time::sleep_until(next).await;
                }
                let called = Instant::now();
                next_call = Some(called + idle);
                match fetcher.fetch().await {
                    Ok(page) => {
                        next_call = Some(Instant::from_std(pace.book(
                            &pace_key,
                            called.into_std(),
                            page.kinesis_bytes,
                            idle,
                        )));
                        let end = page.at_shard_end;
                        if end {
                            pace.forget(&pace_key);
                        }
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
