//! Stream and consumer ARNs in AWS's format.

/// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
pub fn stream_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account}:stream/{name}")
}

/// `<stream ARN>/consumer/<name>:<creation epoch seconds>`.
pub fn consumer_arn(stream_arn: &str, name: &str, created_secs: i64) -> String {
    format!("{stream_arn}/consumer/{name}:{created_secs}")
}

/// The parts of a stream ARN: (region, account, stream name).
pub fn parse_stream_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if scheme != "arn" || !partition.starts_with("aws") || service != "kinesis" {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = resource.strip_prefix("stream/")?;
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
        return None;
    }
    Some((region, account, name))
}

/// The parts of a consumer ARN: (stream ARN, consumer name, creation seconds).
pub fn parse_consumer_arn(arn: &str) -> Option<(&str, &str, i64)> {
    let idx = arn.find("/consumer/")?;
    let stream = &arn[..idx];
    parse_stream_arn(stream)?;
    let rest = &arn[idx + "/consumer/".len()..];
    let (name, secs) = rest.rsplit_once(':')?;
    if !crate::name::is_valid_name(name) {
        return None;
    }
    Some((stream, name, secs.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = stream_arn("us-east-1", "123456789012", "orders");
        assert_eq!(s, "arn:aws:kinesis:us-east-1:123456789012:stream/orders");
        assert_eq!(
            parse_stream_arn(&s),
            Some(("us-east-1", "123456789012", "orders"))
        );
        let c = consumer_arn(&s, "app1", 1_700_000_000);
        assert_eq!(
            c,
            "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app1:1700000000"
        );
        assert_eq!(
            parse_consumer_arn(&c),
            Some((s.as_str(), "app1", 1_700_000_000))
        );
        assert_eq!(parse_stream_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(
            parse_stream_arn("arn:aws:kinesis:us-east-1:12:stream/x"),
            None
        );
    }
}
