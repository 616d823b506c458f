//! `agent.json`, read with the Amazon Kinesis Agent's key names and defaults
//! (`docs/kinesis-agent.md` lists them and what this agent does with each).
//!
//! Keys are checked one by one instead of through a derived deserializer so that an unknown
//! key is refused with its own name and path, and keys the Java agent has but this agent does
//! not need are accepted with a warning.

use crate::processing::{ProcessingOption, ProcessingOptionError};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where the Java agent looks for its configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/aws-kinesis/agent.json";
/// The Java agent's default checkpoint file.
pub const DEFAULT_CHECKPOINT_FILE: &str = "/var/run/aws-kinesis-agent/checkpoints";
/// Largest Kinesis record (data plus partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// A configuration the agent refuses, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not JSON or not an object.
    #[error("agent.json: {0}")]
    Syntax(String),
    /// A key this agent does not know.
    #[error("agent.json: unknown key `{key}` in {place}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was (`top level`, `flows[0]`, ...).
        place: String,
    },
    /// A key the Java agent knows but this agent cannot honour.
    #[error("agent.json: `{key}` in {place} is not supported: {why}")]
    Unsupported {
        /// The key as written.
        key: String,
        /// Where it was.
        place: String,
        /// What to do instead.
        why: String,
    },
    /// A key with a value of the wrong type or out of range.
    #[error("agent.json: `{key}` in {place}: {why}")]
    Invalid {
        /// The key as written.
        key: String,
        /// Where it was.
        place: String,
        /// What is wrong.
        why: String,
    },
    /// A required key is missing.
    #[error("agent.json: {place} needs `{key}`")]
    Missing {
        /// The missing key.
        key: String,
        /// Where it was expected.
        place: String,
    },
}

/// How a record's partition key is chosen (`partitionKeyOption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKeyOption {
    /// A fresh random key per record (the agent's default).
    Random,
    /// The MD5 of the record's data, so equal records land on one shard.
    Deterministic,
}

/// Where reading starts in a file the agent has never seen (`initialPosition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// From its first byte.
    StartOfFile,
    /// From its end at start-up (the agent's default).
    EndOfFile,
}

/// One `flows[]` entry with a `kinesisStream`.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// `filePattern`: a path whose last component may hold `*`, `?` and `[...]`.
    pub file_pattern: String,
    /// `kinesisStream`.
    pub kinesis_stream: String,
    /// `partitionKeyOption`, default RANDOM.
    pub partition_key_option: PartitionKeyOption,
    /// `initialPosition`, default END_OF_FILE.
    pub initial_position: InitialPosition,
    /// `maxBufferAgeMillis`, default 60 000, range 1 000 … 900 000.
    pub max_buffer_age: Duration,
    /// `maxBufferSizeRecords`, default 500, range 1 … 500.
    pub max_buffer_size_records: usize,
    /// `maxBufferSizeBytes`, default 5 MiB (one PutRecords), range 1 … 5 MiB.
    pub max_buffer_size_bytes: usize,
    /// `multiLineStartPattern`: a record starts at each line matching it.
    pub multi_line_start_pattern: Option<String>,
    /// `skipHeaderLines`, default 0.
    pub skip_header_lines: usize,
    /// `truncatedRecordTerminator`, default a newline.
    pub truncated_record_terminator: String,
    /// `dataProcessingOptions`, applied in order.
    pub data_processing_options: Vec<ProcessingOption>,
    /// `minTimeBetweenFilePollsMillis`, default 100.
    pub min_time_between_file_polls: Duration,
    /// `retryInitialBackoffMillis`, default 100.
    pub retry_initial_backoff: Duration,
    /// `retryMaxBackoffMillis`, default 10 000.
    pub retry_max_backoff: Duration,
}

/// The whole `agent.json`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `kinesis.endpoint`; `None` means the region's AWS endpoint.
    pub kinesis_endpoint: Option<String>,
    /// `kinesis.region`.
    pub kinesis_region: Option<String>,
    /// `maxConnections`: kpl's most connections (1 … 256), default kpl's 24.
    pub max_connections: Option<usize>,
    /// `connectionTimeoutMillis`: kpl's connect timeout.
    pub connection_timeout: Option<Duration>,
    /// `socketTimeoutMillis`: kpl's request timeout (100 ms … 600 s).
    pub socket_timeout: Option<Duration>,
    /// `shutdownTimeoutMillis`, default 10 000: how long a stop waits for records read to be
    /// put before checkpointing what is in and exiting.
    pub shutdown_timeout: Duration,
    /// `checkpointFile`.
    pub checkpoint_file: PathBuf,
    /// `awsAccessKeyId` and `awsSecretAccessKey`, when both are set.
    pub static_credentials: Option<(String, String)>,
    /// The flows.
    pub flows: Vec<FlowConfig>,
    /// Notes about keys accepted but not acted on, for the log.
    pub warnings: Vec<String>,
}

/// Top-level keys of the Java agent that this agent accepts and does not act on.
const TOP_IGNORED: &[(&str, &str)] = &[
    ("cloudwatch.emitMetrics", METRICS_NOTE),
    ("cloudwatch.endpoint", METRICS_NOTE),
    ("cloudwatch.tagInstance", METRICS_NOTE),
    ("cloudwatch.metricsBufferTimeMillis", METRICS_NOTE),
    ("cloudwatch.namespace", METRICS_NOTE),
    ("cloudwatch.metricsQueueSize", METRICS_NOTE),
    ("log.emitMetrics", METRICS_NOTE),
    ("log.emitInternalMetrics", METRICS_NOTE),
    ("log.statusReportingPeriodSeconds", METRICS_NOTE),
    (
        "firehose.endpoint",
        "this agent sends to Kinesis Data Streams only",
    ),
    ("sts.endpoint", "role assumption is not supported"),
    ("maxSendingThreads", SENDING_NOTE),
    ("maxSendingThreadsPerCore", SENDING_NOTE),
    ("sendingThreadsKeepAliveMillis", SENDING_NOTE),
    ("sendingThreadsMaxQueueSize", SENDING_NOTE),
    ("connectionTTLMillis", SENDING_NOTE),
    ("useTcpKeepAlive", SENDING_NOTE),
    ("useHttpGzip", SENDING_NOTE),
    (
        "checkpointTimeToLiveDays",
        "checkpoints of vanished files are dropped at once",
    ),
];

const METRICS_NOTE: &str = "metrics are served as Prometheus text on --metrics-addr";
const SENDING_NOTE: &str = "sending is asynchronous through kpl";

/// Flow keys of the Java agent that this agent accepts and does not act on.
const FLOW_IGNORED: &[(&str, &str)] = &[
    ("publishQueueCapacity", IN_FLIGHT_NOTE),
    ("waitOnFullPublishQueueMillis", IN_FLIGHT_NOTE),
    ("waitOnEmptyPublishQueueMillis", IN_FLIGHT_NOTE),
    ("waitOnFullRetryQueueMillis", IN_FLIGHT_NOTE),
    (
        "maxTimeBetweenFileTrackerRefreshMillis",
        "files are looked at on every poll",
    ),
    ("log.emitInternalMetrics", METRICS_NOTE),
];

const IN_FLIGHT_NOTE: &str = "records in flight are bounded in count and bytes instead";

fn place_key(place: &str, key: &str) -> (String, String) {
    (key.to_string(), place.to_string())
}

fn invalid(place: &str, key: &str, why: impl Into<String>) -> ConfigError {
    let (key, place) = place_key(place, key);
    ConfigError::Invalid {
        key,
        place,
        why: why.into(),
    }
}

fn get_str(
    obj: &Map<String, Value>,
    place: &str,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            place,
            key,
            format!("expected a string, got {other}"),
        )),
    }
}

/// A number; the Java agent also accepts numbers written as strings.
fn get_u64(obj: &Map<String, Value>, place: &str, key: &str) -> Result<Option<u64>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            invalid(
                place,
                key,
                format!("expected a non-negative integer, got {n}"),
            )
        }),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            invalid(
                place,
                key,
                format!("expected a non-negative integer, got {s:?}"),
            )
        }),
        Some(other) => Err(invalid(
            place,
            key,
            format!("expected an integer, got {other}"),
        )),
    }
}

fn ranged(
    obj: &Map<String, Value>,
    place: &str,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let v = get_u64(obj, place, key)?.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            place,
            key,
            format!("{v} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

impl AgentConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Syntax(format!("cannot read {}: {e}", path.display())))?;
        AgentConfig::parse(&text)
    }

    /// Parses and checks `agent.json` text.
    pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(ConfigError::Syntax(
                "the top level must be an object".into(),
            ));
        };
        let place = "top level";
        let mut warnings = Vec::new();
        for key in top.keys() {
            match key.as_str() {
                "kinesis.endpoint"
                | "kinesis.region"
                | "checkpointFile"
                | "awsAccessKeyId"
                | "awsSecretAccessKey"
                | "flows"
                | "maxConnections"
                | "connectionTimeoutMillis"
                | "socketTimeoutMillis"
                | "shutdownTimeoutMillis" => {}
                "assumeRoleARN" | "assumeRoleExternalId" => {
                    let (key, place) = place_key(place, key);
                    return Err(ConfigError::Unsupported {
                        key,
                        place,
                        why: "assume the role outside the agent and pass its credentials through \
                              the environment or a profile"
                            .into(),
                    });
                }
                k => match TOP_IGNORED.iter().find(|(name, _)| *name == k) {
                    Some((_, why)) => warnings.push(format!("`{k}` is ignored: {why}")),
                    None => {
                        let (key, place) = place_key(place, k);
                        return Err(ConfigError::UnknownKey { key, place });
                    }
                },
            }
        }
        let kinesis_endpoint = get_str(&top, place, "kinesis.endpoint")?;
        let kinesis_region = get_str(&top, place, "kinesis.region")?;
        let max_connections = match get_u64(&top, place, "maxConnections")? {
            Some(n) => Some(ranged(&top, place, "maxConnections", n, 1..=256)? as usize),
            None => None,
        };
        let connection_timeout = match get_u64(&top, place, "connectionTimeoutMillis")? {
            Some(ms) => Some(Duration::from_millis(ranged(
                &top,
                place,
                "connectionTimeoutMillis",
                ms,
                1..=600_000,
            )?)),
            None => None,
        };
        let socket_timeout = match get_u64(&top, place, "socketTimeoutMillis")? {
            Some(ms) => Some(Duration::from_millis(ranged(
                &top,
                place,
                "socketTimeoutMillis",
                ms,
                100..=600_000,
            )?)),
            None => None,
        };
        let checkpoint_file = get_str(&top, place, "checkpointFile")?
            .unwrap_or_else(|| DEFAULT_CHECKPOINT_FILE.to_string())
            .into();
        let static_credentials = match (
            get_str(&top, place, "awsAccessKeyId")?,
            get_str(&top, place, "awsSecretAccessKey")?,
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    key: "awsSecretAccessKey".into(),
                    place: "top level (with awsAccessKeyId)".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    key: "awsAccessKeyId".into(),
                    place: "top level (with awsSecretAccessKey)".into(),
                });
            }
        };
        let flows_value = top.get("flows").ok_or_else(|| ConfigError::Missing {
            key: "flows".into(),
            place: place.into(),
        })?;
        let Value::Array(flow_values) = flows_value else {
            return Err(invalid(place, "flows", "expected an array"));
        };
        if flow_values.is_empty() {
            return Err(invalid(place, "flows", "needs at least one flow"));
        }
        let mut flows = Vec::new();
        for (i, fv) in flow_values.iter().enumerate() {
            let fplace = format!("flows[{i}]");
            let Value::Object(f) = fv else {
                return Err(invalid(
                    place,
                    "flows",
                    format!("{fplace} must be an object"),
                ));
            };
            flows.push(parse_flow(f, &fplace, &mut warnings)?);
        }
        let shutdown_timeout = Duration::from_millis(ranged(
            &top,
            place,
            "shutdownTimeoutMillis",
            10_000,
            0..=3_600_000,
        )?);
        Ok(AgentConfig {
            shutdown_timeout,
            kinesis_endpoint,
            kinesis_region,
            max_connections,
            connection_timeout,
            socket_timeout,
            checkpoint_file,
            static_credentials,
            flows,
            warnings,
        })
    }

    /// The signing region: `kinesis.region`, else the one in an AWS endpoint's host name, else
    /// `AWS_REGION`, else us-east-1.
    pub fn region(&self) -> String {
        if let Some(r) = &self.kinesis_region {
            return r.clone();
        }
        if let Some(ep) = &self.kinesis_endpoint
            && let Some(r) = region_of_endpoint(ep)
        {
            return r;
        }
        std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into())
    }
}

/// `kinesis.us-west-2.amazonaws.com` → `us-west-2`.
pub fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").last()?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    if parts.next()? != "kinesis" {
        return None;
    }
    let region = parts.next()?;
    host.contains(".amazonaws.com").then(|| region.to_string())
}

fn parse_flow(
    f: &Map<String, Value>,
    place: &str,
    warnings: &mut Vec<String>,
) -> Result<FlowConfig, ConfigError> {
    for key in f.keys() {
        match key.as_str() {
            "filePattern"
            | "kinesisStream"
            | "partitionKeyOption"
            | "initialPosition"
            | "maxBufferAgeMillis"
            | "maxBufferSizeRecords"
            | "maxBufferSizeBytes"
            | "multiLineStartPattern"
            | "skipHeaderLines"
            | "truncatedRecordTerminator"
            | "dataProcessingOptions"
            | "minTimeBetweenFilePollsMillis"
            | "retryInitialBackoffMillis"
            | "retryMaxBackoffMillis" => {}
            "fileFooterPattern" => {
                let (key, place) = place_key(place, key);
                return Err(ConfigError::Unsupported {
                    key,
                    place,
                    why: "stopping at a footer line is not implemented".into(),
                });
            }
            "deliveryStream" => {
                let (key, place) = place_key(place, key);
                return Err(ConfigError::Unsupported {
                    key,
                    place,
                    why: "it names a Firehose delivery stream; this agent sends to Kinesis Data \
                          Streams only: use `kinesisStream`"
                        .into(),
                });
            }
            k => match FLOW_IGNORED.iter().find(|(name, _)| *name == k) {
                Some((_, why)) => warnings.push(format!("`{k}` in {place} is ignored: {why}")),
                None => {
                    let (key, place) = place_key(place, k);
                    return Err(ConfigError::UnknownKey { key, place });
                }
            },
        }
    }
    let file_pattern = get_str(f, place, "filePattern")?.ok_or_else(|| ConfigError::Missing {
        key: "filePattern".into(),
        place: place.into(),
    })?;
    if !file_pattern.starts_with('/') {
        return Err(invalid(place, "filePattern", "must be an absolute path"));
    }
    let dir = std::path::Path::new(&file_pattern).parent();
    if dir.is_some_and(|d| crate::file_tracker::has_glob(&d.to_string_lossy())) {
        return Err(invalid(
            place,
            "filePattern",
            "wildcards are allowed in the file name only, as in the Java agent",
        ));
    }
    if file_pattern.ends_with('/') {
        return Err(invalid(place, "filePattern", "the file name part is empty"));
    }
    let kinesis_stream =
        get_str(f, place, "kinesisStream")?.ok_or_else(|| ConfigError::Missing {
            key: "kinesisStream".into(),
            place: place.into(),
        })?;
    let partition_key_option = match get_str(f, place, "partitionKeyOption")?.as_deref() {
        None | Some("RANDOM") => PartitionKeyOption::Random,
        Some("DETERMINISTIC") => PartitionKeyOption::Deterministic,
        Some(other) => {
            return Err(invalid(
                place,
                "partitionKeyOption",
                format!("{other:?} is neither RANDOM nor DETERMINISTIC"),
            ));
        }
    };
    let initial_position = match get_str(f, place, "initialPosition")?.as_deref() {
        None | Some("END_OF_FILE") => InitialPosition::EndOfFile,
        Some("START_OF_FILE") => InitialPosition::StartOfFile,
        Some(other) => {
            return Err(invalid(
                place,
                "initialPosition",
                format!("{other:?} is neither START_OF_FILE nor END_OF_FILE"),
            ));
        }
    };
    let multi_line_start_pattern = get_str(f, place, "multiLineStartPattern")?;
    if let Some(p) = &multi_line_start_pattern {
        regex::Regex::new(p).map_err(|e| invalid(place, "multiLineStartPattern", e.to_string()))?;
    }
    let truncated_record_terminator =
        get_str(f, place, "truncatedRecordTerminator")?.unwrap_or_else(|| "\n".into());
    if truncated_record_terminator.len() >= MAX_RECORD_BYTES / 2 {
        return Err(invalid(place, "truncatedRecordTerminator", "too long"));
    }
    let mut data_processing_options = Vec::new();
    match f.get("dataProcessingOptions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(opts)) => {
            for (j, o) in opts.iter().enumerate() {
                let oplace = format!("{place}.dataProcessingOptions[{j}]");
                let opt = ProcessingOption::from_json(o).map_err(|e| match e {
                    ProcessingOptionError::UnknownKey(key) => ConfigError::UnknownKey {
                        key,
                        place: oplace.clone(),
                    },
                    ProcessingOptionError::Missing(key) => ConfigError::Missing {
                        key,
                        place: oplace.clone(),
                    },
                    ProcessingOptionError::Invalid { key, why } => ConfigError::Invalid {
                        key,
                        place: oplace.clone(),
                        why,
                    },
                })?;
                data_processing_options.push(opt);
            }
        }
        Some(_) => return Err(invalid(place, "dataProcessingOptions", "expected an array")),
    }
    let ms = Duration::from_millis;
    Ok(FlowConfig {
        file_pattern,
        kinesis_stream,
        partition_key_option,
        initial_position,
        max_buffer_age: ms(ranged(
            f,
            place,
            "maxBufferAgeMillis",
            60_000,
            1_000..=900_000,
        )?),
        max_buffer_size_records: ranged(f, place, "maxBufferSizeRecords", 500, 1..=500)? as usize,
        max_buffer_size_bytes: ranged(
            f,
            place,
            "maxBufferSizeBytes",
            5 * 1024 * 1024,
            1..=5 * 1024 * 1024,
        )? as usize,
        multi_line_start_pattern,
        skip_header_lines: ranged(f, place, "skipHeaderLines", 0, 0..=1_000_000)? as usize,
        truncated_record_terminator,
        data_processing_options,
        min_time_between_file_polls: ms(ranged(
            f,
            place,
            "minTimeBetweenFilePollsMillis",
            100,
            1..=3_600_000,
        )?),
        retry_initial_backoff: ms(ranged(
            f,
            place,
            "retryInitialBackoffMillis",
            100,
            1..=600_000,
        )?),
        retry_max_backoff: ms(ranged(
            f,
            place,
            "retryMaxBackoffMillis",
            10_000,
            1..=600_000,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"flows":[{"filePattern":"/var/log/app.log*","kinesisStream":"s"}]}"#;

    #[test]
    fn defaults_are_the_agents() {
        let c = AgentConfig::parse(MINIMAL).unwrap();
        let f = &c.flows[0];
        assert_eq!(c.checkpoint_file, PathBuf::from(DEFAULT_CHECKPOINT_FILE));
        assert_eq!(f.partition_key_option, PartitionKeyOption::Random);
        assert_eq!(f.initial_position, InitialPosition::EndOfFile);
        assert_eq!(f.max_buffer_age, Duration::from_secs(60));
        assert_eq!(f.max_buffer_size_records, 500);
        assert_eq!(f.truncated_record_terminator, "\n");
        assert_eq!(f.skip_header_lines, 0);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn full_config_parses() {
        let c = AgentConfig::parse(
            r#"{
              "cloudwatch.emitMetrics": false,
              "kinesis.endpoint": "https://kinesis.eu-west-1.amazonaws.com",
              "checkpointFile": "/tmp/cp",
              "awsAccessKeyId": "AK", "awsSecretAccessKey": "SK",
              "flows": [{
                "filePattern": "/var/log/httpd/access_log*",
                "kinesisStream": "web",
                "partitionKeyOption": "DETERMINISTIC",
                "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": "5000",
                "maxBufferSizeRecords": 100,
                "multiLineStartPattern": "^\\d{4}-",
                "skipHeaderLines": 1,
                "truncatedRecordTerminator": "...\n",
                "dataProcessingOptions": [
                  {"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"},
                  {"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"host": "h"}}
                ]
              }]
            }"#,
        )
        .unwrap();
        assert_eq!(c.region(), "eu-west-1");
        assert_eq!(c.static_credentials, Some(("AK".into(), "SK".into())));
        let f = &c.flows[0];
        assert_eq!(f.max_buffer_age, Duration::from_secs(5));
        assert_eq!(f.data_processing_options.len(), 2);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("cloudwatch.emitMetrics"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = AgentConfig::parse(
            r#"{"flows":[{"filePattern":"/a","kinesisStream":"s","fielPattern":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`fielPattern`"), "{e}");
        assert!(e.to_string().contains("flows[0]"), "{e}");
        let e = AgentConfig::parse(r#"{"kinesis.endpont":"x","flows":[]}"#).unwrap_err();
        assert!(e.to_string().contains("`kinesis.endpont`"), "{e}");
        let e = AgentConfig::parse(
            r#"{"flows":[{"filePattern":"/a","kinesisStream":"s",
                "dataProcessingOptions":[{"optionName":"CSVTOJSON","customFieldNames":["a"],"delimeter":";"}]}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`delimeter`"), "{e}");
        assert!(e.to_string().contains("dataProcessingOptions[0]"), "{e}");
    }

    #[test]
    fn firehose_keys() {
        let e = AgentConfig::parse(r#"{"flows":[{"filePattern":"/a","deliveryStream":"d"}]}"#)
            .unwrap_err();
        assert!(matches!(e, ConfigError::Unsupported { ref key, .. } if key == "deliveryStream"));
        assert!(e.to_string().contains("kinesisStream"), "{e}");
        let c = AgentConfig::parse(
            r#"{"firehose.endpoint":"https://firehose.us-east-1.amazonaws.com",
                "flows":[{"filePattern":"/a","kinesisStream":"s"}]}"#,
        )
        .unwrap();
        assert!(c.warnings[0].contains("firehose.endpoint"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (flow, key) in [
            (r#""partitionKeyOption":"HASH""#, "partitionKeyOption"),
            (r#""initialPosition":"MIDDLE""#, "initialPosition"),
            (r#""maxBufferSizeRecords":501"#, "maxBufferSizeRecords"),
            (r#""maxBufferAgeMillis":10"#, "maxBufferAgeMillis"),
            (r#""multiLineStartPattern":"(""#, "multiLineStartPattern"),
            (r#""skipHeaderLines":-1"#, "skipHeaderLines"),
            (r#""filePattern":"/var/*/app.log""#, "filePattern"),
            (r#""filePattern":"/var/log/""#, "filePattern"),
        ] {
            let text =
                format!(r#"{{"flows":[{{"filePattern":"/a","kinesisStream":"s",{flow}}}]}}"#);
            let e = AgentConfig::parse(&text).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        assert!(AgentConfig::parse(r#"{"flows":[{"kinesisStream":"s"}]}"#).is_err());
        assert!(
            AgentConfig::parse(
                r#"{"awsAccessKeyId":"a","flows":[{"filePattern":"/a","kinesisStream":"s"}]}"#
            )
            .is_err()
        );
        assert!(AgentConfig::parse("[1]").is_err());
    }

    #[test]
    fn transport_keys_and_unsupported_ones() {
        let c = AgentConfig::parse(
            r#"{"kinesis.region":"ap-northeast-1","maxConnections":8,"socketTimeoutMillis":2000,
                "connectionTimeoutMillis":500,"maxSendingThreads":4,
                "flows":[{"filePattern":"/a","kinesisStream":"s","publishQueueCapacity":5}]}"#,
        )
        .unwrap();
        assert_eq!(c.region(), "ap-northeast-1");
        assert_eq!(c.max_connections, Some(8));
        assert_eq!(c.socket_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.connection_timeout, Some(Duration::from_millis(500)));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let e = AgentConfig::parse(
            r#"{"maxConnections":0,"flows":[{"filePattern":"/a","kinesisStream":"s"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("maxConnections"), "{e}");
        for (text, key) in [
            (
                r#"{"assumeRoleARN":"arn:x","flows":[{"filePattern":"/a","kinesisStream":"s"}]}"#,
                "assumeRoleARN",
            ),
            (
                r#"{"flows":[{"filePattern":"/a","kinesisStream":"s","fileFooterPattern":"^END"}]}"#,
                "fileFooterPattern",
            ),
        ] {
            let e = AgentConfig::parse(text).unwrap_err();
            assert!(
                matches!(e, ConfigError::Unsupported { key: ref k, .. } if k == key),
                "{e}"
            );
        }
    }

    #[test]
    fn regions_from_endpoints() {
        assert_eq!(
            region_of_endpoint("https://kinesis.ap-south-1.amazonaws.com").as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(region_of_endpoint("http://127.0.0.1:4567"), None);
    }
}
