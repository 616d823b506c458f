//! Shared set-up for the cross-crate tests: a broker on an ephemeral port and
//! clients pointed at it.
#![allow(dead_code)]

pub mod java;
pub mod peers;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use std::time::Duration;

/// A broker on 127.0.0.1:0 with no state delays.
pub async fn start_broker() -> RunningBroker {
    start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .build(),
    )
    .await
}

/// A broker with this config (its port should be 0).
pub async fn start_broker_with(config: BrokerConfig) -> RunningBroker {
    Broker::start(config).await.expect("broker starts")
}

/// The official AWS SDK client for `endpoint`, with test credentials.
pub fn sdk_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// Like [`sdk_client`] but the SDK never retries, so error tests see the first answer.
pub fn sdk_client_no_retry(endpoint: &str) -> aws_sdk_kinesis::Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// Create a stream and wait until it is ACTIVE.
pub async fn create_active_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    wait_active(client, name).await;
}

/// Poll DescribeStreamSummary until the stream is ACTIVE (bounded).
pub async fn wait_active(client: &aws_sdk_kinesis::Client, name: &str) {
    for _ in 0..500 {
        let s = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("describe stream summary");
        let status = s
            .stream_description_summary()
            .map(|d| d.stream_status().as_str().to_string());
        if status.as_deref() == Some("ACTIVE") {
            return;
        }
        // DescribeStreamSummary allows 20 calls a second under AWS limits.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// The AWS error code of a failed SDK call (empty when the failure carried none,
/// e.g. a transport error).
pub fn error_code<E, R>(err: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata,
{
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    err.code().unwrap_or_default().to_string()
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length, else up to the close).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Send one HTTP/1.1 request over a fresh TCP connection (`Connection: close`)
/// and read the answer, so tests can send what no SDK would. `Content-Length`
/// is added unless `headers` already has one (to announce a size not sent) or
/// a `Transfer-Encoding`.
/// Bounded: panics if no complete answer arrives within 10 s.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await.expect("write head");
        // The server may answer (and close) before taking the whole body.
        let _ = tcp.write_all(body).await;
        let mut buf = Vec::new();
        // On the heap: a test awaiting many requests would otherwise hold
        // 64 KiB of future state per call on its stack.
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            if let Some(resp) = parse_response(&buf, false) {
                return resp;
            }
        }
        parse_response(&buf, true).expect("a complete HTTP response")
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the broker answered within 10 s")
}

/// [`raw_request`] signed with SigV4 (test credentials, `us-east-1`), as
/// every real client signs: `headers` are signed with `host`, and the
/// signature headers are added.
pub async fn signed_raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let host = addr.to_string();
    let lower: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let mut to_sign: Vec<(&str, &str)> = vec![("host", host.as_str())];
    to_sign.extend(lower.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let added = kinesis_proto::client::sign_headers(
        &kinesis_proto::client::Credentials::test(),
        "us-east-1",
        "kinesis",
        method,
        &format!("http://{host}/"),
        &to_sign,
        body,
        std::time::SystemTime::now(),
    )
    .expect("sign the request");
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(added.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    raw_request(addr, method, &all, body).await
}

fn parse_response(buf: &[u8], closed: bool) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = &buf[end + 4..];
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match len {
        Some(n) if body.len() >= n => Some(RawResponse {
            status,
            headers,
            body: body[..n].to_vec(),
        }),
        None if closed => Some(RawResponse {
            status,
            headers,
            body: body.to_vec(),
        }),
        _ => None,
    }
}

/// The broker binary built from this workspace (built once if missing or stale,
/// under a lock file so concurrent test runs do not race).
pub fn broker_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/broker_cli-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let bin = profile_dir.join(format!("kinesis-broker{}", std::env::consts::EXE_SUFFIX));
    let lock = std::fs::File::create(profile_dir.join(".kinesis-broker-build.lock"))
        .expect("create the build lock file");
    lock.lock().expect("take the build lock");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["-p", "kinesis-broker", "--bin", "kinesis-broker"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("run cargo build");
    // An old binary would test old code under the new tests' names: a failed build fails the test.
    assert!(
        out.status.success(),
        "cannot build kinesis-broker:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// A child process that is killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
