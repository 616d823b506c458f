//! Throughput and memory of the `kinesis-agent` binary: a file of 200-byte lines shipped to
//! an in-process broker with limits off; prints lines/s, MB/s and the agent's peak RSS.
//!
//! ```sh
//! cargo build --release -p kinesis-agent --bins --examples
//! target/release/examples/agent_throughput --lines 1000000 --shards 4
//! ```
//!
//! The agent runs as its own process (the binary next to this example's directory), so its
//! RSS is its own and not the broker's.

use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, StreamRef, StreamStatus,
};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn scrape(addr: &str, name: &str) -> Option<f64> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).await.ok()?;
    Some(
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// User plus system CPU seconds of process `pid` (clock ticks of 10 ms).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line; after the name, field 3 (the state)
    // is index 0.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let lines = arg("--lines", 1_000_000);
    let shards = arg("--shards", 4) as i64;
    let broker = Broker::start(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(LimitProfile::Off)
            .build(),
    )
    .await
    .expect("broker");
    let ep = broker.endpoint();
    let client = Client::new(ClientConfig::builder().endpoint(&ep).build()).expect("client");
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some("bench".into()),
            shard_count: Some(shards),
            ..Default::default()
        })
        .await
        .expect("create");
    while client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name("bench"),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_status
        != StreamStatus::Active
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("bench.log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("create"));
        for n in 0..lines {
            // 199 bytes and a newline.
            writeln!(f, "{n:012} {}", "z".repeat(186)).expect("write");
        }
    }
    let config = dir.path().join("agent.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "checkpointFile": dir.path().join("checkpoints"),
            "kinesis.endpoint": ep,
            "flows": [{
                "filePattern": log,
                "kinesisStream": "bench",
                "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000
            }]
        })
        .to_string(),
    )
    .expect("config");
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let exe = std::env::current_exe().expect("exe");
    let agent_bin = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("kinesis-agent");
    let start = Instant::now();
    let mut child = std::process::Command::new(&agent_bin)
        .arg("--config")
        .arg(&config)
        .arg("--metrics-addr")
        .arg(&metrics)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (build the binary first)", agent_bin.display()));
    let mut peak = 0;
    loop {
        peak = peak.max(rss(child.id()));
        if scrape(&metrics, "kinesis_agent_records_sent_total")
            .await
            .is_some_and(|v| v >= lines as f64)
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            panic!("not done after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{lines} lines of 200 B, {shards} shard(s): {secs:.2} s, {:.0} lines/s, {:.1} MB/s, agent CPU {cpu:.2} s ({:.0} lines per CPU second), peak RSS {:.1} MiB",
        lines as f64 / secs,
        lines as f64 * 200.0 / secs / 1e6,
        lines as f64 / cpu.max(0.01),
        peak as f64 / (1024.0 * 1024.0)
    );
    broker.shutdown().await;
}
