//! What a sensor page shows: the time range asked for (`?range=` or `?from=&to=`), the
//! bucket its readings are averaged in, and when a sensor counts as silent.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::sink::dashboard::SensorSummary;

/// The named ranges a sensor page offers, the first being the default.
pub const NAMED: [(&str, i64); 5] = [
    ("24h", 86_400),
    ("1h", 3_600),
    ("6h", 6 * 3_600),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// The longest range a page draws.
pub const MAX_SECONDS: i64 = 400 * 86_400;

/// About this many buckets per chart, whatever the range: a 7-day page stays small.
pub const TARGET_POINTS: i64 = 480;

/// A time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The named range, when one was asked for (or defaulted to).
    pub named: Option<&'static str>,
}

impl Span {
    /// Seconds per bucket: the range over [`TARGET_POINTS`], at least one second.
    pub fn bucket_seconds(&self) -> u32 {
        let seconds = (self.to - self.from).num_seconds().max(1);
        ((seconds + TARGET_POINTS - 1) / TARGET_POINTS).clamp(1, i64::from(u32::MAX)) as u32
    }
}

/// The range for `range`, `from` and `to` as given (query values), at `now`. An
/// unusable value gives the default range and a sentence saying what was wrong.
pub fn parse(
    range: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> (Span, Option<String>) {
    let default = named("24h", now).expect("24h is a named range");
    let (from, to) = (
        from.filter(|v| !v.trim().is_empty()),
        to.filter(|v| !v.trim().is_empty()),
    );
    if from.is_some() || to.is_some() {
        let from_t = from.map(time);
        let to_t = to.map(time);
        return match (from_t, to_t) {
            (Some(None), _) | (_, Some(None)) => (
                default,
                Some("from and to take times such as 2026-05-01T08:00 (UTC) or RFC 3339; showing the last 24 hours".to_owned()),
            ),
            (f, t) => {
                let to = t.flatten().unwrap_or(now);
                let from = f.flatten().unwrap_or(to - TimeDelta::days(1));
                if from >= to {
                    (default, Some("from must be before to; showing the last 24 hours".to_owned()))
                } else if (to - from).num_seconds() > MAX_SECONDS {
                    (default, Some("ranges are limited to 400 days; showing the last 24 hours".to_owned()))
                } else {
                    (Span { from, to, named: None }, None)
                }
            }
        };
    }
    match range.filter(|v| !v.is_empty()) {
        None => (default, None),
        Some(name) => match named(name, now) {
            Some(span) => (span, None),
            None => (
                default,
                Some("range takes 1h, 6h, 24h, 7d or 30d; showing the last 24 hours".to_owned()),
            ),
        },
    }
}

fn named(name: &str, now: DateTime<Utc>) -> Option<Span> {
    NAMED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, secs)| Span {
            from: now - TimeDelta::seconds(*secs),
            to: now,
            named: Some(n),
        })
}

/// RFC 3339, or a browser's `datetime-local` value (`2026-05-01T08:00`, seconds
/// optional) read as UTC.
fn time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|t| t.and_utc())
        })
}

/// Below this, a gap is never called silence: files arrive in batches, so the last
/// reading is often minutes old even for a sensor that reports every second.
pub const SILENCE_FLOOR_SECONDS: f64 = 600.0;

/// Whether a sensor is silent at `now`: no reading in the last 24 hours, or no reading
/// for longer than 3 × its usual interval (mean time between readings over the last
/// 24 hours) and longer than [`SILENCE_FLOOR_SECONDS`].
pub fn silent(s: &SensorSummary, now: DateTime<Utc>) -> bool {
    let quiet = (now - s.last_reading).num_milliseconds() as f64 / 1000.0;
    if quiet > 86_400.0 || s.day_readings == 0 {
        return true;
    }
    match s.usual_interval_seconds() {
        Some(interval) => quiet > 3.0 * interval && quiet > SILENCE_FLOOR_SECONDS,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn ranges_default_to_a_day_and_read_names_and_times() {
        let now = at("2026-05-02T12:00:00Z");
        let (span, err) = parse(None, None, None, now);
        assert_eq!(
            (span.from, span.to, err),
            (at("2026-05-01T12:00:00Z"), now, None)
        );
        assert_eq!(span.bucket_seconds(), 180);
        let (span, _) = parse(Some("7d"), None, None, now);
        assert_eq!(span.from, at("2026-04-25T12:00:00Z"));
        assert_eq!(span.bucket_seconds(), 1260);
        let (span, err) = parse(
            None,
            Some("2026-05-01T08:00"),
            Some("2026-05-01T09:00:00Z"),
            now,
        );
        assert_eq!(
            (span.from, span.to, span.named, err),
            (
                at("2026-05-01T08:00:00Z"),
                at("2026-05-01T09:00:00Z"),
                None,
                None
            )
        );
        for (range, from, to) in [
            (Some("forever"), None, None),
            (None, Some("yesterday"), None),
            (None, Some("2026-05-02T00:00"), Some("2026-05-01T00:00")),
            (None, Some("2000-01-01T00:00"), None),
        ] {
            let (span, err) = parse(range, from, to, now);
            assert_eq!(span.named, Some("24h"));
            assert!(err.is_some(), "{range:?} {from:?} {to:?}");
        }
    }

    #[test]
    fn silence_is_judged_against_the_usual_interval_with_a_floor() {
        let now = at("2026-05-02T12:00:00Z");
        let sensor = |last: &str, n: u64, first: &str| SensorSummary {
            sensor_id: "s".into(),
            last_reading: at(last),
            day_readings: n,
            day_first: Some(at(first)),
            day_last: Some(at(last)),
        };
        // Every minute, quiet for 5 minutes: under the floor.
        assert!(!silent(
            &sensor("2026-05-02T11:55:00Z", 1000, "2026-05-01T19:15:00Z"),
            now
        ));
        // Every minute, quiet for 20 minutes.
        assert!(silent(
            &sensor("2026-05-02T11:40:00Z", 1000, "2026-05-01T19:01:00Z"),
            now
        ));
        // Every hour, quiet for 2 hours: usual.
        assert!(!silent(
            &sensor("2026-05-02T10:00:00Z", 20, "2026-05-01T15:00:00Z"),
            now
        ));
        // Nothing in a day.
        let mut old = sensor("2026-04-01T00:00:00Z", 0, "2026-04-01T00:00:00Z");
        old.day_first = None;
        assert!(silent(&old, now));
    }
}
