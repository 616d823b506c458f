//! What the benches that run a broker in process share: the broker on a
//! runtime of its own whose threads are named `broker`, and CPU time by
//! thread name (`/proc/self/task`), so the broker's CPU is told apart from
//! its clients'.

use std::time::Duration;

use kinesis_proto::client::{Client, ClientConfig};
use tokio::runtime::Runtime;

/// A two-thread runtime for the broker, its threads named `broker`.
pub fn broker_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("broker")
        .enable_all()
        .build()
        .expect("broker runtime")
}

/// CPU time (user + system) of this process's threads, all of them or only those whose name
/// starts with `prefix`, from `/proc/self/task/*/stat` (clock ticks of 10 ms).
pub fn cpu_time(prefix: Option<&str>) -> Duration {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The thread name is in parentheses; fields after it start after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if prefix.is_some_and(|p| !stat[open + 1..close].starts_with(p)) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    Duration::from_millis(ticks * 10)
}

/// A setting read from the environment, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A client of the broker at `endpoint` (three attempts per call).
pub fn client(endpoint: &str) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .max_attempts(3)
            .build(),
    )
    .expect("client")
}
