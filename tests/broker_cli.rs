//! The AWS CLI (a real, external client: botocore on Python) drives the broker.
//! Against the `kinesis-broker` binary: create a stream, put, get an iterator,
//! get records, split a shard, read the parent to its end and then the
//! children. In process: the CLI's pagination, batches, timestamps, tags,
//! retention and error reporting.
//!
//! Uses `aws` from PATH (AWS CLI v1 or v2), else installs awscli with pip under
//! `target/peers/`.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

const MIDDLE: &str = "170141183460469231731687303715884105728";

fn shard(i: u32) -> String {
    format!("shardId-{i:012}")
}

/// Run `aws --endpoint-url <endpoint> --output json kinesis <args>` with test
/// credentials and nothing from the machine's own AWS set-up.
fn run_cli(endpoint: &str, args: &[String]) -> std::process::Output {
    common::peers::aws_cli()
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(["--output", "json", "kinesis"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        // Errors must surface at once, not after the CLI's retries.
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KINESIS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the AWS CLI: {e}. These tests need `aws` on PATH or \
                 python3 with pip to install awscli."
            )
        })
}

/// The CLI runs as a blocking child process; keep it off the runtime's threads.
async fn run_cli_async(endpoint: &str, args: &[&str]) -> std::process::Output {
    let endpoint = endpoint.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || run_cli(&endpoint, &args))
        .await
        .expect("the aws CLI task")
}

/// Run the CLI and parse its JSON (`Value::Null` when it prints nothing, as for CreateStream).
async fn aws_async(endpoint: &str, args: &[&str]) -> Value {
    let out = run_cli_async(endpoint, args).await;
    assert!(
        out.status.success(),
        "aws kinesis {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("aws kinesis {args:?} printed non-JSON ({e}): {stdout}"))
    }
}

/// Run the CLI expecting failure; returns its stderr.
async fn aws_fails(endpoint: &str, args: &[&str]) -> String {
    let out = run_cli_async(endpoint, args).await;
    assert!(!out.status.success(), "aws kinesis {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn decoded(record: &Value) -> String {
    String::from_utf8(
        STANDARD
            .decode(str_of(record, "Data"))
            .expect("base64 Data"),
    )
    .unwrap()
}

/// Create a stream and wait (bounded) until it is ACTIVE.
async fn create_active(endpoint: &str, name: &str, shards: u32) {
    let n = shards.to_string();
    let out = aws_async(
        endpoint,
        &["create-stream", "--stream-name", name, "--shard-count", &n],
    )
    .await;
    assert_eq!(out, Value::Null, "CreateStream has an empty response");
    for _ in 0..50 {
        let d = aws_async(
            endpoint,
            &["describe-stream-summary", "--stream-name", name],
        )
        .await;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never became ACTIVE");
}

async fn put(endpoint: &str, stream: &str, key: &str, data: &str, hash: Option<&str>) -> Value {
    let mut args = vec![
        "put-record",
        "--stream-name",
        stream,
        "--partition-key",
        key,
        "--data",
        data,
    ];
    if let Some(h) = hash {
        args.extend(["--explicit-hash-key", h]);
    }
    aws_async(endpoint, &args).await
}

async fn trim_horizon(endpoint: &str, stream: &str, shard_id: &str) -> String {
    let it = aws_async(
        endpoint,
        &[
            "get-shard-iterator",
            "--stream-name",
            stream,
            "--shard-id",
            shard_id,
            "--shard-iterator-type",
            "TRIM_HORIZON",
        ],
    )
    .await;
    str_of(&it, "ShardIterator").to_string()
}

async fn get_records(endpoint: &str, iterator: &str) -> Value {
    aws_async(endpoint, &["get-records", "--shard-iterator", iterator]).await
}

/// The whole user story, against `endpoint`.
async fn create_put_read_split_and_follow(endpoint: &str) {
    create_active(endpoint, "cli", 1).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let out = put(endpoint, "cli", &format!("k{i}"), &format!("rec-{i}"), None).await;
        assert_eq!(str_of(&out, "ShardId"), shard(0));
        sent.push(str_of(&out, "SequenceNumber").to_string());
    }
    let it = trim_horizon(endpoint, "cli", &shard(0)).await;
    let got = get_records(endpoint, &it).await;
    let records = got["Records"].as_array().expect("Records");
    assert_eq!(records.len(), 3);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(decoded(r), format!("rec-{i}"));
        assert_eq!(str_of(r, "SequenceNumber"), sent[i]);
        assert_eq!(str_of(r, "PartitionKey"), format!("k{i}"));
        assert!(r["ApproximateArrivalTimestamp"].is_number());
    }
    assert!(got["MillisBehindLatest"].is_number());
    let mut parent_it = str_of(&got, "NextShardIterator").to_string();

    let split = aws_async(
        endpoint,
        &[
            "split-shard",
            "--stream-name",
            "cli",
            "--shard-to-split",
            &shard(0),
            "--new-starting-hash-key",
            MIDDLE,
        ],
    )
    .await;
    assert_eq!(split, Value::Null);
    // One record for each child, steered by explicit hash keys.
    let low = put(endpoint, "cli", "after", "low-child", Some("0")).await;
    let high = put(endpoint, "cli", "after", "high-child", Some(MIDDLE)).await;
    assert_eq!(str_of(&low, "ShardId"), shard(1));
    assert_eq!(str_of(&high, "ShardId"), shard(2));

    // Read the closed parent to its end: no NextShardIterator, ChildShards listed.
    let mut children = None;
    for _ in 0..10 {
        let page = get_records(endpoint, &parent_it).await;
        assert!(
            page["Records"].as_array().expect("Records").is_empty(),
            "the parent holds nothing new"
        );
        match page["NextShardIterator"].as_str() {
            Some(next) => parent_it = next.to_string(),
            None => {
                children = Some(page["ChildShards"].clone());
                break;
            }
        }
    }
    let children = children.expect("the parent's end");
    let children = children.as_array().expect("ChildShards");
    let mut ids: Vec<&str> = children.iter().map(|c| str_of(c, "ShardId")).collect();
    ids.sort();
    assert_eq!(ids, [shard(1), shard(2)]);
    for c in children {
        assert_eq!(c["ParentShards"], serde_json::json!([shard(0)]));
        assert!(c["HashKeyRange"]["StartingHashKey"].is_string());
    }

    // Then the children, each from its trim horizon.
    for (child, want) in [(shard(1), "low-child"), (shard(2), "high-child")] {
        let it = trim_horizon(endpoint, "cli", &child).await;
        let got = get_records(endpoint, &it).await;
        let records = got["Records"].as_array().expect("Records");
        assert_eq!(records.len(), 1, "{child}");
        assert_eq!(decoded(&records[0]), want);
        assert!(
            got["NextShardIterator"].is_string(),
            "an open child continues"
        );
    }

    let shards = aws_async(endpoint, &["list-shards", "--stream-name", "cli"]).await;
    let shards = shards["Shards"].as_array().expect("Shards");
    assert_eq!(shards.len(), 3);
    assert!(shards[0]["SequenceNumberRange"]["EndingSequenceNumber"].is_string());
    assert_eq!(shards[1]["ParentShardId"], shard(0).as_str());
}

/// The CLI's own conveniences against an in-process broker: auto-pagination,
/// batches, JSON timestamps, tags, retention and error reporting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_paginates_batches_and_reports_errors() {
    let broker = common::start_broker().await;
    let endpoint = broker.endpoint();
    let e = endpoint.as_str();
    // No state delays: each stream is ACTIVE as soon as it exists.
    for (name, shards) in [("s-1", "3"), ("s-2", "1"), ("s-3", "1")] {
        aws_async(
            e,
            &[
                "create-stream",
                "--stream-name",
                name,
                "--shard-count",
                shards,
            ],
        )
        .await;
    }
    // ListStreams, one stream per page, joined by the CLI (NextToken).
    let listed = aws_async(e, &["list-streams", "--page-size", "1"]).await;
    assert_eq!(
        listed["StreamNames"],
        serde_json::json!(["s-1", "s-2", "s-3"])
    );
    let summaries = listed["StreamSummaries"]
        .as_array()
        .expect("StreamSummaries");
    assert_eq!(summaries.len(), 3);
    assert!(summaries.iter().all(|s| s["StreamStatus"] == "ACTIVE"));
    // DescribeStream, one shard per page (ExclusiveStartShardId / HasMoreShards).
    let described = aws_async(
        e,
        &[
            "describe-stream",
            "--stream-name",
            "s-1",
            "--page-size",
            "1",
        ],
    )
    .await;
    let shards: Vec<&str> = described["StreamDescription"]["Shards"]
        .as_array()
        .expect("Shards")
        .iter()
        .map(|s| str_of(s, "ShardId"))
        .collect();
    assert_eq!(shards, [shard(0), shard(1), shard(2)]);

    // A batch, then AT_SEQUENCE_NUMBER and AT_TIMESTAMP (epoch seconds in JSON).
    let batch = aws_async(
        e,
        &[
            "put-records",
            "--stream-name",
            "s-2",
            "--records",
            r#"[{"Data":"one","PartitionKey":"k"},{"Data":"two","PartitionKey":"k"}]"#,
        ],
    )
    .await;
    assert_eq!(batch["FailedRecordCount"], 0);
    let second = str_of(&batch["Records"][1], "SequenceNumber").to_string();
    let it = aws_async(
        e,
        &[
            "get-shard-iterator",
            "--stream-name",
            "s-2",
            "--shard-id",
            &shard(0),
            "--shard-iterator-type",
            "AT_SEQUENCE_NUMBER",
            "--starting-sequence-number",
            &second,
        ],
    )
    .await;
    let got = get_records(e, str_of(&it, "ShardIterator")).await;
    let records = got["Records"].as_array().expect("Records");
    assert_eq!(records.len(), 1);
    assert_eq!(decoded(&records[0]), "two");
    let arrived = records[0]["ApproximateArrivalTimestamp"]
        .as_f64()
        .expect("a number");
    let at = format!("{}", arrived - 60.0);
    let it = aws_async(
        e,
        &[
            "get-shard-iterator",
            "--stream-name",
            "s-2",
            "--shard-id",
            &shard(0),
            "--shard-iterator-type",
            "AT_TIMESTAMP",
            "--timestamp",
            &at,
        ],
    )
    .await;
    let got = get_records(e, str_of(&it, "ShardIterator")).await;
    let data: Vec<String> = got["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(decoded)
        .collect();
    assert_eq!(data, ["one", "two"]);

    // Tags and retention.
    aws_async(
        e,
        &[
            "add-tags-to-stream",
            "--stream-name",
            "s-3",
            "--tags",
            "team=data,tier=gold",
        ],
    )
    .await;
    let tags = aws_async(e, &["list-tags-for-stream", "--stream-name", "s-3"]).await;
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{"Key": "team", "Value": "data"}, {"Key": "tier", "Value": "gold"}])
    );
    aws_async(
        e,
        &[
            "increase-stream-retention-period",
            "--stream-name",
            "s-3",
            "--retention-period-hours",
            "48",
        ],
    )
    .await;
    let summary = aws_async(e, &["describe-stream-summary", "--stream-name", "s-3"]).await;
    assert_eq!(
        summary["StreamDescriptionSummary"]["RetentionPeriodHours"],
        48
    );

    // Errors reach the user with AWS's error type.
    let err = aws_fails(e, &["describe-stream-summary", "--stream-name", "nope"]).await;
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let err = aws_fails(
        e,
        &[
            "create-stream",
            "--stream-name",
            "s-1",
            "--shard-count",
            "1",
        ],
    )
    .await;
    assert!(err.contains("ResourceInUseException"), "{err}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_drives_the_broker_binary() {
    let bin = tokio::task::spawn_blocking(common::broker_binary)
        .await
        .unwrap();
    let mut child = Command::new(&bin)
        .args([
            "--port",
            "0",
            "--create-delay-ms",
            "0",
            "--update-delay-ms",
            "0",
            "--delete-delay-ms",
            "0",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("stdout");
    let _guard = common::KillOnDrop(child);
    // Wait (bounded) for the line that says the port is ready.
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
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    create_put_read_split_and_follow(&endpoint).await;
    let listed = aws_async(&endpoint, &["list-streams"]).await;
    assert_eq!(listed["StreamNames"], serde_json::json!(["cli"]));
    assert_eq!(
        aws_async(&endpoint, &["delete-stream", "--stream-name", "cli"]).await,
        Value::Null
    );
}
