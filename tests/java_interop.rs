//! AWS's Java Kinesis stack against the toolkit: the AWS SDK for Java v2 (CBOR,
//! Netty, HTTP/2 SubscribeToShard), the Java KPL and the Java KCL 3.x, run as
//! child processes from the Maven project in `interop/java/` against a broker
//! started here.
//!
//! Needs `java` (17+) and `mvn` on PATH; the first run downloads the Java
//! libraries from Maven Central into ~/.m2. With `KINESIS_TEST_SKIP=java` these
//! tests do nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::KillOnDrop;
use kinesis_broker::{BrokerConfig, BrokerConfigBuilder, TlsFiles};

/// A self-signed certificate for `localhost` and 127.0.0.1, written for the
/// broker and for the Java drivers to trust.
fn tls_files(dir: &std::path::Path) -> TlsFiles {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("cert");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    TlsFiles { cert, key }
}

/// Broker settings for the Java clients: no state delays, and a resubscription
/// may take over a cancelled one at once.
fn broker_config() -> BrokerConfigBuilder {
    BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .subscription_takeover(Duration::from_millis(100))
}

/// Run a driver to its end (bounded by `limit`), echoing its stderr, and return
/// its stdout lines. Panics when it fails.
async fn run_driver(
    drivers: &'static common::java::Drivers,
    driver: &str,
    args: Vec<String>,
    limit: Duration,
) -> Vec<String> {
    let mut cmd = drivers.command(driver, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let driver = driver.to_string();
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        let mut child = KillOnDrop(cmd.spawn().expect("start java"));
        let stdout = child.0.stdout.take().expect("driver stdout");
        let lines: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
        let status = child.0.wait().expect("wait for java");
        (status, lines, child)
    });
    let (status, lines, _child) = tokio::time::timeout(limit, task)
        .await
        .unwrap_or_else(|_| panic!("the {driver} driver did not finish within {limit:?}"))
        .expect("driver task");
    eprintln!("{driver} driver ran {:?}", started.elapsed());
    assert!(
        status.success(),
        "the {driver} driver failed ({status}); its output:\n{}",
        lines.join("\n")
    );
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_v2_runs_every_operation_over_cbor_and_http2_with_tls_and_cleartext() {
    let Some(drivers) = common::java::drivers() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = tls_files(dir.path());
    let cert = files.cert.display().to_string();
    let tls = common::start_broker_with(broker_config().tls(files).build()).await;
    let clear = common::start_broker_with(broker_config().build()).await;
    let args = vec![
        tls.endpoint(),
        cert,
        clear.endpoint(),
        "-".to_string(),
        "java-sdk".to_string(),
    ];
    let lines = run_driver(drivers, "sdk", args, Duration::from_secs(180)).await;
    let steps = [
        "CreateStream",
        "PutRecord",
        "PutRecords",
        "ListShards",
        "GetShardIterator",
        "GetRecords",
        "RegisterStreamConsumer",
        "SubscribeToShard",
        "Resubscribe",
        "SplitShard",
        "MergeShards",
    ];
    for endpoint in [tls.endpoint(), clear.endpoint()] {
        assert!(
            lines.contains(&format!("SDK OK {endpoint}")),
            "no SDK OK for {endpoint}: {lines:?}"
        );
    }
    for step in steps {
        let n = lines.iter().filter(|l| **l == format!("STEP {step}")).count();
        assert_eq!(n, 2, "step {step} passed {n} times of 2: {lines:?}");
    }
    tls.shutdown().await;
    clear.shutdown().await;
}
