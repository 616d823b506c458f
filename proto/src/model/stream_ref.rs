//! How a request names its stream: by name, by ARN, or both.

use serde::{Deserialize, Serialize};

/// Either a stream name or a stream ARN (or both) identify a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StreamRef {
    /// The stream name.
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    /// The stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl StreamRef {
    /// Refer to a stream by name.
    pub fn name(name: impl Into<String>) -> Self {
        StreamRef {
            stream_name: Some(name.into()),
            stream_arn: None,
        }
    }

    /// Refer to a stream by ARN.
    pub fn arn(arn: impl Into<String>) -> Self {
        StreamRef {
            stream_name: None,
            stream_arn: Some(arn.into()),
        }
    }
}
