//! Malformed HTTP/1.1 and HTTP/2 traffic thrown at the running broker binary
//! (with and without `--auth`): truncated and oversized frames, bogus
//! lengths, broken header blocks, oversized headers, and CBOR and JSON bodies
//! with huge declared sizes or deep nesting. The broker must not panic, its
//! memory must stay bounded, and a valid client must still be served.
#![cfg(target_os = "linux")]

use bytes::Bytes;
use kinesis_proto::client::{Client, ClientConfig, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const CASES_PER_WORKER: usize = 60;
const WORKERS: u64 = 8;
const RSS_LIMIT_KIB: u64 = 256 * 1024;
const AKID: &str = "AKIDFUZZ";
const SECRET: &str = "fuzz-secret";

/// A small seeded generator: every run sends the same traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// CBOR bodies that declare far more than they carry, nest deeply, or stop short.
fn hostile_cbor(rng: &mut Rng) -> Vec<u8> {
    let records = |tail: &[u8]| {
        let mut v = vec![0xa2, 0x6a];
        v.extend_from_slice(b"StreamName");
        v.extend_from_slice(&[0x61, b's', 0x67]);
        v.extend_from_slice(b"Records");
        v.extend_from_slice(tail);
        v
    };
    match rng.below(10) {
        // An array of 2^64-1 records.
        0 => records(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        // An array of 2^32-1 records.
        1 => records(&[0x9a, 0xff, 0xff, 0xff, 0xff]),
        // One record whose Data declares 64 GiB.
        2 => {
            let mut tail = vec![0x81, 0xa2, 0x64];
            tail.extend_from_slice(b"Data");
            tail.extend_from_slice(&[0x5b, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00]);
            tail.extend_from_slice(&rng.bytes(64));
            records(&tail)
        }
        // A stream name declaring 2^63 bytes of text.
        3 => vec![
            0xa1, 0x6a, b'S', b't', b'r', b'e', b'a', b'm', b'N', b'a', b'm', b'e', 0x7b, 0x7f,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        // A map of 2^32-1 entries.
        4 => vec![0xba, 0xff, 0xff, 0xff, 0xff, 0x61, b'a'],
        // Deep nesting: arrays, then tags.
        5 => {
            let mut v = vec![0x81; 100_000];
            v.push(0x00);
            records(&v)
        }
        6 => {
            let mut v = vec![0xc6; 100_000];
            v.push(0x00);
            records(&v)
        }
        // Indefinite-length containers never closed.
        7 => {
            let mut v = vec![0xbf];
            for _ in 0..1000 {
                v.extend_from_slice(&[0x61, b'k', 0x9f]);
            }
            v
        }
        // Indefinite-length byte string of many tiny chunks.
        8 => {
            let mut tail = vec![0x81, 0xa2, 0x64];
            tail.extend_from_slice(b"Data");
            tail.push(0x5f);
            for _ in 0..20_000 {
                tail.extend_from_slice(&[0x41, 0x00]);
            }
            records(&tail)
        }
        _ => {
            let n = rng.below(2048) as usize;
            rng.bytes(n)
        }
    }
}

/// JSON bodies that nest deeply, carry huge numbers or stop short.
fn hostile_json(rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0 => format!("{{\"Records\":{}", "[".repeat(100_000)).into_bytes(),
        1 => br#"{"StreamName":"s","Records":[{"Data":"!!!!","PartitionKey":"k"}]}"#.to_vec(),
        2 => format!("{{\"Limit\":1{}}}", "0".repeat(10_000)).into_bytes(),
        3 => br#"{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k""#.to_vec(),
        _ => {
            let n = rng.below(2048) as usize;
            rng.bytes(n)
        }
    }
}

/// One malformed HTTP/1.1 exchange.
fn http1_case(rng: &mut Rng, addr: SocketAddr) -> Vec<u8> {
    let target = [
        "PutRecords",
        "PutRecord",
        "ListShards",
        "GetRecords",
        "Bogus",
    ][rng.below(5) as usize];
    let ok_head = |ct: &str, len: &str| {
        format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {ct}\r\nx-amz-target: Kinesis_20131202.{target}\r\ncontent-length: {len}\r\n\r\n"
        )
        .into_bytes()
    };
    match rng.below(14) {
        0 => {
            let n = rng.below(4096) as usize;
            rng.bytes(n)
        }
        1 => b"POST / HTTP/1.1\r\nhost: x\r\ncontent-ty".to_vec(),
        // One 100 KiB header; then 500 headers.
        2 => format!(
            "POST / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(100 * 1024)
        )
        .into_bytes(),
        3 => {
            let mut v = b"POST / HTTP/1.1\r\nhost: x\r\n".to_vec();
            for i in 0..500 {
                v.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
            }
            v.extend_from_slice(b"\r\n");
            v
        }
        // Bogus lengths.
        4 => ok_head("application/x-amz-json-1.1", "-1"),
        5 => ok_head("application/x-amz-json-1.1", "18446744073709551616"),
        6 => {
            let mut v = ok_head("application/x-amz-cbor-1.1", "100");
            v.extend_from_slice(b"\xbf");
            v
        }
        7 => format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.{target}\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\n{{}}"
        )
        .into_bytes(),
        8 => format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.{target}\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\nab\r\n"
        )
        .into_bytes(),
        9 => format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-cbor-1.1\r\nx-amz-target: Kinesis_20131202.{target}\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
        .into_bytes(),
        // Bodies with huge declared sizes or deep nesting.
        10 | 11 => {
            let body = hostile_cbor(rng);
            let mut v = ok_head("application/x-amz-cbor-1.1", &body.len().to_string());
            v.extend_from_slice(&body);
            v
        }
        12 => {
            let body = hostile_json(rng);
            let mut v = ok_head("application/x-amz-json-1.1", &body.len().to_string());
            v.extend_from_slice(&body);
            v
        }
        // Broken Authorization headers and dates.
        _ => {
            let auth = [
                "AWS4-HMAC-SHA256 Credential=A/99999999/r/kinesis/aws4_request, SignedHeaders=date;host, Signature=0",
                "AWS4-HMAC-SHA256 ,,,,==,=,",
                "AWS4-HMAC-SHA256 Credential=////////, SignedHeaders=;;;;, Signature=",
            ][rng.below(3) as usize];
            format!(
                "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.{target}\r\nauthorization: {auth}\r\ndate: Sun, 30 Aug 99999999999999999 12:36:00 GMT\r\ncontent-length: 2\r\n\r\n{{}}"
            )
            .into_bytes()
        }
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    v.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An HPACK block of literal fields (never indexed), names and values under 127 bytes.
fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, value) in fields {
        v.push(0x00);
        v.push(name.len() as u8);
        v.extend_from_slice(name.as_bytes());
        v.push(value.len() as u8);
        v.extend_from_slice(value.as_bytes());
    }
    v
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One malformed HTTP/2 exchange.
fn http2_case(rng: &mut Rng) -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(frame(0x4, 0, 0, &[]));
    let request = |ct: &str| {
        hpack(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "localhost"),
            ("content-type", ct),
            ("x-amz-target", "Kinesis_20131202.PutRecords"),
        ])
    };
    match rng.below(12) {
        0 => {
            let n = rng.below(4096) as usize;
            v.extend(rng.bytes(n));
        }
        // A frame announcing 16 MiB, with a few bytes behind it.
        1 => {
            v.extend_from_slice(&[0xff, 0xff, 0xff, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1]);
            v.extend(rng.bytes(100));
        }
        // A truncated HEADERS frame.
        2 => {
            let mut f = frame(0x1, 0x4, 1, &request("application/x-amz-cbor-1.1"));
            f.truncate(f.len() / 2);
            v.extend(f);
        }
        // A HEADERS frame of random HPACK.
        3 => {
            let n = rng.below(512) as usize + 1;
            v.extend(frame(0x1, 0x5, 1, &rng.bytes(n)));
        }
        // HEADERS without END_HEADERS, then a flood of CONTINUATION frames.
        4 => {
            v.extend(frame(0x1, 0x0, 1, &request("application/x-amz-cbor-1.1")));
            for _ in 0..2000 {
                v.extend(frame(
                    0x9,
                    0x0,
                    1,
                    &hpack(&[("x-flood", "aaaaaaaaaaaaaaaa")]),
                ));
            }
        }
        // Invalid settings, window overflow, PING and RST_STREAM floods.
        5 => {
            v.extend(frame(0x4, 0, 0, &[0x0, 0x4, 0xff, 0xff, 0xff, 0xff]));
            v.extend(frame(0x8, 0, 0, &0x7fff_ffffu32.to_be_bytes()));
            v.extend(frame(0x8, 0, 0, &0x7fff_ffffu32.to_be_bytes()));
        }
        6 => {
            for i in 0..500u32 {
                v.extend(frame(
                    0x1,
                    0x4,
                    2 * i + 1,
                    &request("application/x-amz-cbor-1.1"),
                ));
                v.extend(frame(0x3, 0, 2 * i + 1, &8u32.to_be_bytes()));
            }
            for _ in 0..500 {
                v.extend(frame(0x6, 0, 0, &[0; 8]));
            }
        }
        // DATA on a stream that was never opened; DATA past the window.
        7 => {
            v.extend(frame(0x0, 0x1, 5, &rng.bytes(100)));
        }
        8 => {
            v.extend(frame(0x1, 0x4, 1, &request("application/x-amz-cbor-1.1")));
            for _ in 0..40 {
                v.extend(frame(0x0, 0x0, 1, &vec![0u8; 64 * 1024]));
            }
        }
        // Requests whose bodies declare huge sizes, nest deeply, or stop short.
        9 | 10 => {
            let body = hostile_cbor(rng);
            v.extend(frame(0x1, 0x4, 1, &request("application/x-amz-cbor-1.1")));
            for (i, chunk) in body.chunks(16 * 1024).enumerate() {
                let last = (i + 1) * 16 * 1024 >= body.len();
                v.extend(frame(0x0, u8::from(last), 1, chunk));
            }
        }
        _ => {
            let body = hostile_json(rng);
            v.extend(frame(0x1, 0x4, 1, &request("application/x-amz-json-1.1")));
            for (i, chunk) in body.chunks(16 * 1024).enumerate() {
                let last = (i + 1) * 16 * 1024 >= body.len();
                v.extend(frame(0x0, u8::from(last), 1, chunk));
            }
        }
    }
    v
}

/// Send `bytes`, then read what comes back for a moment and hang up.
async fn throw(addr: SocketAddr, bytes: Vec<u8>, cut_short: bool) {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return;
    };
    let (mut rd, mut wr) = tcp.split();
    let write = async {
        let n = if cut_short {
            bytes.len() / 2
        } else {
            bytes.len()
        };
        let _ = wr.write_all(&bytes[..n]).await;
    };
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), rd.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), futures::future::join(write, read)).await;
}

struct Broker {
    child: Child,
    addr: SocketAddr,
    endpoint: String,
    stderr: tokio::task::JoinHandle<Vec<String>>,
}

async fn start(extra: &[&str]) -> Broker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"))
        .args(["--port", "0", "--limits", "off", "--log-level", "warn"])
        .args(["--create-delay-ms", "0"])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the broker binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut out = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
        }
        out
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let endpoint = loop {
        match lines.next_line().await.expect("read stdout") {
            Some(l) => {
                if let Some(e) = l.strip_prefix("Listening on ") {
                    break e.to_string();
                }
            }
            None => panic!("the broker exited before listening"),
        }
    };
    let addr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    Broker {
        child,
        addr,
        endpoint,
        stderr,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn valid_client_is_served(client: &Client, round: usize) {
    let out = client
        .put_records(&PutRecordsInput {
            stream: StreamRef::name("fuzz"),
            records: Some(vec![PutRecordsRequestEntry {
                data: Some(Blob(Bytes::from(format!("round {round}")))),
                partition_key: Some("k".into()),
                ..Default::default()
            }]),
        })
        .await
        .unwrap_or_else(|e| panic!("round {round}: a valid PutRecords failed: {e}"));
    assert_eq!(out.failed_record_count, 0);
}

async fn storm(extra: &[&str], credentials: Credentials, seed: u64) {
    let mut broker = start(extra).await;
    let pid = broker.child.id().expect("pid");
    let client = Client::new(
        ClientConfig::builder()
            .endpoint(broker.endpoint.clone())
            .region("us-east-1")
            .credentials(credentials)
            .max_attempts(1)
            .build(),
    )
    .expect("client");
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some("fuzz".into()),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("create stream");
    let mut peak_kib = 0;
    for round in 0..3 {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let addr = broker.addr;
                tokio::spawn(async move {
                    let mut rng = Rng(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ round);
                    for _ in 0..CASES_PER_WORKER / 3 {
                        let bytes = if rng.below(2) == 0 {
                            http1_case(&mut rng, addr)
                        } else {
                            http2_case(&mut rng)
                        };
                        let cut_short = rng.below(4) == 0;
                        throw(addr, bytes, cut_short).await;
                    }
                })
            })
            .collect();
        // Valid calls go on while the storm blows.
        for i in 0..5 {
            valid_client_is_served(&client, round as usize * 10 + i).await;
        }
        for w in workers {
            w.await.expect("worker");
        }
        valid_client_is_served(&client, round as usize * 10 + 9).await;
        assert!(
            broker.child.try_wait().expect("status").is_none(),
            "the broker exited"
        );
        peak_kib = peak_kib.max(rss_kib(pid));
    }
    broker.child.kill().await.expect("stop the broker");
    let stderr = broker.stderr.await.expect("stderr");
    let panics: Vec<&String> = stderr.iter().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "the broker panicked: {panics:#?}");
    eprintln!("{extra:?}: peak RSS {peak_kib} KiB");
    assert!(peak_kib < RSS_LIMIT_KIB, "RSS peaked at {peak_kib} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traffic_without_auth() {
    storm(&[], Credentials::test(), 0x5eed_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traffic_with_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = dir.path().join("auth.ini");
    std::fs::write(
        &auth,
        format!("[ci]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("write the auth file");
    let auth = auth.to_str().expect("utf-8 path").to_string();
    storm(
        &["--auth", &auth],
        Credentials::new(AKID, SECRET),
        0x5eed_0002,
    )
    .await;
}
