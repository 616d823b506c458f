//! The broker refuses what it must, over a real socket: StreamARNs of other
//! accounts and regions, oversized PutRecords entries, fault plans and
//! metrics without credentials under `--auth`, and the connection and body
//! limits (`--max-connections`, the header-read, idle and TLS-handshake
//! timeouts, HTTP/2 stream limits, reading no body before the signature's
//! header checks pass).

use bytes::Bytes;
use kinesis_broker::auth::AuthKeys;
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig, ConnectionLimits, RunningBroker};
use kinesis_proto::ErrorCode;
use kinesis_proto::client::{Client, ClientConfig, ClientError, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

async fn start(config: kinesis_broker::BrokerConfigBuilder) -> RunningBroker {
    Broker::start(
        config
            .port(0)
            .state_delays(Duration::ZERO)
            .region(REGION)
            .account_id(ACCOUNT)
            .build(),
    )
    .await
    .expect("broker starts")
}

fn client(broker: &RunningBroker, credentials: Credentials) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(broker.endpoint())
            .region(REGION)
            .credentials(credentials)
            .max_attempts(1)
            .build(),
    )
    .expect("client")
}

async fn create(client: &Client, name: &str) {
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(name.into()),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .expect("create stream");
}

fn code(e: &ClientError) -> Option<ErrorCode> {
    e.code()
}

fn arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
}

// ------------------------------------------------ finding 11: foreign ARNs

#[tokio::test]
async fn a_stream_arn_of_another_account_or_region_is_refused() {
    let broker = start(BrokerConfig::builder()).await;
    let c = client(&broker, Credentials::test());
    create(&c, "orders").await;
    let put = |arn: String| {
        let c = c.clone();
        async move {
            c.put_record(&PutRecordInput {
                stream: StreamRef::arn(arn),
                data: Some(Blob(Bytes::from_static(b"x"))),
                partition_key: Some("k".into()),
                ..Default::default()
            })
            .await
        }
    };
    // The local ARN works.
    put(arn(REGION, ACCOUNT, "orders"))
        .await
        .expect("local ARN");
    // Same name, another account: AccessDenied, as Kinesis answers a caller
    // no resource policy lets in.
    let e = put(arn(REGION, "210987654321", "orders"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::AccessDenied), "{e}");
    // Same name, another region: that region has no such stream.
    let e = put(arn("us-west-2", ACCOUNT, "orders")).await.unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::ResourceNotFound), "{e}");
    // Malformed: a validation error.
    let e = put("arn:aws:kinesis:eu-west-1:12:stream/orders".into())
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::Validation), "{e}");

    // Reads and consumer registration resolve ARNs the same way.
    let e = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::arn(arn(REGION, "210987654321", "orders")),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::AccessDenied), "{e}");
    let e = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(arn("us-west-2", ACCOUNT, "orders")),
            consumer_name: Some("app".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::ResourceNotFound), "{e}");
    let e = c
        .list_stream_consumers(&ListStreamConsumersInput {
            stream_arn: Some(arn(REGION, "210987654321", "orders")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::AccessDenied), "{e}");
    broker.shutdown().await;
}

// ------------------------------------------------ finding 15: PutRecords entry size

#[tokio::test]
async fn put_records_refuses_an_entry_whose_data_and_key_exceed_one_mib() {
    let broker = start(BrokerConfig::builder().limit_profile(LimitProfile::Off)).await;
    let c = client(&broker, Credentials::test());
    create(&c, "big").await;
    const MIB: usize = 1024 * 1024;
    let key = "k".repeat(10);
    let entry = |data_len: usize| PutRecordsRequestEntry {
        data: Some(Blob(Bytes::from(vec![7u8; data_len]))),
        partition_key: Some(key.clone()),
        ..Default::default()
    };
    // PutRecord refuses 1 MiB of data plus a key...
    let e = c
        .put_record(&PutRecordInput {
            stream: StreamRef::name("big"),
            data: Some(Blob(Bytes::from(vec![7u8; MIB]))),
            partition_key: Some(key.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::InvalidArgument), "{e}");
    // ...and so does PutRecords, for the same entry among good ones.
    let e = c
        .put_records(&PutRecordsInput {
            stream: StreamRef::name("big"),
            records: Some(vec![entry(10), entry(MIB), entry(10)]),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), Some(ErrorCode::InvalidArgument), "{e}");
    let msg = e
        .service_error()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(msg.contains("1048586"), "{msg}");
    // Exactly 1 MiB of data and key together is fine.
    let out = c
        .put_records(&PutRecordsInput {
            stream: StreamRef::name("big"),
            records: Some(vec![entry(MIB - key.len())]),
        })
        .await
        .expect("an entry of exactly 1 MiB");
    assert_eq!(out.failed_record_count, 0);
    broker.shutdown().await;
}

// ------------------------------------------------ raw HTTP helpers

const AKID: &str = "AKIDLISTED";
const SECRET: &str = "listed-secret";
const TOKEN: &str = "admin-s3cret";

fn keys() -> AuthKeys {
    AuthKeys::parse(&format!(
        "[ci]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n"
    ))
    .expect("keys")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// `headers` plus `x-amz-date` and a SigV4 `authorization` over all of them.
fn signed(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (akid, secret): (&str, &str),
) -> Vec<(String, String)> {
    use sha2::Digest;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let (days, rem) = (now.div_euclid(86_400), now.rem_euclid(86_400));
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}{m:02}{d:02}");
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    all.push(("x-amz-date".into(), amz_date.clone()));
    all.sort();
    let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    let mut canonical = format!("{method}\n{path}\n\n");
    for (k, v) in &all {
        canonical.push_str(&format!("{k}:{v}\n"));
    }
    canonical.push_str(&format!(
        "\n{}\n{}",
        names.join(";"),
        hex(&sha2::Sha256::digest(body))
    ));
    let scope = format!("{date}/{REGION}/kinesis/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha2::Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [REGION, "kinesis", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    all.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={}, Signature={signature}",
            names.join(";")
        ),
    ));
    all
}

/// A response read off a raw socket: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Send one HTTP/1.1 request (`Connection: close`) and read the answer to the
/// close; bounded to 10 s.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k == "host") {
            head.push_str(&format!("host: {addr}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| k == "content-length") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await.expect("write head");
        let _ = tcp.write_all(body).await;
        read_answer(&mut tcp).await
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer within 10 s")
}

/// Read one response up to the connection's close.
async fn read_answer(tcp: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf).await;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Answer {
        status,
        head,
        body: buf[end + 4..].to_vec(),
    }
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether the broker closes `tcp` (EOF or reset) within 10 s, reading and
/// discarding whatever it sends first.
async fn closed_by_broker(tcp: &mut TcpStream) -> bool {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_ok()
}

// ------------------------------------------------ finding 8: admin and metrics

const SLOW_PLAN: &str = r#"{"rules": [{"operation": "PutRecord", "error_rate": 1.0}]}"#;

#[tokio::test]
async fn admin_and_metrics_need_credentials_under_auth() {
    let broker = start(
        BrokerConfig::builder()
            .auth(keys())
            .admin_token(kinesis_broker::admin::AdminToken::new(TOKEN).expect("token"))
            .protect_metrics(true),
    )
    .await;
    let addr = broker.local_addr();
    let json = ("content-type", "application/json");
    // Anonymous: 401, and the plan is not applied.
    let a = http(
        addr,
        "PUT",
        "/admin/faults",
        &h(&[json]),
        SLOW_PLAN.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 401, "{a:?}");
    assert!(
        a.head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{a:?}"
    );
    for method in ["GET", "DELETE"] {
        assert_eq!(
            http(addr, method, "/admin/faults", &[], b"").await.status,
            401
        );
    }
    assert!(broker.service().faults().plan().rules.is_empty());
    // A wrong token, an unlisted key, a tampered body: 403.
    let wrong = format!("Bearer {TOKEN}x");
    let a = http(
        addr,
        "PUT",
        "/admin/faults",
        &h(&[json, ("authorization", &wrong)]),
        SLOW_PLAN.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    let host = addr.to_string();
    let headers = [("host", host.as_str()), json];
    let unlisted = signed(
        "PUT",
        "/admin/faults",
        &headers,
        SLOW_PLAN.as_bytes(),
        ("AKIDOTHER", SECRET),
    );
    let a = http(
        addr,
        "PUT",
        "/admin/faults",
        &unlisted,
        SLOW_PLAN.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 403, "{a:?}");
    let listed = signed(
        "PUT",
        "/admin/faults",
        &headers,
        SLOW_PLAN.as_bytes(),
        (AKID, SECRET),
    );
    let tampered = SLOW_PLAN.replace("1.0", "0.5");
    let a = http(addr, "PUT", "/admin/faults", &listed, tampered.as_bytes()).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(broker.service().faults().plan().rules.is_empty());
    // A signed request from a listed key, or the token: accepted.
    let a = http(addr, "PUT", "/admin/faults", &listed, SLOW_PLAN.as_bytes()).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(broker.service().faults().plan().rules.len(), 1);
    let bearer = format!("Bearer {TOKEN}");
    let a = http(
        addr,
        "DELETE",
        "/admin/faults",
        &h(&[("authorization", &bearer)]),
        b"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(broker.service().faults().plan().rules.is_empty());
    // /metrics likewise; /health stays open.
    assert_eq!(http(addr, "GET", "/metrics", &[], b"").await.status, 401);
    let a = http(
        addr,
        "GET",
        "/metrics",
        &h(&[("authorization", &bearer)]),
        b"",
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let signed_get = signed(
        "GET",
        "/metrics",
        &[("host", host.as_str())],
        b"",
        (AKID, SECRET),
    );
    assert_eq!(
        http(addr, "GET", "/metrics", &signed_get, b"").await.status,
        200
    );
    assert_eq!(http(addr, "GET", "/health", &[], b"").await.status, 200);
    broker.shutdown().await;

    // --auth alone: admin needs a signature, /metrics stays open unless protected.
    let broker = start(BrokerConfig::builder().auth(keys())).await;
    let addr = broker.local_addr();
    assert_eq!(
        http(
            addr,
            "PUT",
            "/admin/faults",
            &h(&[json]),
            SLOW_PLAN.as_bytes()
        )
        .await
        .status,
        401
    );
    let a = http(
        addr,
        "PUT",
        "/admin/faults",
        &h(&[json, ("authorization", &bearer)]),
        SLOW_PLAN.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 403, "no token is configured: {a:?}");
    assert_eq!(http(addr, "GET", "/metrics", &[], b"").await.status, 200);
    broker.shutdown().await;
}

#[tokio::test]
async fn fault_plans_cannot_park_calls_for_long() {
    let broker = start(BrokerConfig::builder()).await;
    let addr = broker.local_addr();
    let json = h(&[("content-type", "application/json")]);
    for plan in [
        r#"{"rules": [{"latency_ms": 86400000}]}"#,
        r#"{"rules": [{"latency_ms": 18446744073709551615}]}"#,
        r#"{"rules": [{"operation": "GetRecords", "latency_ms": 30000, "jitter_ms": 20000}, {"latency_ms": 10001}]}"#,
    ] {
        let a = http(addr, "PUT", "/admin/faults", &json, plan.as_bytes()).await;
        assert_eq!(a.status, 400, "{plan}: {a:?}");
        assert!(
            String::from_utf8_lossy(&a.body).contains("ms allowed"),
            "{a:?}"
        );
    }
    assert!(broker.service().faults().plan().rules.is_empty());
    let ok = r#"{"rules": [{"operation": "GetRecords", "latency_ms": 30000, "jitter_ms": 20000}, {"latency_ms": 10000}]}"#;
    assert_eq!(
        http(addr, "PUT", "/admin/faults", &json, ok.as_bytes())
            .await
            .status,
        200
    );
    broker.shutdown().await;
}

// ------------------------------------------------ finding 9: connections and bodies

fn limits() -> ConnectionLimits {
    ConnectionLimits::default()
}

#[tokio::test]
async fn no_body_is_read_for_a_request_without_a_listed_key() {
    let broker = start(BrokerConfig::builder().auth(keys())).await;
    let addr = broker.local_addr();
    let twelve_mib = (12 * 1024 * 1024).to_string();
    let base = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Kinesis_20131202.PutRecords"),
        ("content-length", twelve_mib.as_str()),
    ];
    // 12 MiB announced, not a byte sent: the broker answers from the headers.
    let a = http(addr, "POST", "/", &h(&base), b"").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        String::from_utf8_lossy(&a.body).contains("MissingAuthenticationToken"),
        "{a:?}"
    );
    let unknown = "AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN/20260101/eu-west-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00";
    let mut with_unknown = base.to_vec();
    with_unknown.push(("authorization", unknown));
    with_unknown.push(("x-amz-date", "20260101T000000Z"));
    let a = http(addr, "POST", "/", &h(&with_unknown), b"").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        String::from_utf8_lossy(&a.body).contains("UnrecognizedClient"),
        "{a:?}"
    );
    // A correctly signed request still gets through.
    let c = client(&broker, Credentials::new(AKID, SECRET));
    c.list_streams(&ListStreamsInput::default())
        .await
        .expect("a signed call");
    broker.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let broker = start(BrokerConfig::builder().connection_limits(ConnectionLimits {
        max_connections: 3,
        ..limits()
    }))
    .await;
    let addr = broker.local_addr();
    let get_health = format!("GET /health HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    // Three kept-alive connections, each known to be served.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(get_health.as_bytes()).await.expect("write");
        let mut buf = [0u8; 1024];
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        open.push(tcp);
    }
    // A fourth is closed without an answer.
    let mut fourth = TcpStream::connect(addr)
        .await
        .expect("the kernel accepts it");
    let _ = fourth.write_all(get_health.as_bytes()).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), fourth.read_to_end(&mut buf))
        .await
        .expect("closed within 10 s");
    assert!(
        read.is_err() || buf.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // Once one closes, new connections are served again.
    drop(open.pop());
    let mut served = false;
    for _ in 0..200 {
        let a = tokio::time::timeout(Duration::from_secs(10), async {
            let mut tcp = TcpStream::connect(addr).await.ok()?;
            tcp.write_all(get_health.as_bytes()).await.ok()?;
            let mut buf = [0u8; 1024];
            let n = tcp.read(&mut buf).await.ok()?;
            Some(buf[..n].starts_with(b"HTTP/1.1 200"))
        })
        .await
        .ok()
        .flatten();
        if a == Some(true) {
            served = true;
            break;
        }
        // The broker notices the close on its own schedule.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served, "a slot freed up");
    let metrics = broker.service().metrics().gather_text();
    assert!(
        metrics.contains("kinesis_connections_cut_total{limit=\"max_connections\"}"),
        "{metrics}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let broker = start(BrokerConfig::builder().connection_limits(ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        ..limits()
    }))
    .await;
    let addr = broker.local_addr();
    // Connected, never a byte.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert!(closed_by_broker(&mut silent).await, "a silent connection");
    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: app")
        .await
        .expect("write");
    assert!(closed_by_broker(&mut slow).await, "a slow request head");
    // The HTTP/2 preface and settings, and no request.
    let mut h2 = TcpStream::connect(addr).await.expect("connect");
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("write");
    assert!(
        closed_by_broker(&mut h2).await,
        "an HTTP/2 connection with no request"
    );
    // Kept alive after a request, then idle.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(format!("GET /health HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    assert!(
        closed_by_broker(&mut idle).await,
        "an idle kept-alive connection"
    );
    let metrics = broker.service().metrics().gather_text();
    assert!(
        metrics.contains("kinesis_connections_cut_total{limit=\"header_read_timeout\"}"),
        "{metrics}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn stalled_uploads_are_cut_off() {
    // The body must arrive in time...
    let broker = start(BrokerConfig::builder().connection_limits(ConnectionLimits {
        body_read_timeout: Duration::from_millis(300),
        ..limits()
    }))
    .await;
    let addr = broker.local_addr();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-length: 1000\r\n\r\n{{\"Lim"
    );
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let a = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut tcp))
        .await
        .expect("answered within 10 s");
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        String::from_utf8_lossy(&a.body).contains("did not arrive in time"),
        "{a:?}"
    );
    broker.shutdown().await;
    // ...and a connection moving no bytes at all is closed even mid-request.
    let broker = start(BrokerConfig::builder().connection_limits(ConnectionLimits {
        idle_timeout: Duration::from_millis(300),
        ..limits()
    }))
    .await;
    let addr = broker.local_addr();
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write");
    assert!(closed_by_broker(&mut tcp).await, "an idle upload");
    let metrics = broker.service().metrics().gather_text();
    assert!(
        metrics.contains("kinesis_connections_cut_total{limit=\"idle_timeout\"} 1"),
        "{metrics}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn http2_settings_bound_streams_windows_and_frames() {
    for (configured, expected) in [(None, 100u32), (Some(7u32), 7)] {
        let mut l = limits();
        if let Some(n) = configured {
            l.h2_max_concurrent_streams = n;
        }
        let broker = start(BrokerConfig::builder().connection_limits(l)).await;
        let mut tcp = TcpStream::connect(broker.local_addr())
            .await
            .expect("connect");
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .expect("write");
        // The server's first frame is its SETTINGS.
        let mut head = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut head))
            .await
            .expect("settings within 10 s")
            .expect("read");
        assert_eq!(head[3], 0x4, "a SETTINGS frame");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.expect("read");
        let settings: Vec<(u16, u32)> = payload
            .chunks_exact(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect();
        let get = |id: u16| settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
        assert_eq!(
            get(0x3),
            Some(expected),
            "MAX_CONCURRENT_STREAMS: {settings:?}"
        );
        assert_eq!(
            get(0x4),
            Some(1024 * 1024),
            "INITIAL_WINDOW_SIZE: {settings:?}"
        );
        assert_eq!(get(0x5), Some(256 * 1024), "MAX_FRAME_SIZE: {settings:?}");
        assert!(
            get(0x6).is_some_and(|v| v <= 16 * 1024),
            "MAX_HEADER_LIST_SIZE: {settings:?}"
        );
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn a_full_body_budget_turns_requests_away() {
    const MIB: usize = 1024 * 1024;
    let broker = start(
        BrokerConfig::builder()
            .max_body_bytes(MIB)
            .connection_limits(ConnectionLimits {
                max_inflight_body_bytes: MIB,
                ..limits()
            }),
    )
    .await;
    let addr = broker.local_addr();
    // One upload announces the whole budget and stalls.
    let mut hog = TcpStream::connect(addr).await.expect("connect");
    hog.write_all(
        format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Kinesis_20131202.ListStreams\r\ncontent-length: {MIB}\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    // The broker has reserved it once the hog's first body byte is read;
    // until then another call may still get in, so ask until it is refused.
    let json = h(&[
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "Kinesis_20131202.ListStreams"),
    ]);
    let mut refused = None;
    for _ in 0..100 {
        let a = http(addr, "POST", "/", &json, b"{}").await;
        if a.status == 503 {
            refused = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let a = refused.expect("a call is turned away while the budget is full");
    assert!(
        String::from_utf8_lossy(&a.body).contains("ServiceUnavailable"),
        "{a:?}"
    );
    // The hog finishes (its body is not JSON): the budget is free again.
    hog.write_all(&vec![b' '; MIB - 1])
        .await
        .expect("write the rest");
    let a = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut hog))
        .await
        .expect("the hog is answered");
    assert_eq!(a.status, 400, "{a:?}");
    // Calls must be signed even without --auth (only the key goes unchecked).
    let json = signed(
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ],
        b"{}",
        (AKID, SECRET),
    );
    let a = http(addr, "POST", "/", &json, b"{}").await;
    assert_eq!(a.status, 200, "{a:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_handshakes_must_finish_in_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let files = kinesis_broker::TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&files.key, ck.signing_key.serialize_pem()).expect("write key");
    let broker = start(
        BrokerConfig::builder()
            .tls(files)
            .connection_limits(ConnectionLimits {
                tls_handshake_timeout: Duration::from_millis(300),
                ..limits()
            }),
    )
    .await;
    // Connected, never a ClientHello.
    let mut silent = TcpStream::connect(broker.local_addr())
        .await
        .expect("connect");
    assert!(closed_by_broker(&mut silent).await, "a silent TLS client");
    // The start of a ClientHello record, and no more.
    let mut partial = TcpStream::connect(broker.local_addr())
        .await
        .expect("connect");
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .expect("write");
    assert!(
        closed_by_broker(&mut partial).await,
        "a partial ClientHello"
    );
    let metrics = broker.service().metrics().gather_text();
    assert!(
        metrics.contains("kinesis_connections_cut_total{limit=\"tls_handshake_timeout\"} 2"),
        "{metrics}"
    );
    broker.shutdown().await;
}
