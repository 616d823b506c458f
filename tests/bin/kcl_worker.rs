//! A kcl worker process for the multi-process tests of tests/kcl.rs (three workers, a
//! SIGKILL, a restart): runs a [`Scheduler`] until SIGTERM, printing one line per processor
//! event to stdout for the test to check.
//!
//! Usage: `kcl-test-worker <endpoint> <stream> <application> <lease table> <worker id>`, the
//! lease table as [`lease_tables::open_store`] reads it. Built by `cargo test` only (it needs
//! kcl's `dynamodb` feature, which the root package enables for its tests).

#[path = "../common/lease_tables.rs"]
mod lease_tables;

use std::io::Write;
use std::time::Duration;

use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::client::{Client, ClientConfig};
use lease_tables::open_store;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, stream, app, db, worker] = &args[..] else {
        panic!(
            "usage: kcl-test-worker <endpoint> <stream> <application> <lease table> <worker id>; got {args:?}"
        );
    };
    let (endpoint, stream, app, db, worker) = (
        endpoint.as_str(),
        stream.as_str(),
        app.as_str(),
        db.as_str(),
        worker.as_str(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = open_store(db, app).await;
        let config = Config::builder(stream, app)
            .worker_identifier(worker)
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .failover_time(Duration::from_millis(1_500))
            .lease_taker_interval(Duration::from_millis(500))
            // The leader may be the worker killed: another leads 3 s later.
            .leader_lock(Duration::from_secs(3), Duration::from_millis(500))
            .worker_metrics_reporter_interval(Duration::from_secs(1))
            .parent_shard_poll_interval(Duration::from_millis(200))
            .shard_consumer_dispatch_poll_interval(Duration::from_millis(100))
            .idle_time_between_reads(Duration::from_millis(200))
            .build()
            .expect("config");
        let scheduler = Scheduler::new(
            config,
            Client::new(ClientConfig::builder().endpoint(endpoint).build()).expect("client"),
            store,
            |shard: &str| LinePrinter {
                shard: shard.to_string(),
            },
        )
        .expect("scheduler");
        let handle = scheduler.shutdown_handle();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::spawn(async move {
            term.recv().await;
            handle.request();
        });
        scheduler.run().await.expect("scheduler run");
    });
    std::process::exit(0);
}

/// Write whole lines to stdout at once, so a SIGKILL cuts at most the line being written.
fn print_lines(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The worker processes' processor: `I`nit, `R`ecord, `C`heckpoint, `L`ost, `E`nd, `S`hutdown lines.
struct LinePrinter {
    shard: String,
}

impl LinePrinter {
    async fn checkpoint(&self, cp: &RecordProcessorCheckpointer) {
        if cp.checkpoint().await.is_ok() {
            let c = cp.last_checkpoint();
            print_lines(&format!(
                "C {} {} {}\n",
                self.shard,
                c.checkpoint_str(),
                c.sub_sequence_number()
            ));
        }
    }
}

impl ShardRecordProcessor for LinePrinter {
    async fn initialize(&mut self, input: InitializationInput) {
        let c = input.extended_sequence_number;
        print_lines(&format!(
            "I {} {} {}\n",
            self.shard,
            c.checkpoint_str(),
            c.sub_sequence_number()
        ));
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        let mut text = String::new();
        for r in &input.records {
            text.push_str(&format!(
                "R {} {} {} {}\n",
                self.shard,
                r.sequence_number,
                r.sub_sequence_number,
                String::from_utf8_lossy(&r.data)
            ));
        }
        print_lines(&text);
        self.checkpoint(cp).await;
    }

    async fn lease_lost(&mut self) {
        print_lines(&format!("L {}\n", self.shard));
    }

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        print_lines(&format!("E {}\n", self.shard));
        self.checkpoint(cp).await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        print_lines(&format!("S {}\n", self.shard));
        self.checkpoint(cp).await;
    }
}
