//! The broker refuses what it must, over a real socket: StreamARNs of other
//! accounts and regions, oversized PutRecords entries, fault plans and
//! metrics without credentials under `--auth`, and the connection and body
//! limits (`--max-connections`, the header-read, idle and TLS-handshake
//! timeouts, HTTP/2 stream limits, reading no body before the signature's
//! header checks pass).

use bytes::Bytes;
use kinesis_broker::auth::AuthKeys;
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
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
    put(arn(REGION, ACCOUNT, "orders")).await.expect("local ARN");
    // Same name, another account: AccessDenied, as Kinesis answers a caller
    // no resource policy lets in.
    let e = put(arn(REGION, "210987654321", "orders")).await.unwrap_err();
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
            ..Default::default()
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
    let msg = e.service_error().map(|e| e.message.clone()).unwrap_or_default();
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
