//! `kinesis_proto::client::Client::subscribe_to_shard` against the real
//! broker over HTTP/1.1 (chunked) and cleartext HTTP/2: the backlog and live
//! records, an advancing continuation, the children at shard end after a
//! split, a takeover ending the older subscription with an exception event,
//! and errors before the stream.

mod common;

use kinesis_broker::BrokerConfig;
use kinesis_broker::limiter::LimitProfile;
use kinesis_proto::ErrorCode;
use kinesis_proto::client::{Client, ClientConfig, ClientError, SubscribeToShardStream};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{
    ConsumerRef, CreateStreamInput, DescribeStreamSummaryInput, PutRecordsInput,
    PutRecordsRequestEntry, Record, RegisterStreamConsumerInput, SplitShardInput, StartingPosition,
    StreamRef, SubscribeToShardEvent, SubscribeToShardInput,
};
use kinesis_proto::sequence::SequenceNumber;
use std::time::Duration;

const SHARD0: &str = "shardId-000000000000";

fn client(endpoint: &str, http2: bool) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .http2(http2)
            .build(),
    )
    .expect("client")
}

/// Create a one-shard stream and register a consumer through the client; the
/// consumer's ARN once it is ACTIVE.
async fn stream_with_consumer(c: &Client, stream: &str) -> String {
    c.create_stream(&CreateStreamInput {
        stream_name: Some(stream.into()),
        shard_count: Some(1),
        ..Default::default()
    })
    .await
    .expect("create stream");
    let mut active = false;
    for _ in 0..500 {
        let s = c
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name(stream),
            })
            .await
            .expect("describe stream summary");
        if s.stream_description_summary.stream_status == "ACTIVE" {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(active, "stream {stream} became ACTIVE");
    let stream_arn = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name(stream),
        })
        .await
        .expect("describe stream summary")
        .stream_description_summary
        .stream_arn;
    let arn = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(stream_arn),
            consumer_name: Some("app".into()),
        })
        .await
        .expect("register consumer")
        .consumer
        .consumer_arn;
    for _ in 0..500 {
        let d = c
            .describe_stream_consumer(&ConsumerRef {
                consumer_arn: Some(arn.clone()),
                ..Default::default()
            })
            .await
            .expect("describe consumer");
        if d.consumer_description.consumer_status == "ACTIVE" {
            return arn;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("consumer {arn} never became ACTIVE");
}

async fn put(c: &Client, stream: &str, data: &[&str]) {
    let out = c
        .put_records(&PutRecordsInput {
            stream: StreamRef::name(stream),
            records: Some(
                data.iter()
                    .map(|d| PutRecordsRequestEntry {
                        data: Some(Blob::from(d.as_bytes().to_vec())),
                        partition_key: Some("pk".into()),
                        explicit_hash_key: None,
                    })
                    .collect(),
            ),
        })
        .await
        .expect("put records");
    assert_eq!(out.failed_record_count, 0);
}

fn input(arn: &str, position: &str) -> SubscribeToShardInput {
    SubscribeToShardInput {
        consumer_arn: Some(arn.into()),
        shard_id: Some(SHARD0.into()),
        starting_position: Some(StartingPosition {
            position_type: position.into(),
            ..Default::default()
        }),
    }
}

/// Events until `n` records arrived: the records and the last event.
async fn records(s: &mut SubscribeToShardStream, n: usize) -> (Vec<Record>, SubscribeToShardEvent) {
    let mut out = Vec::new();
    loop {
        let e = s
            .next_event()
            .await
            .expect("event")
            .expect("the stream is open");
        assert!(e.child_shards.is_none(), "{e:?}");
        out.extend(e.records.iter().cloned());
        if out.len() >= n {
            return (out, e);
        }
    }
}

fn data(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.data.as_bytes()).into_owned())
        .collect()
}

fn seq(s: &Option<String>) -> SequenceNumber {
    SequenceNumber::parse(s.as_deref().expect("a continuation")).expect("a sequence number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_http1_and_h2c_gets_records_then_the_children_at_shard_end() {
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(LimitProfile::Off)
            .build(),
    )
    .await;
    for (http2, version) in [
        (false, http::Version::HTTP_11),
        (true, http::Version::HTTP_2),
    ] {
        let c = client(&broker.endpoint(), http2);
        let stream = if http2 { "sub-h2c" } else { "sub-h1" };
        let arn = stream_with_consumer(&c, stream).await;
        put(&c, stream, &["a", "b", "c"]).await;
        let mut s = c
            .subscribe_to_shard(&input(&arn, "TRIM_HORIZON"))
            .await
            .expect("subscribe");
        assert_eq!(s.http_version(), version);
        let (before, first) = records(&mut s, 3).await;
        assert_eq!(data(&before), ["a", "b", "c"]);
        assert_eq!(
            first.continuation_sequence_number.as_deref(),
            Some(before[2].sequence_number.as_str()),
            "the continuation is the last record's sequence number"
        );
        // Records put while subscribed arrive on the same stream.
        put(&c, stream, &["d", "e"]).await;
        let (after, second) = records(&mut s, 2).await;
        assert_eq!(data(&after), ["d", "e"]);
        assert!(
            seq(&second.continuation_sequence_number) > seq(&first.continuation_sequence_number)
        );
        assert!(
            SequenceNumber::parse(&after[0].sequence_number).expect("seq")
                > SequenceNumber::parse(&before[2].sequence_number).expect("seq")
        );

        // A split closes the shard: the final event names the children, then
        // the response ends normally.
        c.split_shard(&SplitShardInput {
            stream: StreamRef::name(stream),
            shard_to_split: Some(SHARD0.into()),
            new_starting_hash_key: Some("170141183460469231731687303715884105728".into()),
        })
        .await
        .expect("split");
        let mut last = None;
        while let Some(e) = s.next_event().await.expect("events until the end") {
            assert!(e.records.is_empty(), "no records after the split: {e:?}");
            last = Some(e);
        }
        let last = last.expect("a final event");
        assert_eq!(last.continuation_sequence_number, None);
        let mut children: Vec<(String, Vec<String>)> = last
            .child_shards
            .expect("children at shard end")
            .into_iter()
            .map(|c| (c.shard_id, c.parent_shards))
            .collect();
        children.sort();
        assert_eq!(
            children,
            [
                ("shardId-000000000001".to_string(), vec![SHARD0.to_string()]),
                ("shardId-000000000002".to_string(), vec![SHARD0.to_string()]),
            ]
        );
        assert_eq!(s.next_event().await.expect("ended"), None);
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_ends_the_older_subscription_and_errors_come_before_the_stream() {
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(LimitProfile::Off)
            // Any second call takes over at once.
            .subscription_takeover(Duration::ZERO)
            .build(),
    )
    .await;
    for http2 in [false, true] {
        let c = client(&broker.endpoint(), http2);
        let stream = if http2 { "take-h2c" } else { "take-h1" };
        let arn = stream_with_consumer(&c, stream).await;
        let mut first = c
            .subscribe_to_shard(&input(&arn, "LATEST"))
            .await
            .expect("first subscription");
        let mut second = c
            .subscribe_to_shard(&input(&arn, "LATEST"))
            .await
            .expect("second subscription takes over");
        let err = loop {
            match first.next_event().await {
                Ok(Some(e)) => assert!(e.records.is_empty(), "{e:?}"),
                Ok(None) => panic!("the older subscription ended without an exception"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), Some(ErrorCode::ResourceInUse), "{err:?}");
        assert!(
            err.service_error()
                .expect("service error")
                .message
                .contains("took over"),
            "{err}"
        );
        assert_eq!(first.next_event().await.expect("ended"), None);
        put(&c, stream, &["live"]).await;
        let (got, _) = records(&mut second, 1).await;
        assert_eq!(data(&got), ["live"]);

        // Errors before the stream are ordinary service errors.
        let ghost = arn.replace("/consumer/app:", "/consumer/ghost:");
        let err = c
            .subscribe_to_shard(&input(&ghost, "LATEST"))
            .await
            .expect_err("unknown consumer");
        assert_eq!(err.code(), Some(ErrorCode::ResourceNotFound), "{err:?}");
        let err = c
            .subscribe_to_shard(&SubscribeToShardInput {
                shard_id: Some("shardId-000000000007".into()),
                ..input(&arn, "LATEST")
            })
            .await
            .expect_err("unknown shard");
        assert_eq!(err.code(), Some(ErrorCode::ResourceNotFound), "{err:?}");
        assert!(matches!(err, ClientError::Service(_)));
    }
    broker.shutdown().await;
}
