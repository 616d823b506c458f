//! The endpoint and stream under test: clients, and the stream created and waited for.

use kinesis_proto::client::{Client, ClientConfig, ClientError, Credentials};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, StreamRef, StreamStatus,
};
use std::time::Duration;

/// A client for the endpoint with up to `connections` connections.
pub(crate) fn client(endpoint: &str, connections: usize) -> Result<Client, ClientError> {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .region("us-east-1")
            .credentials(Credentials::new("AKIDLOADTEST", "loadtest-secret"))
            .max_connections(connections.max(1))
            .request_timeout(Duration::from_secs(30))
            .build(),
    )
}

/// A stream named by name.
pub(crate) fn stream_ref(name: &str) -> StreamRef {
    StreamRef {
        stream_name: Some(name.to_string()),
        stream_arn: None,
    }
}

/// Creates the stream (if missing) and waits until it is ACTIVE; returns its shard ids.
pub(crate) async fn prepare_stream(
    c: &Client,
    name: &str,
    shards: u32,
) -> Result<Vec<String>, String> {
    match c
        .create_stream(&CreateStreamInput {
            stream_name: Some(name.to_string()),
            shard_count: Some(shards as i64),
            ..Default::default()
        })
        .await
    {
        Ok(()) => {}
        Err(e) if format!("{e}").contains("ResourceInUse") => {}
        Err(e) => return Err(format!("CreateStream: {e}")),
    }
    for _ in 0..600 {
        let d = c
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: stream_ref(name),
            })
            .await
            .map_err(|e| format!("DescribeStreamSummary: {e}"))?;
        if d.stream_description_summary.stream_status == StreamStatus::Active {
            let shards = c
                .list_all_shards(&stream_ref(name))
                .await
                .map_err(|e| format!("ListShards: {e}"))?;
            let ids = shards.into_iter().map(|s| s.shard_id).collect();
            return Ok(ids);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("stream {name} did not become ACTIVE in 60 s"))
}
