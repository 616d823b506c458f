//! The broker binary under a hostile load, with `--auth` on: 2,000 slow
//! connections (request heads trickled a byte a second, or nothing at all)
//! and unauthenticated 12 MiB bodies sent in parallel without pause, while a
//! client with a listed key keeps calling PutRecords. The broker's resident
//! memory must stay under 256 MiB and the signed client's PutRecords p99
//! under 100 ms.
#![cfg(target_os = "linux")]

use bytes::Bytes;
use kinesis_proto::client::{Client, ClientConfig, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

const SLOW_CONNECTIONS: usize = 2000;
const ATTACKERS: usize = 16;
const BODY_BYTES: usize = 12 * 1024 * 1024;
const LOAD: Duration = Duration::from_secs(15);
const RSS_LIMIT_KIB: u64 = 256 * 1024;
const P99_LIMIT: Duration = Duration::from_millis(100);
const AKID: &str = "AKIDHOSTILETEST";
const SECRET: &str = "hostile-test-secret";

fn signed_client(endpoint: &str) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint.to_string())
            .region("us-east-1")
            .credentials(Credentials::new(AKID, SECRET))
            .max_attempts(1)
            .request_timeout(Duration::from_secs(10))
            .build(),
    )
    .expect("client")
}

/// The signed client's PutRecords latencies over [`LOAD`], measured on a
/// thread and runtime of its own so that the attackers' tasks never delay
/// polling it: it signals `ready` after a first call has warmed its
/// connection, and starts on `go`.
fn measure_put_records(
    endpoint: String,
    batch: PutRecordsInput,
    ready: std::sync::mpsc::Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = signed_client(&endpoint);
        rt.block_on(client.put_records(&batch))
            .expect("a first PutRecords");
        ready.send(()).expect("the test waits");
        go.recv().expect("the storm started");
        rt.block_on(async {
            let mut latencies = Vec::new();
            let started = Instant::now();
            while started.elapsed() < LOAD {
                let t = Instant::now();
                let out = client
                    .put_records(&batch)
                    .await
                    .expect("PutRecords under load");
                latencies.push(t.elapsed());
                assert_eq!(out.failed_record_count, 0);
            }
            latencies
        })
    })
}

/// Room for this process's sockets and the broker's (which inherits the limit).
fn raise_open_file_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    assert!(
        lim.rlim_cur >= want,
        "the hard open-file limit ({}) is below the {want} this test needs; raise it (ulimit -Hn)",
        lim.rlim_max
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The open-connections gauge from `/metrics`.
async fn open_connections(addr: SocketAddr) -> f64 {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("read metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("kinesis_open_connections "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the open-connections gauge")
}

/// One attacker: announce 12 MiB without valid credentials and send it as
/// fast as the broker takes it, again and again until `stop`.
async fn attack(
    addr: SocketAddr,
    variant: usize,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
) {
    let body = Bytes::from(vec![b'{'; BODY_BYTES]);
    let auth = match variant % 3 {
        0 => String::new(),
        1 => "authorization: AWS4-HMAC-SHA256 Credential=AKIDUNLISTED/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00\r\nx-amz-date: 20260101T000000Z\r\n".to_string(),
        _ => "authorization: garbage\r\n".to_string(),
    };
    let target = if variant.is_multiple_of(2) {
        "PutRecords"
    } else {
        "PutRecord"
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.{target}\r\n{auth}content-length: {BODY_BYTES}\r\n\r\n"
    );
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            continue;
        };
        let (mut rd, mut wr) = tcp.split();
        attempts.fetch_add(1, Ordering::Relaxed);
        let write = async {
            if wr.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for chunk in body.chunks(256 * 1024) {
                match wr.write(chunk).await {
                    Ok(n) if n > 0 => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        };
        let read = async {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join(write, read)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_and_unauthenticated_bodies_do_not_starve_a_signed_client() {
    raise_open_file_limit(SLOW_CONNECTIONS as u64 * 2 + 1024);
    let dir = tempfile::tempdir().expect("temp dir");
    let auth = dir.path().join("auth.ini");
    std::fs::write(
        &auth,
        format!("[ci]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("write the auth file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"))
        .args(["--port", "0", "--limits", "off", "--log-level", "warn"])
        .args(["--create-delay-ms", "0"])
        .arg("--auth")
        .arg(&auth)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the broker binary starts");
    let pid = child.id().expect("a pid");
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
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let client = signed_client(&endpoint);
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some("hostile".into()),
            shard_count: Some(2),
            ..Default::default()
        })
        .await
        .expect("create stream");
    let batch = PutRecordsInput {
        stream: StreamRef::name("hostile"),
        records: Some(
            (0..10)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob(Bytes::from(vec![b'x'; 100]))),
                    partition_key: Some(format!("key-{i}")),
                    ..Default::default()
                })
                .collect(),
        ),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel();
    let measure = measure_put_records(endpoint.clone(), batch, ready_tx, go_rx);
    tokio::task::spawn_blocking(move || ready_rx.recv())
        .await
        .expect("join")
        .expect("the measuring thread is ready");
    let baseline_kib = rss_kib(pid);

    // 2,000 slow connections: three in four trickle a request head, one in
    // four never sends a byte.
    let mut slow = Vec::with_capacity(SLOW_CONNECTIONS);
    for i in 0..SLOW_CONNECTIONS {
        let mut tcp = TcpStream::connect(addr).await.expect("a slow connection");
        if i % 4 != 0 {
            tcp.write_all(format!("POST / HTTP/1.1\r\nhost: {addr}\r\nx-slow: ").as_bytes())
                .await
                .expect("the start of a head");
        }
        slow.push(tcp);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut alive = 0;
            while !stop.load(Ordering::Relaxed) {
                alive = 0;
                for (i, tcp) in slow.iter_mut().enumerate() {
                    if i % 4 != 0 && tcp.write_all(b"a").await.is_ok() {
                        alive += 1;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (slow, alive)
        })
    };
    let attempts = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|v| {
            tokio::spawn(attack(
                addr,
                v,
                Arc::clone(&stop),
                Arc::clone(&attempts),
                Arc::clone(&sent),
            ))
        })
        .collect();

    go_tx.send(()).expect("the measuring thread waits");
    let mut max_rss_kib = 0;
    let mut max_open = 0.0f64;
    while !measure.is_finished() {
        max_rss_kib = max_rss_kib.max(rss_kib(pid));
        max_open = max_open.max(open_connections(addr).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut latencies = measure.join().expect("the measuring thread");
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.await.expect("attacker");
    }
    let (slow, alive) = trickle.await.expect("trickle");
    max_rss_kib = max_rss_kib.max(rss_kib(pid));
    drop(slow);

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let p50 = latencies[latencies.len() / 2];
    let sent_mib = sent.load(Ordering::Relaxed) / (1024 * 1024);
    let attempts = attempts.load(Ordering::Relaxed);
    eprintln!(
        "baseline RSS {baseline_kib} KiB, peak RSS {max_rss_kib} KiB; {} signed PutRecords: p50 {p50:?}, p99 {p99:?}, max {:?}; \
         {alive} slow heads still trickling, peak open connections {max_open}; \
         {attempts} unauthenticated 12 MiB requests, {sent_mib} MiB of their bodies taken by the socket",
        latencies.len(),
        latencies.last().copied().unwrap_or_default(),
    );
    // The load really landed: the slow connections were held open throughout.
    assert!(
        max_open >= SLOW_CONNECTIONS as f64,
        "only {max_open} connections were open at once"
    );
    assert!(
        alive > SLOW_CONNECTIONS / 2,
        "slow connections were dropped early: {alive}"
    );
    assert!(
        attempts >= ATTACKERS as u64,
        "the attackers barely ran: {attempts}"
    );
    assert!(
        max_rss_kib < RSS_LIMIT_KIB,
        "broker RSS peaked at {max_rss_kib} KiB (limit {RSS_LIMIT_KIB} KiB)"
    );
    assert!(
        p99 < P99_LIMIT,
        "signed PutRecords p99 {p99:?} (limit {P99_LIMIT:?})"
    );
    child.kill().await.expect("stop the broker");
}
