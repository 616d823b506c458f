//! Stream tags.

use super::stream_ref::StreamRef;
use serde::{Deserialize, Serialize};

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// AddTagsToStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Tags to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// RemoveTagsFromStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Keys to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_keys: Option<Vec<String>>,
}

/// ListTagsForStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Continue after this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_tag_key: Option<String>,
    /// Page size (1–50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// ListTagsForStream output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    /// Tags, keys ascending.
    pub tags: Vec<Tag>,
    /// Whether more follow.
    pub has_more_tags: bool,
}
