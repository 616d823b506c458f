//! `dataProcessingOptions`: SINGLELINE, CSVTOJSON, LOGTOJSON and ADDMETADATA, with the Java
//! agent's semantics (`docs/kinesis-agent.md`). Each takes a record (ending in a newline, as
//! read) and gives the record to send, or `None` when LOGTOJSON filters out a line that does
//! not parse.

use regex::Regex;
use serde_json::Value;
use std::time::SystemTime;

/// A processing option refused, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessingOptionError {
    /// A key the option does not have.
    UnknownKey(String),
    /// A required key is missing.
    Missing(String),
    /// A key with a bad value.
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// `jsonFormat`: compact (default) or pretty-printed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFormat {
    /// One line.
    Compact,
    /// Indented.
    PrettyPrint,
}

/// The `logFormat`s of LOGTOJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Apache common log format.
    CommonApacheLog,
    /// Apache combined log format (common plus referer and agent).
    CombinedApacheLog,
    /// Apache error log.
    ApacheErrorLog,
    /// BSD syslog (RFC 3164 timestamps); also accepted as `RFC3164SYSLOG`.
    Syslog,
    /// Syslog with RFC 3339 timestamps (as RFC 5424 writes them); also accepted as
    /// `RFC5424SYSLOG`.
    Rfc3339Syslog,
}

const INT: &str = r"(?:[+-]?(?:[0-9]+))";
const POSINT: &str = r"(?:[1-9][0-9]*)";
const NONNEGINT: &str = r"(?:[0-9]+)";
const WORD: &str = r"\w+";
const NOQUOTE: &str = r#"[^"]+"#;
const IP: &str = r"(?:[\d.]+)";
const HOSTNAME: &str = r"(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)";
const USER: &str = r"(?:[a-zA-Z0-9._-]+)";
const MONTHDAY: &str = r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
const DAY: &str = r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
const MONTH: &str = r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b";
const YEAR: &str = r"(?:[1-9]\d*)";
const HOUR: &str = r"(?:2[0123]|[01]?[0-9])";
const MINUTE: &str = r"(?:[0-5][0-9])";
const SECOND: &str = r"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)";

impl LogFormat {
    fn parse(name: &str) -> Option<LogFormat> {
        Some(match name {
            "COMMONAPACHELOG" => LogFormat::CommonApacheLog,
            "COMBINEDAPACHELOG" => LogFormat::CombinedApacheLog,
            "APACHEERRORLOG" => LogFormat::ApacheErrorLog,
            "SYSLOG" | "RFC3164SYSLOG" => LogFormat::Syslog,
            "RFC3339SYSLOG" | "RFC5424SYSLOG" => LogFormat::Rfc3339Syslog,
            _ => return None,
        })
    }

    /// The field names the agent gives this format's groups.
    pub fn fields(self) -> &'static [&'static str] {
        const COMMON: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes",
        ];
        const COMBINED: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer",
            "agent",
        ];
        const ERROR: &[&str] = &[
            "timestamp",
            "module",
            "severity",
            "processid",
            "threadid",
            "client",
            "message",
        ];
        const SYSLOG: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];
        match self {
            LogFormat::CommonApacheLog => COMMON,
            LogFormat::CombinedApacheLog => COMBINED,
            LogFormat::ApacheErrorLog => ERROR,
            LogFormat::Syslog | LogFormat::Rfc3339Syslog => SYSLOG,
        }
    }

    /// The agent's regular expression for this format (matched against the whole line).
    pub fn pattern(self) -> String {
        let time = format!("(?:{HOUR}:{MINUTE}:{SECOND})");
        let iporhost = format!("(?:{HOSTNAME}|{IP})");
        let httpdate = format!(r"(?:{MONTHDAY}/{MONTH}/{YEAR}:{time}\s{INT})");
        let common = format!(
            r#"^({iporhost}) ({USER}) ({USER}) \[({httpdate})\] "({NOQUOTE})" ({INT}|\-) ({INT}|\-)"#
        );
        let facility = format!("<{NONNEGINT}.{NONNEGINT}>");
        let prog = format!(r"([\w._/%-]+)(?:\[({POSINT})\])?");
        match self {
            // The agent lets anything follow the common and combined fields.
            LogFormat::CommonApacheLog => format!("{common}.*"),
            LogFormat::CombinedApacheLog => {
                format!(r#"{common} "({NOQUOTE})" "({NOQUOTE})".*"#)
            }
            LogFormat::ApacheErrorLog => {
                let ts = format!(r"(?:{DAY}\s+{MONTH}\s+{MONTHDAY}\s+{time}\s+{YEAR})");
                let urihost = format!("(?:{iporhost}(?::{POSINT})?)");
                format!(
                    r"^\[({ts})\] \[(?:({WORD}):)?({WORD})\] \[pid ({NONNEGINT})(?::tid ({NONNEGINT}))?\] \[client ({urihost})\] (.*)"
                )
            }
            LogFormat::Syslog => {
                let ts = format!(r"(?:{MONTH}\s+{MONTHDAY}\s+{time})");
                format!("^({ts}) (?:{facility} )?({USER}) {prog}: (.*)")
            }
            LogFormat::Rfc3339Syslog => {
                let ts =
                    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))";
                format!("^({ts}) (?:{facility} )?({USER}) {prog}: (.*)")
            }
        }
    }

    /// Apache formats write `-` for an absent field, which the agent turns into null.
    fn dash_is_null(self) -> bool {
        matches!(
            self,
            LogFormat::CommonApacheLog | LogFormat::CombinedApacheLog | LogFormat::ApacheErrorLog
        )
    }
}

/// A LOGTOJSON parser: a whole-line regex and a name per group.
#[derive(Debug, Clone)]
pub struct LogParser {
    regex: Regex,
    fields: Vec<String>,
    dash_is_null: bool,
}

impl LogParser {
    /// The parser for `format`, optionally with the agent's `matchPattern` (which then needs
    /// `customFieldNames`) or only renamed fields.
    pub fn new(
        format: LogFormat,
        match_pattern: Option<&str>,
        custom_fields: Option<Vec<String>>,
    ) -> Result<LogParser, ProcessingOptionError> {
        let (pattern, fields) = match (match_pattern, custom_fields) {
            (Some(_), None) => {
                return Err(ProcessingOptionError::Missing("customFieldNames".into()));
            }
            (Some(p), Some(f)) => (p.to_string(), f),
            (None, Some(f)) => {
                if f.len() != format.fields().len() {
                    return Err(ProcessingOptionError::Invalid {
                        key: "customFieldNames".into(),
                        why: format!(
                            "{} names given, {} has {} fields; give matchPattern to change them",
                            f.len(),
                            format_name(format),
                            format.fields().len()
                        ),
                    });
                }
                (format.pattern(), f)
            }
            (None, None) => (
                format.pattern(),
                format.fields().iter().map(|s| s.to_string()).collect(),
            ),
        };
        // The agent uses Java's `Matcher.matches()`: the whole line must match.
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            ProcessingOptionError::Invalid {
                key: "matchPattern".into(),
                why: e.to_string(),
            }
        })?;
        if regex.captures_len() - 1 != fields.len() {
            return Err(ProcessingOptionError::Invalid {
                key: "customFieldNames".into(),
                why: format!(
                    "{} names for {} groups of the pattern",
                    fields.len(),
                    regex.captures_len() - 1
                ),
            });
        }
        Ok(LogParser {
            regex,
            fields,
            dash_is_null: format.dash_is_null(),
        })
    }

    /// The fields of `line` in order, or `None` when it does not match.
    pub fn parse<'a>(&'a self, line: &'a str) -> Option<Vec<(&'a str, Option<&'a str>)>> {
        let caps = self.regex.captures(line)?;
        Some(
            self.fields
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let v = caps
                        .get(i + 1)
                        .map(|m| m.as_str())
                        .filter(|v| !(self.dash_is_null && *v == "-"));
                    (name.as_str(), v)
                })
                .collect(),
        )
    }
}

fn format_name(f: LogFormat) -> &'static str {
    match f {
        LogFormat::CommonApacheLog => "COMMONAPACHELOG",
        LogFormat::CombinedApacheLog => "COMBINEDAPACHELOG",
        LogFormat::ApacheErrorLog => "APACHEERRORLOG",
        LogFormat::Syslog => "SYSLOG",
        LogFormat::Rfc3339Syslog => "RFC3339SYSLOG",
    }
}

/// One `dataProcessingOptions` entry.
#[derive(Debug, Clone)]
pub enum ProcessingOption {
    /// Joins a multi-line record into one line, trimming each line.
    SingleLine,
    /// Splits on a delimiter (a regular expression, as in the agent) into named fields.
    CsvToJson {
        /// `customFieldNames`.
        fields: Vec<String>,
        /// `delimiter`, default `,`.
        delimiter: Regex,
        /// `jsonFormat`.
        json: JsonFormat,
    },
    /// Parses a log line into named fields; lines that do not parse are dropped.
    LogToJson {
        /// The parser.
        parser: LogParser,
        /// `jsonFormat`.
        json: JsonFormat,
    },
    /// Adds `metadata` (and with `timestamp` a `ts`) to a JSON record, or wraps a text record
    /// as `{"metadata":…,"data":"<line>"}`.
    AddMetadata {
        /// `metadata`, any JSON value.
        metadata: Value,
        /// `timestamp`: add `ts` (UTC, milliseconds).
        timestamp: bool,
        /// `jsonFormat`.
        json: JsonFormat,
    },
}

fn check_keys(
    obj: &serde_json::Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ProcessingOptionError> {
    for k in obj.keys() {
        if k != "optionName" && !allowed.contains(&k.as_str()) {
            return Err(ProcessingOptionError::UnknownKey(k.clone()));
        }
    }
    Ok(())
}

fn string_list(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, ProcessingOptionError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ProcessingOptionError::Invalid {
                    key: key.into(),
                    why: format!("expected strings, got {other}"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ProcessingOptionError::Invalid {
            key: key.into(),
            why: format!("expected an array of strings, got {other}"),
        }),
    }
}

fn string_key(
    obj: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ProcessingOptionError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ProcessingOptionError::Invalid {
            key: key.into(),
            why: format!("expected a string, got {other}"),
        }),
    }
}

fn json_format(obj: &serde_json::Map<String, Value>) -> Result<JsonFormat, ProcessingOptionError> {
    match string_key(obj, "jsonFormat")?.as_deref() {
        None | Some("COMPACT") => Ok(JsonFormat::Compact),
        Some("PRETTYPRINT") => Ok(JsonFormat::PrettyPrint),
        Some(other) => Err(ProcessingOptionError::Invalid {
            key: "jsonFormat".into(),
            why: format!("{other:?} is neither COMPACT nor PRETTYPRINT"),
        }),
    }
}

impl ProcessingOption {
    /// Reads one option object of `dataProcessingOptions`.
    pub fn from_json(v: &Value) -> Result<ProcessingOption, ProcessingOptionError> {
        let Value::Object(obj) = v else {
            return Err(ProcessingOptionError::Invalid {
                key: "optionName".into(),
                why: "each option must be an object".into(),
            });
        };
        let name = string_key(obj, "optionName")?
            .ok_or_else(|| ProcessingOptionError::Missing("optionName".into()))?;
        match name.as_str() {
            "SINGLELINE" => {
                check_keys(obj, &[])?;
                Ok(ProcessingOption::SingleLine)
            }
            "CSVTOJSON" => {
                check_keys(obj, &["customFieldNames", "delimiter", "jsonFormat"])?;
                let fields = string_list(obj, "customFieldNames")?
                    .ok_or_else(|| ProcessingOptionError::Missing("customFieldNames".into()))?;
                let delimiter = string_key(obj, "delimiter")?.unwrap_or_else(|| ",".into());
                let delimiter =
                    Regex::new(&delimiter).map_err(|e| ProcessingOptionError::Invalid {
                        key: "delimiter".into(),
                        why: e.to_string(),
                    })?;
                Ok(ProcessingOption::CsvToJson {
                    fields,
                    delimiter,
                    json: json_format(obj)?,
                })
            }
            "LOGTOJSON" => {
                check_keys(
                    obj,
                    &[
                        "logFormat",
                        "matchPattern",
                        "customFieldNames",
                        "jsonFormat",
                    ],
                )?;
                let format_name = string_key(obj, "logFormat")?
                    .ok_or_else(|| ProcessingOptionError::Missing("logFormat".into()))?;
                let format = LogFormat::parse(&format_name).ok_or_else(|| {
                    ProcessingOptionError::Invalid {
                        key: "logFormat".into(),
                        why: format!(
                            "{format_name:?} is not one of COMMONAPACHELOG, COMBINEDAPACHELOG, \
                             APACHEERRORLOG, SYSLOG (RFC3164SYSLOG), RFC3339SYSLOG (RFC5424SYSLOG)"
                        ),
                    }
                })?;
                let parser = LogParser::new(
                    format,
                    string_key(obj, "matchPattern")?.as_deref(),
                    string_list(obj, "customFieldNames")?,
                )?;
                Ok(ProcessingOption::LogToJson {
                    parser,
                    json: json_format(obj)?,
                })
            }
            "ADDMETADATA" => {
                check_keys(obj, &["metadata", "timestamp", "jsonFormat"])?;
                // The agent reads `timestamp` as a string ("true"/"false"); a JSON boolean is
                // accepted too.
                let timestamp = match obj.get("timestamp") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                    Some(other) => {
                        return Err(ProcessingOptionError::Invalid {
                            key: "timestamp".into(),
                            why: format!("expected \"true\" or \"false\", got {other}"),
                        });
                    }
                };
                Ok(ProcessingOption::AddMetadata {
                    metadata: obj.get("metadata").cloned().unwrap_or(Value::Null),
                    timestamp,
                    json: json_format(obj)?,
                })
            }
            other => Err(ProcessingOptionError::Invalid {
                key: "optionName".into(),
                why: format!(
                    "{other:?} is not one of SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA"
                ),
            }),
        }
    }

    /// Processes one record; `now` stamps ADDMETADATA's `ts`.
    pub fn apply(&self, record: &[u8], now: SystemTime) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(record);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        match self {
            ProcessingOption::SingleLine => {
                let mut out: String = text.split('\n').map(str::trim).collect();
                out.push('\n');
                Some(out.into_bytes())
            }
            ProcessingOption::CsvToJson {
                fields,
                delimiter,
                json,
            } => {
                let mut columns: Vec<&str> = delimiter.split(body).collect();
                // Java's String.split drops trailing empty columns.
                while columns.last() == Some(&"") {
                    columns.pop();
                }
                let pairs: Vec<(&str, Option<&str>)> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.as_str(), columns.get(i).copied()))
                    .collect();
                Some(ordered_json(&pairs, *json))
            }
            ProcessingOption::LogToJson { parser, json } => {
                parser.parse(body).map(|pairs| ordered_json(&pairs, *json))
            }
            ProcessingOption::AddMetadata {
                metadata,
                timestamp,
                json,
            } => {
                let mut out = match serde_json::from_str::<Value>(body) {
                    Ok(Value::Object(mut obj)) => {
                        if *timestamp {
                            obj.insert("ts".into(), Value::String(utc_millis(now)));
                        }
                        obj.insert("metadata".into(), metadata.clone());
                        write_json(&Value::Object(obj), *json)
                    }
                    _ => {
                        // A text record: the agent's earlier shape, metadata then data.
                        let mut s = String::from("{\"metadata\":");
                        s.push_str(&write_json(metadata, JsonFormat::Compact));
                        s.push_str(",\"data\":");
                        s.push_str(&write_json(
                            &Value::String(body.to_string()),
                            JsonFormat::Compact,
                        ));
                        if *timestamp {
                            s.push_str(",\"ts\":");
                            s.push_str(&write_json(
                                &Value::String(utc_millis(now)),
                                JsonFormat::Compact,
                            ));
                        }
                        s.push('}');
                        if *json == JsonFormat::PrettyPrint {
                            serde_json::from_str::<Value>(&s)
                                .map(|v| write_json(&v, JsonFormat::PrettyPrint))
                                .unwrap_or(s)
                        } else {
                            s
                        }
                    }
                };
                out.push('\n');
                Some(out.into_bytes())
            }
        }
    }
}

fn write_json(v: &Value, format: JsonFormat) -> String {
    let r = match format {
        JsonFormat::Compact => serde_json::to_string(v),
        JsonFormat::PrettyPrint => serde_json::to_string_pretty(v),
    };
    // Serializing a Value cannot fail: its keys are strings.
    r.unwrap_or_default()
}

/// A JSON object with keys in the given order (serde_json's map would sort them), ending in a
/// newline as the agent's records do.
fn ordered_json(pairs: &[(&str, Option<&str>)], format: JsonFormat) -> Vec<u8> {
    let quote = |s: &str| write_json(&Value::String(s.to_string()), JsonFormat::Compact);
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if format == JsonFormat::PrettyPrint {
            s.push_str("\n  ");
        }
        s.push_str(&quote(k));
        s.push_str(if format == JsonFormat::PrettyPrint {
            ": "
        } else {
            ":"
        });
        match v {
            Some(v) => s.push_str(&quote(v)),
            None => s.push_str("null"),
        }
    }
    if format == JsonFormat::PrettyPrint && !pairs.is_empty() {
        s.push('\n');
    }
    s.push_str("}\n");
    s.into_bytes()
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC, the agent's `ts` format.
pub fn utc_millis(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Applies the options in order; `None` when one of them dropped the record.
pub fn apply_all(options: &[ProcessingOption], record: &[u8], now: SystemTime) -> Option<Vec<u8>> {
    let mut data = record.to_vec();
    for o in options {
        data = o.apply(&data, now)?;
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn opt(v: Value) -> ProcessingOption {
        ProcessingOption::from_json(&v).unwrap()
    }

    fn run(o: &ProcessingOption, line: &str) -> Option<String> {
        o.apply(line.as_bytes(), SystemTime::UNIX_EPOCH)
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn combined_apache_log_to_json() {
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}));
        let line = "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n";
        assert_eq!(
            run(&o, line).unwrap(),
            "{\"host\":\"127.0.0.1\",\"ident\":null,\"authuser\":\"frank\",\"datetime\":\"10/Oct/2000:13:55:36 -0700\",\"request\":\"GET /apache_pb.gif HTTP/1.0\",\"response\":\"200\",\"bytes\":\"2326\",\"referer\":\"http://www.example.com/start.html\",\"agent\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\"}\n"
        );
    }

    #[test]
    fn common_apache_log_with_custom_names_and_garbage_dropped() {
        let o = opt(
            json!({"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG",
            "customFieldNames": ["f1","f2","f3","f4","f5","f6","f7"]}),
        );
        let line = "64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] \"GET /mailman/listinfo/hsdivision HTTP/1.1\" 200 6291\n";
        assert_eq!(
            run(&o, line).unwrap(),
            "{\"f1\":\"64.242.88.10\",\"f2\":null,\"f3\":null,\"f4\":\"07/Mar/2004:16:10:02 -0800\",\"f5\":\"GET /mailman/listinfo/hsdivision HTTP/1.1\",\"f6\":\"200\",\"f7\":\"6291\"}\n"
        );
        assert_eq!(run(&o, "not a log line\n"), None);
        let bad = ProcessingOption::from_json(&json!({"optionName": "LOGTOJSON",
            "logFormat": "COMMONAPACHELOG", "customFieldNames": ["a"]}));
        assert!(
            matches!(bad, Err(ProcessingOptionError::Invalid { ref key, .. }) if key == "customFieldNames")
        );
    }

    #[test]
    fn apache_error_log_to_json() {
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "APACHEERRORLOG"}));
        let line = "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico\n";
        // The agent's SECOND allows fractions, so the microseconds parse.
        assert_eq!(
            run(&o, line).unwrap(),
            "{\"timestamp\":\"Fri Sep 09 10:42:29.902022 2011\",\"module\":\"core\",\"severity\":\"error\",\"processid\":\"35708\",\"threadid\":\"4328636416\",\"client\":\"72.15.99.187\",\"message\":\"File does not exist: /usr/local/apache2/htdocs/favicon.ico\"}\n"
        );
    }

    #[test]
    fn syslogs_to_json() {
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}));
        let line = "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\n";
        assert_eq!(
            run(&o, line).unwrap(),
            "{\"timestamp\":\"Mar 12 12:00:08\",\"hostname\":\"server2\",\"program\":\"rcd\",\"processid\":\"308\",\"message\":\"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\"}\n"
        );
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "RFC3164SYSLOG"}));
        assert!(run(&o, line).is_some());
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "RFC3339SYSLOG"}));
        let line = "2016-11-18T17:03:40.123+01:00 myhost sshd: Accepted publickey\n";
        assert_eq!(
            run(&o, line).unwrap(),
            "{\"timestamp\":\"2016-11-18T17:03:40.123+01:00\",\"hostname\":\"myhost\",\"program\":\"sshd\",\"processid\":null,\"message\":\"Accepted publickey\"}\n"
        );
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "RFC5424SYSLOG"}));
        assert!(run(&o, line).is_some());
    }

    #[test]
    fn match_pattern_needs_field_names() {
        let e = ProcessingOption::from_json(&json!({"optionName": "LOGTOJSON",
            "logFormat": "SYSLOG", "matchPattern": "(\\w+) (\\w+)"}));
        assert_eq!(
            e.unwrap_err(),
            ProcessingOptionError::Missing("customFieldNames".into())
        );
        let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "SYSLOG",
            "matchPattern": "(\\w+) (\\w+)", "customFieldNames": ["a", "b"]}));
        assert_eq!(run(&o, "x y\n").unwrap(), "{\"a\":\"x\",\"b\":\"y\"}\n");
    }

    #[test]
    fn csv_to_json() {
        let o = opt(json!({"optionName": "CSVTOJSON", "customFieldNames": ["f1", "f2"]}));
        assert_eq!(
            run(&o, "v1,v2\n").unwrap(),
            "{\"f1\":\"v1\",\"f2\":\"v2\"}\n"
        );
        assert_eq!(run(&o, "v1\n").unwrap(), "{\"f1\":\"v1\",\"f2\":null}\n");
        let o = opt(
            json!({"optionName": "CSVTOJSON", "customFieldNames": ["a", "b", "c"],
            "delimiter": "\\t"}),
        );
        assert_eq!(
            run(&o, "1\t\"two\"\t3\n").unwrap(),
            "{\"a\":\"1\",\"b\":\"\\\"two\\\"\",\"c\":\"3\"}\n"
        );
        assert!(ProcessingOption::from_json(&json!({"optionName": "CSVTOJSON"})).is_err());
    }

    #[test]
    fn single_line() {
        let o = opt(json!({"optionName": "SINGLELINE"}));
        let trace = "java.lang.IllegalStateException: boom\n    at a.B.c(B.java:10)\n    at a.B.main(B.java:3)\n";
        assert_eq!(
            run(&o, trace).unwrap(),
            "java.lang.IllegalStateException: boomat a.B.c(B.java:10)at a.B.main(B.java:3)\n"
        );
    }

    #[test]
    fn add_metadata() {
        let o = opt(json!({"optionName": "ADDMETADATA", "timestamp": "true",
            "metadata": {"key": "value", "foo": {"bar": "baz"}}}));
        assert_eq!(
            run(&o, "hello\n").unwrap(),
            "{\"metadata\":{\"foo\":{\"bar\":\"baz\"},\"key\":\"value\"},\"data\":\"hello\",\"ts\":\"1970-01-01T00:00:00.000Z\"}\n"
        );
        let v: Value = serde_json::from_str(&run(&o, "{\"a\":1}\n").unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "ts": "1970-01-01T00:00:00.000Z", "metadata": {"key": "value", "foo": {"bar": "baz"}}})
        );
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_709_251_199_999);
        assert_eq!(utc_millis(t), "2024-02-29T23:59:59.999Z");
    }

    #[test]
    fn unknown_options_and_keys() {
        assert!(ProcessingOption::from_json(&json!({"optionName": "GZIP"})).is_err());
        assert_eq!(
            ProcessingOption::from_json(&json!({"optionName": "SINGLELINE", "x": 1})).unwrap_err(),
            ProcessingOptionError::UnknownKey("x".into())
        );
    }

    proptest! {
        #[test]
        fn csv_fields_round_trip(cols in proptest::collection::vec("[^,\n]{1,12}", 1..8)) {
            let names: Vec<String> = (0..cols.len()).map(|i| format!("c{i}")).collect();
            let o = opt(json!({"optionName": "CSVTOJSON", "customFieldNames": names}));
            let out = run(&o, &format!("{}\n", cols.join(","))).unwrap();
            let v: Value = serde_json::from_str(&out).unwrap();
            for (i, c) in cols.iter().enumerate() {
                prop_assert_eq!(v[format!("c{i}")].as_str(), Some(c.as_str()));
            }
        }

        #[test]
        fn common_log_fields_round_trip(
            host in "[a-z][a-z0-9]{0,10}(\\.[a-z0-9]{1,8}){0,3}",
            user in "[a-zA-Z0-9._]{1,10}",
            path in "/[a-zA-Z0-9/._-]{0,30}",
            status in 100u32..600,
            bytes in 0u64..10_000_000,
        ) {
            let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}));
            let line = format!("{host} - {user} [10/Oct/2000:13:55:36 -0700] \"GET {path} HTTP/1.1\" {status} {bytes}\n");
            let v: Value = serde_json::from_str(&run(&o, &line).unwrap()).unwrap();
            prop_assert_eq!(v["host"].as_str(), Some(host.as_str()));
            prop_assert_eq!(v["authuser"].as_str(), Some(user.as_str()));
            prop_assert_eq!(v["request"].as_str().map(str::to_string), Some(format!("GET {path} HTTP/1.1")));
            prop_assert_eq!(v["response"].as_str().map(str::to_string), Some(status.to_string()));
            prop_assert_eq!(v["bytes"].as_str().map(str::to_string), Some(bytes.to_string()));
        }

        #[test]
        fn parsers_never_panic(line in "\\PC{0,200}") {
            for f in ["COMMONAPACHELOG", "COMBINEDAPACHELOG", "APACHEERRORLOG", "SYSLOG", "RFC3339SYSLOG"] {
                let o = opt(json!({"optionName": "LOGTOJSON", "logFormat": f}));
                if let Some(out) = run(&o, &line) {
                    prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
                }
            }
        }
    }
}
