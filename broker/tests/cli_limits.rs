//! The security and limit flags of the `kinesis-broker` binary reach the
//! server, and contradictory ones stop it from starting.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

fn broker(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"));
    cmd.args(["--port", "0", "--log-level", "warn"])
        .args(args)
        .env_remove("KINESIS_BROKER_ADMIN_TOKEN")
        .env_remove("KINESIS_BROKER_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn listening(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        match lines.next_line().await.expect("read stdout") {
            Some(l) => {
                if let Some(e) = l.strip_prefix("Listening on http://") {
                    return e.to_string();
                }
            }
            None => panic!("the broker exited before listening"),
        }
    }
}

#[tokio::test]
async fn limit_flags_reach_the_server() {
    let mut child = broker(&[
        "--max-connections",
        "1",
        "--h2-max-concurrent-streams",
        "5",
        "--admin-token",
        "t0ken",
    ])
    .spawn()
    .expect("start");
    let addr = listening(&mut child).await;
    // The one connection allowed: HTTP/2, advertising 5 streams.
    let mut h2 = TcpStream::connect(&addr).await.expect("connect");
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("write");
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), h2.read_exact(&mut head))
        .await
        .expect("settings within 10 s")
        .expect("read");
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    h2.read_exact(&mut payload).await.expect("read");
    let streams = payload
        .chunks_exact(6)
        .find(|c| u16::from_be_bytes([c[0], c[1]]) == 0x3)
        .map(|c| u32::from_be_bytes([c[2], c[3], c[4], c[5]]));
    assert_eq!(streams, Some(5));
    // A second connection is over the cap: closed unanswered.
    let mut second = TcpStream::connect(&addr).await.expect("connect");
    let _ = second
        .write_all(b"GET /admin/faults HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut buf))
        .await
        .expect("closed within 10 s");
    assert!(
        read.is_err() || buf.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // Once the first goes, the admin token opens /admin/faults.
    drop(h2);
    let mut answered = None;
    for _ in 0..200 {
        let mut tcp = TcpStream::connect(&addr).await.expect("connect");
        let _ = tcp
            .write_all(
                b"GET /admin/faults HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t0ken\r\nconnection: close\r\n\r\n",
            )
            .await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
        if !buf.is_empty() {
            answered = Some(String::from_utf8_lossy(&buf).to_string());
            break;
        }
        // The broker notices the close on its own schedule.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = answered.expect("a slot freed up");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().await.expect("stop");
}

#[tokio::test]
async fn contradictory_security_flags_stop_the_broker() {
    for args in [
        &["--protect-metrics"][..],
        &["--admin-token", " "][..],
        &["--max-connections", "0"][..],
        &["--header-read-timeout-secs", "0"][..],
    ] {
        let out = broker(args).output().await.expect("run");
        assert!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.is_empty(), "{args:?}: no reason given");
    }
}
