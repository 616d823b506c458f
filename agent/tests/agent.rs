//! The agent against the broker over a socket: rotation, SIGKILL and restart, every data
//! processing option, back-pressure, and configuration errors.
//!
//! Nothing here asserts on timing: waits are bounded polls of the stream or the metrics.

mod common;

use common::{AgentProcess, broker, create_stream, free_addr, rss_bytes, scrape, wait_for};
use kinesis_broker::fault::FaultPlan;
use kinesis_broker::limiter::LimitProfile;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn write_config(path: &Path, json: serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(&json).expect("json")).expect("write config");
}

/// The line numbered `n`: its number first, ~100 bytes in all.
fn line(n: u64) -> String {
    format!("{n:08} {}\n", "x".repeat(80 + (n % 17) as usize))
}

fn number_of(record: &[u8]) -> u64 {
    std::str::from_utf8(&record[..8])
        .expect("utf-8 number")
        .parse()
        .expect("numbered line")
}

/// Waits (bounded) until a metric of the agent reaches `at_least`.
async fn wait_metric(addr: &str, name: &str, at_least: f64) -> f64 {
    let mut last = 0.0;
    for _ in 0..1200 {
        if let Some(v) = scrape(addr, name).await {
            last = v;
            if v >= at_least {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} stayed at {last}, below {at_least}");
}

const LINES: u64 = 200_000;

/// The number of the first line a restart will resend: in the checkpoint's earliest file not
/// read to its end, the line at the saved offset. Files are found as the agent finds them: by
/// inode while the first bytes still match, else by those first bytes (the copy of a
/// copy-truncate).
fn resend_start(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let cp = kinesis_agent::checkpoint::Checkpoint::load(&dir.join("checkpoints"))
        .expect("checkpoint readable")
        .expect("checkpoint written");
    let mut saved: Vec<_> = cp.flows.into_values().flatten().collect();
    saved.sort_by_key(|s| s.seq);
    let files: Vec<(u64, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
        .map(|e| {
            let ino = std::fs::metadata(e.path()).expect("stat").ino();
            (ino, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    for s in saved {
        let same = |c: &Vec<u8>| s.fingerprint.matches(c) && c.len() as u64 >= s.offset;
        let content = files
            .iter()
            .find(|(ino, c)| *ino == s.id.ino && same(c))
            .or_else(|| files.iter().find(|(ino, c)| *ino != s.id.ino && same(c)))
            .map(|(_, c)| c);
        if let Some(c) = content
            && (s.offset as usize) < c.len()
        {
            return number_of(&c[s.offset as usize..]);
        }
    }
    LINES + 1
}

/// The issue's main test: 200,000 lines written at full speed while the file is rotated by
/// rename three times and copy-truncated once; the agent SIGKILLed twice (once just after the
/// copy-truncate, staying down through two renames; once while catching up) and restarted.
/// Every line arrives, in file order; duplicates are only lines resent after a kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_arrives_across_rotation_and_kills() {
    let broker = broker(LimitProfile::Off).await;
    let ep = broker.endpoint();
    create_stream(&ep, "logs", 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    std::fs::write(&log, line(0)).expect("first line");
    let config = dir.path().join("agent.json");
    write_config(
        &config,
        serde_json::json!({
            "checkpointFile": dir.path().join("checkpoints"),
            "kinesis.endpoint": ep,
            "cloudwatch.emitMetrics": false,
            "flows": [{
                "filePattern": format!("{}/app.log*", dir.path().display()),
                "kinesisStream": "logs",
                "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000
            }]
        }),
    );
    let agent_log = dir.path().join("agent.stderr");
    let metrics = free_addr();
    let agent = AgentProcess::start(&config, &metrics, &agent_log);
    // The agent is tailing once line 0 is in the stream.
    let first = wait_for(&ep, "logs", Duration::from_secs(30), |r| !r.is_empty()).await;
    assert_eq!(
        first.len(),
        1,
        "agent log: {}",
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );

    let writer_dir = dir.path().to_path_buf();
    // The writer pauses twice: at line 60,000 until the agent is reading the file that the
    // copy-truncate will hit (so it follows that rotation live), and right after the
    // copy-truncate until the agent has been killed (so the next two renames happen while it
    // is down).
    let (paused_tx, paused_rx) = std::sync::mpsc::channel::<u64>();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let log = writer_dir.join("app.log");
        let open = || {
            std::io::BufWriter::with_capacity(
                64 * 1024,
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&log)
                    .expect("open log"),
            )
        };
        let mut out = open();
        for n in 1..=LINES {
            match n {
                40_001 | 120_001 | 160_001 => {
                    out.flush().expect("flush");
                    let k = n / 40_000;
                    std::fs::rename(&log, writer_dir.join(format!("app.log.{k}"))).expect("rename");
                    out = open();
                }
                80_001 => {
                    out.flush().expect("flush");
                    std::fs::copy(&log, writer_dir.join("app.log.2")).expect("copy");
                    out.get_ref().set_len(0).expect("truncate");
                    paused_tx.send(n).expect("signal");
                    resume_rx.recv().expect("resume");
                }
                60_001 => {
                    out.flush().expect("flush");
                    paused_tx.send(n).expect("signal");
                    resume_rx.recv().expect("resume");
                }
                _ => {}
            }
            out.write_all(line(n).as_bytes()).expect("write");
        }
        out.flush().expect("flush");
    });

    // Kill the agent just after the copy-truncate and restart it once the writer is done
    // (two more renames meanwhile); kill it again while it catches up and restart it at once.
    // Note the first line each restart resends (the checkpoint it finds).
    let mut resend_from = Vec::new();
    let paused_rx = Arc::new(std::sync::Mutex::new(paused_rx));
    let paused_at = |rx: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<u64>>>| async move {
        tokio::task::spawn_blocking(move || rx.lock().expect("lock").recv())
            .await
            .expect("join")
            .expect("writer paused")
    };
    assert_eq!(paused_at(paused_rx.clone()).await, 60_001);
    wait_metric(&metrics, "kinesis_agent_records_sent_total", 45_000.0).await;
    resume_tx.send(()).expect("resume writer");
    assert_eq!(paused_at(paused_rx.clone()).await, 80_001);
    agent.kill();
    resend_from.push(resend_start(dir.path()));
    resume_tx.send(()).expect("resume writer");
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("join")
        .expect("writer");
    let agent = AgentProcess::start(&config, &metrics, &agent_log);
    wait_metric(&metrics, "kinesis_agent_records_sent_total", 50_000.0).await;
    agent.kill();
    resend_from.push(resend_start(dir.path()));
    let agent = AgentProcess::start(&config, &metrics, &agent_log);

    let records = wait_for(&ep, "logs", Duration::from_secs(120), |r| {
        let mut seen = vec![false; LINES as usize + 1];
        r.iter().for_each(|d| seen[number_of(d) as usize] = true);
        seen.iter().all(|s| *s)
    })
    .await;
    let lag = scrape(&metrics, "kinesis_agent_file_lag_bytes").await;
    drop(agent);

    let mut count = vec![0u32; LINES as usize + 1];
    let mut firsts = Vec::new();
    for d in &records {
        let n = number_of(d);
        assert_eq!(
            d.as_slice(),
            line(n).as_bytes(),
            "record {n} arrived intact"
        );
        if count[n as usize] == 0 {
            firsts.push(n);
        }
        count[n as usize] += 1;
    }
    let missing: Vec<usize> = (0..count.len()).filter(|&n| count[n] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, first {:?}; agent log: {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );
    // Per-file order: the files hold consecutive line numbers, so first arrivals ascend.
    if let Some(i) = firsts.windows(2).position(|w| w[0] >= w[1]) {
        panic!(
            "lines arrived out of order at {i}: {:?}; agent log: {}",
            &firsts[i.saturating_sub(3)..(i + 5).min(firsts.len())],
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        );
    }
    // Duplicates are the lines resent from a checkpoint after a kill: at most one contiguous
    // run of line numbers per kill, none sent more than once per kill.
    let dups: Vec<u64> = (0..=LINES).filter(|&n| count[n as usize] > 1).collect();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &n in &dups {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let duplicates = records.len() as u64 - (LINES + 1);
    eprintln!(
        "{} records read back, {duplicates} duplicates in runs {runs:?} (checkpoints at lines {resend_from:?}), lag after: {lag:?}",
        records.len()
    );
    assert!(runs.len() <= 2, "duplicate runs {runs:?}");
    // Each run starts at the checkpoint a restart found: nothing committed before a kill was
    // sent again, and what was sent after it was sent again from its first line.
    for run in &runs {
        assert!(
            resend_from.contains(&run.0),
            "run {run:?} does not start at a checkpoint {resend_from:?}"
        );
    }
    assert!(count.iter().all(|&c| c <= 3));
    for (a, b) in &runs {
        assert!(
            b - a < kinesis_agent::sender::IN_FLIGHT_RECORDS as u64 + 20_000,
            "run {a}..={b} is longer than what can be in flight or unsaved"
        );
    }
}

/// Each data processing option against the agent's documented examples, plus
/// `skipHeaderLines`, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_processing_options_end_to_end() {
    let broker = broker(LimitProfile::Off).await;
    let ep = broker.endpoint();
    for s in ["apache", "csv", "trace", "oneline", "meta"] {
        create_stream(&ep, s, 1).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("access_log"),
        "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\nnot an access log line\n",
    )
    .expect("write");
    std::fs::write(d.join("data.csv"), "v1,v2\n").expect("write");
    std::fs::write(
        d.join("app.log"),
        "2024-05-01 10:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:42)\n\tat com.example.App.main(App.java:7)\n2024-05-01 10:00:01 INFO recovered\n",
    )
    .expect("write");
    std::fs::write(d.join("meta.log"), "HEADER\nhello\n").expect("write");
    let flow = |file: &str, stream: &str, extra: serde_json::Value| {
        let mut f = serde_json::json!({
            "filePattern": d.join(file),
            "kinesisStream": stream,
            "initialPosition": "START_OF_FILE",
            "maxBufferAgeMillis": 1000
        });
        if let (Some(f), serde_json::Value::Object(extra)) = (f.as_object_mut(), extra) {
            f.extend(extra);
        }
        f
    };
    let config = kinesis_agent::config::AgentConfig::parse(
        &serde_json::json!({
            "checkpointFile": d.join("checkpoints"),
            "kinesis.endpoint": ep,
            "flows": [
                flow("access_log", "apache", serde_json::json!({"dataProcessingOptions": [
                    {"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]})),
                flow("data.csv", "csv", serde_json::json!({"dataProcessingOptions": [
                    {"optionName": "CSVTOJSON", "customFieldNames": ["f1", "f2"]}]})),
                flow("app.log", "trace", serde_json::json!({
                    "multiLineStartPattern": "^\\d{4}-\\d{2}-\\d{2} "})),
                flow("app.log", "oneline", serde_json::json!({
                    "multiLineStartPattern": "^\\d{4}-\\d{2}-\\d{2} ",
                    "dataProcessingOptions": [{"optionName": "SINGLELINE"}]})),
                flow("meta.log", "meta", serde_json::json!({"skipHeaderLines": 1,
                    "dataProcessingOptions": [{"optionName": "ADDMETADATA",
                        "metadata": {"host": "web-1"}}]})),
            ]
        })
        .to_string(),
    )
    .expect("config");
    let metrics = Arc::new(kinesis_agent::metrics::Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(kinesis_agent::agent::run(config, metrics.clone(), stop_rx));

    let wait = |stream: &'static str, n: usize| {
        let ep = ep.clone();
        async move {
            let r = wait_for(&ep, stream, Duration::from_secs(30), |r| r.len() >= n).await;
            r.into_iter()
                .map(|d| String::from_utf8(d).expect("utf-8"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        wait("apache", 1).await,
        [
            "{\"host\":\"127.0.0.1\",\"ident\":null,\"authuser\":\"frank\",\"datetime\":\"10/Oct/2000:13:55:36 -0700\",\"request\":\"GET /apache_pb.gif HTTP/1.0\",\"response\":\"200\",\"bytes\":\"2326\",\"referer\":\"http://www.example.com/start.html\",\"agent\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\"}\n"
        ]
    );
    assert_eq!(wait("csv", 1).await, ["{\"f1\":\"v1\",\"f2\":\"v2\"}\n"]);
    // The stack trace is one record; the last entry follows once the file is idle.
    assert_eq!(
        wait("trace", 2).await,
        [
            "2024-05-01 10:00:00 ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.run(App.java:42)\n\tat com.example.App.main(App.java:7)\n",
            "2024-05-01 10:00:01 INFO recovered\n"
        ]
    );
    // With SINGLELINE the same trace becomes one line.
    assert_eq!(
        wait("oneline", 2).await,
        [
            "2024-05-01 10:00:00 ERROR request failedjava.lang.IllegalStateException: boomat com.example.App.run(App.java:42)at com.example.App.main(App.java:7)\n",
            "2024-05-01 10:00:01 INFO recovered\n"
        ]
    );
    assert_eq!(
        wait("meta", 1).await,
        ["{\"metadata\":{\"host\":\"web-1\"},\"data\":\"hello\"}\n"]
    );
    // The unparseable access-log line was filtered, and counted.
    let text = metrics.to_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("kinesis_agent_records_filtered_total")
                && l.contains("access_log")
                && l.ends_with(" 1")),
        "{text}"
    );
    stop_tx.send(true).expect("stop");
    agent.await.expect("join").expect("agent ran");
    // A graceful stop checkpoints every byte read.
    let cp = kinesis_agent::checkpoint::Checkpoint::load(&d.join("checkpoints"))
        .expect("load")
        .expect("present");
    let offsets: BTreeMap<String, u64> = cp
        .flows
        .values()
        .flatten()
        .map(|s| (s.path.display().to_string(), s.offset))
        .collect();
    for (path, offset) in offsets {
        assert_eq!(
            offset,
            std::fs::metadata(&path).expect("stat").len(),
            "{path}"
        );
    }
}

/// A stream that throttles every put: the agent stops reading at its in-flight bound instead
/// of buffering the file in memory, then catches up once the throttling ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_stream_slows_reading_instead_of_growing_memory() {
    let broker = broker(LimitProfile::Off).await;
    let ep = broker.endpoint();
    create_stream(&ep, "slow", 1).await;
    broker.service().faults().replace(
        FaultPlan::from_json(
            r#"{"seed": 1, "rules": [{"operation": "PutRecords", "error_rate": 1.0,
                "error": "ProvisionedThroughputExceededException"}]}"#,
        )
        .expect("plan"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("big.log");
    const N: u64 = 100_000;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("create"));
        for n in 0..N {
            // 200-byte lines: 20 MB in all, twice the in-flight bound.
            writeln!(f, "{n:08} {}", "y".repeat(190)).expect("write");
        }
    }
    let config = dir.path().join("agent.json");
    write_config(
        &config,
        serde_json::json!({
            "checkpointFile": dir.path().join("checkpoints"),
            "kinesis.endpoint": ep,
            "flows": [{
                "filePattern": log,
                "kinesisStream": "slow",
                "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000,
                "retryInitialBackoffMillis": 50,
                "retryMaxBackoffMillis": 200
            }]
        }),
    );
    let metrics = free_addr();
    let agent_log = dir.path().join("agent.stderr");
    let agent = AgentProcess::start(&config, &metrics, &agent_log);
    // Reading stops: two scrapes a second apart agree.
    let mut read = wait_metric(&metrics, "kinesis_agent_lines_read_total", 1.0).await;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = scrape(&metrics, "kinesis_agent_lines_read_total")
            .await
            .unwrap_or(read);
        if now == read {
            break;
        }
        read = now;
    }
    let sent = scrape(&metrics, "kinesis_agent_records_sent_total").await;
    let rss = rss_bytes(agent.child.id());
    eprintln!("throttled: {read} lines read of {N}, {sent:?} sent, RSS {rss} bytes");
    assert_eq!(sent, Some(0.0));
    assert!(
        read < N as f64,
        "the agent read the whole file while nothing could be sent"
    );
    let bound = kinesis_agent::sender::IN_FLIGHT_RECORDS as f64
        + (kinesis_agent::tailer::READ_CHUNK / 200) as f64;
    assert!(read <= bound, "{read} lines read, bound {bound}");
    assert!(rss < 256 << 20, "RSS {rss}");
    // Throttling ends: everything arrives.
    broker.service().faults().replace(FaultPlan::none());
    let records = wait_for(&ep, "slow", Duration::from_secs(120), |r| {
        r.len() as u64 >= N
    })
    .await;
    assert!(records.len() as u64 >= N, "{} of {N}", records.len());
    drop(agent);
}

/// Firehose-only and unknown keys stop the agent with the key's name.
#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (json, key) in [
        (
            r#"{"flows":[{"filePattern":"/tmp/x.log","deliveryStream":"d"}]}"#,
            "deliveryStream",
        ),
        (
            r#"{"flows":[{"filePattern":"/tmp/x.log","kinesisStream":"s","maxBufferSizeRecord":5}]}"#,
            "maxBufferSizeRecord",
        ),
    ] {
        let path = dir.path().join("agent.json");
        std::fs::write(&path, json).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kinesis-agent"))
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }
}

/// The agent.json the README tells users to copy is one the agent accepts as is.
#[test]
fn the_readme_configuration_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let section = &readme[readme.find("## Ship log files").expect("section")..];
    let start = section.find("```json\n").expect("json block") + "```json\n".len();
    let end = start + section[start..].find("```").expect("block end");
    let config = kinesis_agent::config::AgentConfig::parse(&section[start..end]).expect("parses");
    assert_eq!(config.flows.len(), 2);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.region(), "eu-west-1");
}

/// A stop while the stream throttles everything returns after `shutdownTimeoutMillis`, and
/// its checkpoint claims nothing that is not in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_under_throttling_is_bounded_and_claims_nothing() {
    let broker = broker(LimitProfile::Off).await;
    let ep = broker.endpoint();
    create_stream(&ep, "stuck", 1).await;
    broker.service().faults().replace(
        FaultPlan::from_json(
            r#"{"rules": [{"operation": "PutRecords", "error_rate": 1.0,
                "error": "ProvisionedThroughputExceededException"}]}"#,
        )
        .expect("plan"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("x.log");
    std::fs::write(&log, (0..1000).map(line).collect::<String>()).expect("write");
    let config = kinesis_agent::config::AgentConfig::parse(
        &serde_json::json!({
            "checkpointFile": dir.path().join("checkpoints"),
            "kinesis.endpoint": ep,
            "shutdownTimeoutMillis": 500,
            "flows": [{"filePattern": log, "kinesisStream": "stuck",
                       "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000}]
        })
        .to_string(),
    )
    .expect("config");
    let metrics = Arc::new(kinesis_agent::metrics::Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = tokio::spawn(kinesis_agent::agent::run(config, metrics.clone(), stop_rx));
    for _ in 0..600 {
        if metrics
            .to_text()
            .contains("kinesis_agent_lines_read_total{flow=")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("stop is bounded by shutdownTimeoutMillis")
        .expect("join")
        .expect("ran");
    let cp = kinesis_agent::checkpoint::Checkpoint::load(&dir.path().join("checkpoints"))
        .expect("load")
        .expect("present");
    let offsets: Vec<u64> = cp.flows.values().flatten().map(|s| s.offset).collect();
    assert_eq!(offsets, [0]);
}
