//! The timestamps GitHub signs into its payloads, as milliseconds since the
//! Unix epoch: `2019-05-15T15:20:33Z` (RFC 3339, with `Z` or an offset) in
//! most places, plain epoch seconds in a push's `repository.pushed_at`.

use serde::{Deserialize, Deserializer};

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`); negative before 1970.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`): (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Epoch milliseconds as CodeBuild stamps its own log lines, in UTC:
/// `2026/12/01 10:00:09.123000`.
pub fn codebuild_log_time(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rest = secs.rem_euclid(86_400);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        (ms % 1000) * 1000
    )
}

fn number(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as epoch milliseconds;
/// `None` for anything else, or a time before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (number(d.next()?)?, number(d.next()?)?, number(d.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // The clock, then the zone: `Z`, or an offset whose sign starts it.
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let (clock, fraction) = match clock.split_once('.') {
        Some((c, f)) => (c, f),
        None => (clock, ""),
    };
    let mut c = clock.splitn(3, ':');
    let (hour, minute, second) = (number(c.next()?)?, number(c.next()?)?, number(c.next()?)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(3).collect();
        number(&digits)? * 10_i64.pow(3 - u32::try_from(digits.len()).ok()?)
    };
    let offset_seconds = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            sign * (number(h)? * 3600 + number(m)? * 60)
        }
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    u64::try_from(seconds.checked_mul(1000)?.checked_add(millis)?).ok()
}

/// A signed timestamp from a payload, in epoch milliseconds: an RFC 3339
/// string or epoch seconds. Unreadable or absent reads as `None`, never as
/// an error: a payload is not refused for a field only the replay check
/// reads, and that check refuses a missing time itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedTime(pub Option<u64>);

impl<'de> Deserialize<'de> for SignedTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
            Other(serde::de::IgnoredAny),
        }
        Ok(SignedTime(match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => s.checked_mul(1000),
            Raw::Text(t) => parse_rfc3339(&t),
            Raw::Other(_) => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_go_both_ways_and_codebuild_stamps_read_as_its_own() {
        for days in [-1_000_000, -1, 0, 1, 59, 60, 365, 10_957, 20_788, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        // 2026-12-01T10:00:09.123Z
        let ms = parse_rfc3339("2026-12-01T10:00:09.123Z").expect("a time");
        assert_eq!(codebuild_log_time(ms), "2026/12/01 10:00:09.123000");
    }

    #[test]
    fn githubs_forms_read_as_the_same_instant() {
        // The corpus: a push's pushed_at and a pull request's times.
        assert_eq!(
            parse_rfc3339("2019-05-15T15:20:33Z"),
            Some(1_557_933_633_000)
        );
        assert_eq!(
            parse_rfc3339("2019-05-15T11:20:33-04:00"),
            Some(1_557_933_633_000)
        );
        assert_eq!(
            parse_rfc3339("2019-05-15T17:20:33.250+02:00"),
            Some(1_557_933_633_250)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        let seconds: SignedTime = serde_json::from_str("1557933657").expect("json");
        assert_eq!(seconds, SignedTime(Some(1_557_933_657_000)));
        let text: SignedTime = serde_json::from_str("\"2019-05-15T15:20:33Z\"").expect("json");
        assert_eq!(text, SignedTime(Some(1_557_933_633_000)));
        let junk: SignedTime = serde_json::from_str("{\"a\": 1}").expect("json");
        assert_eq!(junk, SignedTime(None));
    }

    #[test]
    fn malformed_times_are_none() {
        for bad in [
            "",
            "2019-05-15",
            "2019-13-15T15:20:33Z",
            "2019-05-15T25:20:33Z",
            "2019-05-15T15:20:33",
            "1969-12-31T23:59:59Z",
            "2019-05-15T15:20:33+0400",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
