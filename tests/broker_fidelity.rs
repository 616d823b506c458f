//! A developer tests their error handling against the broker: every bad input
//! gets the status, `__type`, headers and message Amazon Kinesis answers with
//! (docs/validation.md), in JSON and in CBOR, sent as raw signed HTTP so that
//! nothing between the test and the broker rewrites the answer.

mod common;

use kinesis_broker::BrokerConfig;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_proto::codec::Encoding;
use serde_json::{Value, json};
use std::time::Duration;

const ACCOUNT: &str = "123456789012";
const STREAM: &str = "fidelity";

async fn start() -> kinesis_broker::RunningBroker {
    common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .account_id(ACCOUNT)
            .state_delays(Duration::ZERO)
            // Each case is sent twice in quick succession; rates are not under test.
            .limits(LimitsConfig::uniform(LimitProfile::Off))
            .build(),
    )
    .await
}

/// Send `body` to `op` in `enc`, signed; the status and the decoded body.
async fn call(
    addr: std::net::SocketAddr,
    enc: Encoding,
    op: &str,
    body: &Value,
) -> (common::RawResponse, Value) {
    let target = format!("Kinesis_20131202.{op}");
    let bytes = match enc {
        Encoding::Json => serde_json::to_vec(body).expect("json"),
        Encoding::Cbor => Encoding::Cbor.encode(&cbor(body)).to_vec(),
    };
    let resp = common::signed_raw_request(
        addr,
        "POST",
        &[
            ("Content-Type", enc.content_type()),
            ("X-Amz-Target", &target),
        ],
        &bytes,
    )
    .await;
    let decoded = match enc {
        Encoding::Json => serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
        Encoding::Cbor => Encoding::Cbor.decode(&resp.body).unwrap_or(Value::Null),
    };
    (resp, decoded)
}

/// `v` as a CBOR client sends it: blobs (`Data`) as byte strings.
fn cbor(v: &Value) -> ciborium::Value {
    use base64::Engine as _;
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => C::Integer(i.into()),
            None => n
                .as_u64()
                .map(|u| C::Integer(u.into()))
                .unwrap_or(C::Float(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => C::Text(s.clone()),
        Value::Array(items) => C::Array(items.iter().map(cbor).collect()),
        Value::Object(members) => C::Map(
            members
                .iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("Data", Value::String(s)) => base64::engine::general_purpose::STANDARD
                            .decode(s)
                            .map_or_else(|_| cbor(v), C::Bytes),
                        _ => cbor(v),
                    };
                    (C::Text(k.clone()), v)
                })
                .collect(),
        ),
    }
}

/// One bad input and the answer Kinesis gives it.
struct Case {
    op: &'static str,
    body: Value,
    error: &'static str,
    message: String,
}

fn case(op: &'static str, body: Value, error: &'static str, message: impl Into<String>) -> Case {
    Case {
        op,
        body,
        error,
        message: message.into(),
    }
}

fn null(path: &str) -> String {
    format!("Value null at '{path}' failed to satisfy constraint: Member must not be null")
}

fn rule(value: &str, path: &str, rule: &str) -> String {
    format!("Value '{value}' at '{path}' failed to satisfy constraint: Member must {rule}")
}

fn validation(items: &[String]) -> String {
    let n = items.len();
    let plural = if n == 1 { "error" } else { "errors" };
    format!("{n} validation {plural} detected: {}", items.join("; "))
}

const NAME: &str = "satisfy regular expression pattern: [a-zA-Z0-9_.-]+";
const MIN1: &str = "have length greater than or equal to 1";

fn cases() -> Vec<Case> {
    let long = "a".repeat(129);
    let not_found = format!("Stream nope under account {ACCOUNT} not found.");
    let bad_chars = "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.";
    vec![
        // CreateStream
        case(
            "CreateStream",
            json!({}),
            "ValidationException",
            validation(&[null("streamName")]),
        ),
        case(
            "CreateStream",
            json!({"StreamName": "", "ShardCount": 0}),
            "ValidationException",
            validation(&[
                rule("0", "shardCount", "have value greater than or equal to 1"),
                rule("", "streamName", NAME),
                rule("", "streamName", MIN1),
            ]),
        ),
        case(
            "CreateStream",
            json!({"StreamName": long, "ShardCount": 1}),
            "ValidationException",
            validation(&[rule(
                &long,
                "streamName",
                "have length less than or equal to 128",
            )]),
        ),
        case(
            "CreateStream",
            json!({"StreamName": true}),
            "SerializationException",
            "class java.lang.Boolean can not be converted to an String",
        ),
        case(
            "CreateStream",
            json!({"StreamName": "x", "ShardCount": "1"}),
            "SerializationException",
            "class java.lang.String can not be converted to an Integer",
        ),
        case(
            "CreateStream",
            json!({"StreamName": "x", "ShardCount": []}),
            "SerializationException",
            "Start of list found where not expected",
        ),
        case(
            "CreateStream",
            json!({"StreamName": "x", "StreamModeDetails": 5}),
            "SerializationException",
            "Expected null",
        ),
        case(
            "CreateStream",
            json!({"StreamName": STREAM, "ShardCount": 1}),
            "ResourceInUseException",
            format!("Stream {STREAM} under account {ACCOUNT} already exists."),
        ),
        // AddTagsToStream
        case(
            "AddTagsToStream",
            json!({}),
            "ValidationException",
            validation(&[null("tags")]),
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": "", "Tags": {}}),
            "ValidationException",
            validation(&[
                rule("{}", "tags", MIN1),
                rule("", "streamName", NAME),
                rule("", "streamName", MIN1),
            ]),
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": {"a": "1", long.clone(): "3"}}),
            "ValidationException",
            validation(&[format!(
                "Value '{{a=1, {long}=3}}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
            )]),
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": 5}),
            "SerializationException",
            "Expected map or null",
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": {"a": 1}}),
            "SerializationException",
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": "nope", "Tags": {"a": "b"}}),
            "ResourceNotFoundException",
            not_found.clone(),
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": {"abc\tdef": "1"}}),
            "InvalidArgumentException",
            bad_chars,
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": {"a": "abc;def"}}),
            "InvalidArgumentException",
            bad_chars,
        ),
        case(
            "AddTagsToStream",
            json!({"StreamName": STREAM, "Tags": {"abc%def": "1"}}),
            "InvalidArgumentException",
            format!(
                "Failed to add tags to stream {STREAM} under account {ACCOUNT} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'."
            ),
        ),
        // RemoveTagsFromStream
        case(
            "RemoveTagsFromStream",
            json!({"StreamName": STREAM, "TagKeys": ["a", long.clone(), "b"]}),
            "ValidationException",
            validation(&[format!(
                "Value '[a, {long}, b]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
            )]),
        ),
        case(
            "RemoveTagsFromStream",
            json!({"StreamName": STREAM, "TagKeys": "a"}),
            "SerializationException",
            "Expected list or null",
        ),
        case(
            "RemoveTagsFromStream",
            json!({"StreamName": STREAM, "TagKeys": ["abc,def"]}),
            "InvalidArgumentException",
            bad_chars,
        ),
        // ListTagsForStream
        case(
            "ListTagsForStream",
            json!({"StreamName": "", "ExclusiveStartTagKey": "", "Limit": 0}),
            "ValidationException",
            validation(&[
                rule("0", "limit", "have value greater than or equal to 1"),
                rule("", "exclusiveStartTagKey", MIN1),
                rule("", "streamName", NAME),
                rule("", "streamName", MIN1),
            ]),
        ),
        // DescribeStream / ListStreams / ListShards
        case(
            "DescribeStream",
            json!({"StreamName": STREAM, "Limit": 10001, "ExclusiveStartShardId": ""}),
            "ValidationException",
            validation(&[
                rule("10001", "limit", "have value less than or equal to 10000"),
                rule("", "exclusiveStartShardId", NAME),
                rule("", "exclusiveStartShardId", MIN1),
            ]),
        ),
        case(
            "DescribeStream",
            json!({"StreamName": "nope"}),
            "ResourceNotFoundException",
            not_found.clone(),
        ),
        case(
            "ListStreams",
            json!({"Limit": 100000000000u64}),
            "ValidationException",
            validation(&[rule(
                "2147483647",
                "limit",
                "have value less than or equal to 10000",
            )]),
        ),
        case(
            "ListShards",
            json!({"MaxResults": 0, "StreamName": STREAM}),
            "ValidationException",
            validation(&[rule(
                "0",
                "maxResults",
                "have value greater than or equal to 1",
            )]),
        ),
        case(
            "ListShards",
            json!({}),
            "InvalidArgumentException",
            "Either NextToken or StreamName should be provided.",
        ),
        // PutRecord / PutRecords
        case(
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": "", "Data": "", "ExplicitHashKey": ""}),
            "ValidationException",
            validation(&[
                rule("", "partitionKey", MIN1),
                rule(
                    "",
                    "explicitHashKey",
                    "satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
                ),
            ]),
        ),
        case(
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": "a", "Data": "23456"}),
            "SerializationException",
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
        ),
        case(
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": "a", "Data": true}),
            "SerializationException",
            "class java.lang.Boolean can not be converted to a Blob",
        ),
        case(
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": "a", "Data": "", "ExplicitHashKey": "340282366920938463463374607431768211456"}),
            "InvalidArgumentException",
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456",
        ),
        case(
            "PutRecord",
            json!({"StreamName": "nope", "PartitionKey": "a", "Data": ""}),
            "ResourceNotFoundException",
            not_found.clone(),
        ),
        case(
            "PutRecords",
            json!({"StreamName": STREAM, "Records": []}),
            "ValidationException",
            validation(&[rule("[]", "records", MIN1)]),
        ),
        case(
            "PutRecords",
            json!({"StreamName": STREAM, "Records": [{"PartitionKey": "a"}]}),
            "ValidationException",
            validation(&[null("records.1.member.data")]),
        ),
        case(
            "PutRecords",
            json!({"StreamName": STREAM, "Records": {}}),
            "SerializationException",
            "Start of structure or map found where not expected.",
        ),
        // GetShardIterator / GetRecords
        case(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": "shardId-0", "ShardIteratorType": "NOPE"}),
            "ValidationException",
            validation(&[rule(
                "NOPE",
                "shardIteratorType",
                "satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
            )]),
        ),
        case(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"}),
            "ResourceNotFoundException",
            format!(
                "Shard shardId-000000000009 in stream {STREAM} under account {ACCOUNT} does not exist"
            ),
        ),
        case(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
            "InvalidArgumentException",
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.",
        ),
        case(
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": "shardId-0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "x"}),
            "SerializationException",
            "class java.lang.String can not be converted to milliseconds since epoch",
        ),
        case(
            "GetRecords",
            json!({"ShardIterator": "", "Limit": 0}),
            "ValidationException",
            validation(&[
                rule("0", "limit", "have value greater than or equal to 1"),
                rule("", "shardIterator", MIN1),
            ]),
        ),
        case(
            "GetRecords",
            json!({"ShardIterator": "abc"}),
            "InvalidArgumentException",
            "Invalid ShardIterator.",
        ),
        // MergeShards / SplitShard / UpdateShardCount
        case(
            "MergeShards",
            json!({"StreamName": STREAM, "ShardToMerge": "", "AdjacentShardToMerge": ""}),
            "ValidationException",
            validation(&[
                rule("", "shardToMerge", NAME),
                rule("", "shardToMerge", MIN1),
                rule("", "adjacentShardToMerge", NAME),
                rule("", "adjacentShardToMerge", MIN1),
            ]),
        ),
        case(
            "MergeShards",
            json!({"StreamName": STREAM, "ShardToMerge": "shardId-000000000009", "AdjacentShardToMerge": "shardId-000000000000"}),
            "ResourceNotFoundException",
            format!(
                "Could not find shard shardId-000000000009 in stream {STREAM} under account {ACCOUNT}."
            ),
        ),
        case(
            "MergeShards",
            json!({"StreamName": STREAM, "ShardToMerge": "shardId-000000000001", "AdjacentShardToMerge": "shardId-000000000000"}),
            "InvalidArgumentException",
            format!(
                "Shards shardId-000000000001 and shardId-000000000000 in stream {STREAM} under account {ACCOUNT} are not an adjacent pair of shards eligible for merging"
            ),
        ),
        case(
            "SplitShard",
            json!({"StreamName": STREAM, "ShardToSplit": "shardId-000000000009", "NewStartingHashKey": "1"}),
            "ResourceNotFoundException",
            format!(
                "Could not find shard shardId-000000000009 in stream {STREAM} under account {ACCOUNT}."
            ),
        ),
        case(
            "SplitShard",
            json!({"StreamName": STREAM}),
            "ValidationException",
            validation(&[null("newStartingHashKey"), null("shardToSplit")]),
        ),
        case(
            "UpdateShardCount",
            json!({"StreamName": STREAM}),
            "ValidationException",
            validation(&[null("targetShardCount"), null("scalingType")]),
        ),
        // Retention: no model bounds today, so the service's own words.
        case(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": STREAM, "RetentionPeriodHours": 23}),
            "InvalidArgumentException",
            "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.",
        ),
        case(
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": STREAM}),
            "ValidationException",
            validation(&[null("retentionPeriodHours")]),
        ),
        case(
            "DeleteStream",
            json!({"StreamName": STREAM, "EnforceConsumerDeletion": "yes"}),
            "SerializationException",
            "'YES' can not be converted to an Boolean",
        ),
        // Consumers, modes, encryption
        case(
            "RegisterStreamConsumer",
            json!({}),
            "ValidationException",
            validation(&[null("streamARN"), null("consumerName")]),
        ),
        case(
            "UpdateStreamMode",
            json!({"StreamARN": "nope", "StreamModeDetails": {"StreamMode": "X"}}),
            "ValidationException",
            validation(&[
                rule(
                    "nope",
                    "streamARN",
                    "satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
                ),
                rule(
                    "X",
                    "streamModeDetails.streamMode",
                    "satisfy enum value set: [PROVISIONED, ON_DEMAND]",
                ),
            ]),
        ),
        case(
            "StartStreamEncryption",
            json!({"StreamName": STREAM}),
            "ValidationException",
            validation(&[null("encryptionType"), null("keyId")]),
        ),
        case(
            "SubscribeToShard",
            json!({}),
            "ValidationException",
            validation(&[
                null("consumerARN"),
                null("shardId"),
                null("startingPosition"),
            ]),
        ),
    ]
}

#[tokio::test]
async fn every_bad_input_gets_the_answer_kinesis_gives() {
    let broker = start().await;
    let client = common::sdk_client(&broker.endpoint());
    common::create_active_stream(&client, STREAM, 3).await;
    let addr = broker.local_addr();
    for enc in [Encoding::Json, Encoding::Cbor] {
        for c in cases() {
            let (resp, body) = call(addr, enc, c.op, &c.body).await;
            let what = format!("{} {} in {enc:?}", c.op, c.body);
            assert_eq!(resp.status, 400, "{what}: {body}");
            assert_eq!(
                resp.header("content-type"),
                Some(enc.content_type()),
                "{what}"
            );
            assert_eq!(resp.header("x-amzn-errortype"), Some(c.error), "{what}");
            let key = if c.error == "SerializationException" {
                "Message"
            } else {
                "message"
            };
            assert_eq!(body, json!({"__type": c.error, key: c.message}), "{what}");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn protocol_level_answers_are_the_services() {
    let broker = start().await;
    let addr = broker.local_addr();
    let json_ct = ("Content-Type", "application/x-amz-json-1.1");
    let list = ("X-Amz-Target", "Kinesis_20131202.ListStreams");

    // An empty body: no message at all, in JSON for JSON and CBOR otherwise.
    let resp = common::signed_raw_request(addr, "POST", &[json_ct, list], b"").await;
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (400, &br#"{"__type":"SerializationException"}"#[..])
    );
    let resp = common::signed_raw_request(
        addr,
        "POST",
        &[json_ct, ("X-Amz-Target", "Kinesis_20131202.Nope")],
        b"{}",
    )
    .await;
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (400, &br#"{"__type":"UnknownOperationException"}"#[..])
    );
    let resp = common::signed_raw_request(addr, "POST", &[json_ct, list], b"hello").await;
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (400, &br#"{"__type":"SerializationException"}"#[..])
    );

    // Unsigned or half-signed calls are refused even without --auth.
    let resp = common::raw_request(addr, "POST", &[json_ct, list], b"{}").await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    );
    let resp = common::raw_request(
        addr,
        "POST",
        &[json_ct, list, ("Authorization", "X")],
        b"{}",
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"__type": "IncompleteSignatureException", "message": "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=X"})
    );
    let resp = common::raw_request(
        addr,
        "POST",
        &[
            json_ct,
            list,
            ("Authorization", "AWS4- Signature=b, Credential=a"),
            ("Date", "a"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"__type": "IncompleteSignatureException", "message": "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4- Signature=b, Credential=a"})
    );
    // A signed call goes through.
    let resp = common::signed_raw_request(addr, "POST", &[json_ct, list], b"{}").await;
    assert_eq!(resp.status, 200);

    // The front door's XML answers carry no Content-Type.
    let resp = common::raw_request(addr, "GET", &[], b"").await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.header("content-type"), None);
    assert_eq!(
        String::from_utf8_lossy(&resp.body),
        "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"
    );
    let resp = common::raw_request(addr, "POST", &[list], b"{}").await;
    assert_eq!((resp.status, resp.header("content-type")), (404, None));
    assert_eq!(resp.body, b"<UnknownOperationException/>\n");

    // The legacy JSON protocol stops at its envelope.
    let legacy = ("Content-Type", "application/json");
    let resp = common::raw_request(addr, "POST", &[legacy, list], b"{}").await;
    assert_eq!(
        (resp.status, resp.header("content-type")),
        (404, Some("application/json"))
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"Output": {"__type": "com.amazon.coral.service#UnknownOperationException"}, "Version": "1.0"})
    );
    let resp = common::raw_request(
        addr,
        "POST",
        &[("Content-Type", "  application/json ;"), list],
        b"hello",
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"Output": {"__type": "com.amazon.coral.service#SerializationException"}, "Version": "1.0"})
    );

    // CORS: a preflight is answered for any origin, and answers expose headers.
    let resp = common::raw_request(
        addr,
        "OPTIONS",
        &[
            ("Origin", "http://app.example"),
            ("Access-Control-Request-Headers", "a, b, c"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("access-control-allow-headers"), Some("a, b, c"));
    assert_eq!(resp.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(resp.header("access-control-max-age"), Some("172800"));
    assert_eq!(resp.header("content-type"), None);
    assert_eq!(resp.header("content-length"), Some("0"));
    assert!(resp.header("x-amzn-requestid").is_some());
    let resp = common::signed_raw_request(
        addr,
        "POST",
        &[json_ct, list, ("Origin", "http://app.example")],
        b"{}",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-expose-headers"),
        Some(
            "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
        )
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_record_keeps_the_encryption_it_was_written_with() {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::{
        EncryptionType, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
    };
    let broker = start().await;
    let client = common::sdk_client(&broker.endpoint());
    common::create_active_stream(&client, STREAM, 1).await;
    let put = |data: &'static str| {
        client
            .put_record()
            .stream_name(STREAM)
            .partition_key("k")
            .data(Blob::new(data))
            .send()
    };
    put("before").await.expect("put");
    client
        .start_stream_encryption()
        .stream_name(STREAM)
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .expect("start encryption");
    common::wait_active(&client, STREAM).await;
    put("after").await.expect("put");
    let it = client
        .get_shard_iterator()
        .stream_name(STREAM)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator");
    let out = client
        .get_records()
        .shard_iterator(it.shard_iterator().expect("iterator"))
        .send()
        .await
        .expect("records");
    let seen: Vec<(Vec<u8>, Option<EncryptionType>)> = out
        .records()
        .iter()
        .map(|r| (r.data().as_ref().to_vec(), r.encryption_type().cloned()))
        .collect();
    assert_eq!(
        seen,
        [
            (b"before".to_vec(), Some(EncryptionType::None)),
            (b"after".to_vec(), Some(EncryptionType::Kms)),
        ]
    );
    // Enhanced fan-out delivers the same EncryptionType per record.
    let consumer_arn = client
        .register_stream_consumer()
        .stream_arn(broker.service().stream_arn(STREAM))
        .consumer_name("enc-reader")
        .send()
        .await
        .expect("register")
        .consumer()
        .expect("consumer")
        .consumer_arn()
        .to_string();
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .expect("position"),
        )
        .send()
        .await
        .expect("subscribe");
    let mut pushed = Vec::new();
    while pushed.len() < 2 {
        match events
            .event_stream
            .recv()
            .await
            .expect("event")
            .expect("open")
        {
            SubscribeToShardEventStream::SubscribeToShardEvent(e) => pushed.extend(
                e.records()
                    .iter()
                    .map(|r| (r.data().as_ref().to_vec(), r.encryption_type().cloned())),
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pushed, seen);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_split_shows_the_old_shards_until_the_update_completes() {
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .account_id(ACCOUNT)
            .state_delays(Duration::ZERO)
            .update_delay(Duration::from_millis(300))
            .limits(LimitsConfig::uniform(LimitProfile::Off))
            .build(),
    )
    .await;
    let client = common::sdk_client(&broker.endpoint());
    common::create_active_stream(&client, STREAM, 2).await;
    client
        .split_shard()
        .stream_name(STREAM)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .expect("split");
    let d = client
        .describe_stream()
        .stream_name(STREAM)
        .send()
        .await
        .expect("describe");
    let d = d.stream_description().expect("description");
    assert_eq!(d.stream_status().as_str(), "UPDATING");
    assert_eq!(
        d.shards().len(),
        2,
        "children appear only when the update completes"
    );
    assert!(
        d.shards().iter().all(|s| s
            .sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .is_none()),
        "no parent is closed while UPDATING"
    );
    let listed = client
        .list_shards()
        .stream_name(STREAM)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.shards().len(), 2);
    common::wait_active(&client, STREAM).await;
    let d = client
        .describe_stream()
        .stream_name(STREAM)
        .send()
        .await
        .expect("describe");
    let shards = d
        .stream_description()
        .expect("description")
        .shards()
        .to_vec();
    assert_eq!(shards.len(), 4);
    assert!(
        shards[0]
            .sequence_number_range()
            .and_then(|r| r.ending_sequence_number())
            .is_some(),
        "the parent is closed"
    );
    assert_eq!(shards[2].parent_shard_id(), Some("shardId-000000000000"));
    broker.shutdown().await;
}
