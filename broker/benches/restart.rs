//! Durable restart time against the data stored: a data dir is filled with
//! `RESTART_GIB` GiB (default `1,4`) of 64 KiB records over 4 shards, then a
//! fresh process opens it (`Service::open`, what `--data-dir` does at start-up)
//! two ways, side by side in the same run:
//!
//! * with the sealed segments' index files (how a restart opens today), and
//! * with the index files deleted first, so every segment is read record by
//!   record (how every restart opened before index files; the baseline).
//!
//! Each open runs in its own process, with the page cache dropped first when
//! this user may (`/proc/sys/vm/drop_caches`; the report says whether it was).
//! Each figure is the median of three opens.
//!
//! Run with `cargo bench -p kinesis-broker --bench restart`
//! (`RESTART_GIB=1,4,16` for more sizes; the data goes under the target dir).

use bytes::Bytes;
use kinesis_broker::BrokerConfig;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::service::Service;
use kinesis_broker::store::commit::FsyncPolicy;
use kinesis_broker::store::durable::DurableConfig;
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RECORD_BYTES: usize = 64 * 1024;
const BATCH: usize = 64;
const SHARDS: i64 = 4;

fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .limits(LimitsConfig::uniform(LimitProfile::Off))
        .durable(DurableConfig::new(dir).fsync(FsyncPolicy::Interval(Duration::from_millis(100))))
        .build()
}

/// Child: write `gib` GiB into a fresh data dir.
fn fill(dir: &Path, gib: u64) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let svc = Service::open(config(dir)).expect("open");
        svc.create_stream(CreateStreamInput {
            stream_name: Some("restart".into()),
            shard_count: Some(SHARDS),
            ..Default::default()
        })
        .expect("create");
        let payload = Bytes::from(vec![b'r'; RECORD_BYTES]);
        let calls = (gib << 30) / (RECORD_BYTES * BATCH) as u64;
        for call in 0..calls {
            let out = svc
                .put_records(PutRecordsInput {
                    stream: StreamRef::name("restart"),
                    records: Some(
                        (0..BATCH)
                            .map(|i| PutRecordsRequestEntry {
                                data: Some(Blob(payload.clone())),
                                partition_key: Some(format!("{call}-{i}")),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                })
                .expect("put records");
            assert_eq!(out.failed_record_count, 0);
        }
    });
}

/// Child: open the data dir as a starting broker does; print the seconds taken.
fn open(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        let svc = Service::open(config(dir)).expect("open");
        let took = started.elapsed();
        drop(svc);
        println!("OPENED {}", took.as_secs_f64());
    });
}

fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn child(args: &[&str]) -> String {
    let out = Command::new(std::env::current_exe().expect("this bench"))
        .args(args)
        .output()
        .expect("child process");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn timed_open(dir: &Path) -> f64 {
    let out = child(&["--open", &dir.display().to_string()]);
    out.lines()
        .find_map(|l| l.strip_prefix("OPENED "))
        .and_then(|s| s.trim().parse().ok())
        .expect("the open's time")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--fill") {
        fill(Path::new(&args[i + 1]), args[i + 2].parse().expect("GiB"));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--open") {
        open(Path::new(&args[i + 1]));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<u64> = std::env::var("RESTART_GIB")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "## Durable restart: opening a data dir (4 shards, 64 KiB records, 64 MiB segments)\n"
    );
    println!(
        "| data | segments | open with index files (s) | open scanning every segment (s, the old way) | ratio |"
    );
    println!("|---|---|---|---|---|");
    let mut cold = true;
    for gib in sizes {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        child(&[
            "--fill",
            &dir.path().display().to_string(),
            &gib.to_string(),
        ]);
        let mut segments = Vec::new();
        files(dir.path(), "seg", &mut segments);
        // The first open after the fill settles the newest segments; time the next ones.
        timed_open(dir.path());
        let indexed = median(
            (0..3)
                .map(|_| {
                    cold &= drop_caches();
                    timed_open(dir.path())
                })
                .collect(),
        );
        let scanned = median(
            (0..3)
                .map(|_| {
                    let mut idx = Vec::new();
                    files(dir.path(), "idx", &mut idx);
                    for f in idx {
                        std::fs::remove_file(f).expect("remove index file");
                    }
                    cold &= drop_caches();
                    timed_open(dir.path())
                })
                .collect(),
        );
        println!(
            "| {gib} GiB | {} | {indexed:.3} | {scanned:.3} | {:.1}× |",
            segments.len(),
            scanned / indexed
        );
    }
    println!(
        "\nPage cache {} before each open.",
        if cold {
            "dropped"
        } else {
            "not dropped (no permission): opens read from memory"
        }
    );
}
