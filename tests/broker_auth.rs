//! The broker with `--auth`: requests signed with a listed key are accepted
//! from aws-sdk-kinesis, boto3, the AWS CLI and our own client (plain, TLS
//! HTTP/1.1 and TLS h2); unsigned, unknown-key, wrongly signed, tampered and
//! skewed requests are refused with the errors Amazon Kinesis uses.
//!
//! Bad requests are built with aws-sigv4 (an implementation independent of
//! the broker's verifier) and then altered before they are sent.

mod common;

use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kinesis_broker::auth::AuthKeys;
use kinesis_broker::{BrokerConfig, RunningBroker, TlsFiles};
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::InitialPositionInStream;
use kinesis_kcl::lease_store::InMemoryLeaseStore;
use kinesis_kcl::polling_config::PollingConfig;
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::ErrorCode;
use kinesis_proto::client::{
    Client, ClientConfig, ClientError, Credentials, Env, EnvironmentProvider, ProfileProvider,
};
use kinesis_proto::model::{ListStreamsInput, PutRecordInput, StreamRef};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const KEY_ID: &str = "AKIAIOSFODNN7LISTED1";
const SECRET: &str = "listed/secret+key/0123456789abcdefghijKLMN";
const TEMP_KEY_ID: &str = "ASIAIOSFODNN7TEMPKEY";
const TEMP_SECRET: &str = "temporary/secret/0123456789abcdefghijklmn";
const TEMP_TOKEN: &str = "FwoGZXIvYXdzEXAMPLE//session+token==";
const UNLISTED_ID: &str = "AKIAIOSFODNN7UNKNOWN";

/// The `--auth` file: the AWS shared-credentials format.
fn auth_file_text() -> String {
    format!(
        "# keys the test broker accepts\n\
         [ci]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\n\
         [temp]\naws_access_key_id = {TEMP_KEY_ID}\naws_secret_access_key = {TEMP_SECRET}\n\
         aws_session_token = {TEMP_TOKEN}\n"
    )
}

fn write_auth_file(dir: &Path) -> PathBuf {
    let path = dir.join("auth-keys");
    std::fs::write(&path, auth_file_text()).expect("write the auth file");
    path
}

fn auth_config() -> kinesis_broker::BrokerConfigBuilder {
    BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .auth(AuthKeys::parse(&auth_file_text()).expect("auth keys"))
}

async fn auth_broker() -> RunningBroker {
    common::start_broker_with(auth_config().build()).await
}

fn sdk(endpoint: &str, id: &str, secret: &str, token: Option<&str>) -> aws_sdk_kinesis::Client {
    sdk_with(endpoint, id, secret, token, None)
}

fn sdk_with(
    endpoint: &str,
    id: &str,
    secret: &str,
    token: Option<&str>,
    ca_pem: Option<&str>,
) -> aws_sdk_kinesis::Client {
    let mut conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            id,
            secret,
            token.map(str::to_string),
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled());
    if let Some(pem) = ca_pem {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(
                aws_smithy_http_client::tls::TlsContext::builder()
                    .with_trust_store(
                        aws_smithy_http_client::tls::TrustStore::empty()
                            .with_pem_certificate(pem.as_bytes().to_vec()),
                    )
                    .build()
                    .expect("TLS context"),
            )
            .build_https();
        conf = conf.http_client(http);
    }
    aws_sdk_kinesis::Client::from_conf(conf.build())
}

/// The error code an SDK call failed with.
fn sdk_code(e: impl ProvideErrorMetadata) -> String {
    e.code().unwrap_or("no code").to_string()
}

async fn wait_active(client: &aws_sdk_kinesis::Client, name: &str) {
    for _ in 0..500 {
        let d = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("describe");
        if d.stream_description_summary()
            .is_some_and(|s| s.stream_status().as_str() == "ACTIVE")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never became ACTIVE");
}

// ------------------------------------------------------------------ the SDK

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_with_a_listed_key_is_accepted() {
    let broker = auth_broker().await;
    let client = sdk(&broker.endpoint(), KEY_ID, SECRET, None);
    client
        .create_stream()
        .stream_name("signed")
        .shard_count(1)
        .send()
        .await
        .expect("create stream with a listed key");
    wait_active(&client, "signed").await;
    let put = client
        .put_record()
        .stream_name("signed")
        .partition_key("pk")
        .data(aws_sdk_kinesis::primitives::Blob::new(b"hello".to_vec()))
        .send()
        .await
        .expect("put record");
    let it = client
        .get_shard_iterator()
        .stream_name("signed")
        .shard_id(put.shard_id())
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator");
    let got = client
        .get_records()
        .shard_iterator(it.shard_iterator().expect("iterator"))
        .send()
        .await
        .expect("get records");
    assert_eq!(got.records()[0].data().as_ref(), b"hello");

    // Temporary credentials: listed with their session token.
    let temp = sdk(
        &broker.endpoint(),
        TEMP_KEY_ID,
        TEMP_SECRET,
        Some(TEMP_TOKEN),
    );
    let names = temp.list_streams().send().await.expect("temp key");
    assert_eq!(names.stream_names(), ["signed"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_with_a_bad_key_is_refused() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let e = sdk(&ep, UNLISTED_ID, SECRET, None)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(e), "UnrecognizedClientException");
    let e = sdk(&ep, KEY_ID, "not-the-secret", None)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(e), "InvalidSignatureException");
    // A temporary key without (or with another) session token.
    for token in [None, Some("another-token")] {
        let e = sdk(&ep, TEMP_KEY_ID, TEMP_SECRET, token)
            .list_streams()
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_code(e), "UnrecognizedClientException", "{token:?}");
    }
    // Nothing was created by refused requests.
    assert!(broker.service().streams().read().is_empty());
    broker.shutdown().await;
}

// ------------------------------------------------------------------ raw requests

/// A request signed by aws-sigv4 at `time`, as headers to send.
fn signed_headers(
    host: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
    (id, secret): (&str, &str),
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(id, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kinesis")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let headers = [
        ("content-type", content_type),
        ("host", host),
        ("x-amz-target", target),
    ];
    let url = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    out
}

/// What the broker answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    error_type: String,
    message: String,
}

async fn send_raw(endpoint: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{endpoint}/"));
    for (k, v) in headers {
        // `host` goes as the Host header; hyper would add its own otherwise.
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let header_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let (error_type, message) = if status == 200 || bytes.is_empty() {
        (header_type, String::new())
    } else {
        let enc = if content_type.contains("cbor") {
            kinesis_proto::codec::Encoding::Cbor
        } else {
            kinesis_proto::codec::Encoding::Json
        };
        let v: Value = enc.decode(&bytes).expect("error body");
        assert_eq!(v["__type"], header_type.as_str(), "header and body agree");
        (
            header_type,
            v["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    Answer {
        status,
        error_type,
        message,
    }
}

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";
const LIST_STREAMS: &str = "Kinesis_20131202.ListStreams";
const CREATE_STREAM: &str = "Kinesis_20131202.CreateStream";

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (k, v) in headers.iter_mut() {
        if k.eq_ignore_ascii_case(name) {
            *v = value.to_string();
        }
    }
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_request_is_refused_with_the_service_error() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let host = ep.trim_start_matches("http://").to_string();
    let now = SystemTime::now();
    let listed = (KEY_ID, SECRET);
    let body = br#"{"StreamName":"raw","ShardCount":1}"#.to_vec();
    let good = signed_headers(&host, CREATE_STREAM, JSON, &body, listed, now);

    // Unsigned: JSON → 400, CBOR → 403.
    let unsigned: Vec<(String, String)> = good
        .iter()
        .filter(|(k, _)| k != "authorization")
        .cloned()
        .collect();
    let a = send_raw(&ep, &unsigned, body.clone()).await;
    assert_eq!(
        (a.status, a.error_type.as_str(), a.message.as_str()),
        (
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token"
        )
    );
    let mut cbor_unsigned = unsigned.clone();
    set(&mut cbor_unsigned, "content-type", CBOR);
    let a = send_raw(&ep, &cbor_unsigned, vec![0xa0]).await;
    assert_eq!(
        (a.status, a.error_type.as_str()),
        (403, "MissingAuthenticationTokenException")
    );

    // Incomplete: the Signature component is missing.
    let mut incomplete = good.clone();
    let header = get(&good, "authorization");
    let cut = header[..header.find(", Signature=").expect("signature part")].to_string();
    set(&mut incomplete, "authorization", &cut);
    let a = send_raw(&ep, &incomplete, body.clone()).await;
    assert_eq!(
        (a.status, a.error_type.as_str()),
        (400, "IncompleteSignatureException")
    );
    assert!(a.message.contains("'Signature'"), "{}", a.message);

    // An unknown access key.
    let unknown = signed_headers(
        &host,
        CREATE_STREAM,
        JSON,
        &body,
        (UNLISTED_ID, SECRET),
        now,
    );
    let a = send_raw(&ep, &unknown, body.clone()).await;
    assert_eq!(
        (a.status, a.error_type.as_str(), a.message.as_str()),
        (
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid."
        )
    );

    // Signed wrongly: a listed key with another secret, or a flipped signature digit.
    let wrong = signed_headers(&host, CREATE_STREAM, JSON, &body, (KEY_ID, "wrong"), now);
    let a = send_raw(&ep, &wrong, body.clone()).await;
    assert_eq!(
        (a.status, a.error_type.as_str()),
        (400, "InvalidSignatureException")
    );
    assert!(
        a.message
            .starts_with("The request signature we calculated does not match")
    );
    let mut flipped = good.clone();
    let header = get(&good, "authorization").to_string();
    let last = header.chars().last().expect("digit");
    let other = if last == '0' { '1' } else { '0' };
    set(
        &mut flipped,
        "authorization",
        &format!("{}{other}", &header[..header.len() - 1]),
    );
    let a = send_raw(&ep, &flipped, body.clone()).await;
    assert_eq!(a.error_type, "InvalidSignatureException");

    // Tampered with after signing: the body, or a signed header.
    let tampered_body = br#"{"StreamName":"evil","ShardCount":1}"#.to_vec();
    let a = send_raw(&ep, &good, tampered_body).await;
    assert_eq!(
        (a.status, a.error_type.as_str()),
        (400, "InvalidSignatureException")
    );
    let list_body = b"{}".to_vec();
    let list = signed_headers(&host, LIST_STREAMS, JSON, &list_body, listed, now);
    let mut retargeted = list.clone();
    set(
        &mut retargeted,
        "x-amz-target",
        "Kinesis_20131202.DescribeLimits",
    );
    let a = send_raw(&ep, &retargeted, list_body.clone()).await;
    assert_eq!(a.error_type, "InvalidSignatureException");

    // Outside the 15-minute clock-skew window, either way.
    let old = signed_headers(
        &host,
        CREATE_STREAM,
        JSON,
        &body,
        listed,
        now - Duration::from_secs(20 * 60),
    );
    let a = send_raw(&ep, &old, body.clone()).await;
    assert_eq!(
        (a.status, a.error_type.as_str()),
        (400, "InvalidSignatureException")
    );
    assert!(
        a.message.starts_with("Signature expired: "),
        "{}",
        a.message
    );
    assert!(a.message.ends_with(" - 15 min.)"), "{}", a.message);
    let future = signed_headers(
        &host,
        CREATE_STREAM,
        JSON,
        &body,
        listed,
        now + Duration::from_secs(20 * 60),
    );
    let a = send_raw(&ep, &future, body.clone()).await;
    assert_eq!(a.error_type, "InvalidSignatureException");
    assert!(
        a.message.starts_with("Signature not yet current: "),
        "{}",
        a.message
    );

    // None of the refused requests did anything; the intact one works.
    assert!(broker.service().streams().read().is_empty());
    let a = send_raw(&ep, &good, body.clone()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = send_raw(&ep, &list, list_body).await;
    assert_eq!(a.status, 200, "{a:?}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_endpoints_and_precedence_are_unchanged() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    // Health needs no signature.
    let resp = client
        .get(format!("{ep}/health").parse().unwrap())
        .await
        .expect("health");
    assert_eq!(resp.status(), 200);
    // An unknown operation is reported before authentication, as by Kinesis.
    let headers = vec![
        ("content-type".to_string(), JSON.to_string()),
        (
            "x-amz-target".to_string(),
            "Kinesis_20131202.Nope".to_string(),
        ),
    ];
    let a = send_raw(&ep, &headers, b"{}".to_vec()).await;
    assert_eq!(a.error_type, "UnknownOperationException");
    broker.shutdown().await;
}

// ------------------------------------------------------------------ our client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proto_client_with_providers() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let auth_path = write_auth_file(dir.path());

    // The default for a non-AWS endpoint (the test keys) is refused here.
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(&ep)
            .max_attempts(1)
            .build(),
    )
    .unwrap();
    let e = c
        .list_streams(&ListStreamsInput::default())
        .await
        .unwrap_err();
    assert!(e.is_code(ErrorCode::UnrecognizedClient), "{e}");

    // Explicit keys.
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(&ep)
            .credentials(Credentials::new(KEY_ID, SECRET))
            .build(),
    )
    .unwrap();
    c.list_streams(&ListStreamsInput::default())
        .await
        .expect("explicit keys");

    // The environment provider.
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", TEMP_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", TEMP_SECRET),
        ("AWS_SESSION_TOKEN", TEMP_TOKEN),
    ]);
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(&ep)
            .credentials_provider(EnvironmentProvider::with_env(env))
            .build(),
    )
    .unwrap();
    c.list_streams(&ListStreamsInput::default())
        .await
        .expect("environment keys");

    // The profile provider reading the broker's own --auth file as a shared
    // credentials file: both sides use one format.
    let auth = auth_path.display().to_string();
    for profile in ["ci", "temp"] {
        let env = Env::from_pairs([
            ("AWS_SHARED_CREDENTIALS_FILE", auth.as_str()),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
            ("AWS_PROFILE", profile),
        ]);
        let c = Client::new(
            ClientConfig::builder()
                .endpoint(&ep)
                .credentials_provider(ProfileProvider::with_env(env))
                .build(),
        )
        .unwrap();
        c.list_streams(&ListStreamsInput::default())
            .await
            .unwrap_or_else(|e| panic!("profile {profile}: {e}"));
    }
    broker.shutdown().await;
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written for the broker.
fn tls_files(dir: &Path) -> (TlsFiles, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("cert");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (TlsFiles { cert, key }, ck.cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_authentication_over_http1_and_h2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (files, pem) = tls_files(dir.path());
    let broker = common::start_broker_with(auth_config().tls(files).build()).await;
    let ep = broker.endpoint();
    assert!(ep.starts_with("https://localhost:"), "{ep}");
    let port = broker.local_addr().port();

    // Our client: HTTP/1.1 to `localhost`, h2 (ALPN) to 127.0.0.1.
    for (host, http2) in [("localhost", false), ("127.0.0.1", true)] {
        let endpoint = format!("https://{host}:{port}");
        let build = |creds: Credentials| {
            Client::new(
                ClientConfig::builder()
                    .endpoint(&endpoint)
                    .custom_ca(pem.as_bytes())
                    .http2(http2)
                    .max_attempts(1)
                    .credentials(creds)
                    .build(),
            )
            .unwrap()
        };
        let c = build(Credentials::new(KEY_ID, SECRET));
        let stream = format!("tls-{http2}");
        c.create_stream(&kinesis_proto::model::CreateStreamInput {
            stream_name: Some(stream.clone()),
            shard_count: Some(1),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{endpoint} http2={http2}: {e}"));
        let e = build(Credentials::new(UNLISTED_ID, SECRET))
            .list_streams(&ListStreamsInput::default())
            .await
            .unwrap_err();
        assert!(e.is_code(ErrorCode::UnrecognizedClient), "{e}");
        let e = build(Credentials::new(KEY_ID, "wrong"))
            .list_streams(&ListStreamsInput::default())
            .await
            .unwrap_err();
        assert!(e.is_code(ErrorCode::InvalidSignature), "{e}");
    }

    // The official SDK over TLS (it trusts our CA) with a listed key, and
    // with an unlisted one.
    let client = sdk_with(&ep, KEY_ID, SECRET, None, Some(&pem));
    wait_active(&client, "tls-false").await;
    let put = client
        .put_record()
        .stream_name("tls-false")
        .partition_key("pk")
        .data(aws_sdk_kinesis::primitives::Blob::new(b"over tls".to_vec()))
        .send()
        .await
        .expect("SDK put over TLS");
    assert!(!put.sequence_number().is_empty());
    let e = sdk_with(&ep, UNLISTED_ID, SECRET, None, Some(&pem))
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(e), "UnrecognizedClientException");

    // SubscribeToShard is signed like any call: the SDK's streaming request
    // over TLS h2 is accepted with a listed key and refused without one.
    let stream_arn = client
        .describe_stream_summary()
        .stream_name("tls-false")
        .send()
        .await
        .expect("describe")
        .stream_description_summary()
        .expect("summary")
        .stream_arn()
        .to_string();
    let consumer = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("efo")
        .send()
        .await
        .expect("register consumer");
    let consumer_arn = consumer
        .consumer()
        .expect("consumer")
        .consumer_arn()
        .to_string();
    for _ in 0..500 {
        let d = client
            .describe_stream_consumer()
            .consumer_arn(&consumer_arn)
            .send()
            .await
            .expect("describe consumer");
        if d.consumer_description()
            .map(|c| c.consumer_status().as_str())
            == Some("ACTIVE")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let position = aws_sdk_kinesis::types::StartingPosition::builder()
        .r#type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .build()
        .expect("position");
    let mut out = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(put.shard_id())
        .starting_position(position.clone())
        .send()
        .await
        .expect("SDK subscribe over TLS with auth");
    let mut got = Vec::new();
    while got.is_empty() {
        match out.event_stream.recv().await.expect("event").expect("open") {
            aws_sdk_kinesis::types::SubscribeToShardEventStream::SubscribeToShardEvent(e) => {
                got.extend(e.records().iter().map(|r| r.data().as_ref().to_vec()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, [b"over tls".to_vec()]);
    let e = sdk_with(&ep, UNLISTED_ID, SECRET, None, Some(&pem))
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(put.shard_id())
        .starting_position(position)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(e), "UnrecognizedClientException");
    broker.shutdown().await;
}

// ------------------------------------------------------------------ boto3 and the AWS CLI

/// Run a boto3 script with `endpoint`, `key_id`, `secret` in scope; its stdout.
fn boto3(endpoint: &str, key_id: &str, secret: &str, script: &str) -> String {
    let python_path = common::peers::python_path_with(&["boto3"]);
    let program = format!(
        "import json, sys, boto3, botocore\n\
         endpoint, key_id, secret = sys.argv[1], sys.argv[2], sys.argv[3]\n\
         client = boto3.client('kinesis', endpoint_url=endpoint, region_name='us-east-1',\n\
             aws_access_key_id=key_id, aws_secret_access_key=secret,\n\
             config=botocore.config.Config(retries={{'max_attempts': 1}}))\n\
         {script}\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args([endpoint, key_id, secret])
        .env("PYTHONPATH", python_path)
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_with_listed_and_unlisted_keys() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        let ok = boto3(
            &ep,
            KEY_ID,
            SECRET,
            "client.create_stream(StreamName='py', ShardCount=1)\n\
             print(json.dumps(client.list_streams()['StreamNames']))",
        );
        let refused = boto3(
            &ep,
            UNLISTED_ID,
            SECRET,
            "try:\n    client.list_streams()\n    print('accepted')\n\
             except botocore.exceptions.ClientError as e:\n    print(e.response['Error']['Code'])",
        );
        let wrong = boto3(
            &ep,
            KEY_ID,
            "wrong",
            "try:\n    client.list_streams()\n    print('accepted')\n\
             except botocore.exceptions.ClientError as e:\n    print(e.response['Error']['Code'])",
        );
        (ok, refused, wrong)
    })
    .await
    .unwrap();
    assert_eq!(out.0, r#"["py"]"#);
    assert_eq!(out.1, "UnrecognizedClientException");
    assert_eq!(out.2, "InvalidSignatureException");
    broker.shutdown().await;
}

/// Run `aws kinesis <args>` with the keys of `profile` in `credentials_file`.
fn aws(
    endpoint: &str,
    credentials_file: &Path,
    profile: &str,
    args: &[&str],
) -> std::process::Output {
    common::peers::aws_cli()
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(["--output", "json", "--region", "us-east-1", "kinesis"])
        .args(args)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials_file)
        .env("AWS_PROFILE", profile)
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KINESIS")
        .stdin(Stdio::null())
        .output()
        .expect("run the AWS CLI")
}

/// The CLI against `endpoint`: the `--auth` file's own profiles are accepted
/// (the temporary one with its session token), an unlisted key is refused.
fn cli_accepts_listed_and_refuses_unlisted(endpoint: &str, dir: &Path) {
    let auth = write_auth_file(dir);
    for profile in ["ci", "temp"] {
        let out = aws(endpoint, &auth, profile, &["list-streams"]);
        assert!(
            out.status.success(),
            "profile {profile}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(v["StreamNames"].is_array(), "{v}");
    }
    let unlisted = dir.join("unlisted");
    std::fs::write(
        &unlisted,
        format!("[x]\naws_access_key_id = {UNLISTED_ID}\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("write");
    let out = aws(endpoint, &unlisted, "x", &["list-streams"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UnrecognizedClientException"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_with_listed_and_unlisted_keys() {
    let broker = auth_broker().await;
    let ep = broker.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || cli_accepts_listed_and_refuses_unlisted(&ep, &path))
        .await
        .unwrap();
    broker.shutdown().await;
}

// ------------------------------------------------------------------ the binary

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_binary_with_auth_flag() {
    let bin = tokio::task::spawn_blocking(common::broker_binary)
        .await
        .unwrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = write_auth_file(dir.path());

    // A bad file: the broker refuses to start and says why.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "[x]\naws_access_key_id = only-an-id\n").expect("write");
    let out = Command::new(&bin)
        .args(["--port", "0", "--auth"])
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .expect("run the broker");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("aws_secret_access_key"), "{stderr}");

    let mut child = Command::new(&bin)
        .args([
            "--port",
            "0",
            "--create-delay-ms",
            "0",
            "--log-level",
            "warn",
            "--auth",
        ])
        .arg(&auth)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the broker");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = common::KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the broker prints its endpoint within 30 s");
    let endpoint = line
        .trim()
        .strip_prefix("Listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();

    // Our client with a listed key writes; with the test keys it is refused.
    let c = Client::new(
        ClientConfig::builder()
            .endpoint(&endpoint)
            .credentials(Credentials::new(KEY_ID, SECRET))
            .build(),
    )
    .unwrap();
    c.create_stream(&kinesis_proto::model::CreateStreamInput {
        stream_name: Some("bin".into()),
        shard_count: Some(1),
        ..Default::default()
    })
    .await
    .expect("create stream");
    let mut put = None;
    for _ in 0..500 {
        match c
            .put_record(&PutRecordInput {
                stream: StreamRef::name("bin"),
                data: Some(b"x".to_vec().into()),
                partition_key: Some("pk".into()),
                ..Default::default()
            })
            .await
        {
            Ok(out) => {
                put = Some(out);
                break;
            }
            Err(e) if e.is_code(ErrorCode::ResourceNotFound) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("put: {e}"),
        }
    }
    assert!(put.is_some(), "the stream never took a record");
    let anonymous = Client::new(
        ClientConfig::builder()
            .endpoint(&endpoint)
            .max_attempts(1)
            .build(),
    )
    .unwrap();
    let e = anonymous
        .list_streams(&ListStreamsInput::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Service(s) if s.code == ErrorCode::UnrecognizedClient),
        "{e}"
    );

    // And the AWS CLI against the binary.
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || cli_accepts_listed_and_refuses_unlisted(&endpoint, &path))
        .await
        .unwrap();
}

// ------------------------------------------------------------------ producer and consumer

/// Collects the data of every record it is given, and checkpoints.
struct Collector {
    seen: Arc<parking_lot::Mutex<BTreeSet<String>>>,
}

impl ShardRecordProcessor for Collector {
    async fn initialize(&mut self, _input: InitializationInput) {}

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &RecordProcessorCheckpointer,
    ) {
        {
            let mut seen = self.seen.lock();
            for r in &input.records {
                seen.insert(String::from_utf8_lossy(&r.data).into_owned());
            }
        }
        let _ = checkpointer.checkpoint().await;
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, checkpointer: &RecordProcessorCheckpointer) {
        let _ = checkpointer.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, checkpointer: &RecordProcessorCheckpointer) {
        let _ = checkpointer.checkpoint().await;
    }
}

/// Run a kcl scheduler over h2 with TLS and temporary keys until it has seen
/// `want` records (bounded), shut it down gracefully, and return what it saw.
async fn consume_all(
    config: kinesis_kcl::config::Config,
    port: u16,
    pem: &str,
    want: usize,
) -> BTreeSet<String> {
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", TEMP_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", TEMP_SECRET),
        ("AWS_SESSION_TOKEN", TEMP_TOKEN),
    ]);
    let client = Client::new(
        ClientConfig::builder()
            .endpoint(format!("https://127.0.0.1:{port}"))
            .custom_ca(pem.as_bytes())
            .http2(true)
            .credentials_provider(EnvironmentProvider::with_env(env))
            .build(),
    )
    .unwrap();
    let seen: Arc<parking_lot::Mutex<BTreeSet<String>>> = Arc::default();
    let factory = {
        let seen = Arc::clone(&seen);
        move |_shard: &str| Collector {
            seen: Arc::clone(&seen),
        }
    };
    let scheduler = Scheduler::new(config, client, Arc::new(InMemoryLeaseStore::new()), factory)
        .expect("scheduler");
    let shutdown = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    // Bounded: fails instead of hanging if records never arrive.
    for _ in 0..1_200 {
        if seen.lock().len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    shutdown.graceful_shutdown().await;
    run.await.expect("join").expect("scheduler run");
    seen.lock().clone()
}

/// kpl produces and kcl consumes, polling and by enhanced fan-out, over TLS with
/// authentication on: the producer over HTTP/1.1 with keys from a profile (the
/// `--auth` file itself), the consumers over h2 with temporary keys from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_and_kcl_over_tls_with_authentication() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (files, pem) = tls_files(dir.path());
    let auth = write_auth_file(dir.path()).display().to_string();
    let broker = common::start_broker_with(auth_config().tls(files).build()).await;
    let endpoint = broker.endpoint();
    let port = broker.local_addr().port();

    let admin = Client::new(
        ClientConfig::builder()
            .endpoint(&endpoint)
            .custom_ca(pem.as_bytes())
            .credentials(Credentials::new(KEY_ID, SECRET))
            .build(),
    )
    .unwrap();
    admin
        .create_stream(&kinesis_proto::model::CreateStreamInput {
            stream_name: Some("orders".into()),
            shard_count: Some(2),
            ..Default::default()
        })
        .await
        .expect("create stream");
    for _ in 0..500 {
        let s = admin
            .describe_stream_summary(&kinesis_proto::model::DescribeStreamSummaryInput {
                stream: StreamRef::name("orders"),
            })
            .await
            .expect("describe");
        if s.stream_description_summary.stream_status == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The producer: aggregated records, keys from profile `ci` of the auth file.
    let profile = ProfileProvider::with_env(Env::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", auth.as_str()),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_PROFILE", "ci"),
    ]));
    let producer = kinesis_kpl::Producer::new(
        kinesis_kpl::Config::builder()
            .endpoint(&endpoint)
            .custom_ca(pem.as_bytes())
            .credentials_provider(profile)
            .record_max_buffered_time(Duration::from_millis(20))
            .build(),
    )
    .expect("producer");
    let stream: Arc<str> = "orders".into();
    let expected: BTreeSet<String> = (0..300).map(|i| format!("order-{i}")).collect();
    let mut handles = Vec::new();
    for (i, data) in expected.iter().enumerate() {
        let record = kinesis_kpl::Record::new(Arc::clone(&stream), format!("pk-{i}"), data.clone());
        handles.push(producer.put(record).await.expect("put"));
    }
    for h in handles {
        let put = h.await.expect("record put over TLS with a listed key");
        assert!(put.sequence_number.len() > 10);
    }
    let report = producer.shutdown().await;
    assert_eq!((report.succeeded, report.failed), (300, 0));

    // The consumers: h2 to 127.0.0.1, temporary keys with their session token;
    // first polling, then enhanced fan-out (SubscribeToShard over h2 with TLS,
    // the consumer registered by the scheduler itself).
    let polling = kinesis_kcl::config::Config::builder("orders", "auth-app")
        .worker_identifier("w1")
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .polling(PollingConfig {
            idle_time_between_reads: Duration::from_millis(200),
            ..PollingConfig::default()
        })
        .build()
        .expect("kcl config");
    assert_eq!(
        consume_all(polling, port, &pem, expected.len()).await,
        expected
    );
    let fan_out = kinesis_kcl::config::Config::builder("orders", "auth-efo-app")
        .worker_identifier("w2")
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .fan_out("auth-efo")
        .build()
        .expect("kcl fan-out config");
    assert_eq!(
        consume_all(fan_out, port, &pem, expected.len()).await,
        expected
    );

    // A producer with an unlisted key: every record ends in an explicit error.
    let producer = kinesis_kpl::Producer::new(
        kinesis_kpl::Config::builder()
            .endpoint(&endpoint)
            .custom_ca(pem.as_bytes())
            .credentials(Credentials::new(UNLISTED_ID, SECRET))
            .record_max_buffered_time(Duration::from_millis(20))
            .record_ttl(Duration::from_secs(2))
            .build(),
    )
    .expect("producer");
    let h = producer
        .put(kinesis_kpl::Record::new(
            Arc::clone(&stream),
            "pk",
            "refused",
        ))
        .await
        .expect("accepted into the buffer");
    let e = h.await.expect_err("an unlisted key cannot put");
    let failure = e.record_failure().expect("a record failure");
    assert!(
        failure
            .attempts
            .iter()
            .any(|a| a.error_code.as_deref() == Some("UnrecognizedClientException"))
            || failure.code == "UnrecognizedClientException",
        "{failure:?}"
    );
    let report = producer.shutdown().await;
    assert_eq!((report.succeeded, report.failed), (0, 1));
    broker.shutdown().await;
}
