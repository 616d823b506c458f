//! Model-constraint checks, reported as AWS does: one `ValidationException`
//! listing every violation as "Value '<v>' at '<path>' failed to satisfy constraint: Member must <rule>".

use kinesis_proto::KinesisError;

pub use crate::name::{NAME_PATTERN, is_valid_name};

/// Collects constraint violations of one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a violation.
    pub fn push(&mut self, value: Option<&str>, path: &str, rule: &str) {
        let value = match value {
            Some(v) => format!("'{v}'"),
            None => "null".to_string(),
        };
        self.0.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: Member must {rule}"
        ));
    }

    /// A required member; returns whether it is present.
    pub fn required<T>(&mut self, path: &str, v: &Option<T>) -> bool {
        if v.is_none() {
            self.push(None, path, "not be null");
            false
        } else {
            true
        }
    }

    /// A string's length in characters.
    pub fn length(&mut self, path: &str, v: &str, min: usize, max: usize) {
        let n = v.chars().count();
        if n < min {
            self.push(
                Some(v),
                path,
                &format!("have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                Some(v),
                path,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    /// A stream or consumer name: 1–128 characters of `[a-zA-Z0-9_.-]`.
    pub fn name(&mut self, path: &str, v: &str) {
        self.length(path, v, 1, 128);
        if !v.is_empty() && !is_valid_name(v) {
            self.push(
                Some(v),
                path,
                &format!("satisfy regular expression pattern: {NAME_PATTERN}"),
            );
        }
    }

    /// An integer's bounds.
    pub fn range(&mut self, path: &str, v: i64, min: i64, max: i64) {
        if v < min {
            self.push(
                Some(&v.to_string()),
                path,
                &format!("have value greater than or equal to {min}"),
            );
        } else if v > max {
            self.push(
                Some(&v.to_string()),
                path,
                &format!("have value less than or equal to {max}"),
            );
        }
    }

    /// A value from a fixed set.
    pub fn one_of(&mut self, path: &str, v: &str, allowed: &[&str]) {
        if !allowed.contains(&v) {
            self.push(
                Some(v),
                path,
                &format!("satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
    }

    /// A stream ARN (`arn:aws…:kinesis:<region>:<12 digits>:stream/<name>`).
    pub fn stream_arn(&mut self, path: &str, v: &str) {
        self.length(path, v, 1, 2048);
        if crate::arn::parse_stream_arn(v).is_none() {
            self.push(
                Some(v),
                path,
                "satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            );
        }
    }

    /// Whether nothing was violated.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` if nothing was violated, else the `ValidationException`.
    pub fn finish(self) -> Result<(), KinesisError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(KinesisError::validation(&self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_aws() {
        let mut v = Violations::new();
        v.range("limit", 10001, 1, 10000);
        let e = v.finish().unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"
        );
        let mut v = Violations::new();
        v.required::<String>("streamName", &None);
        v.name("consumerName", "a b");
        let e = v.finish().unwrap_err();
        assert!(
            e.message
                .starts_with("2 validation errors detected: Value null at 'streamName'")
        );
    }
}
