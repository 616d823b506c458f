//! Prometheus metrics of the agent, served as text on `--metrics-addr`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `kinesis_agent_lines_read_total` | flow | records cut from files (lines, or multi-line groups) |
//! | `kinesis_agent_records_sent_total` | flow | records whose put succeeded |
//! | `kinesis_agent_bytes_sent_total` | flow | their bytes, after processing |
//! | `kinesis_agent_records_filtered_total` | flow | records a processing option dropped |
//! | `kinesis_agent_failures_total` | flow | puts that failed and were sent again |
//! | `kinesis_agent_file_lag_bytes` | flow, path | bytes of a file not yet in the stream |

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The agent's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `kinesis_agent_lines_read_total`.
    pub lines_read: IntCounterVec,
    /// `kinesis_agent_records_sent_total`.
    pub records_sent: IntCounterVec,
    /// `kinesis_agent_bytes_sent_total`.
    pub bytes_sent: IntCounterVec,
    /// `kinesis_agent_records_filtered_total`.
    pub records_filtered: IntCounterVec,
    /// `kinesis_agent_failures_total`.
    pub failures: IntCounterVec,
    /// `kinesis_agent_file_lag_bytes`.
    pub file_lag: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics in their own registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &["flow"])
                .expect("valid metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let lines_read = counter(
            "kinesis_agent_lines_read_total",
            "Records cut from files (lines or multi-line groups)",
        );
        let records_sent = counter("kinesis_agent_records_sent_total", "Records put");
        let bytes_sent = counter("kinesis_agent_bytes_sent_total", "Bytes of records put");
        let records_filtered = counter(
            "kinesis_agent_records_filtered_total",
            "Records dropped by a processing option",
        );
        let failures = counter(
            "kinesis_agent_failures_total",
            "Puts that failed and were sent again",
        );
        let file_lag = IntGaugeVec::new(
            Opts::new(
                "kinesis_agent_file_lag_bytes",
                "Bytes of a file not yet in the stream",
            ),
            &["flow", "path"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(file_lag.clone()))
            .expect("metric registered once");
        Metrics {
            registry,
            lines_read,
            records_sent,
            bytes_sent,
            records_filtered,
            failures,
            file_lag,
        }
    }

    /// Every metric in the Prometheus text format.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Answers every HTTP request on `listener` with the metrics text.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            // Out of descriptors, say: let some close before trying again.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // Read the request head (bounded), whatever its path: there is one page.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = metrics.to_text();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}
