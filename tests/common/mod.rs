//! Shared set-up for the cross-crate tests: a broker on an ephemeral port and
//! clients pointed at it.
#![allow(dead_code)]

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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stream {name} never became ACTIVE");
}
