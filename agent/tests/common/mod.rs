//! Shared set-up of the agent's tests: a broker on an ephemeral port, streams, reading a
//! stream back (deaggregated), and the agent binary as a child process.
#![allow(dead_code)]

use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_proto::aggregation::deaggregate;
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, GetRecordsInput, GetShardIteratorInput,
    ListShardsInput, StreamRef,
};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A broker on 127.0.0.1:0 with these limits and no state delays.
pub async fn broker(limits: LimitProfile) -> RunningBroker {
    Broker::start(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(limits)
            .build(),
    )
    .await
    .expect("broker starts")
}

/// A client that retries throttled calls.
pub fn client(endpoint: &str) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .max_attempts(30)
            .backoff(Duration::from_millis(20), Duration::from_millis(500))
            .build(),
    )
    .expect("client")
}

/// Creates a stream and waits until it is ACTIVE (bounded).
pub async fn create_stream(endpoint: &str, name: &str, shards: i64) {
    let c = client(endpoint);
    c.create_stream(&CreateStreamInput {
        stream_name: Some(name.into()),
        shard_count: Some(shards),
        ..Default::default()
    })
    .await
    .expect("create stream");
    for _ in 0..500 {
        let s = c
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name(name),
            })
            .await
            .expect("describe");
        if s.stream_description_summary.stream_status == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// Every user record of the stream's shards (deaggregated), in shard then sequence order.
pub async fn read_all(endpoint: &str, stream: &str) -> Vec<Vec<u8>> {
    let c = client(endpoint);
    let shards = c
        .list_shards(&ListShardsInput {
            stream: StreamRef::name(stream),
            ..Default::default()
        })
        .await
        .expect("list shards")
        .shards;
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator: Option<String> = c
            .get_shard_iterator(&GetShardIteratorInput {
                stream: StreamRef::name(stream),
                shard_id: Some(shard.shard_id.clone()),
                shard_iterator_type: Some("TRIM_HORIZON".into()),
                ..Default::default()
            })
            .await
            .expect("iterator")
            .shard_iterator
            .into();
        for _ in 0..100_000 {
            let Some(it) = iterator.take() else { break };
            let page = c
                .get_records(&GetRecordsInput {
                    shard_iterator: Some(it),
                    limit: Some(10_000),
                    stream_arn: None,
                })
                .await
                .expect("get records");
            let empty = page.records.is_empty();
            for r in page.records {
                for user in deaggregate(&r.partition_key, None, r.data.0.clone()) {
                    out.push(user.data.to_vec());
                }
            }
            if empty && page.millis_behind_latest.unwrap_or(0) == 0 {
                break;
            }
            iterator = page.next_shard_iterator;
        }
    }
    out
}

/// Polls the stream until `done` holds for its records (bounded by `limit`).
pub async fn wait_for(
    endpoint: &str,
    stream: &str,
    limit: Duration,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let records = read_all(endpoint, stream).await;
        if done(&records) || tokio::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The agent binary running `config`, killed when dropped; its log goes to `log`.
pub struct AgentProcess {
    /// The child.
    pub child: Child,
}

impl AgentProcess {
    /// Starts the agent with `config`, metrics on `metrics_addr`.
    pub fn start(config: &Path, metrics_addr: &str, log: &Path) -> AgentProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_kinesis-agent"))
            .arg("--config")
            .arg(config)
            .arg("--metrics-addr")
            .arg(metrics_addr)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        AgentProcess { child }
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free 127.0.0.1 port (bound then released).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// The value of an unlabelled-or-summed metric in the agent's Prometheus text, `None` while
/// the endpoint does not answer.
pub async fn scrape(addr: &str, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body))
        .await
        .ok()?
        .ok()?;
    Some(
        body.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Resident set size of process `pid` in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
