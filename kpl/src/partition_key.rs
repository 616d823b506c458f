//! A user record's partition key as the pipeline keeps it: short keys inline, so that the
//! caller's `String` is freed on the caller's thread.
//!
//! Handing every key's allocation to the thread that sends the request made that thread free
//! memory another thread allocated, one key at a time; in the allocator's cross-thread path
//! that was 6–7 % of the producer's CPU. Most partition keys are short (ids, counters), so a
//! key of up to [`INLINE`] bytes is copied into the record and its `String` dropped at once.

/// Longest key kept inline, in bytes: as long as fits beside the length in the size of a
/// boxed string.
pub(crate) const INLINE: usize = 22;

/// A partition key, inline when short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartitionKey {
    /// Up to [`INLINE`] bytes of valid UTF-8 (copied from a `&str`), then zeros.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key.
    Heap(Box<str>),
}

impl PartitionKey {
    /// The key, taking `key`'s allocation only when it is too long to copy inline.
    pub(crate) fn new(key: String) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            PartitionKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            PartitionKey::Heap(key.into_boxed_str())
        }
    }

    /// The key.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` whole, so always valid; the empty fallback cannot happen.
            PartitionKey::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            PartitionKey::Heap(key) => key,
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            PartitionKey::Inline { len, .. } => *len as usize,
            PartitionKey::Heap(key) => key.len(),
        }
    }

    /// The key as a `String`, for handing a record back.
    pub(crate) fn into_string(self) -> String {
        match self {
            PartitionKey::Inline { .. } => self.as_str().to_owned(),
            PartitionKey::Heap(key) => key.into_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn it_is_no_larger_than_a_string() {
        assert!(std::mem::size_of::<PartitionKey>() <= std::mem::size_of::<String>());
    }

    proptest! {
        #[test]
        fn any_key_comes_back_unchanged(key in "\\PC{0,40}") {
            let k = PartitionKey::new(key.clone());
            prop_assert_eq!(k.as_str(), key.as_str());
            prop_assert_eq!(k.len(), key.len());
            prop_assert_eq!(matches!(k, PartitionKey::Inline { .. }), key.len() <= INLINE);
            prop_assert_eq!(k.into_string(), key);
        }
    }
}
