//! Changing an existing stream's settings: retention, tags, enhanced
//! monitoring, capacity mode and encryption; and DescribeLimits.

use crate::service::{Service, now_ms};
use crate::stream::{Stream, StreamMode, StreamStatus};
use kinesis_proto::KinesisError;
use kinesis_proto::model::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The most tags a stream may carry.
pub(super) const MAX_TAGS: usize = 50;

/// The shard-level metrics `ALL` stands for in EnableEnhancedMonitoring.
const SHARD_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

/// Whether a tag key or value has only the characters the service takes:
/// letters, digits, the space and `_ . / = + - % @` (docs/validation.md).
fn valid_tag_chars(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '.' | '/' | '=' | '+' | '-' | ' ' | '@' | '%')
            || ('\u{C0}'..='\u{1FFF}').contains(&c)
            || ('\u{2C00}'..='\u{D7FF}').contains(&c)
    })
}

/// The service's answer to tag keys or values with characters it refuses;
/// `%` is listed as valid but refused on its own, in other words.
pub(super) fn check_tag_chars<'a>(
    mut texts: impl Iterator<Item = &'a str> + Clone,
    action: &str,
    stream: &str,
    account: &str,
) -> Result<(), KinesisError> {
    if !texts.clone().all(valid_tag_chars) {
        return Err(KinesisError::invalid(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
        ));
    }
    if texts.any(|t| t.contains('%')) {
        return Err(KinesisError::invalid(format!(
            "Failed to {action} stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'."
        )));
    }
    Ok(())
}

impl Service {
    fn active_stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let s = self.stream(r)?;
        let status = s.meta.read().status.clone();
        if status != StreamStatus::Active {
            return Err(self.not_active(&s, &status));
        }
        Ok(s)
    }

    fn retention(
        &self,
        input: RetentionPeriodInput,
        increase: bool,
    ) -> Result<Empty, KinesisError> {
        let hours = input.retention_period_hours.unwrap_or(24);
        let stream = self.active_stream(&input.stream)?;
        if hours < 24 {
            return Err(KinesisError::invalid(format!(
                "Minimum allowed retention period is 24 hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > 8760 {
            return Err(KinesisError::invalid(format!(
                "Maximum allowed retention period is 8760 hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        self.mutate_and_persist(&stream, |m| {
            let current = i64::from(m.retention_hours);
            if increase && hours < current {
                return Err(KinesisError::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                    stream.name
                )));
            }
            if !increase && hours > current {
                return Err(KinesisError::invalid(format!(
                    "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                    stream.name
                )));
            }
            if hours > current {
                // What already expired stays expired: fix the cut-off before the
                // longer period would bring those records back into view.
                let cutoff = self.min_arrival_ms(m.retention_hours, now_ms());
                for shard in &m.shards {
                    shard.trim(cutoff);
                }
            }
            m.retention_hours = hours as u32;
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// IncreaseStreamRetentionPeriod.
    pub fn increase_retention(&self, input: RetentionPeriodInput) -> Result<Empty, KinesisError> {
        self.retention(input, true)
    }

    /// DecreaseStreamRetentionPeriod.
    pub fn decrease_retention(&self, input: RetentionPeriodInput) -> Result<Empty, KinesisError> {
        self.retention(input, false)
    }

    /// AddTagsToStream.
    pub fn add_tags(&self, input: AddTagsToStreamInput) -> Result<Empty, KinesisError> {
        let tags = input.tags.unwrap_or_default();
        let stream = self.active_stream(&input.stream)?;
        check_tag_chars(
            tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            "add tags to",
            &stream.name,
            &self.config().account_id,
        )?;
        self.mutate_and_persist(&stream, |m| {
            let total = m
                .tags
                .keys()
                .chain(tags.keys())
                .collect::<BTreeSet<_>>()
                .len();
            if total > MAX_TAGS {
                return Err(KinesisError::invalid(format!(
                    "Failed to add tags to stream {} under account {} because a given stream cannot have more than {MAX_TAGS} tags associated with it.",
                    stream.name,
                    self.config().account_id
                )));
            }
            m.tags.extend(tags);
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// RemoveTagsFromStream.
    pub fn remove_tags(&self, input: RemoveTagsFromStreamInput) -> Result<Empty, KinesisError> {
        let keys = input.tag_keys.unwrap_or_default();
        let stream = self.active_stream(&input.stream)?;
        check_tag_chars(
            keys.iter().map(String::as_str),
            "remove tags from",
            &stream.name,
            &self.config().account_id,
        )?;
        self.mutate_and_persist(&stream, |m| {
            for k in keys {
                m.tags.remove(&k);
            }
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// ListTagsForStream.
    pub fn list_tags(
        &self,
        input: ListTagsForStreamInput,
    ) -> Result<ListTagsForStreamOutput, KinesisError> {
        let stream = self.stream(&input.stream)?;
        let m = stream.meta.read();
        let limit = input.limit.unwrap_or(50) as usize;
        let rest: Vec<(&String, &String)> = m
            .tags
            .iter()
            .filter(|(k, _)| {
                input
                    .exclusive_start_tag_key
                    .as_ref()
                    .is_none_or(|a| *k > a)
            })
            .collect();
        Ok(ListTagsForStreamOutput {
            has_more_tags: rest.len() > limit,
            tags: rest
                .into_iter()
                .take(limit)
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
        })
    }

    /// DescribeLimits.
    pub fn describe_limits(&self) -> Result<DescribeLimitsOutput, KinesisError> {
        let all = self.streams().read();
        let open: usize = all.values().map(|s| s.meta.read().open.len()).sum();
        let on_demand = all
            .values()
            .filter(|s| s.meta.read().mode == StreamMode::OnDemand)
            .count();
        Ok(DescribeLimitsOutput {
            shard_limit: i64::from(self.config().shard_limit),
            open_shard_count: open as i64,
            on_demand_stream_count: on_demand as i64,
            on_demand_stream_count_limit: 50,
        })
    }

    /// Enable/DisableEnhancedMonitoring.
    pub fn enhanced_monitoring(
        &self,
        input: EnhancedMonitoringInput,
        enable: bool,
    ) -> Result<EnhancedMonitoringOutput, KinesisError> {
        let stream = self.active_stream(&input.stream)?;
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for name in input.shard_level_metrics.unwrap_or_default() {
            if name == "ALL" {
                wanted.extend(SHARD_METRICS.iter().map(|s| s.to_string()));
            } else {
                wanted.insert(name);
            }
        }
        let (current, desired) = self.mutate_and_persist(&stream, |m| {
            let current: Vec<String> = m.shard_level_metrics.iter().cloned().collect();
            if enable {
                m.shard_level_metrics.extend(wanted);
            } else {
                m.shard_level_metrics.retain(|x| !wanted.contains(x));
            }
            Ok((current, m.shard_level_metrics.iter().cloned().collect()))
        })?;
        Ok(EnhancedMonitoringOutput {
            stream_name: stream.name.clone(),
            current_shard_level_metrics: current,
            desired_shard_level_metrics: desired,
            stream_arn: Some(stream.arn.clone()),
        })
    }

    /// UpdateStreamMode.
    pub fn update_stream_mode(
        self: &Arc<Self>,
        input: UpdateStreamModeInput,
    ) -> Result<Empty, KinesisError> {
        let stream = self.active_stream(&StreamRef {
            stream_name: None,
            stream_arn: input.stream_arn,
        })?;
        let mode = match input.stream_mode_details.map(|d| d.stream_mode) {
            Some(m) if m == "ON_DEMAND" => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        self.mutate_and_persist(&stream, |m| {
            m.mode = mode;
            Ok(())
        })?;
        self.transition(
            &stream,
            StreamStatus::Updating,
            StreamStatus::Active,
            self.config().update_delay,
        );
        Ok(Empty {})
    }

    /// Start/StopStreamEncryption.
    pub fn stream_encryption(
        self: &Arc<Self>,
        input: StreamEncryptionInput,
        start: bool,
    ) -> Result<Empty, KinesisError> {
        let stream = self.active_stream(&input.stream)?;
        // Appends take their counters under the meta lock held for reading,
        // so none is under way while this one is held for writing; saved under
        // the lock, so no record is written with a setting a restart would not
        // know, and a failed save changes nothing.
        self.mutate_and_persist(&stream, |m| {
            m.switch_encryption(stream.counter.peek(), start);
            m.kms_key = if start { input.key_id } else { None };
            Ok(())
        })?;
        self.transition(
            &stream,
            StreamStatus::Updating,
            StreamStatus::Active,
            self.config().update_delay,
        );
        Ok(Empty {})
    }
}
