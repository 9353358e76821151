//! `sensor-ingest qc SENSOR`: the readings of one sensor that carry quality flags,
//! with the test(s) that flagged them, the value and the values around it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::qc::{FlaggedReading, MEASURE_NAMES, StoredValues};
use crate::sink::{LedgerQueries, SinkError};

/// What `qc` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QcReport {
    pub sensor: String,
    pub since: DateTime<Utc>,
    pub readings: Vec<FlaggedReading>,
    /// More flagged readings exist than the limit listed.
    pub truncated: bool,
}

/// The first `limit` flagged readings of `sensor` since `since`.
pub async fn collect(
    store: &dyn LedgerQueries,
    sensor: &str,
    since: DateTime<Utc>,
    limit: u32,
) -> Result<QcReport, SinkError> {
    let mut readings = store
        .flagged_readings(sensor, since, limit.saturating_add(1))
        .await?;
    let truncated = readings.len() > limit as usize;
    readings.truncate(limit as usize);
    Ok(QcReport {
        sensor: sensor.to_owned(),
        since,
        readings,
        truncated,
    })
}

/// The report as text: a line per flagged reading with its tests, then per flagged
/// measure the previous value, the value and the next value.
pub fn format(r: &QcReport) -> String {
    let mut out = String::new();
    let since = r.since.format("%Y-%m-%dT%H:%M:%SZ");
    if r.readings.is_empty() {
        let _ = writeln!(out, "{}: no flagged readings since {since}", r.sensor);
        return out;
    }
    let noun = if r.readings.len() == 1 {
        "reading"
    } else {
        "readings"
    };
    let _ = writeln!(
        out,
        "{}: {} flagged {noun} since {since}{}",
        r.sensor,
        r.readings.len(),
        if r.truncated {
            " (more not shown; raise --limit)"
        } else {
            ""
        }
    );
    for f in &r.readings {
        let _ = writeln!(
            out,
            "{}  {}  (line {} of file {})",
            f.reading.ts.format("%Y-%m-%dT%H:%M:%SZ"),
            f.tests.join(" "),
            f.line,
            f.file_id
        );
        for m in f.flagged_measures() {
            let v = |s: Option<&StoredValues>| {
                s.and_then(|s| s.value(m))
                    .map_or("-".to_owned(), |x| format!("{x}"))
            };
            let _ = writeln!(
                out,
                "    {:<12} {} → {} → {}",
                MEASURE_NAMES[m],
                v(f.previous.as_ref()),
                v(Some(&f.reading)),
                v(f.next.as_ref())
            );
        }
    }
    out
}

/// `--since`: a duration back from `now` (`24h`, `90m`, `7d`) or a time (RFC 3339).
pub fn parse_since(v: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v.trim()) {
        return Some(t.to_utc());
    }
    let v = v.trim();
    let back = match v.strip_suffix('d') {
        Some(days) => {
            let days: f64 = days
                .parse()
                .ok()
                .filter(|d: &f64| d.is_finite() && *d >= 0.0)?;
            std::time::Duration::try_from_secs_f64(days * 86_400.0).ok()?
        }
        None => crate::config::parse_duration(v, 1000)?,
    };
    now.checked_sub_signed(chrono::TimeDelta::from_std(back).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_days_and_times() {
        let now: DateTime<Utc> = "2024-05-02T00:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(parse_since("24h", now), Some(at("2024-05-01T00:00:00Z")));
        assert_eq!(parse_since("1.5d", now), Some(at("2024-04-30T12:00:00Z")));
        assert_eq!(
            parse_since("2024-04-01T00:00:00Z", now),
            Some(at("2024-04-01T00:00:00Z"))
        );
        assert_eq!(parse_since("soon", now), None);
    }

    #[test]
    fn the_text_shows_tests_and_the_values_around() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let values = |ts: &str, t: f64| StoredValues {
            ts: at(ts),
            temperature: Some(t),
            humidity: Some(50.0),
            pressure: None,
        };
        let report = QcReport {
            sensor: "s1".into(),
            since: at("2024-05-01T00:00:00Z"),
            readings: vec![FlaggedReading::new(
                "f".into(),
                7,
                0b11,
                values("2024-05-01T00:06:00Z", 29.5),
                Some(values("2024-05-01T00:05:00Z", 20.0)),
                None,
            )],
            truncated: false,
        };
        let text = format(&report);
        assert!(
            text.contains("s1: 1 flagged reading since 2024-05-01T00:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("temperature:step temperature:spike"),
            "{text}"
        );
        assert!(text.contains("temperature  20 → 29.5 → -"), "{text}");
        assert!(!text.contains("humidity "), "{text}");
    }
}
