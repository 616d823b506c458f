//! The command line: what to produce and consume, how hard and for how long.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// How records are produced.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum Produce {
    /// PutRecords batches from this tool.
    Raw,
    /// `kinesis_kpl::Producer` (aggregation on by default).
    Kpl,
    /// No producers.
    None,
}

/// How records are consumed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum Consume {
    /// GetShardIterator + GetRecords polling.
    Poll,
    /// Enhanced fan-out: SubscribeToShard, one subscription per shard.
    Fanout,
    /// No consumers.
    None,
}

/// Command-line parameters.
#[derive(Parser, Debug, Clone)]
#[command(about = "Kinesis load test: throughput, latency, throttles, broker CPU and memory")]
pub(crate) struct Args {
    /// "in-process" starts our broker inside this process; otherwise a URL.
    #[arg(long, default_value = "in-process")]
    pub(crate) endpoint: String,
    /// Pid of an external broker on this machine, for its CPU time and peak memory.
    #[arg(long)]
    pub(crate) broker_pid: Option<u32>,
    /// Label for the broker in the report.
    #[arg(long, default_value = "kinesis-broker")]
    pub(crate) broker_name: String,
    /// Producer kind.
    #[arg(long, value_enum, default_value = "raw")]
    pub(crate) produce: Produce,
    /// Consumer kind.
    #[arg(long, value_enum, default_value = "none")]
    pub(crate) consume: Consume,
    /// Shards in the stream.
    #[arg(long, default_value_t = 4)]
    pub(crate) shards: u32,
    /// Concurrent producers (raw: tasks each with its own PutRecords in flight; kpl: producers).
    #[arg(long, default_value_t = 4)]
    pub(crate) producers: usize,
    /// Concurrent polling consumers (shards are split among them).
    #[arg(long, default_value_t = 1)]
    pub(crate) consumers: usize,
    /// Bytes per user record (at least 8: the first 8 carry the send time).
    #[arg(long, default_value_t = 100)]
    pub(crate) record_size: usize,
    /// Records per PutRecords call (raw), or per `put_all` call (kpl; 1: `put` per record).
    #[arg(long, default_value_t = 500)]
    pub(crate) batch: usize,
    /// Target user records per second over all producers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Limits profile of the in-process broker: "aws", "off", "scale=<factor>".
    #[arg(long, default_value = "off")]
    pub(crate) limits: String,
    /// Idle time between empty polls (the KCL's idleTimeBetweenReadsInMillis default: 1500).
    #[arg(long, default_value_t = 1500)]
    pub(crate) poll_idle_ms: u64,
    /// Stream name (created if missing).
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Output folder for the JSON and the SVG.
    #[arg(long, default_value = "target/loadtest")]
    pub(crate) out: PathBuf,
    /// Scenario name: the file stem of the outputs.
    #[arg(long, default_value = "run")]
    pub(crate) name: String,
    /// Hide the progress bar (for scripts writing logs).
    #[arg(long)]
    pub(crate) quiet: bool,
    /// kpl: per-shard `RateLimit` in percent, adapted to what the shard accepts (default:
    /// no client-side limit, to measure the broker).
    #[arg(long)]
    pub(crate) kpl_rate_limit: Option<u64>,
    /// kpl: with --kpl-rate-limit, send at that fixed rate as the AWS KPL does.
    #[arg(long, requires = "kpl_rate_limit")]
    pub(crate) kpl_fixed_rate: bool,
    /// kpl: one Kinesis record per user record (`AggregationEnabled` false), so the
    /// shards' records/s limit binds before their bytes/s.
    #[arg(long)]
    pub(crate) kpl_no_aggregation: bool,
    /// kpl: PutRecords calls in flight per producer (`MaxConnections`).
    #[arg(long, default_value_t = 4)]
    pub(crate) kpl_max_connections: usize,
}
