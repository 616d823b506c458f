//! Stream administration: create, delete, describe, list, and shard listing.
//! Changing a stream's settings is [`super::stream_settings`]'s.

use super::stream_settings::{MAX_TAGS, check_tag_chars};
use crate::counter::StreamCounter;
use crate::service::{Service, now_ms};
use crate::shard::Shard;
use crate::stream::{Stream, StreamMeta, StreamMode, StreamStatus};
use crate::token::PageToken;
use kinesis_proto::KinesisError;
use kinesis_proto::codec::Timestamp;
use kinesis_proto::error::ErrorCode;
use kinesis_proto::hash_key::even_split;
use kinesis_proto::model::*;
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const ON_DEMAND_SHARDS: u32 = 4;

/// Shards still listed: open ones, and closed ones whose records have not all expired.
pub fn visible_shards(svc: &Service, m: &StreamMeta, now: i64) -> Vec<Arc<Shard>> {
    let min = svc.min_arrival_ms(m.retention_hours, now);
    m.shards
        .iter()
        .filter(|s| match s.status().closed_ms {
            None => true,
            Some(closed) => closed >= min,
        })
        .cloned()
        .collect()
}

/// A stream name being created: a second CreateStream for it is refused
/// until the first is done.
struct NameClaim<'a> {
    svc: &'a Service,
    name: String,
}

impl<'a> NameClaim<'a> {
    fn take(svc: &'a Service, name: &str) -> Result<Self, KinesisError> {
        if !svc.creating().lock().insert(name.to_string()) {
            return Err(KinesisError::in_use(format!(
                "Stream {name} under account {} already exists.",
                svc.config().account_id
            )));
        }
        Ok(NameClaim {
            svc,
            name: name.to_string(),
        })
    }

    /// Release the claim after a failed creation of the stream made at
    /// `created_ms`, deleting whatever the store made of it.
    fn abandon(self, created_ms: i64) {
        if let Err(e) = self.svc.storage().remove_stream(&self.name, created_ms) {
            tracing::warn!(stream = %self.name, error = %e, "cannot remove a stream whose creation failed");
        }
    }
}

impl Drop for NameClaim<'_> {
    fn drop(&mut self) {
        self.svc.creating().lock().remove(&self.name);
    }
}

impl Service {
    /// CreateStream.
    pub fn create_stream(
        self: &Arc<Self>,
        input: CreateStreamInput,
    ) -> Result<Empty, KinesisError> {
        // The model's constraints were checked by dispatch (kinesis_proto::shape).
        let mode = match input
            .stream_mode_details
            .as_ref()
            .map(|d| d.stream_mode.as_str())
        {
            Some("ON_DEMAND") => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        let name = input.stream_name.unwrap_or_default();
        let shard_count = match (mode, input.shard_count) {
            (StreamMode::Provisioned, Some(n)) => n as u32,
            (StreamMode::Provisioned, None) => {
                return Err(KinesisError::invalid(
                    "ShardCount is required for streams in PROVISIONED mode.",
                ));
            }
            (StreamMode::OnDemand, _) => ON_DEMAND_SHARDS,
        };
        let tags = input.tags.unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(KinesisError::invalid(format!(
                "Failed to create stream {name} because the number of tags ({}) exceeds the limit of {MAX_TAGS}.",
                tags.len()
            )));
        }
        check_tag_chars(
            tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            "create stream with tags on",
            &name,
            &self.config().account_id,
        )?;
        let now = now_ms();
        let admissible = |all: &BTreeMap<String, Arc<Stream>>| -> Result<(), KinesisError> {
            if all.contains_key(&name) {
                return Err(KinesisError::in_use(format!(
                    "Stream {name} under account {} already exists.",
                    self.config().account_id
                )));
            }
            let open: usize = all.values().map(|s| s.meta.read().open.len()).sum();
            let limit = self.config().shard_limit as usize;
            if open + shard_count as usize > limit {
                return Err(KinesisError::limit_exceeded(format!(
                    "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {shard_count}.",
                    self.config().account_id,
                    self.config().region
                )));
            }
            Ok(())
        };
        admissible(&self.streams().read())?;
        // The shard logs are made (directories, fsyncs) holding only a claim on
        // the name, not the lock every request takes to find its stream.
        let claim = NameClaim::take(self, &name)?;
        let stream = match self.build_stream(&name, now, shard_count, mode, tags) {
            Ok(s) => s,
            Err(e) => {
                claim.abandon(now);
                return Err(e);
            }
        };
        {
            let mut all = self.streams().write();
            if let Err(e) = admissible(&all) {
                drop(all);
                claim.abandon(now);
                return Err(e);
            }
            all.insert(name.clone(), Arc::clone(&stream));
        }
        drop(claim);
        self.transition(
            &stream,
            StreamStatus::Creating,
            StreamStatus::Active,
            self.config().create_delay,
        );
        Ok(Empty {})
    }

    /// A new stream with its shard logs made and its description saved.
    fn build_stream(
        &self,
        name: &str,
        now: i64,
        shard_count: u32,
        mode: StreamMode,
        tags: BTreeMap<String, String>,
    ) -> Result<Arc<Stream>, KinesisError> {
        let counter = StreamCounter::on_storage(self.storage(), name, now, 0, 0);
        let mut shards = Vec::with_capacity(shard_count as usize);
        for (i, range) in even_split(shard_count).into_iter().enumerate() {
            let start = counter
                .take(1)
                .map_err(|e| KinesisError::internal(e.to_string()))?;
            let log = self
                .storage()
                .create_log(name, now, i as u32)
                .map_err(|e| KinesisError::internal(e.to_string()))?;
            shards.push(Arc::new(Shard::new(
                i as u32, None, None, range, start, now, log,
            )));
        }
        let mut meta = StreamMeta {
            encryption_switches: Vec::new(),
            pending_reshard: None,
            status: StreamStatus::Creating,
            status_epoch: 0,
            mode,
            retention_hours: 24,
            tags,
            shards,
            open: Vec::new(),
            kms_key: None,
            shard_level_metrics: BTreeSet::new(),
            consumers: BTreeMap::new(),
        };
        meta.rebuild_routing();
        let stream = Arc::new(Stream {
            arn: self.stream_arn(name),
            name: name.to_string(),
            created_ms: now,
            counter,
            meta: RwLock::new(meta),
        });
        // Answer only once the stream is on disk (a no-op in memory).
        self.persist(&stream, &stream.meta.read())?;
        Ok(stream)
    }

    /// DeleteStream.
    pub fn delete_stream(
        self: &Arc<Self>,
        input: DeleteStreamInput,
    ) -> Result<Empty, KinesisError> {
        let stream = self.stream(&input.stream)?;
        // Checked first too, so that a repeated DeleteStream saves nothing.
        if stream.meta.read().status == StreamStatus::Deleting {
            return Ok(Empty {});
        }
        let deleting = self.mutate_and_persist(&stream, |m| {
            // The service deletes a stream still CREATING as well.
            if m.status == StreamStatus::Deleting {
                return Ok(false);
            }
            if !m.consumers.is_empty() && input.enforce_consumer_deletion != Some(true) {
                return Err(KinesisError::in_use(format!(
                    "Stream {} under account {} has registered consumers. Deregister them or set EnforceConsumerDeletion.",
                    stream.name,
                    self.config().account_id
                )));
            }
            m.consumers.clear();
            m.status = StreamStatus::Deleting;
            m.status_epoch += 1;
            Ok(true)
        })?;
        if !deleting {
            return Ok(Empty {});
        }
        self.remove_after(&stream, self.config().delete_delay);
        Ok(Empty {})
    }

    /// DescribeStream.
    pub fn describe_stream(
        &self,
        input: DescribeStreamInput,
    ) -> Result<DescribeStreamOutput, KinesisError> {
        let stream = self.stream(&input.stream)?;
        let limit = input.limit.unwrap_or(100).min(100) as usize;
        let after = match &input.exclusive_start_shard_id {
            Some(id) => Some(kinesis_proto::shard_id::parse(id).ok_or_else(|| {
                KinesisError::invalid(format!("Invalid ExclusiveStartShardId {id}."))
            })?),
            None => None,
        };
        let now = now_ms();
        let m = stream.meta.read();
        let shards: Vec<Arc<Shard>> = if m.status == StreamStatus::Creating {
            Vec::new()
        } else {
            visible_shards(self, &m, now)
                .into_iter()
                .filter(|s| after.is_none_or(|a| s.index > a))
                .collect()
        };
        let has_more = shards.len() > limit;
        Ok(DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                stream_status: m.status.clone(),
                stream_mode_details: Some(m.mode.details()),
                shards: shards.iter().take(limit).map(|s| s.describe()).collect(),
                has_more_shards: has_more,
                retention_period_hours: i64::from(m.retention_hours),
                stream_creation_timestamp: Timestamp(stream.created_ms),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: m.shard_level_metrics.iter().cloned().collect(),
                }],
                encryption_type: Some(m.encryption_type().to_string()),
                key_id: m.kms_key.clone(),
            },
        })
    }

    /// DescribeStreamSummary.
    pub fn describe_stream_summary(
        &self,
        input: DescribeStreamSummaryInput,
    ) -> Result<DescribeStreamSummaryOutput, KinesisError> {
        let stream = self.stream(&input.stream)?;
        let m = stream.meta.read();
        Ok(DescribeStreamSummaryOutput {
            stream_description_summary: StreamDescriptionSummary {
                stream_name: stream.name.clone(),
                stream_arn: stream.arn.clone(),
                stream_status: m.status.clone(),
                stream_mode_details: Some(m.mode.details()),
                retention_period_hours: i64::from(m.retention_hours),
                stream_creation_timestamp: Timestamp(stream.created_ms),
                enhanced_monitoring: vec![EnhancedMetrics {
                    shard_level_metrics: m.shard_level_metrics.iter().cloned().collect(),
                }],
                encryption_type: Some(m.encryption_type().to_string()),
                key_id: m.kms_key.clone(),
                open_shard_count: if m.status == StreamStatus::Creating {
                    0
                } else {
                    m.open.len() as i64
                },
                consumer_count: Some(m.consumers.len() as i64),
            },
        })
    }

    /// ListStreams.
    pub fn list_streams(&self, input: ListStreamsInput) -> Result<ListStreamsOutput, KinesisError> {
        let limit = input.limit.unwrap_or(100).min(100) as usize;
        let after = match &input.next_token {
            Some(t) => Some(self.open_page_token(t, "streams")?),
            None => input.exclusive_start_stream_name.clone(),
        };
        let all = self.streams().read();
        let page: Vec<&Arc<Stream>> = all
            .values()
            .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
            .take(limit + 1)
            .collect();
        let has_more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let next_token = match (has_more, page.last()) {
            (true, Some(last)) => Some(self.sealer().seal_page(&PageToken {
                scope: "streams".into(),
                after: last.name.clone(),
                issued_ms: now_ms(),
            })),
            _ => None,
        };
        Ok(ListStreamsOutput {
            stream_names: page.iter().map(|s| s.name.clone()).collect(),
            has_more_streams: has_more,
            next_token,
            stream_summaries: page
                .iter()
                .map(|s| {
                    let m = s.meta.read();
                    StreamSummary {
                        stream_name: s.name.clone(),
                        stream_arn: s.arn.clone(),
                        stream_status: m.status.clone(),
                        stream_mode_details: Some(m.mode.details()),
                        stream_creation_timestamp: Some(Timestamp(s.created_ms)),
                    }
                })
                .collect(),
        })
    }

    /// Open a pagination token of `scope`, checking its age.
    pub fn open_page_token(&self, token: &str, scope: &str) -> Result<String, KinesisError> {
        let p = self
            .sealer()
            .open_page(token)
            .filter(|p| p.scope == scope)
            .ok_or_else(|| KinesisError::invalid(format!("Invalid NextToken: {token}")))?;
        let age = now_ms() - p.issued_ms;
        if age > self.config().next_token_ttl.as_millis() as i64 {
            return Err(KinesisError::new(
                ErrorCode::ExpiredNextToken,
                format!("The NextToken {token} has expired."),
            ));
        }
        Ok(p.after)
    }

    /// ListShards.
    pub fn list_shards(&self, input: ListShardsInput) -> Result<ListShardsOutput, KinesisError> {
        let has_stream = input.stream.stream_name.is_some() || input.stream.stream_arn.is_some();
        // The token carries the stream and filter, so a continued listing needs neither.
        let (stream_name, filter, after) = match (&input.next_token, has_stream) {
            (Some(_), true) => {
                return Err(KinesisError::invalid(
                    "NextToken and StreamName cannot be provided together.",
                ));
            }
            (None, false) => {
                return Err(KinesisError::invalid(
                    "Either NextToken or StreamName should be provided.",
                ));
            }
            (Some(_), false)
                if input.exclusive_start_shard_id.is_some() || input.shard_filter.is_some() =>
            {
                return Err(KinesisError::invalid(
                    "NextToken cannot be provided together with ExclusiveStartShardId or ShardFilter.",
                ));
            }
            (Some(t), false) => {
                let after = self.open_page_token(t, "shards")?;
                let mut parts = after.splitn(5, '|');
                let name = parts.next().unwrap_or_default().to_string();
                let kind = parts.next().unwrap_or_default().to_string();
                let ts = parts.next().and_then(|x| x.parse::<i64>().ok());
                let fshard = parts.next().filter(|x| !x.is_empty()).map(str::to_string);
                let last = parts.next().and_then(|x| x.parse::<u32>().ok());
                let filter = (!kind.is_empty()).then(|| ShardFilter {
                    filter_type: kind,
                    shard_id: fshard,
                    timestamp: ts.map(Timestamp),
                });
                (name, filter, last)
            }
            (None, true) => {
                let name = self.stream_name_of(&input.stream)?;
                let after = match &input.exclusive_start_shard_id {
                    Some(id) => Some(kinesis_proto::shard_id::parse(id).ok_or_else(|| {
                        KinesisError::invalid(format!("Invalid ExclusiveStartShardId {id}."))
                    })?),
                    None => None,
                };
                (name, input.shard_filter.clone(), after)
            }
        };
        let stream = self.stream_by_name(&stream_name)?;
        if let Some(ts) = input.stream_creation_timestamp
            && ts.millis() / 1000 != stream.created_ms / 1000
        {
            return Err(self.not_found(&stream_name));
        }
        let now = now_ms();
        let m = stream.meta.read();
        if m.status == StreamStatus::Creating {
            return Err(self.not_active(&stream, &m.status));
        }
        let visible = visible_shards(self, &m, now);
        let horizon = self.min_arrival_ms(m.retention_hours, now);
        let selected: Vec<Arc<Shard>> = match &filter {
            None => visible,
            Some(f) => {
                let ts = f.timestamp.map(|t| t.millis());
                match f.filter_type.as_str() {
                    "AFTER_SHARD_ID" => {
                        let id = f.shard_id.as_deref().ok_or_else(|| {
                            KinesisError::invalid(
                                "ShardFilter of type AFTER_SHARD_ID requires a ShardId.",
                            )
                        })?;
                        let idx = kinesis_proto::shard_id::parse(id).ok_or_else(|| {
                            KinesisError::invalid(format!("Invalid ShardId {id}."))
                        })?;
                        visible.into_iter().filter(|s| s.index > idx).collect()
                    }
                    "AT_TRIM_HORIZON" => {
                        let ids: BTreeSet<u32> = visible.iter().map(|s| s.index).collect();
                        visible
                            .into_iter()
                            .filter(|s| {
                                !s.parent.is_some_and(|p| ids.contains(&p))
                                    && !s.adjacent_parent.is_some_and(|p| ids.contains(&p))
                            })
                            .collect()
                    }
                    "FROM_TRIM_HORIZON" => visible,
                    "AT_LATEST" => visible.into_iter().filter(|s| s.is_open()).collect(),
                    "AT_TIMESTAMP" | "FROM_TIMESTAMP" => {
                        let t = ts.ok_or_else(|| {
                            KinesisError::invalid(format!(
                                "ShardFilter of type {} requires a Timestamp.",
                                f.filter_type
                            ))
                        })?;
                        if f.filter_type == "AT_TIMESTAMP" {
                            let t = t.max(stream.created_ms);
                            visible
                                .into_iter()
                                .filter(|s| {
                                    s.created_ms <= t && s.status().closed_ms.is_none_or(|c| c >= t)
                                })
                                .collect()
                        } else {
                            let t = t.max(horizon);
                            visible
                                .into_iter()
                                .filter(|s| s.status().closed_ms.is_none_or(|c| c >= t))
                                .collect()
                        }
                    }
                    _ => visible,
                }
            }
        };
        let max = input.max_results.unwrap_or(1000).min(1000) as usize;
        let rest: Vec<Arc<Shard>> = selected
            .into_iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect();
        let page = &rest[..rest.len().min(max)];
        let next_token = if rest.len() > max {
            page.last().map(|last| {
                let (kind, ts, fshard) = match &filter {
                    Some(f) => (
                        f.filter_type.clone(),
                        f.timestamp
                            .map(|t| t.millis().to_string())
                            .unwrap_or_default(),
                        f.shard_id.clone().unwrap_or_default(),
                    ),
                    None => Default::default(),
                };
                self.sealer().seal_page(&PageToken {
                    scope: "shards".into(),
                    after: format!("{}|{kind}|{ts}|{fshard}|{}", stream.name, last.index),
                    issued_ms: now,
                })
            })
        } else {
            None
        };
        Ok(ListShardsOutput {
            shards: page.iter().map(|s| s.describe()).collect(),
            next_token,
        })
    }
}
