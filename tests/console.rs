//! The broker's web console, driven the way a person uses it: a real headless
//! Chromium (Debian's `chromium` and `chromium-driver`, installed on first use)
//! over WebDriver, against a broker on an ephemeral port. Screenshots of each
//! page land in `<target>/console-screenshots/`.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use fantoccini::{Client, ClientBuilder, Locator};
use kinesis_broker::BrokerConfig;
use kinesis_broker::admin::AdminToken;
use kinesis_proto::aggregation::{UserRecord, encode};
use kinesis_proto::hash_key::hash_key_for_partition_key;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any page condition may take to hold.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// Debian's chromium and its driver, installed with apt-get when missing.
fn ensure_chromium() {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["install", "-y", "chromium", "chromium-driver"])
        || (apt(&["update"]) && apt(&["install", "-y", "chromium", "chromium-driver"]));
    assert!(
        installed && Path::new(CHROMEDRIVER).exists(),
        "the console tests need Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`), \
         and installing them failed"
    );
}

/// A free loopback port for chromedriver (which cannot report one it picked).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on an ephemeral port, and a headless Chromium session on it.
struct Browser {
    client: Client,
    _driver: common::KillOnDrop,
}

impl Browser {
    async fn start() -> Browser {
        ensure_chromium();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = common::KillOnDrop(driver);
        let deadline = Instant::now() + PAGE_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1440,1000", "--hide-scrollbars"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Wait until `script` (a function body returning a value) returns
    /// something truthy, polling the page; panics naming `what` otherwise.
    async fn wait_for(&self, what: &str, script: &str) -> serde_json::Value {
        let deadline = Instant::now() + PAGE_WAIT;
        let mut last;
        loop {
            match self.client.execute(script, vec![]).await {
                Ok(v) if !v.is_null() && v != false && v != "" => return v,
                Ok(v) => last = v,
                Err(e) => last = serde_json::Value::String(e.to_string()),
            }
            if Instant::now() >= deadline {
                let text = self
                    .client
                    .execute("return document.body.innerText", vec![])
                    .await
                    .unwrap_or_default();
                panic!("the page never showed {what} (last: {last}); page text:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        e.clear().await.expect("clear the field");
        e.send_keys(text).await.expect("type into the field");
    }

    /// Confirm the open dialog.
    async fn confirm(&self) {
        self.wait_for(
            "a confirmation dialog",
            "return !document.getElementById('dialog-backdrop').hidden",
        )
        .await;
        self.click("#dialog-ok").await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(name), png).expect("write the screenshot");
    }
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("console-screenshots")
}

/// The open shard whose range holds `key`'s hash, from ListShards.
async fn shard_of(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    key: &str,
) -> (String, u128, u128) {
    let hash = hash_key_for_partition_key(key);
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    shards
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .is_some_and(|r| r.ending_sequence_number().is_none())
        })
        .map(|s| {
            let r = s.hash_key_range().expect("a hash range");
            (
                s.shard_id().to_string(),
                r.starting_hash_key().parse::<u128>().expect("a number"),
                r.ending_hash_key().parse::<u128>().expect("a number"),
            )
        })
        .find(|(_, lo, hi)| (*lo..=*hi).contains(&hash))
        .expect("an open shard owns every hash key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_finds_the_hot_shard_reads_an_aggregate_and_splits_it() {
    let broker = common::start_broker().await;
    let base = broker.endpoint();
    let kinesis = common::sdk_client(&base);
    let browser = Browser::start().await;
    let page = &browser.client;
    let stream = "console-orders";

    // Create the stream from the streams page.
    page.goto(&format!("{base}/console"))
        .await
        .expect("open the console");
    browser.fill("#create-name", stream).await;
    browser.fill("#create-shards", "4").await;
    browser.click("#create-btn").await;
    browser.confirm().await;
    browser
        .wait_for(
            "the new stream as ACTIVE",
            &format!(
                "const r = document.querySelector('tr[data-stream=\"{stream}\"]'); return r && r.innerText.includes('ACTIVE')"
            ),
        )
        .await;

    // Skewed writes: one customer's key carries three records in four.
    let hot_key = "customer-42";
    let mut entries = Vec::new();
    for i in 0..400 {
        let key = if i % 4 == 3 {
            format!("customer-{}", 1000 + i)
        } else {
            hot_key.to_string()
        };
        entries.push(
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(format!("{{\"order\":{i}}}")))
                .build()
                .expect("an entry"),
        );
    }
    for chunk in entries.chunks(100) {
        let out = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutRecords");
        assert_eq!(out.failed_record_count(), Some(0));
    }
    // A KPL aggregate of three user records, as the producer library packs them.
    let users = [
        UserRecord::new("basket-1", r#"{"item":"apple"}"#),
        UserRecord::new("basket-2", r#"{"item":"pear"}"#),
        UserRecord::new("basket-3", r#"{"item":"plum"}"#),
    ];
    let aggregate = encode(&users);
    let agg_key = "basket-1";
    kinesis
        .put_record()
        .stream_name(stream)
        .partition_key(agg_key)
        .data(Blob::new(aggregate.to_vec()))
        .send()
        .await
        .expect("PutRecord of an aggregate");
    browser
        .wait_for(
            "the stream's write rate",
            &format!(
                "const r = document.querySelector('tr[data-stream=\"{stream}\"]'); return r && r.cells[7].innerText !== '0'"
            ),
        )
        .await;
    browser.screenshot("streams.png").await;

    // The stream page names the hot shard and the key behind it.
    let (hot_shard, lo, hi) = shard_of(&kinesis, stream, hot_key).await;
    browser.click(&format!("a[href='#/stream/{stream}']")).await;
    let named = browser
        .wait_for(
            "the hot shard and its top key",
            "const s = document.getElementById('hot-shard'), k = document.getElementById('hot-key'); return s && k && [s.innerText, k.innerText]",
        )
        .await;
    assert_eq!(named, serde_json::json!([hot_shard, hot_key]));
    browser
        .wait_for(
            "the hot shard's top key in its table row",
            &format!(
                "const r = document.querySelector('tr[data-shard=\"{hot_shard}\"]'); return r && r.querySelector('.keys code').innerText === '{hot_key}'"
            ),
        )
        .await;

    // A fan-out consumer reading the hot shard shows with its live subscription.
    let stream_arn = kinesis
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary()
        .map(|d| d.stream_arn().to_string())
        .expect("a summary");
    let consumer_arn = kinesis
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("billing")
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer()
        .map(|c| c.consumer_arn().to_string())
        .expect("a consumer");
    let mut subscription = kinesis
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(&hot_shard)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .expect("a position"),
        )
        .send()
        .await
        .expect("SubscribeToShard");
    match subscription.event_stream.recv().await {
        Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e))) => {
            assert!(!e.records().is_empty(), "the first event carries records")
        }
        other => panic!("expected a first event, got {other:?}"),
    }
    let consumer_row = browser
        .wait_for(
            "the consumer and its live subscription",
            &format!(
                "const t = document.getElementById('consumer-table'); const r = t && t.querySelector('tbody tr'); return r && r.cells[2].innerText === '1' && r.innerText.includes('{hot_shard}') && r.cells[0].innerText.split('\\n')[0]"
            ),
        )
        .await;
    assert_eq!(consumer_row, "billing");
    browser.screenshot("stream.png").await;
    drop(subscription);

    // Open the shard holding the aggregate, read from the start, open a record.
    let (agg_shard, _, _) = shard_of(&kinesis, stream, agg_key).await;
    browser
        .click(&format!("tr[data-shard='{agg_shard}'] a"))
        .await;
    browser.fill("#page-size", "500").await;
    browser.click("#records-start").await;
    browser
        .wait_for(
            "a page of records",
            "return document.querySelectorAll('tr.record').length > 0",
        )
        .await;
    browser.click("tr.record td").await;
    browser
        .wait_for(
            "the opened record",
            "return document.getElementById('record-card')",
        )
        .await;
    browser.screenshot("records.png").await;

    // Expand the aggregate into its user records.
    browser.click("button.expand").await;
    let opened = browser
        .wait_for(
            "the aggregate's user records",
            "const rows = [...document.querySelectorAll('tr.user-record')]; return rows.length > 0 && rows.map(r => [r.cells[0].innerText, r.cells[1].innerText, r.cells[4].innerText.trim()])",
        )
        .await;
    assert_eq!(
        opened,
        serde_json::json!([
            ["0", "basket-1", r#"{"item":"apple"}"#],
            ["1", "basket-2", r#"{"item":"pear"}"#],
            ["2", "basket-3", r#"{"item":"plum"}"#],
        ])
    );
    browser.screenshot("aggregate.png").await;

    // Split the hot shard at its midpoint and see the two new ranges.
    page.goto(&format!("{base}/console/#/stream/{stream}"))
        .await
        .expect("back to the stream");
    browser
        .click(&format!("button.split[data-shard='{hot_shard}']"))
        .await;
    // The page offers the midpoint, rounded up as the Kinesis console does.
    let mid = lo + (hi - lo) / 2 + (hi - lo) % 2;
    let offered = browser
        .wait_for(
            "the split dialog",
            "const k = document.getElementById('split-key'); return k && k.value",
        )
        .await;
    assert_eq!(offered, serde_json::json!(mid.to_string()));
    browser.confirm().await;
    let ranges = browser
        .wait_for(
            "the split's two children",
            &format!(
                "const rows = [...document.querySelectorAll('#shard-table tbody tr')].filter(r => r.innerText.includes('from {hot_shard}'));
                 return rows.length === 2 && rows.map(r => r.querySelector('.hash-keys').innerText.split('\\n')).sort((a, b) => a[0].length - b[0].length || (a[0] < b[0] ? -1 : 1))"
            ),
        )
        .await;
    assert_eq!(
        ranges,
        serde_json::json!([
            [lo.to_string(), (mid - 1).to_string()],
            [mid.to_string(), hi.to_string()]
        ])
    );
    let listed = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    assert_eq!(listed.shards().len(), 6, "the split made two more shards");
    browser.screenshot("split.png").await;

    // Merge the two children back: one shard over the parent's range again.
    let children: Vec<String> = listed
        .shards()
        .iter()
        .filter(|s| s.parent_shard_id() == Some(hot_shard.as_str()))
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(children.len(), 2);
    browser
        .click(&format!(
            "button.merge[data-shard='{}'][data-with='{}']",
            children[0], children[1]
        ))
        .await;
    browser.confirm().await;
    let merged = browser
        .wait_for(
            "the merged shard",
            &format!(
                "const r = [...document.querySelectorAll('#shard-table tbody tr')].find(r => r.innerText.includes('from {} + {}'));
                 return r && r.querySelector('.hash-keys').innerText.split('\\n')",
                children[0], children[1]
            ),
        )
        .await;
    assert_eq!(merged, serde_json::json!([lo.to_string(), hi.to_string()]));
    browser.screenshot("merge.png").await;

    // Delete the stream from its page: back to an empty list.
    browser.click("#delete-btn").await;
    browser.confirm().await;
    browser
        .wait_for(
            "the stream gone from the list",
            &format!(
                "return location.hash === '#/' && document.querySelector('#streams-table') && !document.querySelector('tr[data-stream=\"{stream}\"]')"
            ),
        )
        .await;
    assert!(
        kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .is_err(),
        "the stream is deleted"
    );

    browser.client.close().await.expect("close the session");
    broker.shutdown().await;
}

/// A GET over a fresh connection: status and body.
async fn get(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(PAGE_WAIT, tcp.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn under_an_admin_token_the_console_api_needs_it_but_the_pages_load() {
    let token = AdminToken::new("console-secret").expect("a token");
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .admin_token(token)
            .build(),
    )
    .await;
    let addr = broker.local_addr();
    let (status, page) = get(addr, "/console", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/console/app.js"));
    assert_eq!(get(addr, "/console/app.js", None).await.0, 200);
    let (status, body) = get(addr, "/console/api/streams", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        get(addr, "/console/api/streams", Some("Bearer wrong"))
            .await
            .0,
        403
    );
    let (status, body) = get(addr, "/console/api/streams", Some("Bearer console-secret")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["protected"], true);
    assert_eq!(v["streams"], serde_json::json!([]));
    let (status, body) = get(
        addr,
        "/console/api/stream?name=nope",
        Some("Bearer console-secret"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ResourceNotFoundException"), "{body}");
    broker.shutdown().await;
}
