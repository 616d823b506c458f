//! When a request says it was signed (`X-Amz-Date` or `Date`), and whether that is within
//! the tolerated clock skew.

use http::HeaderMap;
use kinesis_proto::KinesisError;
use kinesis_proto::aws_date::{format_amz_date, parse_amz_date, parse_http_date};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::rejection::{incomplete, invalid_sig};

/// The request time as `X-Amz-Date` text and as a time, from `X-Amz-Date` or `Date`.
pub(super) fn request_time(
    headers: &HeaderMap,
    header: &str,
) -> Result<(String, SystemTime), KinesisError> {
    if let Some(v) = headers.get("x-amz-date") {
        let text = v.to_str().unwrap_or("").trim().to_string();
        let time = parse_amz_date(&text).ok_or_else(|| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        return Ok((text, time));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let text = v.to_str().unwrap_or("").trim();
        let time = parse_http_date(text)
            .ok_or_else(|| incomplete(format!("Unreadable Date header '{text}'.")))?;
        return Ok((format_amz_date(time), time));
    }
    Err(incomplete(format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
    )))
}

pub(super) fn check_skew(
    time: SystemTime,
    now: SystemTime,
    max: Duration,
) -> Result<(), KinesisError> {
    let window = if max.as_secs().is_multiple_of(60) {
        format!("{} min.", max.as_secs() / 60)
    } else {
        format!("{} sec.", max.as_secs())
    };
    let earliest = now.checked_sub(max).unwrap_or(UNIX_EPOCH);
    if time < earliest {
        return Err(invalid_sig(&format!(
            "Signature expired: {} is now earlier than {} ({} - {window})",
            format_amz_date(time),
            format_amz_date(earliest),
            format_amz_date(now)
        )));
    }
    // A window too wide to add to now accepts any later time.
    let latest = now.checked_add(max);
    if let Some(latest) = latest.filter(|l| time > *l) {
        return Err(invalid_sig(&format!(
            "Signature not yet current: {} is still later than {} ({} + {window})",
            format_amz_date(time),
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    Ok(())
}
