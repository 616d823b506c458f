//! Shard ids: `shardId-` and a 12-digit zero-padded index, never reused in a stream.

/// The wire form of shard `index`, e.g. `shardId-000000000007`.
pub fn format(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// The index in a shard id. Like the service, accepts any `prefix-<n>` or a bare
/// number (`shard-0` and `0` both mean `shardId-000000000000`).
pub fn parse(id: &str) -> Option<u32> {
    let digits = match id.rfind('-') {
        Some(pos) => &id[pos + 1..],
        None => id,
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format(0), "shardId-000000000000");
        assert_eq!(format(17), "shardId-000000000017");
        assert_eq!(parse("shardId-000000000017"), Some(17));
        assert_eq!(parse("shard-0"), Some(0));
        assert_eq!(parse("3"), Some(3));
        assert_eq!(parse("shardId-"), None);
        assert_eq!(parse("shardId-x1"), None);
        assert_eq!(parse("shardId-99999999999999999999"), None);
    }
}
