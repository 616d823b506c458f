//! Which limits apply: the concrete numbers ([`Limits`]) and the `--limits`
//! profiles that produce them, with per-stream overrides.

use kinesis_proto::limits::{
    SHARD_READ_BYTES_PER_SEC, SHARD_WRITE_BYTES_PER_SEC, SHARD_WRITE_RECORDS_PER_SEC,
};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One mebibyte, the unit every Kinesis byte limit is stated in.
pub const MIB: u64 = 1024 * 1024;

/// Concrete numbers for every limit, produced by a [`LimitProfile`].
///
/// Rates are per second; `f64::INFINITY` means unlimited. Burst and debt
/// are durations of refill, so scaling a rate scales its burst too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Write bytes (data + partition key) per shard per second.
    pub write_bytes_per_sec: f64,
    /// Records written per shard per second.
    pub write_records_per_sec: f64,
    /// GetRecords calls per shard per second.
    pub read_calls_per_sec: f64,
    /// GetRecords bytes per shard per second, shared by all polling readers.
    pub read_bytes_per_sec: f64,
    /// GetShardIterator calls per shard per second.
    pub get_shard_iterator_per_sec: f64,
    /// Enhanced fan-out bytes per consumer per shard per second.
    pub fanout_bytes_per_sec: f64,
    /// SubscribeToShard calls per consumer per shard per second.
    pub subscribe_per_sec: f64,
    /// How much refill a full bucket holds.
    pub burst: Duration,
    /// How much future read budget one large response may borrow.
    pub read_debt: Duration,
    /// Multiplier applied to [`control_plane_rate`](super::control_plane_rate)'s TPS.
    pub control_plane_scale: f64,
}

impl Limits {
    /// The service's numbers.
    pub fn aws() -> Limits {
        Limits {
            write_bytes_per_sec: SHARD_WRITE_BYTES_PER_SEC,
            write_records_per_sec: SHARD_WRITE_RECORDS_PER_SEC,
            read_calls_per_sec: 5.0,
            read_bytes_per_sec: SHARD_READ_BYTES_PER_SEC,
            get_shard_iterator_per_sec: 5.0,
            fanout_bytes_per_sec: (2 * MIB) as f64,
            subscribe_per_sec: 1.0,
            burst: Duration::from_secs(1),
            read_debt: Duration::from_secs(5),
            control_plane_scale: 1.0,
        }
    }

    /// No limits at all.
    pub fn off() -> Limits {
        Limits::aws().scaled(f64::INFINITY)
    }

    /// These limits with every rate multiplied by `factor`.
    pub fn scaled(self, factor: f64) -> Limits {
        Limits {
            write_bytes_per_sec: self.write_bytes_per_sec * factor,
            write_records_per_sec: self.write_records_per_sec * factor,
            read_calls_per_sec: self.read_calls_per_sec * factor,
            read_bytes_per_sec: self.read_bytes_per_sec * factor,
            get_shard_iterator_per_sec: self.get_shard_iterator_per_sec * factor,
            fanout_bytes_per_sec: self.fanout_bytes_per_sec * factor,
            subscribe_per_sec: self.subscribe_per_sec * factor,
            control_plane_scale: self.control_plane_scale * factor,
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::aws()
    }
}

/// Which limits the broker enforces, as chosen with `--limits`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LimitProfile {
    /// The service's limits.
    #[default]
    Aws,
    /// No limits.
    Off,
    /// The service's limits times a positive factor, for load tests.
    Scaled(f64),
}

impl LimitProfile {
    /// The concrete numbers of this profile.
    pub fn limits(&self) -> Limits {
        match *self {
            LimitProfile::Aws => Limits::aws(),
            LimitProfile::Off => Limits::off(),
            LimitProfile::Scaled(factor) => Limits::aws().scaled(factor),
        }
    }
}

/// A `--limits` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitProfileError(String);

impl fmt::Display for LimitProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitProfileError {}

const PROFILE_HELP: &str =
    r#"expected "aws", "off" or "scale=<factor>" (for example "scale=10" or "scale=0.5")"#;

impl FromStr for LimitProfile {
    type Err = LimitProfileError;

    fn from_str(s: &str) -> Result<LimitProfile, LimitProfileError> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("aws") {
            return Ok(LimitProfile::Aws);
        }
        if text.eq_ignore_ascii_case("off") {
            return Ok(LimitProfile::Off);
        }
        let factor = match text.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("scale") => value.trim(),
            _ => {
                return Err(LimitProfileError(format!(
                    "unknown limit profile \"{text}\": {PROFILE_HELP}"
                )));
            }
        };
        match factor.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(LimitProfile::Scaled(f)),
            Ok(_) => Err(LimitProfileError(format!(
                "scale factor in \"{text}\" must be a positive finite number"
            ))),
            Err(_) => Err(LimitProfileError(format!(
                "scale factor \"{factor}\" in \"{text}\" is not a number: {PROFILE_HELP}"
            ))),
        }
    }
}

impl fmt::Display for LimitProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitProfile::Aws => f.write_str("aws"),
            LimitProfile::Off => f.write_str("off"),
            LimitProfile::Scaled(factor) => write!(f, "scale={factor}"),
        }
    }
}

/// A default [`LimitProfile`] plus per-stream overrides.
///
/// Parses from a comma-separated list where one bare profile sets the default
/// and `<stream>:<profile>` entries override it, e.g.
/// `aws,bulk-load:scale=100,scratch:off`. Stream names cannot contain `:` or
/// `,`, so the form is unambiguous.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitsConfig {
    /// The profile of streams without an override.
    pub default: LimitProfile,
    /// Overrides by stream name.
    pub per_stream: HashMap<String, LimitProfile>,
}

impl LimitsConfig {
    /// One profile for every stream.
    pub fn uniform(profile: LimitProfile) -> LimitsConfig {
        LimitsConfig {
            default: profile,
            per_stream: HashMap::new(),
        }
    }

    /// The profile that applies to `stream`.
    pub fn profile_for(&self, stream: &str) -> LimitProfile {
        self.per_stream.get(stream).copied().unwrap_or(self.default)
    }

    /// The limits that apply to `stream`.
    pub fn for_stream(&self, stream: &str) -> Limits {
        self.profile_for(stream).limits()
    }

    /// The limits of streams without an override, and of account-wide budgets.
    pub fn default_limits(&self) -> Limits {
        self.default.limits()
    }
}

impl FromStr for LimitsConfig {
    type Err = LimitProfileError;

    fn from_str(s: &str) -> Result<LimitsConfig, LimitProfileError> {
        let mut default: Option<LimitProfile> = None;
        let mut per_stream = HashMap::new();
        for entry in s.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(LimitProfileError(format!(
                    "empty entry in limits \"{s}\": separate entries with single commas"
                )));
            }
            match entry.split_once(':') {
                Some((stream, profile)) => {
                    let stream = stream.trim();
                    if stream.is_empty() {
                        return Err(LimitProfileError(format!(
                            "missing stream name in \"{entry}\": per-stream entries look like \"<stream>:<profile>\""
                        )));
                    }
                    let profile: LimitProfile = profile
                        .parse()
                        .map_err(|e| LimitProfileError(format!("stream \"{stream}\": {e}")))?;
                    if per_stream.insert(stream.to_string(), profile).is_some() {
                        return Err(LimitProfileError(format!(
                            "stream \"{stream}\" has more than one limit profile"
                        )));
                    }
                }
                None => {
                    let profile: LimitProfile = entry.parse()?;
                    if let Some(first) = default {
                        return Err(LimitProfileError(format!(
                            "two default limit profiles (\"{first}\" and \"{profile}\"); per-stream entries look like \"<stream>:<profile>\""
                        )));
                    }
                    default = Some(profile);
                }
            }
        }
        Ok(LimitsConfig {
            default: default.unwrap_or_default(),
            per_stream,
        })
    }
}

impl fmt::Display for LimitsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default)?;
        let mut streams: Vec<_> = self.per_stream.iter().collect();
        streams.sort_by(|a, b| a.0.cmp(b.0));
        for (stream, profile) in streams {
            write!(f, ",{stream}:{profile}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_print() {
        assert_eq!("aws".parse(), Ok(LimitProfile::Aws));
        assert_eq!(" OFF ".parse(), Ok(LimitProfile::Off));
        assert_eq!("scale=10".parse(), Ok(LimitProfile::Scaled(10.0)));
        assert_eq!("scale = 0.5".parse(), Ok(LimitProfile::Scaled(0.5)));
        assert_eq!(LimitProfile::Scaled(10.0).to_string(), "scale=10");
        let err = "fast".parse::<LimitProfile>().unwrap_err().to_string();
        assert!(err.contains("unknown limit profile \"fast\""), "{err}");
        assert!(err.contains("scale=<factor>"), "{err}");
        let err = "scale=ten".parse::<LimitProfile>().unwrap_err().to_string();
        assert!(err.contains("is not a number"), "{err}");
        for bad in ["scale=0", "scale=-1", "scale=inf", "scale=NaN"] {
            let err = bad.parse::<LimitProfile>().unwrap_err().to_string();
            assert!(err.contains("positive finite"), "{bad}: {err}");
        }
    }

    #[test]
    fn limits_config_parses_overrides() {
        let c: LimitsConfig = "scale=10,bulk:off,slow:scale=0.1".parse().unwrap();
        assert_eq!(c.default, LimitProfile::Scaled(10.0));
        assert_eq!(c.profile_for("bulk"), LimitProfile::Off);
        assert_eq!(c.profile_for("slow"), LimitProfile::Scaled(0.1));
        assert_eq!(c.profile_for("other"), LimitProfile::Scaled(10.0));
        assert_eq!(c.to_string(), "scale=10,bulk:off,slow:scale=0.1");
        let c: LimitsConfig = "bulk:off".parse().unwrap();
        assert_eq!(c.default, LimitProfile::Aws);
        assert!("aws,off".parse::<LimitsConfig>().is_err());
        assert!("aws,a:off,a:aws".parse::<LimitsConfig>().is_err());
        assert!("aws,,a:off".parse::<LimitsConfig>().is_err());
        assert!(":off".parse::<LimitsConfig>().is_err());
        let err = "a:fast".parse::<LimitsConfig>().unwrap_err().to_string();
        assert!(
            err.starts_with("stream \"a\": unknown limit profile"),
            "{err}"
        );
    }
}
