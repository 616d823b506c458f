use super::response::ERROR_SNIPPET;
use super::*;
use crate::codec::{Blob, CBOR_CONTENT_TYPE, JSON_CONTENT_TYPE};
use crate::error::{ErrorCode, KinesisError};
use http::Uri;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// 2015-08-30T12:36:00Z, the time of the `docs/sigv4.md` §5 vectors.
fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn client(endpoint: &str) -> Client {
    Client::new(ClientConfig::builder().endpoint(endpoint).build()).expect("client")
}

// ---------------------------------------------------------------- unit tests

#[test]
fn endpoint_is_normalised() {
    let e = Endpoint::parse("https://kinesis.us-east-1.amazonaws.com").unwrap();
    assert_eq!(e.uri_str, "https://kinesis.us-east-1.amazonaws.com/");
    assert_eq!(e.host, "kinesis.us-east-1.amazonaws.com");
    let e = Endpoint::parse("https://kinesis.us-east-1.amazonaws.com:443/").unwrap();
    assert_eq!(e.host, "kinesis.us-east-1.amazonaws.com");
    let e = Endpoint::parse("http://localhost:80").unwrap();
    assert_eq!(e.uri_str, "http://localhost/");
    let e = Endpoint::parse("http://127.0.0.1:4567").unwrap();
    assert_eq!(e.host, "127.0.0.1:4567");
    assert_eq!(e.host_header, "127.0.0.1:4567");
    let e = Endpoint::parse("http://[::1]:4567").unwrap();
    assert_eq!(e.host, "[::1]:4567");
    for bad in [
        "ftp://x",
        "127.0.0.1:4567",
        "http://x/kinesis",
        "http://x/?a=b",
        "http://u:p@x",
        "",
    ] {
        assert!(
            matches!(Endpoint::parse(bad), Err(ClientError::Config(_))),
            "{bad}"
        );
    }
}

#[test]
fn new_rejects_bad_config() {
    let bad = |c: ClientConfig| matches!(Client::new(c), Err(ClientError::Config(_)));
    assert!(bad(ClientConfig::builder().endpoint("nope").build()));
    assert!(bad(ClientConfig::builder().max_connections(0).build()));
    assert!(bad(ClientConfig::builder().max_attempts(0).build()));
    assert!(bad(ClientConfig::builder().region("").build()));
    assert!(bad(ClientConfig::builder()
        .subscribe_read_timeout(Duration::ZERO)
        .build()));
    assert!(bad(ClientConfig::builder()
        .custom_ca(b"not pem".to_vec())
        .build()));
    assert!(bad(ClientConfig::builder()
        .credentials(Credentials::new("", "x"))
        .build()));
    let c = Client::new(ClientConfig::builder().custom_ca(TEST_CA_PEM).build()).unwrap();
    assert_eq!(c.retry_policy(), RetryPolicy::default());
    assert!(format!("{c:?}").contains("kinesis.us-east-1.amazonaws.com"));
}

// `docs/sigv4.md` §5 (Kinesis CreateStream), end to end through the request builder: the spec's inputs
// produce the spec's Authorization header.
#[test]
fn request_for_create_stream_matches_sigv4_vector() {
    // AWS's endpoint: without explicit keys the client would use the chain.
    let c = Client::new(
        ClientConfig::builder()
            .credentials(Credentials::test())
            .build(),
    )
    .unwrap();
    let body = Encoding::Json.encode(&CreateStreamInput {
        stream_name: Some("test-stream".into()),
        shard_count: Some(1),
        ..Default::default()
    });
    assert_eq!(&body[..], br#"{"StreamName":"test-stream","ShardCount":1}"#);
    let req = c
        .build_request(Operation::CreateStream, body, suite_time())
        .unwrap();
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.uri(), "https://kinesis.us-east-1.amazonaws.com/");
    let h = req.headers();
    assert_eq!(h["content-type"], JSON_CONTENT_TYPE);
    assert_eq!(h["x-amz-target"], "Kinesis_20131202.CreateStream");
    assert_eq!(h["host"], "kinesis.us-east-1.amazonaws.com");
    assert_eq!(h["x-amz-date"], "20150830T123600Z");
    assert_eq!(h["user-agent"], USER_AGENT);
    assert!(USER_AGENT.starts_with("kinesis-toolkit/0."));
    assert!(!h.contains_key("x-amz-security-token"));
    assert_eq!(
        h["authorization"],
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=7b774b5e27b65075219a631db686f51a1e0a43a9a7908b309c8f2111b02a9fed"
    );
}

#[test]
fn request_headers_follow_config() {
    let c = Client::new(
        ClientConfig::builder()
            .endpoint("http://127.0.0.1:4567")
            .region("eu-west-1")
            .encoding(Encoding::Cbor)
            .credentials(Credentials::new("AKIA1", "secret").with_session_token("tok"))
            .build(),
    )
    .unwrap();
    let req = c
        .build_request(
            Operation::PutRecords,
            Bytes::from_static(&[0xa0]),
            suite_time(),
        )
        .unwrap();
    let h = req.headers();
    assert_eq!(h["content-type"], CBOR_CONTENT_TYPE);
    assert_eq!(h["x-amz-target"], "Kinesis_20131202.PutRecords");
    assert_eq!(h["host"], "127.0.0.1:4567");
    assert_eq!(h["x-amz-security-token"], "tok");
    let auth = h["authorization"].to_str().unwrap();
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIA1/20150830/eu-west-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="), "{auth}");

    // HTTP/2 carries the host as :authority only.
    let c = Client::new(
        ClientConfig::builder()
            .endpoint("http://127.0.0.1:4567")
            .http2(true)
            .build(),
    )
    .unwrap();
    let req = c
        .build_request(
            Operation::ListShards,
            Bytes::from_static(b"{}"),
            suite_time(),
        )
        .unwrap();
    assert!(!req.headers().contains_key("host"));
    assert_eq!(req.uri().authority().unwrap(), "127.0.0.1:4567");
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn error_body_json() {
    let e = parse_error_response(
        400,
        &headers(&[("content-type", JSON_CONTENT_TYPE)]),
        br#"{"__type":"ResourceNotFoundException","message":"Stream foo under account 123456789012 not found."}"#,
        Encoding::Json,
    );
    assert_eq!(e.code(), Some(ErrorCode::ResourceNotFound));
    assert_eq!(
        e.service_error().unwrap().message,
        "Stream foo under account 123456789012 not found."
    );
    // Namespaced type, `Message` spelling, no content type.
    let e = parse_error_response(
        400,
        &HeaderMap::new(),
        br#"{"__type":"com.amazonaws.kinesis#LimitExceededException","Message":"Rate exceeded"}"#,
        Encoding::Cbor,
    );
    assert_eq!(e.code(), Some(ErrorCode::LimitExceeded));
    assert_eq!(e.service_error().unwrap().message, "Rate exceeded");
    assert!(e.is_throttling());
}

#[test]
fn error_body_cbor() {
    let body = KinesisError::throughput_exceeded("Rate exceeded for shard").body();
    let bytes = Encoding::Cbor.encode(&body);
    let e = parse_error_response(
        400,
        &headers(&[("content-type", CBOR_CONTENT_TYPE)]),
        &bytes,
        Encoding::Json,
    );
    assert_eq!(e.code(), Some(ErrorCode::ProvisionedThroughputExceeded));
    assert_eq!(
        e.service_error().unwrap().message,
        "Rate exceeded for shard"
    );
    // Without a content type, a non-JSON body is read with the request's encoding.
    let e = parse_error_response(500, &HeaderMap::new(), &bytes, Encoding::Cbor);
    assert_eq!(e.code(), Some(ErrorCode::ProvisionedThroughputExceeded));
}

#[test]
fn error_type_header_wins() {
    let e = parse_error_response(
        400,
        &headers(&[
            (
                "x-amzn-ErrorType",
                "ExpiredIteratorException:http://internal.amazon.com/",
            ),
            ("content-type", JSON_CONTENT_TYPE),
        ]),
        br#"{"message":"Iterator expired"}"#,
        Encoding::Json,
    );
    assert_eq!(e.code(), Some(ErrorCode::ExpiredIterator));
    assert_eq!(e.service_error().unwrap().message, "Iterator expired");
    // Header alone, empty body.
    let e = parse_error_response(
        503,
        &headers(&[("x-amzn-errortype", "ServiceUnavailableException")]),
        b"",
        Encoding::Json,
    );
    assert_eq!(e.code(), Some(ErrorCode::ServiceUnavailable));
    // Unknown names keep the raw name; 5xx becomes InternalFailure.
    let e = parse_error_response(
        502,
        &headers(&[("x-amzn-errortype", "BadGateway")]),
        b"",
        Encoding::Json,
    );
    assert_eq!(e.code(), Some(ErrorCode::InternalFailure));
    assert!(e.to_string().contains("BadGateway"));
}

#[test]
fn unreadable_error_body_keeps_status() {
    let xml = b"<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n";
    let e = parse_error_response(403, &HeaderMap::new(), xml, Encoding::Json);
    assert_eq!(e.http_status(), Some(403));
    assert!(!e.is_retryable());
    assert!(matches!(&e, ClientError::Http { body, .. } if body.contains("AccessDenied")));
    let e = parse_error_response(502, &HeaderMap::new(), &[b'x'; 10_000], Encoding::Json);
    assert!(
        matches!(&e, ClientError::Http { status: 502, body, .. } if body.len() == ERROR_SNIPPET)
    );
    assert!(e.is_retryable() && e.may_have_been_applied());
    let e = parse_error_response(
        400,
        &headers(&[("content-type", JSON_CONTENT_TYPE)]),
        br#"{"message":"no type"}"#,
        Encoding::Json,
    );
    assert_eq!(e.http_status(), Some(400));
    let e = parse_error_response(429, &HeaderMap::new(), b"", Encoding::Json);
    assert!(e.is_throttling() && e.is_retryable());
}

#[test]
fn success_bodies_decode() {
    let empty: Empty = decode_output(&HeaderMap::new(), b"", Encoding::Cbor).unwrap();
    assert_eq!(empty, Empty {});
    let empty: Empty = decode_output(&HeaderMap::new(), b"{}", Encoding::Json).unwrap();
    assert_eq!(empty, Empty {});
    let out: GetShardIteratorOutput = decode_output(
        &headers(&[("content-type", JSON_CONTENT_TYPE)]),
        br#"{"ShardIterator":"AAAA"}"#,
        Encoding::Cbor,
    )
    .unwrap();
    assert_eq!(out.shard_iterator, "AAAA");
    let e = decode_output::<GetShardIteratorOutput>(&HeaderMap::new(), b"", Encoding::Json)
        .unwrap_err();
    assert!(matches!(e, ClientError::Decode(_)));
    assert!(e.may_have_been_applied() && !e.is_retryable());
}

#[test]
fn call_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let c = client("http://127.0.0.1:1");
    let input = PutRecordsInput::default();
    assert_send(c.put_records(&input));
    assert_send(c.call_once(&input));
    assert_send(c.describe_limits());
    fn assert_sync<T: Send + Sync + Clone + 'static>() {}
    assert_sync::<Client>();
    assert_sync::<ClientError>();
}

// ----------------------------------------------------- a tiny test server

/// What the test server received.
#[derive(Debug, Clone)]
struct Seen {
    version: http::Version,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn target(&self) -> &str {
        self.headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The test server's answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", JSON_CONTENT_TYPE.into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    fn error(status: u16, code: ErrorCode, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::to_string(&KinesisError::new(code, message).body()).unwrap(),
        )
    }

    fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Responder = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

#[derive(Default)]
struct ServerState {
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl ServerState {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl TestServer {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve_connection<S>(io: S, state: Arc<ServerState>, respond: Arc<Responder>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        let respond = respond.clone();
        async move {
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let seen = Seen {
                version: parts.version,
                uri: parts.uri,
                method: parts.method,
                headers: parts.headers,
                body,
            };
            let index = {
                let mut all = state.seen.lock().unwrap();
                all.push(seen.clone());
                all.len() - 1
            };
            let reply = respond(&seen, index);
            tokio::time::sleep(reply.delay).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            let mut resp = hyper::Response::new(Full::new(Bytes::from(reply.body)));
            *resp.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
            for (k, v) in reply.headers {
                resp.headers_mut()
                    .insert(k, HeaderValue::from_str(&v).unwrap());
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn start_server(
    respond: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> TestServer {
    start_server_with_tls(None, respond).await
}

async fn start_server_with_tls(
    tls: Option<tokio_rustls::TlsAcceptor>,
    respond: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(ServerState::default());
    let respond: Arc<Responder> = Arc::new(respond);
    let st = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (st, respond, tls) = (st.clone(), respond.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_connection(stream, st, respond).await;
                        }
                    }
                    None => serve_connection(stream, st, respond).await,
                }
            });
        }
    });
    TestServer { addr, state }
}

/// Re-sign what the server received (its own host, headers and body) and
/// check that the client's signature matches: what was signed is what was sent.
fn assert_signed(seen: &Seen, scheme: &str, creds: &Credentials, region: &str) {
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/");
    let h = &seen.headers;
    let host = match h.get("host") {
        Some(v) => v.to_str().unwrap().to_string(),
        None => seen.uri.authority().expect(":authority").to_string(),
    };
    let date = h["x-amz-date"].to_str().unwrap();
    let time = crate::aws_date::parse_amz_date(date).expect("X-Amz-Date");
    let mut expected = HeaderMap::new();
    Signer::new(creds, region, "kinesis")
        .sign_into(
            "POST",
            &format!("{scheme}://{host}/"),
            &[
                ("content-type", h["content-type"].to_str().unwrap()),
                ("host", &host),
                ("x-amz-target", h["x-amz-target"].to_str().unwrap()),
            ],
            &seen.body,
            time,
            &mut expected,
        )
        .unwrap();
    assert_eq!(h["authorization"], expected["authorization"]);
    assert_eq!(h["user-agent"], USER_AGENT);
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "{date}");
}

fn put_records_input(n: usize) -> PutRecordsInput {
    PutRecordsInput {
        stream: StreamRef::name("s"),
        records: Some(
            (0..n)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob::from(vec![i as u8; 100])),
                    partition_key: Some(format!("pk-{i}")),
                    explicit_hash_key: None,
                })
                .collect(),
        ),
    }
}

fn fast_retries(builder: ClientConfigBuilder) -> ClientConfigBuilder {
    builder.backoff(Duration::from_millis(1), Duration::from_millis(5))
}

// ------------------------------------------------------------ end to end

#[tokio::test]
async fn e2e_put_records_json_is_signed_and_decoded() {
    let server = start_server(|seen, _| {
        assert_eq!(seen.target(), "Kinesis_20131202.PutRecords");
        let input: PutRecordsInput = Encoding::Json.decode(&seen.body).unwrap();
        let n = input.records.unwrap_or_default().len();
        let records: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"SequenceNumber":"{i}","ShardId":"shardId-000000000000"}}"#))
            .collect();
        Reply::json(
            200,
            &format!(
                r#"{{"FailedRecordCount":0,"Records":[{}],"EncryptionType":"NONE"}}"#,
                records.join(",")
            ),
        )
    })
    .await;
    let creds = Credentials::new("AKIATEST", "secret-key").with_session_token("session");
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(server.url())
            .region("eu-central-1")
            .credentials(creds.clone())
            .build(),
    )
    .unwrap();
    let out = c.put_records(&put_records_input(500)).await.unwrap();
    assert_eq!(out.records.len(), 500);
    assert_eq!(out.failed_record_count, 0);
    let seen = server.state.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, http::Version::HTTP_11);
    assert_eq!(seen[0].headers["content-type"], JSON_CONTENT_TYPE);
    assert_eq!(seen[0].headers["host"], server.addr.to_string());
    assert_eq!(seen[0].headers["x-amz-security-token"], "session");
    assert_signed(&seen[0], "http", &creds, "eu-central-1");
}

#[tokio::test]
async fn e2e_empty_outputs_and_empty_inputs() {
    let server = start_server(|seen, _| match seen.target() {
        "Kinesis_20131202.CreateStream" => Reply {
            status: 200,
            headers: vec![],
            body: vec![],
            delay: Duration::ZERO,
        },
        "Kinesis_20131202.DescribeLimits" => {
            assert_eq!(&seen.body[..], b"{}");
            Reply::json(
                200,
                r#"{"ShardLimit":500,"OpenShardCount":3,"OnDemandStreamCount":0,"OnDemandStreamCountLimit":50}"#,
            )
        }
        _ => Reply::json(200, "{}"),
    })
    .await;
    let c = client(&server.url());
    c.create_stream(&CreateStreamInput {
        stream_name: Some("s".into()),
        shard_count: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    c.delete_stream(&DeleteStreamInput {
        stream: StreamRef::name("s"),
        ..Default::default()
    })
    .await
    .unwrap();
    let limits = c.describe_limits().await.unwrap();
    assert_eq!(limits.shard_limit, 500);
    assert_eq!(server.state.seen().len(), 3);
    for seen in server.state.seen() {
        assert_signed(&seen, "http", &Credentials::test(), "us-east-1");
    }
}

#[tokio::test]
async fn e2e_list_all_shards_follows_next_token_until_absent_or_empty() {
    let shard = |id: &str| {
        format!(
            r#"{{"ShardId":"{id}","HashKeyRange":{{"StartingHashKey":"0","EndingHashKey":"1"}},"SequenceNumberRange":{{"StartingSequenceNumber":"0"}}}}"#
        )
    };
    let (s0, s1, s2) = (shard("shardId-0"), shard("shardId-1"), shard("shardId-2"));
    let server = start_server(move |seen, _| {
        let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
        match body.get("NextToken").and_then(|t| t.as_str()) {
            // The first page names the stream; later ones only carry the token.
            None => {
                assert_eq!(body["StreamName"], "s");
                Reply::json(200, &format!(r#"{{"Shards":[{s0}],"NextToken":"t1"}}"#))
            }
            Some("t1") => {
                assert!(body.get("StreamName").is_none());
                Reply::json(200, &format!(r#"{{"Shards":[{s1}],"NextToken":"t2"}}"#))
            }
            Some("t2") => Reply::json(200, &format!(r#"{{"Shards":[{s2}],"NextToken":""}}"#)),
            Some(other) => panic!("unexpected token {other}"),
        }
    })
    .await;
    let shards = client(&server.url())
        .list_all_shards(&StreamRef::name("s"))
        .await
        .unwrap();
    let ids: Vec<_> = shards.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(ids, ["shardId-0", "shardId-1", "shardId-2"]);
    assert_eq!(server.state.seen().len(), 3);
}

#[tokio::test]
async fn e2e_cbor_requests_and_errors() {
    let server = start_server(|seen, _| {
        assert_eq!(seen.headers["content-type"], CBOR_CONTENT_TYPE);
        match seen.target() {
            "Kinesis_20131202.PutRecord" => {
                let input: PutRecordInput = Encoding::Cbor.decode(&seen.body).unwrap();
                assert_eq!(input.data.unwrap().as_bytes(), b"hi");
                let out = PutRecordOutput {
                    shard_id: "shardId-000000000001".into(),
                    sequence_number: "42".into(),
                    encryption_type: None,
                };
                Reply {
                    status: 200,
                    headers: vec![("content-type", CBOR_CONTENT_TYPE.into())],
                    body: Encoding::Cbor.encode(&out).to_vec(),
                    delay: Duration::ZERO,
                }
            }
            _ => Reply {
                status: 400,
                headers: vec![("content-type", CBOR_CONTENT_TYPE.into())],
                body: Encoding::Cbor
                    .encode(&KinesisError::not_found("Stream t not found").body())
                    .to_vec(),
                delay: Duration::ZERO,
            },
        }
    })
    .await;
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(server.url())
            .encoding(Encoding::Cbor)
            .build(),
    )
    .unwrap();
    let out = c
        .put_record(&PutRecordInput {
            stream: StreamRef::name("s"),
            data: Some(Blob::from(&b"hi"[..])),
            partition_key: Some("k".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.sequence_number, "42");
    let err = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name("t"),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ResourceNotFound));
    assert_eq!(err.service_error().unwrap().message, "Stream t not found");
    assert_eq!(server.state.seen().len(), 2, "not-found is not retried");
    assert_signed(
        &server.state.seen()[0],
        "http",
        &Credentials::test(),
        "us-east-1",
    );
}

#[tokio::test]
async fn e2e_throttling_is_retried_until_success() {
    let server = start_server(|_, i| {
        if i < 2 {
            Reply::error(
                400,
                ErrorCode::ProvisionedThroughputExceeded,
                "Rate exceeded",
            )
        } else {
            Reply::json(
                200,
                r#"{"Records":[],"NextShardIterator":"next","MillisBehindLatest":0}"#,
            )
        }
    })
    .await;
    let c =
        Client::new(fast_retries(ClientConfig::builder().endpoint(server.url())).build()).unwrap();
    let out = c
        .get_records(&GetRecordsInput {
            shard_iterator: Some("it".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.next_shard_iterator.as_deref(), Some("next"));
    let seen = server.state.seen();
    assert_eq!(seen.len(), 3);
    // Every attempt is signed afresh over the same body.
    assert!(seen.iter().all(|s| s.body == seen[0].body));

    // The attempt budget is respected, and call_once makes one attempt.
    let server =
        start_server(|_, _| Reply::error(400, ErrorCode::LimitExceeded, "Rate exceeded")).await;
    let c =
        Client::new(fast_retries(ClientConfig::builder().endpoint(server.url())).build()).unwrap();
    let err = c
        .list_shards(&ListShardsInput::default())
        .await
        .unwrap_err();
    assert!(err.is_throttling());
    assert_eq!(server.state.seen().len(), 3);
    let err = c.call_once(&put_records_input(1)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::LimitExceeded));
    assert_eq!(server.state.seen().len(), 4);
}

#[tokio::test]
async fn e2e_maybe_applied_errors_are_not_retried_for_writes() {
    let server = start_server(|_, _| {
        Reply::error(500, ErrorCode::InternalFailure, "Internal service failure.")
    })
    .await;
    let c =
        Client::new(fast_retries(ClientConfig::builder().endpoint(server.url())).build()).unwrap();
    let err = c.put_records(&put_records_input(3)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InternalFailure));
    assert!(err.may_have_been_applied());
    assert_eq!(
        server.state.seen().len(),
        1,
        "PutRecords after a 500 is not retried"
    );
    let err = c
        .list_shards(&ListShardsInput::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InternalFailure));
    assert_eq!(server.state.seen().len(), 4, "reads are retried");
}

#[tokio::test]
async fn e2e_timeouts() {
    let server =
        start_server(|_, _| Reply::json(200, "{}").delayed(Duration::from_millis(400))).await;
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(server.url()))
            .request_timeout(Duration::from_millis(100))
            .max_attempts(2)
            .build(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = c.put_record(&PutRecordInput::default()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Timeout { after, .. } if *after == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(350));
    assert_eq!(server.state.seen().len(), 1);
    let err = c
        .get_shard_iterator(&GetShardIteratorInput::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }));
    assert_eq!(server.state.seen().len(), 3);
}

#[tokio::test]
async fn e2e_connect_error_is_not_applied() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(format!("http://127.0.0.1:{port}"))).build(),
    )
    .unwrap();
    let err = c.put_records(&put_records_input(1)).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert!(err.is_retryable() && !err.may_have_been_applied());
}

#[tokio::test]
async fn connect_errors_name_the_call_and_keep_their_cause() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(format!("http://127.0.0.1:{port}")))
            .max_attempts(1)
            .build(),
    )
    .unwrap();
    let err = c.put_records(&put_records_input(1)).await.unwrap_err();
    assert!(err.is_connect() && !err.is_timeout(), "{err:?}");
    assert_eq!(err.operation(), Some("PutRecords"));
    assert_eq!(err.stream(), Some("s"));
    let shown = err.to_string();
    assert!(
        shown.starts_with("PutRecords on stream s: connect error"),
        "{shown}"
    );
    let source = std::error::Error::source(&err).expect("a source");
    assert!(
        source
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect()),
        "{source:?}"
    );
    assert!(err.service_error().is_none());
}

#[tokio::test]
async fn timeouts_name_the_call_and_keep_their_cause() {
    let server =
        start_server(|_, _| Reply::json(200, "{}").delayed(Duration::from_millis(400))).await;
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(server.url()))
            .request_timeout(Duration::from_millis(50))
            .max_attempts(1)
            .build(),
    )
    .unwrap();
    let err = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::arn("arn:aws:kinesis:us-east-1:123456789012:stream/t"),
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout() && !err.is_connect(), "{err:?}");
    assert_eq!(err.operation(), Some("DescribeStreamSummary"));
    assert_eq!(
        err.stream(),
        Some("arn:aws:kinesis:us-east-1:123456789012:stream/t")
    );
    assert_eq!(
        err.to_string(),
        "DescribeStreamSummary on stream arn:aws:kinesis:us-east-1:123456789012:stream/t: \
         request timed out after 50ms"
    );
    let source = std::error::Error::source(&err).expect("a source");
    assert!(
        source
            .downcast_ref::<tokio::time::error::Elapsed>()
            .is_some(),
        "{source:?}"
    );
}

#[tokio::test]
async fn service_errors_name_the_call_too() {
    let server =
        start_server(|_, _| Reply::error(400, ErrorCode::ResourceNotFound, "Stream s not found."))
            .await;
    let c =
        Client::new(fast_retries(ClientConfig::builder().endpoint(server.url())).build()).unwrap();
    let err = c.put_records(&put_records_input(1)).await.unwrap_err();
    assert_eq!(err.operation(), Some("PutRecords"));
    assert_eq!(err.stream(), Some("s"));
    assert_eq!(
        err.service_error().map(|e| e.code),
        Some(ErrorCode::ResourceNotFound)
    );
    // The service's own text, as before: it names the stream itself.
    assert_eq!(
        err.to_string(),
        "ResourceNotFoundException: Stream s not found."
    );
}

#[tokio::test]
async fn e2e_transport_error_mid_request() {
    // A server that reads the request and hangs up without answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                drop(stream);
            });
        }
    });
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(format!("http://{addr}"))).build(),
    )
    .unwrap();
    let err = c.put_records(&put_records_input(1)).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert!(err.may_have_been_applied());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_max_connections_bounds_requests_in_flight() {
    let server =
        start_server(|_, _| Reply::json(200, "{}").delayed(Duration::from_millis(50))).await;
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(server.url())
            .max_connections(2)
            .build(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.call(&AddTagsToStreamInput::default()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(server.state.seen().len(), 8);
    let max = server.state.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} in flight");
    // Eight 50 ms requests through two slots take at least four rounds.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn e2e_http2_prior_knowledge() {
    let server = start_server(|_, _| Reply::json(200, r#"{"ShardIterator":"it"}"#)).await;
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(server.url())
            .http2(true)
            .build(),
    )
    .unwrap();
    let out = c
        .get_shard_iterator(&GetShardIteratorInput::default())
        .await
        .unwrap();
    assert_eq!(out.shard_iterator, "it");
    let seen = server.state.seen();
    assert_eq!(seen[0].version, http::Version::HTTP_2);
    assert_signed(&seen[0], "http", &Credentials::test(), "us-east-1");
}

// A CA and a server certificate for localhost and 127.0.0.1 (P-256, valid
// until 2126), made with openssl for these tests only.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBpjCCAU2gAwIBAgIUNK9i5VgRn53eclZQ7yTbZ6V+Oe8wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa2luZXNpcy1wcm90byB0ZXN0IENBMCAXDTI2MTEyNjE2MDgw
MVoYDzIxMjYxMTAyMTYwODAxWjAgMR4wHAYDVQQDDBVraW5lc2lzLXByb3RvIHRl
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATns/7fpuPdGo5dpBUcKjeM
qBv63nIdSiLio+iuctuR5sI9UxDGjM1FQKUjOZccEISUQDzy/0uW0236psVAYwLv
o2MwYTAdBgNVHQ4EFgQUdcrmet7UW2jRftowepeZQHsQZ+AwHwYDVR0jBBgwFoAU
dcrmet7UW2jRftowepeZQHsQZ+AwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E
BAMCAQYwCgYIKoZIzj0EAwIDRwAwRAIgatUYoPnnc3HZ5mLOjrOjUeVaM3A956Sw
v2no4VgTLm8CIHVZxfnYmikYmjfvXvXf9HhFUXIZcLaJhSE7N/mV829+
-----END CERTIFICATE-----
";

const TEST_SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIByDCCAW6gAwIBAgIUJANIfGGxPBzNBcfDr2VMJe6FcwIwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa2luZXNpcy1wcm90byB0ZXN0IENBMCAXDTI2MTEyNjE2MDgw
MVoYDzIxMjYxMTAyMTYwODAxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQcgwWZlITM4Ph8mX0pcjYPEepZvh3h80SpmERn
yPL65BAqPPg/lL/MmfA+UpsUOg3itjeCKow3djSLurxVReKTo4GPMIGMMBoGA1Ud
EQQTMBGCCWxvY2FsaG9zdIcEfwAAATAJBgNVHRMEAjAAMA4GA1UdDwEB/wQEAwIH
gDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUSJfeIyoBdrya7Hw0wuaQ
xMUeLGYwHwYDVR0jBBgwFoAUdcrmet7UW2jRftowepeZQHsQZ+AwCgYIKoZIzj0E
AwIDSAAwRQIhAPmT2/ShdoBttKIlcYbix8V+fk30Ozd6dIF+Es9/YVzIAiA93wuV
lVKUfMPSB1bz8wVnKYo+YRWVxlkhGiWpwAIv6w==
-----END CERTIFICATE-----
";

const TEST_SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgo9/XdU/wehYzKQdr
ehO+Tyo2TCkU6e0d8nyH+Awjn36hRANCAAQcgwWZlITM4Ph8mX0pcjYPEepZvh3h
80SpmERnyPL65BAqPPg/lL/MmfA+UpsUOg3itjeCKow3djSLurxVReKT
-----END PRIVATE KEY-----
";

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(TEST_SERVER_CERT_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(TEST_SERVER_KEY_PEM.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn e2e_tls_with_custom_ca() {
    let server = start_server_with_tls(Some(tls_acceptor()), |_, _| {
        Reply::json(200, r#"{"Shards":[]}"#)
    })
    .await;
    let port = server.addr.port();
    for (host, http2, version) in [
        ("localhost", false, http::Version::HTTP_11),
        ("127.0.0.1", true, http::Version::HTTP_2),
    ] {
        let c = Client::new(
            ClientConfig::builder()
                .endpoint(format!("https://{host}:{port}"))
                .custom_ca(TEST_CA_PEM)
                .http2(http2)
                .build(),
        )
        .unwrap();
        let out = c.list_shards(&ListShardsInput::default()).await.unwrap();
        assert!(out.shards.is_empty());
        let seen = server.state.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.version, version);
        assert_signed(last, "https", &Credentials::test(), "us-east-1");
    }
    // Without the CA the handshake fails: a connect error, nothing sent.
    let c = Client::new(
        fast_retries(ClientConfig::builder().endpoint(format!("https://localhost:{port}"))).build(),
    )
    .unwrap();
    let before = server.state.seen().len();
    let err = c
        .list_shards(&ListShardsInput::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert_eq!(server.state.seen().len(), before);
}

/// Hands out `A1`, `A2`, … each already expired, so every request reloads.
#[derive(Debug, Default)]
struct RotatingProvider {
    calls: AtomicUsize,
}

impl CredentialsProvider for RotatingProvider {
    fn credentials(&self) -> credentials::CredentialsFuture<'_> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            Ok(Credentials::new(format!("A{n}"), format!("secret-{n}"))
                .with_session_token(format!("token-{n}"))
                .with_expiry(UNIX_EPOCH + Duration::from_secs(1)))
        })
    }
}

#[tokio::test]
async fn e2e_credentials_provider_signs_each_request_with_fresh_credentials() {
    let server = start_server(|_, _| Reply::json(200, r#"{"Shards":[]}"#)).await;
    let provider = Arc::new(RotatingProvider::default());
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(server.url())
            .credentials_provider(Arc::clone(&provider))
            .build(),
    )
    .unwrap();
    for _ in 0..2 {
        c.list_shards(&ListShardsInput::default()).await.unwrap();
    }
    let seen = server.state.seen();
    for (i, s) in seen.iter().enumerate() {
        let n = i + 1;
        let creds = Credentials::new(format!("A{n}"), format!("secret-{n}"))
            .with_session_token(format!("token-{n}"));
        assert_eq!(s.headers["x-amz-security-token"], format!("token-{n}"));
        assert_signed(s, "http", &creds, "us-east-1");
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn e2e_aws_endpoint_without_credentials_fails_clearly() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let chain = DefaultChain::builder()
        .env(Env::from_pairs([
            ("HOME", home.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]))
        .build();
    let c = Client::new(
        ClientConfig::builder()
            .region("eu-west-1")
            .credentials_provider(chain)
            .build(),
    )
    .unwrap();
    assert!(c.config().is_aws_endpoint());
    // Fails before anything is sent: nothing leaves this machine.
    let err = c
        .list_shards(&ListShardsInput::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::NoCredentials(m) if m.contains("no AWS credentials found")),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(!err.may_have_been_applied());
}

// ------------------------------------------------------- SubscribeToShard

fn frames(messages: &[crate::event_stream::Message]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for m in messages {
        crate::event_stream::encode(m, &mut out).unwrap();
    }
    out.to_vec()
}

fn event_stream_reply(body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![(
            "content-type",
            crate::event_stream::CONTENT_TYPE.to_string(),
        )],
        body,
        delay: Duration::ZERO,
    }
}

fn subscribe_input() -> SubscribeToShardInput {
    SubscribeToShardInput {
        consumer_arn: Some("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1".into()),
        shard_id: Some("shardId-000000000000".into()),
        starting_position: Some(StartingPosition {
            position_type: "TRIM_HORIZON".into(),
            ..Default::default()
        }),
    }
}

const EVENT_JSON: &str = r#"{"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk","EncryptionType":"NONE"}],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}"#;

#[test]
fn subscribe_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let c = client("http://127.0.0.1:1");
    let input = subscribe_input();
    assert_send(c.subscribe_to_shard(&input));
    fn assert_stream<T: futures::Stream + Send + Unpin>() {}
    assert_stream::<SubscribeToShardStream>();
}

#[tokio::test]
async fn e2e_subscribe_reads_events_then_an_exception_over_h1_and_h2c() {
    use crate::event_stream::Message;
    let body = frames(&[
        Message::event("initial-response", "{}"),
        Message::event("SubscribeToShardEvent", EVENT_JSON),
        Message::event("SomethingNew", "{}"),
        Message::exception(
            "ResourceInUseException",
            r#"{"message":"Another subscription took over."}"#,
        ),
    ]);
    let server = start_server(move |_, _| event_stream_reply(body.clone())).await;
    for (http2, version) in [
        (false, http::Version::HTTP_11),
        (true, http::Version::HTTP_2),
    ] {
        let c = Client::new(
            ClientConfig::builder()
                .endpoint(server.url())
                .encoding(Encoding::Cbor)
                .http2(http2)
                .build(),
        )
        .unwrap();
        let mut s = c.subscribe_to_shard(&subscribe_input()).await.unwrap();
        assert_eq!(s.http_version(), version);
        let e = s.next_event().await.unwrap().expect("an event");
        assert_eq!(e.records[0].data.as_bytes(), b"hello");
        assert_eq!(e.continuation_sequence_number.as_deref(), Some("1"));
        let err = s.next_event().await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ResourceInUse), "{err:?}");
        assert_eq!(
            err.service_error().unwrap().message,
            "Another subscription took over."
        );
        assert_eq!(s.next_event().await.unwrap(), None);
        let seen = server.state.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.version, version);
        assert_eq!(last.target(), "Kinesis_20131202.SubscribeToShard");
        // JSON whatever the configured encoding.
        assert_eq!(last.headers["content-type"], JSON_CONTENT_TYPE);
        let sent: SubscribeToShardInput = serde_json::from_slice(&last.body).unwrap();
        assert_eq!(sent, subscribe_input());
        assert_signed(last, "http", &Credentials::test(), "us-east-1");
    }
}

#[tokio::test]
async fn e2e_subscribe_stream_trait_and_error_messages() {
    use crate::event_stream::Message;
    use futures::StreamExt;
    let body = frames(&[
        Message::event("initial-response", "{}"),
        Message::event("SubscribeToShardEvent", EVENT_JSON),
        Message::error("InternalFailure", "boom"),
    ]);
    let server = start_server(move |_, _| event_stream_reply(body.clone())).await;
    let c = client(&server.url());
    let s = c.subscribe_to_shard(&subscribe_input()).await.unwrap();
    let all: Vec<_> = s.collect().await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].as_ref().unwrap().records.len(), 1);
    let err = all[1].as_ref().unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InternalFailure));
    assert_eq!(err.service_error().unwrap().message, "boom");
}

#[tokio::test]
async fn e2e_subscribe_errors_before_and_instead_of_the_stream() {
    use crate::event_stream::Message;
    let server = start_server(|_, i| match i {
        0 => Reply::error(400, ErrorCode::ResourceNotFound, "Consumer c not found."),
        1 => event_stream_reply(frames(&[Message::event(
            "SubscribeToShardEvent",
            EVENT_JSON,
        )])),
        2 => event_stream_reply(frames(&[Message::exception(
            "ResourceInUseException",
            r#"{"message":"busy"}"#,
        )])),
        3 => Reply::json(200, "{}"),
        4 => {
            // The last frame is cut short.
            let mut b = frames(&[
                Message::event("initial-response", "{}"),
                Message::event("SubscribeToShardEvent", EVENT_JSON),
            ]);
            b.truncate(b.len() - 5);
            event_stream_reply(b)
        }
        _ => event_stream_reply(frames(&[
            Message::event("initial-response", "{}"),
            Message::event("SubscribeToShardEvent", "{not json"),
        ])),
    })
    .await;
    let c = client(&server.url());
    let input = subscribe_input();
    let err = c.subscribe_to_shard(&input).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ResourceNotFound), "{err:?}");
    assert_eq!(
        err.service_error().unwrap().message,
        "Consumer c not found."
    );
    // kinesis-mock opens with a record event instead of initial-response: its
    // records are delivered, not lost.
    let mut s = c.subscribe_to_shard(&input).await.unwrap();
    let first = s
        .next_event()
        .await
        .unwrap()
        .expect("the opening record event");
    assert_eq!(first.records.len(), 1);
    assert!(s.next_event().await.unwrap().is_none());
    let err = c.subscribe_to_shard(&input).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ResourceInUse), "{err:?}");
    let err = c.subscribe_to_shard(&input).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Decode(m) if m.contains("content type")),
        "{err:?}"
    );
    let mut s = c.subscribe_to_shard(&input).await.unwrap();
    let err = s.next_event().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Transport(m) if m.contains("inside a frame")),
        "{err:?}"
    );
    assert_eq!(s.next_event().await.unwrap(), None);
    let mut s = c.subscribe_to_shard(&input).await.unwrap();
    let err = s.next_event().await.unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    // One attempt each: SubscribeToShard is never retried.
    assert_eq!(server.state.seen().len(), 6);
}

/// An HTTP/1.1 server for one request that answers with a chunked event
/// stream written step by step: wait, then write these bytes; then it keeps
/// the connection open without writing.
async fn scripted_stream_server(script: Vec<(Duration, Vec<u8>)>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // The request head and its Content-Length body.
        loop {
            let n = tcp.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
        tcp.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        for (delay, bytes) in script {
            tokio::time::sleep(delay).await;
            let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(&bytes);
            out.extend_from_slice(b"\r\n");
            if tcp.write_all(&out).await.is_err() {
                return;
            }
        }
        let _ = tcp.read(&mut chunk).await;
    });
    addr
}

#[tokio::test]
async fn e2e_subscribe_request_timeout_ends_with_initial_response_then_read_timeout_applies() {
    use crate::event_stream::Message;
    let addr = scripted_stream_server(vec![
        (
            Duration::ZERO,
            frames(&[Message::event("initial-response", "{}")]),
        ),
        // Well past the request timeout: the subscription must survive it.
        (
            Duration::from_millis(600),
            frames(&[Message::event("SubscribeToShardEvent", EVENT_JSON)]),
        ),
    ])
    .await;
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(format!("http://{addr}"))
            .request_timeout(Duration::from_millis(200))
            .subscribe_read_timeout(Duration::from_millis(1500))
            .build(),
    )
    .unwrap();
    let mut s = c.subscribe_to_shard(&subscribe_input()).await.unwrap();
    assert_eq!(s.next_event().await.unwrap().unwrap().records.len(), 1);
    let err = s.next_event().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Timeout { after, .. } if *after == Duration::from_millis(1500)),
        "{err:?}"
    );
    assert_eq!(s.next_event().await.unwrap(), None);

    // No initial-response within the request timeout: the call times out.
    let addr = scripted_stream_server(vec![]).await;
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(format!("http://{addr}"))
            .request_timeout(Duration::from_millis(200))
            .build(),
    )
    .unwrap();
    let err = c.subscribe_to_shard(&subscribe_input()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Timeout { after, .. } if *after == Duration::from_millis(200)),
        "{err:?}"
    );
}

#[tokio::test]
async fn e2e_subscribe_over_tls_negotiates_h2() {
    use crate::event_stream::Message;
    let body = frames(&[
        Message::event("initial-response", "{}"),
        Message::event("SubscribeToShardEvent", EVENT_JSON),
    ]);
    let server = start_server_with_tls(Some(tls_acceptor()), move |_, _| {
        event_stream_reply(body.clone())
    })
    .await;
    // HTTP/1.1 configured: calls stay on HTTP/1.1, the event stream goes over h2.
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(format!("https://localhost:{}", server.addr.port()))
            .custom_ca(TEST_CA_PEM)
            .build(),
    )
    .unwrap();
    let mut s = c.subscribe_to_shard(&subscribe_input()).await.unwrap();
    assert_eq!(s.http_version(), http::Version::HTTP_2);
    assert_eq!(s.next_event().await.unwrap().unwrap().records.len(), 1);
    assert_eq!(s.next_event().await.unwrap(), None);
    let seen = server.state.seen();
    assert_eq!(seen[0].version, http::Version::HTTP_2);
    assert!(!seen[0].headers.contains_key("host"));
    assert_signed(&seen[0], "https", &Credentials::test(), "us-east-1");
}
