//! The date and time texts AWS exchanges, as UTC [`SystemTime`]s: SigV4's `X-Amz-Date`
//! (ISO-8601 basic format), the HTTP `Date` header (IMF-fixdate) and the RFC 3339
//! expirations credential sources answer with.
//!
//! Hand-written rather than a date crate because these three fixed formats are all the
//! client and the broker need, and both the client's signer and the broker's verifier must
//! read them the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parse an `X-Amz-Date`: `YYYYMMDD'T'HHMMSS'Z'`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    to_time(y, mo, d, h, mi, sec)
}

/// Format a time as an `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`); times before 1970 give the epoch.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parse an IMF-fixdate, the HTTP `Date` format: `Sun, 30 Aug 2015 12:36:00 GMT`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, d, mon, y, hms, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mo = MONTHS.iter().position(|m| *m == mon)? as i64 + 1;
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    to_time(y.parse().ok()?, mo, d.parse().ok()?, h, mi, sec)
}

/// Parse an ISO-8601/RFC 3339 time as AWS sends expirations:
/// `2024-01-02T03:04:05Z`, with optional fractional seconds or a `+HH:MM` offset.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

fn to_time(y: i64, mo: i64, d: i64, h: i64, mi: i64, sec: i64) -> Option<SystemTime> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Both date formats carry a four-digit year; anything else is garbage,
    // and would overflow the day arithmetic below.
    if !(0..=9999).contains(&y) || h < 0 || mi < 0 || sec < 0 {
        return None;
    }
    let secs = days_from_civil(y, mo, d)
        .checked_mul(86_400)?
        .checked_add(h * 3600 + mi * 60 + sec)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The AWS SigV4 test suite's request time.
    const SUITE_DATE: &str = "20150830T123600Z";
    const SUITE_SECS: u64 = 1_440_938_160;

    #[test]
    fn the_three_formats_agree() {
        let t = UNIX_EPOCH + Duration::from_secs(SUITE_SECS);
        assert_eq!(parse_amz_date(SUITE_DATE), Some(t));
        assert_eq!(format_amz_date(t), SUITE_DATE);
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
        assert_eq!(parse_rfc3339("2015-08-30T12:36:00Z"), Some(t));
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "20150830T123600",
            "2015083ET123600Z",
            "20151330T123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(parse_http_date("Sun, 30 Foo 2015 12:36:00 GMT"), None);
        assert_eq!(parse_rfc3339("2015-08-30 12:36"), None);
    }

    #[test]
    fn amz_dates_round_trip_across_eras() {
        for secs in [0, 951_782_400, 4_102_444_799, 32_503_679_999] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{secs}");
        }
    }
}
