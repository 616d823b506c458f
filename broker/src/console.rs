//! The web console at `/console`: a page set compiled into the binary (plain
//! HTML, CSS and JS from `broker/assets/console/`, nothing fetched from
//! elsewhere) and the small JSON API under `/console/api/` it polls.
//!
//! The pages themselves hold nothing secret and are served to anyone; the API
//! reads and changes streams, so it asks for the same credentials as
//! `/admin/faults` ([`crate::admin`]): none without `--auth`/`--admin-token`,
//! else `Authorization: Bearer <admin token>` (the page asks for it once) or a
//! SigV4 signature from a listed key.
//!
//! Actions run through the normal operations ([`crate::ops::dispatch`]) with JSON
//! bodies shaped as the Kinesis API's, so they obey the same validation and
//! limits as a client's calls. Records are read with GetShardIterator and
//! GetRecords the same way, then KPL aggregates are opened with the proto
//! crate's aggregation codec (docs/kpl-aggregation.md).

use crate::admin::{self, Refusal};
use crate::body::{BodyBudget, announced_length};
use crate::response::Body;
use crate::service::{Service, now_ms};
use crate::stream::Stream;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use kinesis_proto::codec::Encoding;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::{GetRecordsOutput, Operation};
use kinesis_proto::{KinesisError, aggregation};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

const INDEX_HTML: &str = include_str!("../assets/console/index.html");
const APP_JS: &str = include_str!("../assets/console/app.js");
const APP_CSS: &str = include_str!("../assets/console/app.css");

/// Largest console API request body.
const MAX_API_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Hot keys listed per shard.
const HOT_KEYS_PER_SHARD: usize = 3;
/// Operations the console's action endpoint runs.
const ACTIONS: &[Operation] = &[
    Operation::CreateStream,
    Operation::DeleteStream,
    Operation::PutRecord,
    Operation::PutRecords,
    Operation::SplitShard,
    Operation::MergeShards,
];

/// Whether `path` belongs to the console.
pub fn is_console_path(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Response<Body> {
    reply(status, "application/json", v.to_string())
}

fn api_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response<Body> {
    json_reply(status, &json!({ "error": kind, "message": message.into() }))
}

fn kinesis_error(e: &KinesisError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    api_error(status, e.code.as_str(), e.message.clone())
}

fn refused(r: Refusal) -> Response<Body> {
    match r {
        Refusal::Unauthenticated => api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthenticated",
            "the console API needs Authorization: Bearer <admin token>",
        ),
        Refusal::Forbidden(why) => api_error(StatusCode::FORBIDDEN, "Forbidden", why),
    }
}

/// Serve one console request: a page asset, or an API call.
pub async fn handle(
    svc: &Arc<Service>,
    bodies: &BodyBudget,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let asset = match path.as_str() {
        "/console" | "/console/" | "/console/index.html" => {
            Some(("text/html; charset=utf-8", INDEX_HTML))
        }
        "/console/app.js" => Some(("text/javascript; charset=utf-8", APP_JS)),
        "/console/app.css" => Some(("text/css; charset=utf-8", APP_CSS)),
        _ => None,
    };
    if let Some((content_type, text)) = asset {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return api_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "use GET",
            );
        }
        return reply(
            StatusCode::OK,
            content_type,
            Bytes::from_static(text.as_bytes()),
        );
    }
    let Some(route) = path.strip_prefix("/console/api/") else {
        return api_error(StatusCode::NOT_FOUND, "NotFound", format!("no page {path}"));
    };
    let route = route.to_string();
    let (parts, body) = req.into_parts();
    let now = SystemTime::now();
    let access = match admin::check(svc.config(), &parts, now) {
        Ok(a) => a,
        Err(r) => return refused(r),
    };
    let length = announced_length(&parts);
    let body = match bodies
        .read(
            body,
            length,
            MAX_API_BODY_BYTES,
            svc.config().connection_limits.body_read_timeout,
        )
        .await
    {
        Ok(held) => held.bytes,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("cannot read the request body: {e}"),
            );
        }
    };
    if let Err(r) = admin::verify_signature(svc.config(), access, &parts, &body, now) {
        return refused(r);
    }
    let query = parse_query(parts.uri.query().unwrap_or_default());
    match (&parts.method, route.as_str()) {
        (&Method::GET, "streams") => json_reply(StatusCode::OK, &streams(svc)),
        (&Method::GET, "stream") => {
            let name = query.get("name").map(String::as_str).unwrap_or_default();
            match svc.stream_by_name(name) {
                Ok(s) => json_reply(StatusCode::OK, &stream_detail(svc, &s)),
                Err(e) => kinesis_error(&e),
            }
        }
        (&Method::POST, "records") => run_blocking(svc, body, records).await,
        (&Method::POST, "action") => run_blocking(svc, body, action).await,
        _ => api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no API {} /console/api/{route}", parts.method),
        ),
    }
}

/// Run an API call that may touch the disk off the async workers, as the
/// Kinesis operations are.
async fn run_blocking(
    svc: &Arc<Service>,
    body: Bytes,
    f: fn(&Arc<Service>, &[u8]) -> Result<Value, KinesisError>,
) -> Response<Body> {
    let svc = Arc::clone(svc);
    let done = tokio::task::spawn_blocking(move || f(&svc, &body)).await;
    match done {
        Ok(Ok(v)) => json_reply(StatusCode::OK, &v),
        Ok(Err(e)) => kinesis_error(&e),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            e.to_string(),
        ),
    }
}

/// `a=b&c=d`, percent-decoded.
fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `x` to `digits` decimals: enough for the page, and a thousand shards'
/// worth of JSON stays small.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Where a hash range sits in the whole hash-key space, as fractions 0..1.
fn range_fractions(r: &HashRange) -> (f64, f64) {
    let max = u128::MAX as f64;
    (r.start as f64 / max, r.end as f64 / max)
}

/// Per-(stream, shard[, consumer]) values of the broker's counters, read from
/// the metrics registry so the console shows exactly what `/metrics` does.
#[derive(Default)]
struct Counters {
    by_shard: HashMap<(String, String), HashMap<&'static str, f64>>,
    by_consumer: HashMap<(String, String, String), HashMap<&'static str, f64>>,
}

/// Counter families the console reads, by short name.
const SHARD_COUNTERS: &[(&str, &str)] = &[
    ("read_bytes", "kinesis_get_records_bytes_total"),
    (
        "write_throttled",
        "kinesis_write_provisioned_throughput_exceeded_total",
    ),
    (
        "read_throttled",
        "kinesis_read_provisioned_throughput_exceeded_total",
    ),
    (
        "iterator_age_ms",
        "kinesis_get_records_iterator_age_milliseconds",
    ),
];
const CONSUMER_COUNTERS: &[(&str, &str)] = &[
    (
        "event_bytes",
        "kinesis_subscribe_to_shard_event_bytes_total",
    ),
    (
        "event_records",
        "kinesis_subscribe_to_shard_event_records_total",
    ),
    (
        "millis_behind",
        "kinesis_subscribe_to_shard_event_millis_behind_latest",
    ),
];

impl Counters {
    fn gather(svc: &Service, stream: Option<&str>) -> Counters {
        let mut c = Counters::default();
        if !svc.config().metrics {
            return c;
        }
        for mf in svc.metrics().registry().gather() {
            let name = mf.name();
            let shard_key = SHARD_COUNTERS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(k, _)| *k);
            let consumer_key = CONSUMER_COUNTERS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(k, _)| *k);
            if shard_key.is_none() && consumer_key.is_none() {
                continue;
            }
            for m in mf.get_metric() {
                let label = |n: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == n)
                        .map(|l| l.value().to_string())
                };
                let (Some(s), Some(shard)) = (label("stream"), label("shard")) else {
                    continue;
                };
                if stream.is_some_and(|want| want != s) {
                    continue;
                }
                let value = m.get_counter().get_value() + m.get_gauge().get_value();
                match (shard_key, consumer_key, label("consumer")) {
                    (Some(k), _, _) => {
                        c.by_shard.entry((s, shard)).or_default().insert(k, value);
                    }
                    (None, Some(k), Some(consumer)) => {
                        c.by_consumer
                            .entry((s, shard, consumer))
                            .or_default()
                            .insert(k, value);
                    }
                    _ => {}
                }
            }
        }
        c
    }

    fn shard(&self, stream: &str, shard: &str, key: &str) -> f64 {
        self.by_shard
            .get(&(stream.to_string(), shard.to_string()))
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(0.0)
    }
}

/// `GET /console/api/streams`: every stream with its shard counts and
/// incoming rates over the hot-key window.
fn streams(svc: &Service) -> Value {
    let now = now_ms();
    let all: Vec<Arc<Stream>> = svc.streams().read().values().cloned().collect();
    let counters = Counters::gather(svc, None);
    let list: Vec<Value> = all
        .iter()
        .map(|s| {
            let m = s.meta.read();
            let (mut records, mut bytes, mut throttled) = (0u64, 0u64, 0.0);
            let mut span_ms = 1_000;
            for shard in &m.shards {
                let r = shard.hot_keys().report(0, now);
                records += r.records;
                bytes += r.bytes;
                span_ms = span_ms.max(r.span_ms);
                throttled += counters.shard(&s.name, &shard.id, "write_throttled")
                    + counters.shard(&s.name, &shard.id, "read_throttled");
            }
            let secs = span_ms as f64 / 1000.0;
            json!({
                "name": s.name,
                "arn": svc.stream_arn(&s.name),
                "status": m.status.as_str(),
                "mode": m.mode.as_str(),
                "retention_hours": m.retention_hours,
                "open_shards": m.open.len(),
                "closed_shards": m.shards.len() - m.open.len(),
                "consumers": m.consumers.len(),
                "created_ms": s.created_ms,
                "records_per_sec": records as f64 / secs,
                "bytes_per_sec": bytes as f64 / secs,
                "throttled_total": throttled,
            })
        })
        .collect();
    json!({ "now_ms": now, "protected": admin::is_protected(svc.config()), "streams": list })
}

/// `GET /console/api/stream?name=`: the stream's shards (ranges, lineage,
/// rates against limits, throttles, hot keys) and consumers.
fn stream_detail(svc: &Service, s: &Stream) -> Value {
    let now = now_ms();
    let counters = Counters::gather(svc, Some(&s.name));
    let limits = svc.config().limits.for_stream(&s.name);
    let m = s.meta.read();
    let mut children: HashMap<u32, Vec<String>> = HashMap::new();
    for shard in &m.shards {
        for p in [shard.parent, shard.adjacent_parent].into_iter().flatten() {
            children.entry(p).or_default().push(shard.id.clone());
        }
    }
    let id_of = |i: Option<u32>| i.and_then(|i| m.shard(i)).map(|s| s.id.clone());
    let shards: Vec<Value> = m
        .shards
        .iter()
        .filter(|shard| !shard.is_reclaimed())
        .map(|shard| {
            let report = shard.hot_keys().report(HOT_KEYS_PER_SHARD, now);
            let secs = report.span_ms as f64 / 1000.0;
            let (lo, hi) = range_fractions(&shard.range);
            let status = shard.status();
            let hot: Vec<Value> = report
                .top
                .iter()
                .map(|k| {
                    json!({
                        "key": k.key,
                        "records": k.records,
                        "overcount": k.overcount,
                        "share": round(if report.records == 0 { 0.0 } else { k.records as f64 / report.records as f64 }, 4),
                    })
                })
                .collect();
            let c = |k| counters.shard(&s.name, &shard.id, k);
            json!({
                "id": shard.id,
                "open": status.end_counter.is_none(),
                "parent": id_of(shard.parent),
                "adjacent_parent": id_of(shard.adjacent_parent),
                "children": children.get(&shard.index).cloned().unwrap_or_default(),
                "starting_hash_key": shard.range.start.to_string(),
                "ending_hash_key": shard.range.end.to_string(),
                "lo": round(lo, 6),
                "hi": round(hi, 6),
                "records_per_sec": round(report.records as f64 / secs, 2),
                "bytes_per_sec": round(report.bytes as f64 / secs, 1),
                "window_records": report.records,
                "hot_keys": hot,
                "read_bytes_total": c("read_bytes"),
                "write_throttled_total": c("write_throttled"),
                "read_throttled_total": c("read_throttled"),
                "iterator_age_ms": c("iterator_age_ms"),
            })
        })
        .collect();
    let consumers: Vec<Value> = m
        .consumers
        .values()
        .map(|cons| {
            let subs: Vec<Value> = m
                .shards
                .iter()
                .filter_map(|shard| {
                    let live = shard.subscriptions().active_consumers().contains(&cons.arn);
                    let vals = counters.by_consumer.get(&(
                        s.name.clone(),
                        shard.id.clone(),
                        cons.name.clone(),
                    ));
                    if !live && vals.is_none() {
                        return None;
                    }
                    let v = |k| vals.and_then(|m| m.get(k)).copied().unwrap_or(0.0);
                    Some(json!({
                        "shard": shard.id,
                        "live": live,
                        "event_bytes_total": v("event_bytes"),
                        "event_records_total": v("event_records"),
                        "millis_behind": v("millis_behind"),
                    }))
                })
                .collect();
            json!({
                "name": cons.name,
                "arn": cons.arn,
                "status": cons.status.as_str(),
                "created_ms": cons.created_ms,
                "subscriptions": subs,
            })
        })
        .collect();
    json!({
        "now_ms": now,
        "name": s.name,
        "arn": svc.stream_arn(&s.name),
        "status": m.status.as_str(),
        "mode": m.mode.as_str(),
        "retention_hours": m.retention_hours,
        "window_ms": crate::hot_keys::BUCKETS as i64 * crate::hot_keys::BUCKET_MS,
        "limits": {
            "write_bytes_per_sec": limits.write_bytes_per_sec,
            "write_records_per_sec": limits.write_records_per_sec,
            "read_bytes_per_sec": limits.read_bytes_per_sec,
            "read_calls_per_sec": limits.read_calls_per_sec,
            "fanout_bytes_per_sec": limits.fanout_bytes_per_sec,
        },
        "shards": shards,
        "consumers": consumers,
    })
}

/// One Kinesis operation with a JSON body, as a client would call it.
fn call(svc: &Arc<Service>, op: Operation, input: &Value) -> Result<Bytes, KinesisError> {
    crate::ops::dispatch(svc, op, Encoding::Json, &Bytes::from(input.to_string()))
}

/// `POST /console/api/records`: a page of records. The body is either
/// `{"ShardIterator"}` to continue, or GetShardIterator's members to start;
/// `Limit` caps the page. Aggregates come back opened.
fn records(svc: &Arc<Service>, body: &[u8]) -> Result<Value, KinesisError> {
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| KinesisError::serialization(format!("The request is not JSON: {e}")))?;
    let iterator = match req.get("ShardIterator").and_then(Value::as_str) {
        Some(it) => it.to_string(),
        None => {
            let mut start = req.clone();
            if let Some(o) = start.as_object_mut() {
                o.remove("Limit");
            }
            let out = call(svc, Operation::GetShardIterator, &start)?;
            let v: Value =
                serde_json::from_slice(&out).map_err(|e| KinesisError::internal(e.to_string()))?;
            v.get("ShardIterator")
                .and_then(Value::as_str)
                .ok_or_else(|| KinesisError::internal("GetShardIterator gave no iterator"))?
                .to_string()
        }
    };
    let limit = req
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(25)
        .clamp(1, 1000);
    let out = call(
        svc,
        Operation::GetRecords,
        &json!({ "ShardIterator": iterator, "Limit": limit }),
    )?;
    let page: GetRecordsOutput = Encoding::Json.decode(&out)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = page
        .records
        .iter()
        .map(|r| {
            let data = Bytes::from(r.data.0.to_vec());
            let user: Option<Vec<Value>> = aggregation::try_deaggregate(&data).map(|subs| {
                subs.iter()
                    .map(|u| {
                        json!({
                            "sub_sequence_number": u.sub_sequence_number,
                            "partition_key": &*u.partition_key,
                            "explicit_hash_key": u.explicit_hash_key.as_deref(),
                            "data": b64.encode(&u.data),
                            "size": u.data.len(),
                        })
                    })
                    .collect()
            });
            json!({
                "sequence_number": r.sequence_number,
                "arrival_ms": r.approximate_arrival_timestamp.map(|t| t.millis()),
                "partition_key": r.partition_key,
                "data": b64.encode(&data),
                "size": data.len(),
                "aggregated": user.is_some(),
                "user_records": user.unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({
        "records": records,
        "next_iterator": page.next_shard_iterator,
        "millis_behind_latest": page.millis_behind_latest,
        "child_shards": page.child_shards.map(|c| c.iter().map(|c| c.shard_id.clone()).collect::<Vec<_>>()),
    }))
}

/// `POST /console/api/action`: `{"Operation": "SplitShard", "Input": {...}}`
/// for the few operations the console offers, answered with the operation's
/// own JSON output.
fn action(svc: &Arc<Service>, body: &[u8]) -> Result<Value, KinesisError> {
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| KinesisError::serialization(format!("The request is not JSON: {e}")))?;
    let name = req
        .get("Operation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let op = ACTIONS
        .iter()
        .copied()
        .find(|op| op.name() == name)
        .ok_or_else(|| {
            KinesisError::invalid(format!(
                "The console does not run operation {name:?}; it runs {}.",
                ACTIONS
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let input = req.get("Input").cloned().unwrap_or_else(|| json!({}));
    let out = call(svc, op, &input)?;
    if out.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&out).map_err(|e| KinesisError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        let q = parse_query("name=my%2Dstream&x=a+b&bad=%zz&t=%4");
        assert_eq!(q["name"], "my-stream");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["t"], "%4");
    }

    #[test]
    fn console_paths() {
        assert!(is_console_path("/console"));
        assert!(is_console_path("/console/api/streams"));
        assert!(!is_console_path("/consoles"));
    }
}
