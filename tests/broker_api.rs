//! Acceptance of the broker through the official `aws-sdk-kinesis` crate (and,
//! for CBOR and protocol-level errors, our own client and raw sockets): every
//! operation, against a broker on an ephemeral port, grouped by user story.

mod common;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    ChildShard, PutRecordsRequestEntry, Record, ScalingType, ShardFilter, ShardFilterType,
    ShardIteratorType, StreamMode, StreamModeDetails, StreamStatus,
};
use kinesis_broker::limiter::LimitProfile;
use kinesis_broker::{BrokerConfig, BrokerConfigBuilder, RunningBroker};
use kinesis_proto::sequence::SequenceNumber;
use std::time::Duration;

/// How long CREATING, UPDATING, DELETING and consumer states last where tests
/// watch them: long enough that a busy machine still sees each state right
/// after the call that entered it (the tests await the next state by polling).
const STATE_DELAY: Duration = Duration::from_secs(1);

/// A hash key in the middle of the key space: splits a one-shard stream in two.
const MIDDLE: &str = "170141183460469231731687303715884105728";

/// Settings for these tests: an ephemeral port, no state delays, and no
/// throughput or control-plane limits (tests/broker_limits.rs covers those), so
/// bounded polling loops are never throttled.
fn config() -> BrokerConfigBuilder {
    BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .limit_profile(LimitProfile::Off)
}

async fn start() -> RunningBroker {
    common::start_broker_with(config().build()).await
}

fn shard(i: u32) -> String {
    format!("shardId-{i:012}")
}

fn seq(s: &str) -> SequenceNumber {
    SequenceNumber::parse(s).unwrap_or_else(|| panic!("{s} is not a sequence number"))
}

async fn put(client: &Client, stream: &str, key: &str, data: &[u8]) -> (String, String) {
    let out = client
        .put_record()
        .stream_name(stream)
        .partition_key(key)
        .data(Blob::new(data))
        .send()
        .await
        .expect("put record");
    (
        out.shard_id().to_string(),
        out.sequence_number().to_string(),
    )
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard_id: &str,
    kind: ShardIteratorType,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(kind)
        .send()
        .await
        .expect("get shard iterator")
        .shard_iterator()
        .expect("an iterator")
        .to_string()
}

/// Everything from `it` until caught up (open shard) or the end (closed shard).
/// Returns the records and, at a closed shard's end, its ChildShards.
async fn drain(client: &Client, mut it: String) -> (Vec<Record>, Option<Vec<ChildShard>>) {
    let mut out = Vec::new();
    for _ in 0..1000 {
        let got = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .expect("get records");
        let n = got.records().len();
        out.extend(got.records().iter().cloned());
        match got.next_shard_iterator() {
            None => return (out, Some(got.child_shards().to_vec())),
            Some(next) => {
                assert!(
                    got.child_shards().is_empty(),
                    "ChildShards only at the shard's end"
                );
                if n == 0 && got.millis_behind_latest() == Some(0) {
                    return (out, None);
                }
                it = next.to_string();
            }
        }
    }
    panic!("a shard that never ends");
}

async fn read_shard(client: &Client, stream: &str, shard_id: &str) -> Vec<Record> {
    let it = iterator(client, stream, shard_id, ShardIteratorType::TrimHorizon).await;
    drain(client, it).await.0
}

async fn status(client: &Client, stream: &str) -> StreamStatus {
    client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("describe stream summary")
        .stream_description_summary()
        .expect("a summary")
        .stream_status()
        .clone()
}

/// Poll until the stream has `want` (bounded: ~5 s).
async fn await_status(client: &Client, stream: &str, want: StreamStatus) {
    for _ in 0..500 {
        if status(client, stream).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stream {stream} never became {want:?}");
}

fn data_of(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.data().as_ref().to_vec()).collect()
}

fn assert_increasing(records: &[Record]) {
    for w in records.windows(2) {
        assert!(
            seq(w[0].sequence_number()) < seq(w[1].sequence_number()),
            "sequence numbers must increase: {} then {}",
            w[0].sequence_number(),
            w[1].sequence_number()
        );
    }
}

/// The error code of a call that must fail.
fn code<T: std::fmt::Debug, E, R: std::fmt::Debug>(
    r: Result<T, aws_sdk_kinesis::error::SdkError<E, R>>,
) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::fmt::Debug,
{
    common::error_code(&r.expect_err("should fail"))
}

fn entry(key: &str, data: &[u8]) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data))
        .build()
        .expect("entry")
}

mod a_streams_life {
    use super::*;

    #[tokio::test]
    async fn status_moves_creating_active_updating_deleting() {
        let broker = common::start_broker_with(config().state_delays(STATE_DELAY).build()).await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        client
            .create_stream()
            .stream_name("life")
            .shard_count(1)
            .send()
            .await
            .expect("create");
        assert_eq!(status(&client, "life").await, StreamStatus::Creating);
        // While CREATING: no shards are described and the data plane answers "not found".
        let d = client
            .describe_stream()
            .stream_name("life")
            .send()
            .await
            .expect("describe");
        assert!(d.stream_description().unwrap().shards().is_empty());
        let err = client
            .put_record()
            .stream_name("life")
            .partition_key("k")
            .data(Blob::new("x"))
            .send()
            .await
            .expect_err("no writes while CREATING");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        await_status(&client, "life", StreamStatus::Active).await;
        put(&client, "life", "k", b"before").await;

        client
            .split_shard()
            .stream_name("life")
            .shard_to_split(shard(0))
            .new_starting_hash_key(MIDDLE)
            .send()
            .await
            .expect("split");
        assert_eq!(status(&client, "life").await, StreamStatus::Updating);
        // Reads and writes keep working while UPDATING, on the shards as they
        // were until the update completes; resharding again does not.
        put(&client, "life", "k", b"during").await;
        let parent = read_shard(&client, "life", &shard(0)).await;
        assert_eq!(
            data_of(&parent),
            vec![b"before".to_vec(), b"during".to_vec()]
        );
        let err = client
            .split_shard()
            .stream_name("life")
            .shard_to_split(shard(0))
            .new_starting_hash_key("1000")
            .send()
            .await
            .expect_err("busy");
        assert_eq!(common::error_code(&err), "ResourceInUseException");
        await_status(&client, "life", StreamStatus::Active).await;

        let u = client
            .update_shard_count()
            .stream_name("life")
            .target_shard_count(4)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .expect("update shard count");
        assert_eq!(u.current_shard_count(), Some(2));
        assert_eq!(u.target_shard_count(), Some(4));
        assert_eq!(status(&client, "life").await, StreamStatus::Updating);
        await_status(&client, "life", StreamStatus::Active).await;

        client
            .delete_stream()
            .stream_name("life")
            .send()
            .await
            .expect("delete");
        assert_eq!(status(&client, "life").await, StreamStatus::Deleting);
        let mut gone = false;
        for _ in 0..500 {
            match client
                .describe_stream_summary()
                .stream_name("life")
                .send()
                .await
            {
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    assert_eq!(common::error_code(&e), "ResourceNotFoundException");
                    gone = true;
                    break;
                }
            }
        }
        assert!(gone, "a deleted stream disappears");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn provisioned_and_on_demand_streams_describe_themselves() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "prov", 3).await;
        client
            .create_stream()
            .stream_name("od")
            .stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::OnDemand)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create on-demand");
        common::wait_active(&client, "od").await;

        let d = client
            .describe_stream()
            .stream_name("prov")
            .send()
            .await
            .unwrap();
        let d = d.stream_description().unwrap();
        assert_eq!(d.stream_name(), "prov");
        assert_eq!(
            d.stream_arn(),
            "arn:aws:kinesis:us-east-1:000000000000:stream/prov"
        );
        assert_eq!(d.retention_period_hours(), 24);
        assert_eq!(
            d.stream_mode_details().unwrap().stream_mode(),
            &StreamMode::Provisioned
        );
        assert_eq!(d.shards().len(), 3);
        // Even ranges tile the key space, in shard-id order.
        assert_eq!(
            d.shards()[0].hash_key_range().unwrap().starting_hash_key(),
            "0"
        );
        assert_eq!(
            d.shards()[2].hash_key_range().unwrap().ending_hash_key(),
            u128::MAX.to_string()
        );
        for w in d.shards().windows(2) {
            let end: u128 = w[0]
                .hash_key_range()
                .unwrap()
                .ending_hash_key()
                .parse()
                .unwrap();
            let start: u128 = w[1]
                .hash_key_range()
                .unwrap()
                .starting_hash_key()
                .parse()
                .unwrap();
            assert_eq!(end + 1, start);
            assert!(w[0].shard_id() < w[1].shard_id());
        }

        let s = client
            .describe_stream_summary()
            .stream_name("od")
            .send()
            .await
            .unwrap();
        let s = s.stream_description_summary().unwrap();
        assert_eq!(
            s.stream_mode_details().unwrap().stream_mode(),
            &StreamMode::OnDemand
        );
        assert_eq!(s.open_shard_count(), 4);
        assert_eq!(s.retention_period_hours(), 24);
        // The service manages an on-demand stream's shards.
        let err = client
            .update_shard_count()
            .stream_name("od")
            .target_shard_count(8)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .expect_err("on-demand");
        assert_eq!(common::error_code(&err), "ValidationException");

        let limits = client.describe_limits().send().await.unwrap();
        assert_eq!(limits.open_shard_count(), 7);
        assert_eq!(limits.on_demand_stream_count(), 1);
        assert!(limits.shard_limit() >= 7);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn describe_stream_pages_through_shards() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "many", 5).await;
        let mut seen = Vec::new();
        let mut start: Option<String> = None;
        for _ in 0..10 {
            let d = client
                .describe_stream()
                .stream_name("many")
                .limit(2)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .unwrap();
            let d = d.stream_description().unwrap();
            assert!(d.shards().len() <= 2);
            seen.extend(d.shards().iter().map(|s| s.shard_id().to_string()));
            if !d.has_more_shards() {
                break;
            }
            start = seen.last().cloned();
        }
        assert_eq!(seen, (0..5).map(shard).collect::<Vec<_>>());
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn list_streams_pages_with_summaries() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        let names = ["s-a", "s-b", "s-c", "s-d", "s-e"];
        for n in names {
            common::create_active_stream(&client, n, 1).await;
        }
        // By hand: NextToken, HasMoreStreams and summaries on every page.
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let page = client
                .list_streams()
                .limit(2)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(page.stream_names().len(), page.stream_summaries().len());
            for (name, summary) in page.stream_names().iter().zip(page.stream_summaries()) {
                assert_eq!(name, summary.stream_name());
                assert_eq!(
                    summary.stream_arn(),
                    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
                );
                assert_eq!(summary.stream_status(), &StreamStatus::Active);
                assert!(summary.stream_creation_timestamp().is_some());
                seen.push(name.clone());
            }
            assert_eq!(page.has_more_streams(), page.next_token().is_some());
            match page.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, names);
        // The SDK's paginator drives the same tokens.
        let mut pages = client.list_streams().limit(2).into_paginator().send();
        let mut via_paginator = Vec::new();
        while let Some(page) = pages.next().await {
            via_paginator.extend(page.unwrap().stream_names().to_vec());
        }
        assert_eq!(via_paginator, names);
        // The legacy ExclusiveStartStreamName still works.
        let rest = client
            .list_streams()
            .exclusive_start_stream_name("s-c")
            .send()
            .await
            .unwrap();
        assert_eq!(rest.stream_names(), ["s-d", "s-e"]);
        assert!(!rest.has_more_streams());
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn list_shards_pages_and_filters() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "ls", 3).await;
        let before_split = DateTime::from_millis(kinesis_broker::service::now_ms());
        client
            .split_shard()
            .stream_name("ls")
            .shard_to_split(shard(0))
            .new_starting_hash_key("1000")
            .send()
            .await
            .unwrap();
        // Shards 0 (closed), 1, 2, 3 and 4 (children of 0).
        let ids = |shards: &[aws_sdk_kinesis::types::Shard]| -> Vec<String> {
            shards.iter().map(|s| s.shard_id().to_string()).collect()
        };
        let mut all = Vec::new();
        let first = client
            .list_shards()
            .stream_name("ls")
            .max_results(2)
            .send()
            .await
            .unwrap();
        all.extend(ids(first.shards()));
        let mut token = first.next_token().map(str::to_string);
        for _ in 0..10 {
            let Some(t) = token.take() else { break };
            let page = client
                .list_shards()
                .next_token(t)
                .max_results(2)
                .send()
                .await
                .unwrap();
            assert!(page.shards().len() <= 2);
            all.extend(ids(page.shards()));
            token = page.next_token().map(str::to_string);
        }
        assert_eq!(all, (0..5).map(shard).collect::<Vec<_>>());

        let filtered = |t: ShardFilterType, id: Option<&str>, ts: Option<DateTime>| {
            let client = client.clone();
            let filter = ShardFilter::builder()
                .r#type(t)
                .set_shard_id(id.map(str::to_string))
                .set_timestamp(ts)
                .build()
                .unwrap();
            async move {
                let out = client
                    .list_shards()
                    .stream_name("ls")
                    .shard_filter(filter)
                    .send()
                    .await
                    .unwrap();
                out.shards()
                    .iter()
                    .map(|s| s.shard_id().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            filtered(ShardFilterType::AtLatest, None, None).await,
            [1, 2, 3, 4].map(shard)
        );
        assert_eq!(
            filtered(ShardFilterType::AfterShardId, Some(&shard(2)), None).await,
            [3, 4].map(shard)
        );
        assert_eq!(
            filtered(ShardFilterType::AtTrimHorizon, None, None).await,
            [0, 1, 2].map(shard)
        );
        assert_eq!(
            filtered(ShardFilterType::FromTrimHorizon, None, None).await,
            (0..5).map(shard).collect::<Vec<_>>()
        );
        // Open at a time before the split: the original three.
        let at = filtered(ShardFilterType::AtTimestamp, None, Some(before_split)).await;
        assert!(at.starts_with(&[shard(0), shard(1), shard(2)]), "{at:?}");
        assert_eq!(
            filtered(ShardFilterType::FromTimestamp, None, Some(before_split)).await,
            (0..5).map(shard).collect::<Vec<_>>()
        );
        // ExclusiveStartShardId, and NextToken with a stream name is refused.
        let after = client
            .list_shards()
            .stream_name("ls")
            .exclusive_start_shard_id(shard(3))
            .send()
            .await
            .unwrap();
        assert_eq!(ids(after.shards()), [shard(4)]);
        let err = client
            .list_shards()
            .stream_name("ls")
            .next_token(first.next_token().unwrap())
            .send()
            .await
            .expect_err("both");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        let err = client.list_shards().send().await.expect_err("neither");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn stream_arn_is_accepted_wherever_aws_accepts_it() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "byarn", 2).await;
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/byarn";
        let d = client
            .describe_stream()
            .stream_arn(arn)
            .send()
            .await
            .unwrap();
        assert_eq!(d.stream_description().unwrap().stream_name(), "byarn");
        client
            .describe_stream_summary()
            .stream_arn(arn)
            .send()
            .await
            .unwrap();
        let shards = client.list_shards().stream_arn(arn).send().await.unwrap();
        assert_eq!(shards.shards().len(), 2);
        let p = client
            .put_record()
            .stream_arn(arn)
            .partition_key("k")
            .data(Blob::new("one"))
            .explicit_hash_key("0")
            .send()
            .await
            .unwrap();
        assert_eq!(p.shard_id(), shard(0));
        let pr = client
            .put_records()
            .stream_arn(arn)
            .records(entry("k", b"two"))
            .send()
            .await
            .unwrap();
        assert_eq!(pr.failed_record_count(), Some(0));
        let it = client
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(p.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let got = client
            .get_records()
            .stream_arn(arn)
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(data_of(got.records())[0], b"one");
        client
            .add_tags_to_stream()
            .stream_arn(arn)
            .tags("team", "data")
            .send()
            .await
            .unwrap();
        let tags = client
            .list_tags_for_stream()
            .stream_arn(arn)
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tags().len(), 1);
        client
            .remove_tags_from_stream()
            .stream_arn(arn)
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        client
            .increase_stream_retention_period()
            .stream_arn(arn)
            .retention_period_hours(48)
            .send()
            .await
            .unwrap();
        client
            .decrease_stream_retention_period()
            .stream_arn(arn)
            .retention_period_hours(24)
            .send()
            .await
            .unwrap();
        client
            .enable_enhanced_monitoring()
            .stream_arn(arn)
            .shard_level_metrics(aws_sdk_kinesis::types::MetricsName::IncomingBytes)
            .send()
            .await
            .unwrap();
        client
            .disable_enhanced_monitoring()
            .stream_arn(arn)
            .shard_level_metrics(aws_sdk_kinesis::types::MetricsName::IncomingBytes)
            .send()
            .await
            .unwrap();
        client
            .split_shard()
            .stream_arn(arn)
            .shard_to_split(shard(0))
            .new_starting_hash_key("1000")
            .send()
            .await
            .unwrap();
        client
            .merge_shards()
            .stream_arn(arn)
            .shard_to_merge(shard(2))
            .adjacent_shard_to_merge(shard(3))
            .send()
            .await
            .unwrap();
        client
            .update_shard_count()
            .stream_arn(arn)
            .target_shard_count(2)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .unwrap();
        client
            .start_stream_encryption()
            .stream_arn(arn)
            .encryption_type(aws_sdk_kinesis::types::EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await
            .unwrap();
        client
            .stop_stream_encryption()
            .stream_arn(arn)
            .encryption_type(aws_sdk_kinesis::types::EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await
            .unwrap();
        // A name and an ARN that disagree are refused.
        let err = client
            .describe_stream_summary()
            .stream_name("other")
            .stream_arn(arn)
            .send()
            .await
            .expect_err("mismatch");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        client.delete_stream().stream_arn(arn).send().await.unwrap();
        let err = client
            .describe_stream_summary()
            .stream_arn(arn)
            .send()
            .await
            .expect_err("deleted");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn tags_are_added_listed_and_removed() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        client
            .create_stream()
            .stream_name("tagged")
            .shard_count(1)
            .tags("env", "test")
            .send()
            .await
            .unwrap();
        common::wait_active(&client, "tagged").await;
        client
            .add_tags_to_stream()
            .stream_name("tagged")
            .tags("a", "1")
            .tags("b", "2")
            .tags("env", "prod")
            .send()
            .await
            .unwrap();
        let page = client
            .list_tags_for_stream()
            .stream_name("tagged")
            .limit(2)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = page.tags().iter().map(|t| t.key()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(page.has_more_tags());
        let rest = client
            .list_tags_for_stream()
            .stream_name("tagged")
            .exclusive_start_tag_key("b")
            .send()
            .await
            .unwrap();
        assert_eq!(rest.tags().len(), 1);
        assert_eq!(rest.tags()[0].key(), "env");
        assert_eq!(rest.tags()[0].value(), Some("prod"));
        assert!(!rest.has_more_tags());
        client
            .remove_tags_from_stream()
            .stream_name("tagged")
            .tag_keys("a")
            .tag_keys("env")
            .send()
            .await
            .unwrap();
        let left = client
            .list_tags_for_stream()
            .stream_name("tagged")
            .send()
            .await
            .unwrap();
        assert_eq!(left.tags().len(), 1);
        assert_eq!(left.tags()[0].key(), "b");
        // More than 50 tags on one stream is refused.
        let mut add = client.add_tags_to_stream().stream_name("tagged");
        for i in 0..50 {
            add = add.tags(format!("k{i}"), "v");
        }
        let err = add.send().await.expect_err("51 tags");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        broker.shutdown().await;
    }
}

mod b_writing_and_reading {
    use super::*;

    #[tokio::test]
    async fn put_record_routes_by_partition_key_or_explicit_hash_key() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "route", 4).await;
        let quarter = u128::MAX / 4 + 1;
        for i in 0..4u32 {
            let key = (quarter * u128::from(i) + 7).to_string();
            let out = client
                .put_record()
                .stream_name("route")
                .partition_key("ignored-for-routing")
                .explicit_hash_key(key)
                .data(Blob::new(format!("to {i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(out.shard_id(), shard(i));
            assert_eq!(
                out.encryption_type(),
                Some(&aws_sdk_kinesis::types::EncryptionType::None)
            );
        }
        // The same partition key always lands on the same shard (MD5 routing).
        let expected = kinesis_proto::hash_key::hash_key_for_partition_key("user-42");
        let owner = kinesis_proto::hash_key::even_split(4)
            .iter()
            .position(|r| r.contains(expected))
            .unwrap();
        let (sid, first) = put(&client, "route", "user-42", b"a").await;
        assert_eq!(sid, shard(owner as u32));
        // SequenceNumberForOrdering: the next record is numbered above it.
        let out = client
            .put_record()
            .stream_name("route")
            .partition_key("user-42")
            .sequence_number_for_ordering(&first)
            .data(Blob::new("b"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), sid);
        assert!(seq(out.sequence_number()) > seq(&first));
        // Empty data is a valid record.
        put(&client, "route", "user-42", b"").await;
        let records = read_shard(&client, "route", &sid).await;
        let mine: Vec<&Record> = records
            .iter()
            .filter(|r| r.partition_key() == Some("user-42"))
            .collect();
        assert_eq!(mine.len(), 3);
        assert_eq!(mine[0].data().as_ref(), b"a");
        assert_eq!(mine[1].data().as_ref(), b"b");
        assert!(mine[2].data().as_ref().is_empty());
        assert!(mine[0].approximate_arrival_timestamp().is_some());
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn put_records_answers_each_entry_in_order() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "batch", 3).await;
        let mut req = client.put_records().stream_name("batch");
        for i in 0..100 {
            req = req.records(entry(&format!("key-{i}"), format!("rec-{i}").as_bytes()));
        }
        let out = req.send().await.unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
        assert_eq!(out.records().len(), 100);
        let mut by_shard: std::collections::BTreeMap<String, Vec<(String, String)>> =
            Default::default();
        for (i, r) in out.records().iter().enumerate() {
            assert!(r.error_code().is_none());
            let expect = kinesis_proto::hash_key::hash_key_for_partition_key(&format!("key-{i}"));
            let sid = r.shard_id().unwrap().to_string();
            let idx = sid.trim_start_matches("shardId-").parse::<u32>().unwrap();
            let range = &kinesis_proto::hash_key::even_split(3)[idx as usize];
            assert!(
                range.contains(expect),
                "entry {i} routed to the wrong shard"
            );
            by_shard
                .entry(sid)
                .or_default()
                .push((r.sequence_number().unwrap().to_string(), format!("rec-{i}")));
        }
        // Per shard, entries are stored in request order with increasing numbers.
        for (sid, sent) in by_shard {
            let got = read_shard(&client, "batch", &sid).await;
            assert_increasing(&got);
            let got: Vec<(String, String)> = got
                .iter()
                .map(|r| {
                    (
                        r.sequence_number().to_string(),
                        String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, sent);
        }
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn records_are_immutable_and_ordered_per_shard() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "log", 1).await;
        let mut sent = Vec::new();
        for i in 0..20 {
            let (_, s) = put(
                &client,
                "log",
                &format!("k{}", i % 3),
                format!("v{i}").as_bytes(),
            )
            .await;
            sent.push(s);
        }
        let first = read_shard(&client, "log", &shard(0)).await;
        assert_increasing(&first);
        assert_eq!(
            first
                .iter()
                .map(|r| r.sequence_number().to_string())
                .collect::<Vec<_>>(),
            sent
        );
        put(&client, "log", "k", b"later").await;
        // Reading again returns the very same records (plus the new one), unchanged.
        let second = read_shard(&client, "log", &shard(0)).await;
        assert_eq!(second.len(), 21);
        assert_eq!(&second[..20], &first[..]);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn many_concurrent_writers_get_unique_increasing_sequence_numbers() {
        const WRITERS: usize = 16;
        const EACH: usize = 200;
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "busy", 4).await;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let out = client
                        .put_record()
                        .stream_name("busy")
                        .partition_key(format!("w{w}-{}", i % 8))
                        .data(Blob::new(format!("{w}:{i}")))
                        .send()
                        .await
                        .expect("put");
                    mine.push((
                        out.shard_id().to_string(),
                        out.sequence_number().to_string(),
                        format!("{w}:{i}"),
                    ));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let mine = t.await.unwrap();
            // One writer's records on one shard are numbered in the order it wrote them.
            for sid in (0..4).map(shard) {
                let on: Vec<SequenceNumber> = mine
                    .iter()
                    .filter(|(s, _, _)| *s == sid)
                    .map(|(_, n, _)| seq(n))
                    .collect();
                assert!(on.windows(2).all(|w| w[0] < w[1]));
            }
            all.extend(mine);
        }
        assert_eq!(all.len(), WRITERS * EACH);
        let unique: std::collections::HashSet<&String> = all.iter().map(|(_, n, _)| n).collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "sequence numbers are unique per stream"
        );
        // Each shard holds exactly what was acknowledged on it, in sequence order.
        let mut read_back = 0;
        for sid in (0..4).map(shard) {
            let got = read_shard(&client, "busy", &sid).await;
            assert_increasing(&got);
            let mut acked: Vec<(SequenceNumber, String)> = all
                .iter()
                .filter(|(s, _, _)| *s == sid)
                .map(|(_, n, d)| (seq(n), d.clone()))
                .collect();
            acked.sort();
            let got: Vec<(SequenceNumber, String)> = got
                .iter()
                .map(|r| {
                    (
                        seq(r.sequence_number()),
                        String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, acked);
            read_back += got.len();
        }
        assert_eq!(read_back, WRITERS * EACH);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn every_iterator_type_starts_where_it_says() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "its", 1).await;
        let mut seqs = Vec::new();
        for i in 0..5 {
            seqs.push(put(&client, "its", "k", format!("r{i}").as_bytes()).await.1);
        }
        let all = read_shard(&client, "its", &shard(0)).await;
        let at = |kind: ShardIteratorType, sn: Option<&str>, ts: Option<DateTime>| {
            let client = client.clone();
            let sn = sn.map(str::to_string);
            async move {
                let it = client
                    .get_shard_iterator()
                    .stream_name("its")
                    .shard_id(shard(0))
                    .shard_iterator_type(kind)
                    .set_starting_sequence_number(sn)
                    .set_timestamp(ts)
                    .send()
                    .await
                    .unwrap();
                let (records, _) = drain(&client, it.shard_iterator().unwrap().to_string()).await;
                data_of(&records)
            }
        };
        let names = |r: std::ops::Range<usize>| -> Vec<Vec<u8>> {
            r.map(|i| format!("r{i}").into_bytes()).collect()
        };
        assert_eq!(
            at(ShardIteratorType::TrimHorizon, None, None).await,
            names(0..5)
        );
        assert_eq!(at(ShardIteratorType::Latest, None, None).await, names(0..0));
        assert_eq!(
            at(ShardIteratorType::AtSequenceNumber, Some(&seqs[2]), None).await,
            names(2..5)
        );
        assert_eq!(
            at(ShardIteratorType::AfterSequenceNumber, Some(&seqs[2]), None).await,
            names(3..5)
        );
        let third_arrival = *all[3].approximate_arrival_timestamp().unwrap();
        let from_ts = at(ShardIteratorType::AtTimestamp, None, Some(third_arrival)).await;
        // Every record from the first that arrived at or after the timestamp.
        let first_at = all
            .iter()
            .position(|r| *r.approximate_arrival_timestamp().unwrap() >= third_arrival)
            .unwrap();
        assert!(first_at <= 3);
        assert_eq!(from_ts, names(first_at..5));
        let long_ago = DateTime::from_secs(1_000_000_000);
        assert_eq!(
            at(ShardIteratorType::AtTimestamp, None, Some(long_ago)).await,
            names(0..5)
        );

        // LATEST sees only what is written after it was taken.
        let latest = iterator(&client, "its", &shard(0), ShardIteratorType::Latest).await;
        put(&client, "its", "k", b"new").await;
        let (after, _) = drain(&client, latest).await;
        assert_eq!(data_of(&after), vec![b"new".to_vec()]);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn get_records_honours_limit_and_reports_lag() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "pages", 1).await;
        let mut req = client.put_records().stream_name("pages");
        for i in 0..7 {
            req = req.records(entry("k", format!("{i}").as_bytes()));
        }
        req.send().await.unwrap();
        // Let the clock pass the records' arrival, so being behind shows as > 0 ms.
        let stored = kinesis_broker::service::now_ms();
        for _ in 0..1000 {
            if kinesis_broker::service::now_ms() > stored {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut it = iterator(&client, "pages", &shard(0), ShardIteratorType::TrimHorizon).await;
        let mut sizes = Vec::new();
        let mut behinds = Vec::new();
        let mut got = Vec::new();
        for _ in 0..10 {
            let page = client
                .get_records()
                .shard_iterator(&it)
                .limit(3)
                .send()
                .await
                .unwrap();
            sizes.push(page.records().len());
            got.extend(data_of(page.records()));
            behinds.push(page.millis_behind_latest().expect("MillisBehindLatest"));
            it = page.next_shard_iterator().expect("open shard").to_string();
            if page.records().is_empty() {
                break;
            }
        }
        assert_eq!(sizes, [3, 3, 1, 0]);
        // Behind while records remain after a page; 0 once caught up.
        assert!(behinds[0] > 0 && behinds[1] > 0, "{behinds:?}");
        assert_eq!(behinds[2..], [0, 0]);
        assert_eq!(
            got,
            (0..7)
                .map(|i| format!("{i}").into_bytes())
                .collect::<Vec<_>>()
        );
        // An iterator can be used again: it reads the same position.
        let again = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap();
        assert!(again.records().is_empty());
        assert!(again.next_shard_iterator().is_some());
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn several_readers_replay_the_same_records_at_their_own_pace() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "replay", 1).await;
        for i in 0..10 {
            put(&client, "replay", "k", format!("{i}").as_bytes()).await;
        }
        let expected: Vec<Vec<u8>> = (0..10).map(|i| format!("{i}").into_bytes()).collect();
        // Three readers, each at its own position, reading in steps of 1, 2 and 4.
        let mut readers = Vec::new();
        for _ in 0..3 {
            readers.push((
                iterator(&client, "replay", &shard(0), ShardIteratorType::TrimHorizon).await,
                Vec::<Vec<u8>>::new(),
            ));
        }
        for _round in 0..10 {
            for (n, (it, got)) in readers.iter_mut().enumerate() {
                let page = client
                    .get_records()
                    .shard_iterator(it.as_str())
                    .limit(1 << n)
                    .send()
                    .await
                    .unwrap();
                got.extend(data_of(page.records()));
                *it = page.next_shard_iterator().unwrap().to_string();
            }
        }
        for (_, got) in &readers {
            assert_eq!(got, &expected);
        }
        // A reader that starts late still sees everything.
        assert_eq!(
            data_of(&read_shard(&client, "replay", &shard(0)).await),
            expected
        );
        broker.shutdown().await;
    }
}

mod c_resharding {
    use super::*;

    #[tokio::test]
    async fn a_split_parent_stays_readable_then_points_to_its_children() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "split", 1).await;
        for i in 0..5 {
            put(
                &client,
                "split",
                &format!("k{i}"),
                format!("old-{i}").as_bytes(),
            )
            .await;
        }
        // A reader part-way through the parent when the split happens.
        let it = iterator(&client, "split", &shard(0), ShardIteratorType::TrimHorizon).await;
        let page = client
            .get_records()
            .shard_iterator(&it)
            .limit(2)
            .send()
            .await
            .unwrap();
        let mut parent = data_of(page.records());
        let it = page.next_shard_iterator().unwrap().to_string();
        client
            .split_shard()
            .stream_name("split")
            .shard_to_split(shard(0))
            .new_starting_hash_key(MIDDLE)
            .send()
            .await
            .unwrap();
        let mut child_seqs = Vec::new();
        for i in 0..6 {
            let (sid, s) = put(
                &client,
                "split",
                &format!("k{i}"),
                format!("new-{i}").as_bytes(),
            )
            .await;
            assert!(
                sid == shard(1) || sid == shard(2),
                "writes go to the children"
            );
            child_seqs.push(s);
        }
        let (rest, children) = drain(&client, it).await;
        parent.extend(data_of(&rest));
        assert_eq!(
            parent,
            (0..5)
                .map(|i| format!("old-{i}").into_bytes())
                .collect::<Vec<_>>()
        );
        let children = children.expect("the parent ends with ChildShards");
        let mut kids: Vec<(String, Vec<String>)> = children
            .iter()
            .map(|c| (c.shard_id().to_string(), c.parent_shards().to_vec()))
            .collect();
        kids.sort();
        assert_eq!(
            kids,
            vec![(shard(1), vec![shard(0)]), (shard(2), vec![shard(0)])]
        );
        assert_eq!(
            children
                .iter()
                .find(|c| c.shard_id() == shard(2))
                .unwrap()
                .hash_key_range()
                .unwrap()
                .starting_hash_key(),
            MIDDLE
        );
        // Reading a closed parent again from the start also ends with its children.
        let whole = read_shard(&client, "split", &shard(0)).await;
        assert_eq!(whole.len(), 5);
        let parent_last = seq(whole.last().unwrap().sequence_number());
        // The children hold the new records, numbered above everything in the parent.
        let mut new = Vec::new();
        for c in [shard(1), shard(2)] {
            let got = read_shard(&client, "split", &c).await;
            assert_increasing(&got);
            for r in &got {
                assert!(seq(r.sequence_number()) > parent_last);
            }
            new.extend(data_of(&got));
        }
        new.sort();
        assert_eq!(
            new,
            (0..6)
                .map(|i| format!("new-{i}").into_bytes())
                .collect::<Vec<_>>()
        );
        // The closed parent's description carries its ending sequence number.
        let d = client
            .describe_stream()
            .stream_name("split")
            .send()
            .await
            .unwrap();
        let shards = d.stream_description().unwrap().shards();
        assert!(
            shards[0]
                .sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .is_some()
        );
        assert!(
            shards[1]
                .sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .is_none()
        );
        assert_eq!(shards[1].parent_shard_id(), Some(shard(0).as_str()));
        // LATEST on a closed shard reads straight to its end.
        let latest = iterator(&client, "split", &shard(0), ShardIteratorType::Latest).await;
        let (none, kids) = drain(&client, latest).await;
        assert!(none.is_empty());
        assert_eq!(kids.unwrap().len(), 2);
        // A closed shard cannot be split again.
        let err = client
            .split_shard()
            .stream_name("split")
            .shard_to_split(shard(0))
            .new_starting_hash_key("1000")
            .send()
            .await
            .expect_err("closed");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn merged_shards_name_both_parents() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "merge", 3).await;
        put(&client, "merge", "k", b"x").await;
        let err = client
            .merge_shards()
            .stream_name("merge")
            .shard_to_merge(shard(0))
            .adjacent_shard_to_merge(shard(2))
            .send()
            .await
            .expect_err("not adjacent");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        let err = client
            .merge_shards()
            .stream_name("merge")
            .shard_to_merge(shard(0))
            .adjacent_shard_to_merge(shard(9))
            .send()
            .await
            .expect_err("no such shard");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        // The service merges a shard only with the one just above it.
        let err = client
            .merge_shards()
            .stream_name("merge")
            .shard_to_merge(shard(1))
            .adjacent_shard_to_merge(shard(0))
            .send()
            .await
            .expect_err("inverted pair");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        client
            .merge_shards()
            .stream_name("merge")
            .shard_to_merge(shard(0))
            .adjacent_shard_to_merge(shard(1))
            .send()
            .await
            .unwrap();
        let d = client
            .describe_stream()
            .stream_name("merge")
            .send()
            .await
            .unwrap();
        let child = d.stream_description().unwrap().shards()[3].clone();
        assert_eq!(child.shard_id(), shard(3));
        assert_eq!(child.parent_shard_id(), Some(shard(0).as_str()));
        assert_eq!(child.adjacent_parent_shard_id(), Some(shard(1).as_str()));
        assert_eq!(child.hash_key_range().unwrap().starting_hash_key(), "0");
        for p in [shard(0), shard(1)] {
            let it = iterator(&client, "merge", &p, ShardIteratorType::TrimHorizon).await;
            let (_, kids) = drain(&client, it).await;
            let kids = kids.expect("closed");
            assert_eq!(kids.len(), 1);
            assert_eq!(kids[0].shard_id(), shard(3));
            let mut parents = kids[0].parent_shards().to_vec();
            parents.sort();
            assert_eq!(parents, [shard(0), shard(1)]);
        }
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn update_shard_count_scales_uniformly() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "scale", 2).await;
        let open = |client: Client| async move {
            let out = client
                .list_shards()
                .stream_name("scale")
                .shard_filter(
                    ShardFilter::builder()
                        .r#type(ShardFilterType::AtLatest)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            out.shards()
                .iter()
                .map(|s| {
                    let r = s.hash_key_range().unwrap();
                    (
                        r.starting_hash_key().parse::<u128>().unwrap(),
                        r.ending_hash_key().parse::<u128>().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        for target in [4, 3, 5, 3] {
            let out = client
                .update_shard_count()
                .stream_name("scale")
                .target_shard_count(target)
                .scaling_type(ScalingType::UniformScaling)
                .send()
                .await
                .unwrap();
            assert_eq!(out.target_shard_count(), Some(target));
            assert_eq!(out.stream_name(), Some("scale"));
            let mut ranges = open(client.clone()).await;
            ranges.sort();
            assert_eq!(ranges.len(), target as usize);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().unwrap().1, u128::MAX);
            let width = u128::MAX / target as u128;
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "open shards tile the key space");
            }
            for (s, e) in &ranges {
                // Each within 1/1000 of an even share.
                assert!((e - s).abs_diff(width) <= width / 500, "uneven range");
            }
        }
        // Writes keep landing on open shards only.
        let (sid, _) = put(&client, "scale", "k", b"x").await;
        let open_ids: Vec<String> = client
            .list_shards()
            .stream_name("scale")
            .shard_filter(
                ShardFilter::builder()
                    .r#type(ShardFilterType::AtLatest)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .shards()
            .iter()
            .map(|s| s.shard_id().to_string())
            .collect();
        assert!(open_ids.contains(&sid));
        for bad in [7, 1] {
            let err = client
                .update_shard_count()
                .stream_name("scale")
                .target_shard_count(bad)
                .scaling_type(ScalingType::UniformScaling)
                .send()
                .await
                .expect_err("beyond 2x or below half");
            assert_eq!(common::error_code(&err), "InvalidArgumentException");
        }
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn split_keys_outside_the_shard_are_refused() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "bad-split", 2).await;
        let second_start = (u128::MAX / 2 + 1).to_string();
        for key in ["0", "1", second_start.as_str()] {
            let err = client
                .split_shard()
                .stream_name("bad-split")
                .shard_to_split(shard(0))
                .new_starting_hash_key(key)
                .send()
                .await
                .expect_err(key);
            assert_eq!(
                common::error_code(&err),
                "InvalidArgumentException",
                "{key}"
            );
        }
        // Not a number at all breaks the model's pattern.
        let err = client
            .split_shard()
            .stream_name("bad-split")
            .shard_to_split(shard(0))
            .new_starting_hash_key("not-a-number")
            .send()
            .await
            .expect_err("not a number");
        assert_eq!(common::error_code(&err), "ValidationException");
        let err = client
            .split_shard()
            .stream_name("bad-split")
            .shard_to_split(shard(7))
            .new_starting_hash_key("1000")
            .send()
            .await
            .expect_err("no such shard");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        broker.shutdown().await;
    }
}

mod d_retention_and_iterators {
    use super::*;

    async fn retention(client: &Client, stream: &str) -> i32 {
        client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap()
            .stream_description_summary()
            .unwrap()
            .retention_period_hours()
    }

    #[tokio::test]
    async fn retention_defaults_to_24_hours_and_moves_within_24_to_8760() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "ret", 1).await;
        assert_eq!(retention(&client, "ret").await, 24);
        client
            .increase_stream_retention_period()
            .stream_name("ret")
            .retention_period_hours(8760)
            .send()
            .await
            .unwrap();
        assert_eq!(retention(&client, "ret").await, 8760);
        client
            .decrease_stream_retention_period()
            .stream_name("ret")
            .retention_period_hours(48)
            .send()
            .await
            .unwrap();
        assert_eq!(retention(&client, "ret").await, 48);
        let increase = |h: i32| {
            client
                .increase_stream_retention_period()
                .stream_name("ret")
                .retention_period_hours(h)
                .send()
        };
        for h in [8761, 24] {
            let err = increase(h).await.expect_err("out of bounds or shorter");
            assert_eq!(common::error_code(&err), "InvalidArgumentException", "{h}");
        }
        for h in [23, 72] {
            let err = client
                .decrease_stream_retention_period()
                .stream_name("ret")
                .retention_period_hours(h)
                .send()
                .await
                .expect_err("below minimum or longer");
            assert_eq!(common::error_code(&err), "InvalidArgumentException", "{h}");
        }
        assert_eq!(retention(&client, "ret").await, 48);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn records_past_retention_are_gone_and_trim_horizon_moves() {
        // One "hour" is 20 ms: 24 hours pass in about half a second.
        let broker =
            common::start_broker_with(config().retention_hour(Duration::from_millis(20)).build())
                .await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "short", 1).await;
        let (_, old_seq) = put(&client, "short", "k", b"old").await;
        let early = iterator(&client, "short", &shard(0), ShardIteratorType::TrimHorizon).await;
        // Bounded wait until the record has expired.
        let mut expired = false;
        for _ in 0..300 {
            if read_shard(&client, "short", &shard(0)).await.is_empty() {
                expired = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(expired, "the record expired");
        put(&client, "short", "k", b"new").await;
        // TRIM_HORIZON now starts at the new record; so do stale positions.
        assert_eq!(
            data_of(&read_shard(&client, "short", &shard(0)).await),
            vec![b"new".to_vec()]
        );
        let at_old = client
            .get_shard_iterator()
            .stream_name("short")
            .shard_id(shard(0))
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(&old_seq)
            .send()
            .await
            .unwrap();
        let (from_old, _) = drain(&client, at_old.shard_iterator().unwrap().to_string()).await;
        assert_eq!(data_of(&from_old), vec![b"new".to_vec()]);
        let got = client
            .get_records()
            .shard_iterator(&early)
            .send()
            .await
            .unwrap();
        assert_eq!(data_of(got.records()), vec![b"new".to_vec()]);
        // Raising retention does not bring expired records back.
        client
            .increase_stream_retention_period()
            .stream_name("short")
            .retention_period_hours(8760)
            .send()
            .await
            .unwrap();
        assert_eq!(
            data_of(&read_shard(&client, "short", &shard(0)).await),
            vec![b"new".to_vec()]
        );
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn a_closed_shard_is_unlisted_once_its_records_expire() {
        let broker =
            common::start_broker_with(config().retention_hour(Duration::from_millis(20)).build())
                .await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "fade", 1).await;
        put(&client, "fade", "k", b"x").await;
        client
            .split_shard()
            .stream_name("fade")
            .shard_to_split(shard(0))
            .new_starting_hash_key(MIDDLE)
            .send()
            .await
            .unwrap();
        let listed = |client: Client| async move {
            client
                .list_shards()
                .stream_name("fade")
                .send()
                .await
                .unwrap()
                .shards()
                .iter()
                .map(|s| s.shard_id().to_string())
                .collect::<Vec<_>>()
        };
        let mut now_listed = listed(client.clone()).await;
        for _ in 0..300 {
            if now_listed.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            now_listed = listed(client.clone()).await;
        }
        assert_eq!(now_listed, [shard(1), shard(2)]);
        let err = client
            .get_shard_iterator()
            .stream_name("fade")
            .shard_id(shard(0))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect_err("expired shard");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn forged_or_edited_iterators_are_refused() {
        let broker = start().await;
        let other = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        let other_client = common::sdk_client_no_retry(&other.endpoint());
        common::create_active_stream(&client, "sealed", 1).await;
        common::create_active_stream(&other_client, "sealed", 1).await;
        put(&client, "sealed", "k", b"secret").await;
        let good = iterator(&client, "sealed", &shard(0), ShardIteratorType::TrimHorizon).await;
        let foreign = iterator(
            &other_client,
            "sealed",
            &shard(0),
            ShardIteratorType::TrimHorizon,
        )
        .await;
        let mut edited = good.clone().into_bytes();
        let mid = edited.len() / 2;
        edited[mid] = if edited[mid] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        let truncated = good[..good.len() - 4].to_string();
        for bad in [
            "AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
            edited,
            truncated,
            foreign,
        ] {
            let err = client
                .get_records()
                .shard_iterator(&bad)
                .send()
                .await
                .expect_err("forged iterator");
            assert_eq!(
                common::error_code(&err),
                "InvalidArgumentException",
                "{bad}"
            );
        }
        let ok = client
            .get_records()
            .shard_iterator(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(data_of(ok.records()), vec![b"secret".to_vec()]);
        // Pagination tokens are sealed the same way.
        let err = client
            .list_shards()
            .next_token("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .send()
            .await
            .expect_err("forged token");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        other.shutdown().await;
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn iterators_and_next_tokens_expire() {
        let broker = common::start_broker_with(
            config()
                .iterator_ttl(Duration::from_millis(50))
                .next_token_ttl(Duration::from_millis(50))
                .build(),
        )
        .await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "ttl-a", 2).await;
        common::create_active_stream(&client, "ttl-b", 1).await;
        let it = iterator(&client, "ttl-a", &shard(0), ShardIteratorType::TrimHorizon).await;
        let streams = client.list_streams().limit(1).send().await.unwrap();
        let stream_token = streams.next_token().unwrap().to_string();
        let shards = client
            .list_shards()
            .stream_name("ttl-a")
            .max_results(1)
            .send()
            .await
            .unwrap();
        let shard_token = shards.next_token().unwrap().to_string();
        // Bounded poll until each has expired, then check the error type.
        let mut codes = [String::new(), String::new(), String::new()];
        for _ in 0..300 {
            if codes.iter().all(|c| !c.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            if codes[0].is_empty()
                && let Err(e) = client.get_records().shard_iterator(&it).send().await
            {
                codes[0] = common::error_code(&e);
            }
            if codes[1].is_empty()
                && let Err(e) = client.list_streams().next_token(&stream_token).send().await
            {
                codes[1] = common::error_code(&e);
            }
            if codes[2].is_empty()
                && let Err(e) = client.list_shards().next_token(&shard_token).send().await
            {
                codes[2] = common::error_code(&e);
            }
        }
        assert_eq!(
            codes,
            [
                "ExpiredIteratorException",
                "ExpiredNextTokenException",
                "ExpiredNextTokenException"
            ]
        );
        broker.shutdown().await;
    }
}

mod e_validation_errors {
    use super::*;
    use kinesis_proto::ErrorCode;
    use kinesis_proto::client::{ClientConfig, Credentials};
    use kinesis_proto::codec::Encoding;
    use kinesis_proto::model::Operation;

    #[tokio::test]
    async fn record_and_batch_limits_use_aws_error_types() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "v", 1).await;
        let put_one = |key: String, data: Vec<u8>| {
            client
                .put_record()
                .stream_name("v")
                .partition_key(key)
                .data(Blob::new(data))
                .send()
        };
        // Partition keys are 1-256 characters (characters, not bytes).
        put_one("k".repeat(256), b"x".to_vec()).await.unwrap();
        put_one("é".repeat(256), b"x".to_vec()).await.unwrap();
        for key in [String::new(), "k".repeat(257)] {
            let err = put_one(key, b"x".to_vec()).await.expect_err("bad key");
            assert_eq!(common::error_code(&err), "ValidationException");
        }
        // Data up to 1 MiB including the partition key.
        const MIB: usize = 1024 * 1024;
        put_one("k".into(), vec![7; MIB - 1]).await.unwrap();
        let err = put_one("k".into(), vec![7; MIB + 1])
            .await
            .expect_err("too big");
        assert_eq!(common::error_code(&err), "ValidationException");
        let err = put_one("kk".into(), vec![7; MIB])
            .await
            .expect_err("key pushes it over");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");

        // PutRecords: 1-500 entries and at most 5 MiB.
        let mut ok = client.put_records().stream_name("v");
        for i in 0..500 {
            ok = ok.records(entry(&format!("{i}"), b"x"));
        }
        assert_eq!(ok.send().await.unwrap().records().len(), 500);
        let mut too_many = client.put_records().stream_name("v");
        for i in 0..501 {
            too_many = too_many.records(entry(&format!("{i}"), b"x"));
        }
        let err = too_many.send().await.expect_err("501");
        assert_eq!(common::error_code(&err), "ValidationException");
        let err = client
            .put_records()
            .stream_name("v")
            .set_records(Some(Vec::new()))
            .send()
            .await
            .expect_err("empty");
        assert_eq!(common::error_code(&err), "ValidationException");
        let mut too_big = client.put_records().stream_name("v");
        for i in 0..6 {
            too_big = too_big.records(entry(&format!("{i}"), &vec![1; 1_000_000]));
        }
        let err = too_big.send().await.expect_err("6 MB");
        assert_eq!(common::error_code(&err), "InvalidArgumentException");
        let err = client
            .put_records()
            .stream_name("v")
            .records(entry("", b"x"))
            .send()
            .await
            .expect_err("empty key in a batch");
        assert_eq!(common::error_code(&err), "ValidationException");

        // ExplicitHashKey must be within [0, 2^128): 40 digits break the
        // model's pattern, 39 digits above the range are refused by the service.
        let err = client
            .put_record()
            .stream_name("v")
            .partition_key("k")
            .explicit_hash_key(u128::MAX.to_string() + "0")
            .data(Blob::new("x"))
            .send()
            .await
            .expect_err("hash key too long");
        assert_eq!(common::error_code(&err), "ValidationException");
        for key in ["340282366920938463463374607431768211456".to_string()] {
            let err = client
                .put_record()
                .stream_name("v")
                .partition_key("k")
                .explicit_hash_key(&key)
                .data(Blob::new("x"))
                .send()
                .await
                .expect_err("hash key out of range");
            assert_eq!(
                common::error_code(&err),
                "InvalidArgumentException",
                "{key}"
            );
        }
        let err = client
            .put_record()
            .stream_name("v")
            .partition_key("k")
            .sequence_number_for_ordering("not-a-number")
            .data(Blob::new("x"))
            .send()
            .await
            .expect_err("bad ordering");
        // Not digits: the model's pattern refuses it before the service looks.
        assert_eq!(common::error_code(&err), "ValidationException");

        // GetRecords Limit is 1-10000.
        let it = iterator(&client, "v", &shard(0), ShardIteratorType::TrimHorizon).await;
        for limit in [0, 10_001] {
            let err = client
                .get_records()
                .shard_iterator(&it)
                .limit(limit)
                .send()
                .await
                .expect_err("limit");
            assert_eq!(common::error_code(&err), "ValidationException", "{limit}");
        }
        let page = client
            .get_records()
            .shard_iterator(&it)
            .limit(10_000)
            .send()
            .await
            .unwrap();
        assert!(!page.records().is_empty());
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn streams_and_shards_are_checked() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "exists", 1).await;
        let create = |name: &str, shards: Option<i32>| {
            client
                .create_stream()
                .stream_name(name)
                .set_shard_count(shards)
                .send()
        };
        assert_eq!(code(create("zero", Some(0)).await), "ValidationException");
        assert_eq!(code(create("none", None).await), "InvalidArgumentException");
        assert_eq!(
            code(create("bad name!", Some(1)).await),
            "ValidationException"
        );
        assert_eq!(
            code(create(&"n".repeat(129), Some(1)).await),
            "ValidationException"
        );
        assert_eq!(
            code(create("exists", Some(1)).await),
            "ResourceInUseException"
        );
        assert_eq!(
            code(client.describe_stream().stream_name("missing").send().await),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(
                client
                    .describe_stream_summary()
                    .stream_name("missing")
                    .send()
                    .await
            ),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(client.delete_stream().stream_name("missing").send().await),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(client.list_shards().stream_name("missing").send().await),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(
                client
                    .put_record()
                    .stream_name("missing")
                    .partition_key("k")
                    .data(Blob::new("x"))
                    .send()
                    .await
            ),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(
                client
                    .get_shard_iterator()
                    .stream_name("missing")
                    .shard_id(shard(0))
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
            ),
            "ResourceNotFoundException"
        );
        assert_eq!(
            code(
                client
                    .get_shard_iterator()
                    .stream_name("exists")
                    .shard_id(shard(5))
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
            ),
            "ResourceNotFoundException"
        );
        // Iterator arguments that do not fit the type.
        let (_, sn) = put(&client, "exists", "k", b"x").await;
        let gsi = |kind: ShardIteratorType, sn: Option<&str>, ts: Option<DateTime>| {
            client
                .get_shard_iterator()
                .stream_name("exists")
                .shard_id(shard(0))
                .shard_iterator_type(kind)
                .set_starting_sequence_number(sn.map(str::to_string))
                .set_timestamp(ts)
                .send()
        };
        assert_eq!(
            code(gsi(ShardIteratorType::AtSequenceNumber, None, None).await),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(gsi(ShardIteratorType::TrimHorizon, Some(&sn), None).await),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(gsi(ShardIteratorType::AtTimestamp, None, None).await),
            "InvalidArgumentException"
        );
        let future = DateTime::from_millis(kinesis_broker::service::now_ms() + 3_600_000);
        assert_eq!(
            code(gsi(ShardIteratorType::AtTimestamp, None, Some(future)).await),
            "InvalidArgumentException"
        );
        assert_eq!(
            code(gsi(ShardIteratorType::AtSequenceNumber, Some("12345"), None).await),
            "InvalidArgumentException"
        );
        broker.shutdown().await;
    }

    fn proto_client(endpoint: &str, encoding: Encoding) -> kinesis_proto::client::Client {
        kinesis_proto::client::Client::new(
            ClientConfig::builder()
                .endpoint(endpoint)
                .region("us-east-1")
                .credentials(Credentials::test())
                .encoding(encoding)
                .max_attempts(1)
                .build(),
        )
        .expect("client")
    }

    #[tokio::test]
    async fn malformed_bodies_are_serialization_errors() {
        let broker = start().await;
        let sdk = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&sdk, "ser", 1).await;
        for encoding in [Encoding::Json, Encoding::Cbor] {
            let client = proto_client(&broker.endpoint(), encoding);
            for (op, body) in [
                (
                    Operation::CreateStream,
                    serde_json::json!({"StreamName": 5, "ShardCount": 1}),
                ),
                (
                    Operation::CreateStream,
                    serde_json::json!({"StreamName": "x", "ShardCount": "one"}),
                ),
                (
                    Operation::GetShardIterator,
                    serde_json::json!({"StreamName": "ser", "ShardId": "shardId-000000000000",
                        "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "yesterday"}),
                ),
                (Operation::ListStreams, serde_json::json!("not a structure")),
            ] {
                let err = client
                    .call_untyped::<_, serde_json::Value>(op, &body)
                    .await
                    .expect_err("malformed");
                assert!(
                    err.is_code(ErrorCode::Serialization),
                    "{encoding:?} {body}: {err}"
                );
            }
        }
        // Bad base64 in JSON, and bytes that are not JSON at all.
        let client = proto_client(&broker.endpoint(), Encoding::Json);
        let err = client
            .call_untyped::<_, serde_json::Value>(
                Operation::PutRecord,
                &serde_json::json!({"StreamName": "ser", "PartitionKey": "k", "Data": "!!not base64"}),
            )
            .await
            .expect_err("bad base64");
        assert!(err.is_code(ErrorCode::Serialization), "{err}");
        let addr = broker.local_addr();
        let resp = common::raw_request(
            addr,
            "POST",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "Kinesis_20131202.ListStreams"),
            ],
            b"{not json",
        )
        .await;
        assert_eq!(resp.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["__type"], "SerializationException");
        // An empty body with a known target is a SerializationException too.
        let resp = common::raw_request(
            addr,
            "POST",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "Kinesis_20131202.ListStreams"),
            ],
            b"",
        )
        .await;
        assert_eq!(resp.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["__type"], "SerializationException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn protocol_errors_come_before_the_operation() {
        let broker = start().await;
        let addr = broker.local_addr();
        let json = ("Content-Type", "application/x-amz-json-1.1");
        // Unknown operation, with either encoding.
        let resp = common::raw_request(
            addr,
            "POST",
            &[json, ("X-Amz-Target", "Kinesis_20131202.Frobnicate")],
            b"{}",
        )
        .await;
        assert_eq!(resp.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["__type"], "UnknownOperationException");
        let resp = common::raw_request(
            addr,
            "POST",
            &[
                ("Content-Type", "application/x-amz-cbor-1.1"),
                ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
            ],
            &[0xa0],
        )
        .await;
        assert_eq!(resp.status, 400);
        assert_eq!(
            resp.header("content-type"),
            Some("application/x-amz-cbor-1.1")
        );
        let body: kinesis_proto::error::ErrorBody = Encoding::Cbor.decode(&resp.body).unwrap();
        assert_eq!(body.error_type, "UnknownOperationException");
        // Anything but POST is refused with 403.
        for method in ["GET", "PUT", "DELETE"] {
            let resp = common::raw_request(
                addr,
                method,
                &[json, ("X-Amz-Target", "Kinesis_20131202.ListStreams")],
                b"",
            )
            .await;
            assert_eq!(resp.status, 403, "{method}");
            assert!(String::from_utf8_lossy(&resp.body).contains("AccessDeniedException"));
        }
        // A body announced larger than 12 MiB is refused before it is sent:
        // the broker answers without waiting for the bytes.
        let resp = common::raw_request(
            addr,
            "POST",
            &[
                json,
                ("X-Amz-Target", "Kinesis_20131202.PutRecords"),
                ("Content-Length", &(13 * 1024 * 1024).to_string()),
            ],
            b"{\"Records\":[",
        )
        .await;
        assert_eq!(resp.status, 413);
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["__type"], "InvalidArgumentException");
        // The broker still serves normal requests afterwards.
        let client = common::sdk_client_no_retry(&broker.endpoint());
        client.list_streams().send().await.unwrap();
        broker.shutdown().await;
    }
}

mod f_consumers_and_settings {
    use super::*;
    use aws_sdk_kinesis::types::{ConsumerStatus, EncryptionType, MetricsName};

    #[tokio::test]
    async fn consumers_register_list_describe_and_deregister() {
        let broker = common::start_broker_with(config().state_delays(STATE_DELAY).build()).await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        client
            .create_stream()
            .stream_name("efo")
            .shard_count(1)
            .send()
            .await
            .unwrap();
        await_status(&client, "efo", StreamStatus::Active).await;
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/efo";
        let reg = client
            .register_stream_consumer()
            .stream_arn(arn)
            .consumer_name("app-a")
            .send()
            .await
            .unwrap();
        let a = reg.consumer().unwrap();
        assert_eq!(a.consumer_status(), &ConsumerStatus::Creating);
        assert!(
            a.consumer_arn()
                .starts_with(&format!("{arn}/consumer/app-a:"))
        );
        let err = client
            .register_stream_consumer()
            .stream_arn(arn)
            .consumer_name("app-a")
            .send()
            .await
            .expect_err("twice");
        assert_eq!(common::error_code(&err), "ResourceInUseException");
        client
            .register_stream_consumer()
            .stream_arn(arn)
            .consumer_name("app-b")
            .send()
            .await
            .unwrap();
        // Bounded poll until app-a is ACTIVE.
        let mut active = false;
        for _ in 0..300 {
            let d = client
                .describe_stream_consumer()
                .consumer_arn(a.consumer_arn())
                .send()
                .await
                .unwrap();
            let d = d.consumer_description().unwrap();
            assert_eq!(d.stream_arn(), arn);
            if d.consumer_status() == &ConsumerStatus::Active {
                active = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(active, "consumer became ACTIVE");
        let by_name = client
            .describe_stream_consumer()
            .stream_arn(arn)
            .consumer_name("app-a")
            .send()
            .await
            .unwrap();
        assert_eq!(
            by_name.consumer_description().unwrap().consumer_arn(),
            a.consumer_arn()
        );
        // One consumer per page, by hand and with the SDK paginator.
        let first = client
            .list_stream_consumers()
            .stream_arn(arn)
            .max_results(1)
            .send()
            .await
            .unwrap();
        assert_eq!(first.consumers().len(), 1);
        let second = client
            .list_stream_consumers()
            .stream_arn(arn)
            .max_results(1)
            .next_token(first.next_token().expect("more"))
            .send()
            .await
            .unwrap();
        assert_eq!(second.consumers().len(), 1);
        assert!(second.next_token().is_none());
        let mut names = Vec::new();
        let mut pages = client
            .list_stream_consumers()
            .stream_arn(arn)
            .max_results(1)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            names.extend(
                p.unwrap()
                    .consumers()
                    .iter()
                    .map(|c| c.consumer_name().to_string()),
            );
        }
        assert_eq!(names, ["app-a", "app-b"]);
        let summary = client
            .describe_stream_summary()
            .stream_name("efo")
            .send()
            .await
            .unwrap();
        assert_eq!(
            summary
                .stream_description_summary()
                .unwrap()
                .consumer_count(),
            Some(2)
        );

        client
            .deregister_stream_consumer()
            .consumer_arn(a.consumer_arn())
            .send()
            .await
            .unwrap();
        let d = client
            .describe_stream_consumer()
            .consumer_arn(a.consumer_arn())
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.consumer_description().unwrap().consumer_status(),
            &ConsumerStatus::Deleting
        );
        let mut gone = false;
        for _ in 0..300 {
            if let Err(e) = client
                .describe_stream_consumer()
                .consumer_arn(a.consumer_arn())
                .send()
                .await
            {
                assert_eq!(common::error_code(&e), "ResourceNotFoundException");
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "a deregistered consumer disappears");
        // A stream with consumers is deleted only when asked to take them along.
        let err = client
            .delete_stream()
            .stream_name("efo")
            .send()
            .await
            .expect_err("has consumers");
        assert_eq!(common::error_code(&err), "ResourceInUseException");
        client
            .delete_stream()
            .stream_name("efo")
            .enforce_consumer_deletion(true)
            .send()
            .await
            .unwrap();
        let err = client
            .describe_stream_consumer()
            .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/nope")
            .consumer_name("x")
            .send()
            .await
            .expect_err("no stream");
        assert_eq!(common::error_code(&err), "ResourceNotFoundException");
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn enhanced_monitoring_is_enabled_and_disabled() {
        let broker = start().await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&client, "mon", 1).await;
        let on = client
            .enable_enhanced_monitoring()
            .stream_name("mon")
            .shard_level_metrics(MetricsName::IncomingBytes)
            .shard_level_metrics(MetricsName::OutgoingRecords)
            .send()
            .await
            .unwrap();
        assert_eq!(on.stream_name(), Some("mon"));
        assert!(on.current_shard_level_metrics().is_empty());
        assert_eq!(
            on.desired_shard_level_metrics(),
            [MetricsName::IncomingBytes, MetricsName::OutgoingRecords]
        );
        let all = client
            .enable_enhanced_monitoring()
            .stream_name("mon")
            .shard_level_metrics(MetricsName::All)
            .send()
            .await
            .unwrap();
        assert_eq!(all.desired_shard_level_metrics().len(), 7);
        let off = client
            .disable_enhanced_monitoring()
            .stream_name("mon")
            .shard_level_metrics(MetricsName::IncomingBytes)
            .send()
            .await
            .unwrap();
        assert_eq!(off.current_shard_level_metrics().len(), 7);
        assert_eq!(off.desired_shard_level_metrics().len(), 6);
        assert!(
            !off.desired_shard_level_metrics()
                .contains(&MetricsName::IncomingBytes)
        );
        let s = client
            .describe_stream_summary()
            .stream_name("mon")
            .send()
            .await
            .unwrap();
        let metrics = s
            .stream_description_summary()
            .unwrap()
            .enhanced_monitoring()[0]
            .shard_level_metrics()
            .len();
        assert_eq!(metrics, 6);
        broker.shutdown().await;
    }

    #[tokio::test]
    async fn stream_mode_and_encryption_change_through_updating() {
        let broker = common::start_broker_with(config().state_delays(STATE_DELAY).build()).await;
        let client = common::sdk_client_no_retry(&broker.endpoint());
        client
            .create_stream()
            .stream_name("modes")
            .shard_count(2)
            .send()
            .await
            .unwrap();
        await_status(&client, "modes", StreamStatus::Active).await;
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/modes";
        client
            .update_stream_mode()
            .stream_arn(arn)
            .stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::OnDemand)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(status(&client, "modes").await, StreamStatus::Updating);
        await_status(&client, "modes", StreamStatus::Active).await;
        let s = client
            .describe_stream_summary()
            .stream_name("modes")
            .send()
            .await
            .unwrap();
        assert_eq!(
            s.stream_description_summary()
                .unwrap()
                .stream_mode_details()
                .unwrap()
                .stream_mode(),
            &StreamMode::OnDemand
        );
        let limits = client.describe_limits().send().await.unwrap();
        assert_eq!(limits.on_demand_stream_count(), 1);

        client
            .start_stream_encryption()
            .stream_name("modes")
            .encryption_type(EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await
            .unwrap();
        assert_eq!(status(&client, "modes").await, StreamStatus::Updating);
        await_status(&client, "modes", StreamStatus::Active).await;
        let s = client
            .describe_stream_summary()
            .stream_name("modes")
            .send()
            .await
            .unwrap();
        let s = s.stream_description_summary().unwrap();
        assert_eq!(s.encryption_type(), Some(&EncryptionType::Kms));
        assert_eq!(s.key_id(), Some("alias/aws/kinesis"));
        let out = client
            .put_record()
            .stream_name("modes")
            .partition_key("k")
            .data(Blob::new("secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.encryption_type(), Some(&EncryptionType::Kms));
        let records = read_shard(&client, "modes", out.shard_id()).await;
        assert_eq!(records[0].encryption_type(), Some(&EncryptionType::Kms));

        client
            .stop_stream_encryption()
            .stream_name("modes")
            .encryption_type(EncryptionType::Kms)
            .key_id("alias/aws/kinesis")
            .send()
            .await
            .unwrap();
        await_status(&client, "modes", StreamStatus::Active).await;
        let s = client
            .describe_stream_summary()
            .stream_name("modes")
            .send()
            .await
            .unwrap();
        assert_eq!(
            s.stream_description_summary().unwrap().encryption_type(),
            Some(&EncryptionType::None)
        );
        broker.shutdown().await;
    }
}

mod g_cbor {
    use super::*;
    use kinesis_proto::ErrorCode;
    use kinesis_proto::client::{ClientConfig, Credentials};
    use kinesis_proto::codec::{Blob as WireBlob, Encoding, Timestamp};
    use kinesis_proto::model::{
        CreateStreamInput, DescribeStreamInput, DescribeStreamSummaryInput, GetRecordsInput,
        GetRecordsOutput, GetShardIteratorInput, GetShardIteratorOutput, ListShardsInput,
        ListStreamsInput, PutRecordInput, PutRecordOutput, PutRecordsInput, StreamRef,
    };

    fn cbor_client(endpoint: &str) -> kinesis_proto::client::Client {
        kinesis_proto::client::Client::new(
            ClientConfig::builder()
                .endpoint(endpoint)
                .region("us-east-1")
                .credentials(Credentials::test())
                .encoding(Encoding::Cbor)
                .max_attempts(1)
                .build(),
        )
        .expect("client")
    }

    #[tokio::test]
    async fn a_cbor_client_creates_writes_reads_lists_and_describes() {
        let broker = start().await;
        let client = cbor_client(&broker.endpoint());
        let before = kinesis_broker::service::now_ms();
        client
            .create_stream(&CreateStreamInput {
                stream_name: Some("cbor".into()),
                shard_count: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        let listed = client
            .list_streams(&ListStreamsInput::default())
            .await
            .unwrap();
        assert_eq!(listed.stream_names, ["cbor"]);
        let created = listed.stream_summaries[0]
            .stream_creation_timestamp
            .unwrap()
            .millis();
        let after_create = kinesis_broker::service::now_ms();
        // Timestamps travel as epoch milliseconds in CBOR.
        assert!((before..=after_create).contains(&created), "{created}");
        let d = client
            .describe_stream(&DescribeStreamInput {
                stream: StreamRef::name("cbor"),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(d.stream_description.shards.len(), 2);
        assert_eq!(
            d.stream_description.stream_creation_timestamp.millis(),
            created
        );
        let s = client
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name("cbor"),
            })
            .await
            .unwrap();
        assert_eq!(s.stream_description_summary.open_shard_count, 2);
        let shards = client
            .list_shards(&ListShardsInput {
                stream: StreamRef::name("cbor"),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(shards.shards.len(), 2);

        // Binary data rides as a CBOR byte string, unchanged.
        let binary: Vec<u8> = (0..=255u8).collect();
        let one = client
            .put_record(&PutRecordInput {
                stream: StreamRef::name("cbor"),
                data: Some(WireBlob::from(binary.clone())),
                partition_key: Some("k".into()),
                explicit_hash_key: Some("0".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one.shard_id, shard(0));
        let many = client
            .put_records(&PutRecordsInput {
                stream: StreamRef::name("cbor"),
                records: Some(
                    (0..3)
                        .map(|i| kinesis_proto::model::PutRecordsRequestEntry {
                            data: Some(WireBlob::from(vec![i; 3])),
                            partition_key: Some("k".into()),
                            explicit_hash_key: Some("1".into()),
                        })
                        .collect(),
                ),
            })
            .await
            .unwrap();
        assert_eq!(many.failed_record_count, 0);
        let it = client
            .get_shard_iterator(&GetShardIteratorInput {
                stream: StreamRef::name("cbor"),
                shard_id: Some(shard(0)),
                shard_iterator_type: Some("TRIM_HORIZON".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let got = client
            .get_records(&GetRecordsInput {
                shard_iterator: Some(it.shard_iterator),
                ..Default::default()
            })
            .await
            .unwrap();
        let after_put = kinesis_broker::service::now_ms();
        assert_eq!(got.records.len(), 4);
        assert_eq!(got.records[0].data.as_bytes(), &binary[..]);
        assert_eq!(got.records[0].sequence_number, one.sequence_number);
        assert_eq!(got.records[3].data.as_bytes(), &[2, 2, 2]);
        let arrival = got.records[0]
            .approximate_arrival_timestamp
            .unwrap()
            .millis();
        assert!((before..=after_put).contains(&arrival), "{arrival}");
        assert!(got.next_shard_iterator.is_some());
        assert_eq!(got.millis_behind_latest, Some(0));
        // AT_TIMESTAMP with a millisecond timestamp.
        let at = client
            .get_shard_iterator(&GetShardIteratorInput {
                stream: StreamRef::name("cbor"),
                shard_id: Some(shard(0)),
                shard_iterator_type: Some("AT_TIMESTAMP".into()),
                timestamp: Some(Timestamp::from_millis(arrival)),
                ..Default::default()
            })
            .await
            .unwrap();
        let from_at = client
            .get_records(&GetRecordsInput {
                shard_iterator: Some(at.shard_iterator),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(from_at.records[0].sequence_number, one.sequence_number);

        // Errors come back as CBOR bodies the client reads (type and message).
        let err = client
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name("nope"),
            })
            .await
            .expect_err("missing");
        assert!(err.is_code(ErrorCode::ResourceNotFound), "{err}");
        assert!(
            err.service_error().unwrap().message.contains("nope"),
            "{err}"
        );
        let err = client
            .create_stream(&CreateStreamInput {
                stream_name: Some("cbor".into()),
                shard_count: Some(1),
                ..Default::default()
            })
            .await
            .expect_err("duplicate");
        assert!(err.is_code(ErrorCode::ResourceInUse), "{err}");
        broker.shutdown().await;
    }

    /// CBOR text string (major type 3), for names shorter than 256 bytes.
    fn text(s: &str) -> Vec<u8> {
        let mut out = if s.len() < 24 {
            vec![0x60 | s.len() as u8]
        } else {
            vec![0x78, s.len() as u8]
        };
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Tag 1 followed by a 64-bit unsigned integer of epoch milliseconds, as the Java SDK writes.
    fn tag1_millis(ms: i64) -> Vec<u8> {
        let mut out = vec![0xc1, 0x1b];
        out.extend_from_slice(&(ms as u64).to_be_bytes());
        out
    }

    async fn raw_cbor(addr: std::net::SocketAddr, op: &str, body: &[u8]) -> common::RawResponse {
        let target = format!("Kinesis_20131202.{op}");
        common::signed_raw_request(
            addr,
            "POST",
            &[
                ("Content-Type", "application/x-amz-cbor-1.1"),
                ("X-Amz-Target", &target),
            ],
            body,
        )
        .await
    }

    #[tokio::test]
    async fn hand_built_cbor_from_the_spec_vectors_is_understood() {
        let broker = start().await;
        let addr = broker.local_addr();
        let sdk = common::sdk_client_no_retry(&broker.endpoint());
        common::create_active_stream(&sdk, "s", 1).await;

        // The spec's PutRecord vector, byte for byte.
        let put_vector =
            hex("a36a53747265616d4e616d65617364446174614268696c506172746974696f6e4b6579616b");
        let resp = raw_cbor(addr, "PutRecord", &put_vector).await;
        assert_eq!(resp.status, 200, "{:?}", resp);
        assert_eq!(
            resp.header("content-type"),
            Some("application/x-amz-cbor-1.1")
        );
        let first: PutRecordOutput = Encoding::Cbor.decode(&resp.body).unwrap();
        assert_eq!(first.shard_id, shard(0));

        // The spec's AT_TIMESTAMP pair (tag 1, 1700000000123 ms), inside a full request.
        let spec_pair = hex(
            "7153686172644974657261746f72547970656c41545f54494d455354414d506954696d657374616d70c11b0000018bcfe5687b",
        );
        let mut body = vec![0xa4];
        body.extend(text("StreamName"));
        body.extend(text("s"));
        body.extend(text("ShardId"));
        body.extend(text(&shard(0)));
        body.extend_from_slice(&spec_pair);
        let resp = raw_cbor(addr, "GetShardIterator", &body).await;
        assert_eq!(resp.status, 200, "{:?}", resp);
        let it: GetShardIteratorOutput = Encoding::Cbor.decode(&resp.body).unwrap();

        let mut get = vec![0xa1];
        get.extend(text("ShardIterator"));
        let token = it.shard_iterator.as_bytes();
        assert!(token.len() < 256);
        get.extend_from_slice(&[0x78, token.len() as u8]);
        get.extend_from_slice(token);
        let resp = raw_cbor(addr, "GetRecords", &get).await;
        assert_eq!(resp.status, 200);
        let got: GetRecordsOutput = Encoding::Cbor.decode(&resp.body).unwrap();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].data.as_bytes(), b"hi");
        assert_eq!(got.records[0].partition_key, "k");
        assert_eq!(got.records[0].sequence_number, first.sequence_number);
        let first_arrival = got.records[0]
            .approximate_arrival_timestamp
            .unwrap()
            .millis();
        let now = kinesis_broker::service::now_ms();
        assert!(
            first_arrival <= now && first_arrival > now - 60_000,
            "ms, not s"
        );

        // A tag-1 timestamp is read as milliseconds: start at a second record.
        for _ in 0..1000 {
            if kinesis_broker::service::now_ms() > first_arrival {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (_, second_seq) = put(&sdk, "s", "k", b"second").await;
        let records = read_shard(&sdk, "s", &shard(0)).await;
        let second_arrival = records[1]
            .approximate_arrival_timestamp()
            .unwrap()
            .to_millis()
            .unwrap();
        assert!(second_arrival > first_arrival);
        let mut body = vec![0xa4];
        body.extend(text("StreamName"));
        body.extend(text("s"));
        body.extend(text("ShardId"));
        body.extend(text(&shard(0)));
        body.extend(text("ShardIteratorType"));
        body.extend(text("AT_TIMESTAMP"));
        body.extend(text("Timestamp"));
        body.extend(tag1_millis(second_arrival));
        let resp = raw_cbor(addr, "GetShardIterator", &body).await;
        assert_eq!(resp.status, 200, "{:?}", resp);
        let it: GetShardIteratorOutput = Encoding::Cbor.decode(&resp.body).unwrap();
        let (from_second, _) = drain(&sdk, it.shard_iterator).await;
        assert_eq!(from_second.len(), 1);
        assert_eq!(from_second[0].sequence_number(), second_seq);

        // Errors are CBOR maps with __type and message.
        let mut missing = vec![0xa1];
        missing.extend(text("StreamName"));
        missing.extend(text("nope"));
        let resp = raw_cbor(addr, "DescribeStreamSummary", &missing).await;
        assert_eq!(resp.status, 400);
        assert_eq!(
            resp.header("content-type"),
            Some("application/x-amz-cbor-1.1")
        );
        let err: kinesis_proto::error::ErrorBody = Encoding::Cbor.decode(&resp.body).unwrap();
        assert_eq!(err.error_type, "ResourceNotFoundException");
        assert!(err.message.unwrap().contains("nope"));
        let resp = raw_cbor(addr, "ListStreams", &[0xff, 0x00]).await;
        assert_eq!(resp.status, 400);
        let err: kinesis_proto::error::ErrorBody = Encoding::Cbor.decode(&resp.body).unwrap();
        assert_eq!(err.error_type, "SerializationException");
        broker.shutdown().await;
    }
}
