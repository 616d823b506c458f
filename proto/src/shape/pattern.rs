//! The model's patterns, matched without a regex engine.

/// A pattern of the model, matched without a regex engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `[a-zA-Z0-9_.-]+`: stream, consumer and shard names.
    Name,
    /// `0|([1-9]\d{0,38})`: hash keys.
    HashKey,
    /// `0|([1-9]\d{0,128})`: sequence numbers.
    SequenceNumber,
    /// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`.
    StreamArn,
    /// `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`.
    ConsumerArn,
}

impl Pattern {
    /// The pattern as the service prints it.
    pub fn text(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::HashKey => "0|([1-9]\\d{0,38})",
            Pattern::SequenceNumber => "0|([1-9]\\d{0,128})",
            Pattern::StreamArn => "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            Pattern::ConsumerArn => {
                "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
            }
        }
    }

    /// Whether all of `s` matches.
    pub fn matches(self, s: &str) -> bool {
        let is_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        let decimal = |s: &str, max_more: usize| {
            s == "0"
                || (s.len() <= max_more + 1
                    && s.bytes().next().is_some_and(|b| (b'1'..=b'9').contains(&b))
                    && s.bytes().all(|b| b.is_ascii_digit()))
        };
        match self {
            Pattern::Name => is_name(s),
            Pattern::HashKey => decimal(s, 38),
            Pattern::SequenceNumber => decimal(s, 128),
            Pattern::StreamArn => arn_account_rest(s).is_some_and(|rest| {
                rest.strip_prefix("stream/")
                    .is_some_and(|n| !n.is_empty() && !n.chars().any(char::is_whitespace))
            }),
            Pattern::ConsumerArn => arn_account_rest(s).is_some_and(|rest| {
                // `.*stream/<name>/consumer/<name>:<digits>`, the name groups greedy.
                let Some((head, secs)) = rest.rsplit_once(':') else {
                    return false;
                };
                if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
                    return false;
                }
                let Some((before, consumer)) = head.rsplit_once("/consumer/") else {
                    return false;
                };
                let Some((_, stream)) = before.rsplit_once("stream/") else {
                    return false;
                };
                is_name(consumer) && is_name(stream)
            }),
        }
    }
}

/// For `arn:aws…:kinesis:…:<12 digits>:<rest>`, the rest.
fn arn_account_rest(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:aws")?;
    let (_, after) = rest.split_once(":kinesis:")?;
    // `.*:\d{12}:`: some colon is followed by 12 digits and a colon.
    after.match_indices(':').find_map(|(i, _)| {
        let tail = &after[i + 1..];
        let digits = tail.get(..12)?;
        (digits.bytes().all(|b| b.is_ascii_digit()) && tail[12..].starts_with(':'))
            .then(|| &tail[13..])
    })
}
