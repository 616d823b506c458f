//! A stream's settings: capacity mode, retention, enhanced monitoring, encryption.

use super::stream_ref::StreamRef;
use serde::{Deserialize, Serialize};

/// `StreamModeDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    #[serde(default)]
    pub stream_mode: String,
}

/// `EnhancedMetrics` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    /// Shard-level metrics enabled.
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
}

/// Increase/DecreaseStreamRetentionPeriod input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionPeriodInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// New retention in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_period_hours: Option<i64>,
}

/// Enable/DisableEnhancedMonitoring input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Metrics to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_level_metrics: Option<Vec<String>>,
}

/// Enable/DisableEnhancedMonitoring output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringOutput {
    /// Stream name.
    pub stream_name: String,
    /// Before.
    pub current_shard_level_metrics: Vec<String>,
    /// After.
    pub desired_shard_level_metrics: Vec<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// UpdateStreamMode input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamModeInput {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
}

/// Start/StopStreamEncryption input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryptionInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
    /// The key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}
