//! A first user story: the official SDK creates a stream, writes, and reads back.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;

#[tokio::test]
async fn sdk_puts_and_gets_a_record() {
    let broker = common::start_broker().await;
    let client = common::sdk_client(&broker.endpoint());
    common::create_active_stream(&client, "smoke", 1).await;
    let put = client
        .put_record()
        .stream_name("smoke")
        .partition_key("pk-1")
        .data(Blob::new("hello"))
        .send()
        .await
        .expect("put");
    assert_eq!(put.shard_id(), "shardId-000000000000");
    let it = client
        .get_shard_iterator()
        .stream_name("smoke")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator");
    let got = client
        .get_records()
        .shard_iterator(it.shard_iterator().expect("an iterator"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.records().len(), 1);
    assert_eq!(got.records()[0].data().as_ref(), b"hello");
    assert_eq!(got.records()[0].sequence_number(), put.sequence_number());
    broker.shutdown().await;
}
