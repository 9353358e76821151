//! What a file would store, summed up for a person in five seconds: the sensors (how
//! many, the first ids), the UTC span, the readings per sensor, and per stored measure
//! its unit, count, missing share and min / mean / max after conversion. `check` ends
//! each file with it; `profile suggest` ends its profile with it, for its own sample.
//!
//! Nonsense shows at a glance: sensor ids that read as clock times or dates, a measure
//! that never changes or is always missing, are marked beside their line.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::Settings;
use crate::ops::suggest::{MAX_LINES, MAX_SAMPLE_BYTES};
use crate::pipeline::{ReadContext, ReadReport, read_rows};
use crate::profile::Profile;
use crate::stats::ColumnSummary;
use crate::timestamp::reads_as_time;
use crate::validate::Reading;

/// Distinct sensors counted; past this many the summary says "more than".
pub const MAX_SENSORS: usize = 10_000;
/// Sensor ids shown.
const SHOWN_IDS: usize = 5;

/// Collects what the summary needs from the readings, in bounded memory.
#[derive(Debug, Default)]
pub struct Summary {
    /// Readings per sensor, for the first [`MAX_SENSORS`] sensors.
    per_sensor: HashMap<String, u64>,
    /// The first ids, in the order they came.
    first_ids: Vec<String>,
    /// Readings of sensors past [`MAX_SENSORS`].
    uncounted: u64,
    /// Sensor ids counted that read as clock times or dates.
    time_like: u64,
    readings: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

/// One stored measure, as the summary shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureLine {
    pub name: String,
    /// The stored unit (`°C`, `%RH`, `hPa`; a further measure's as written).
    pub unit: String,
    pub count: u64,
    /// Share of readings without a value, 0–1.
    pub missing: f64,
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
}

impl Summary {
    /// Takes one reading in.
    pub fn push(&mut self, r: &Reading) {
        self.readings += 1;
        self.first = Some(self.first.map_or(r.timestamp, |t| t.min(r.timestamp)));
        self.last = Some(self.last.map_or(r.timestamp, |t| t.max(r.timestamp)));
        if let Some(n) = self.per_sensor.get_mut(&r.sensor_id) {
            *n += 1;
        } else if self.per_sensor.len() < MAX_SENSORS {
            self.per_sensor.insert(r.sensor_id.clone(), 1);
            if reads_as_time(&r.sensor_id).is_some() {
                self.time_like += 1;
            }
            if self.first_ids.len() < SHOWN_IDS {
                self.first_ids.push(r.sensor_id.clone());
            }
        } else {
            self.uncounted += 1;
        }
    }

    /// The lines of the summary, without indentation or prefix. `stored` says whether
    /// the file would load; otherwise the lines describe the readings of a file refused
    /// as a whole, and say only "nothing stored" for one refused for its rows (whose
    /// readings stopped at the first bad row).
    pub fn lines(&self, report: &ReadReport, stored: bool) -> Vec<String> {
        let mut out = Vec::new();
        let what = if stored {
            "would store"
        } else {
            "refused, nothing stored; valid readings read"
        };
        // Under reject_file, readings stop at the first bad row: a partial picture.
        if self.readings == 0 || (!stored && report.invalid_rows > 0) {
            out.push(
                if stored {
                    "would store: no readings"
                } else {
                    "nothing stored"
                }
                .to_owned(),
            );
            return out;
        }
        out.push(format!("{what}: {} readings", self.readings));
        out.push(self.sensor_line());
        if let (Some(first), Some(last)) = (self.first, self.last) {
            out.push(format!(
                "UTC span: {} to {} ({})",
                first.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                last.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                span(last - first)
            ));
        }
        out.push(self.per_sensor_line());
        let measures = measure_lines(report);
        let width = measures.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for m in measures {
            out.push(m.render(width));
        }
        out
    }

    /// The summary as JSON, for `check --json`.
    pub fn to_json(&self, report: &ReadReport) -> serde_json::Value {
        let counts: Vec<u64> = self.per_sensor.values().copied().collect();
        serde_json::json!({
            "readings": self.readings,
            "sensors": self.per_sensor.len(),
            "sensors_counted_all": self.uncounted == 0,
            "first_sensor_ids": self.first_ids,
            "sensor_ids_like_times": self.time_like,
            "first": self.first.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            "last": self.last.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            "readings_per_sensor": {
                "min": counts.iter().min(),
                "max": counts.iter().max(),
            },
            "measures": measure_lines(report).iter().map(|m| serde_json::json!({
                "name": m.name,
                "unit": m.unit,
                "count": m.count,
                "missing_share": m.missing,
                "min": m.min,
                "mean": m.mean,
                "max": m.max,
            })).collect::<Vec<_>>(),
        })
    }

    fn sensor_line(&self) -> String {
        let n = self.per_sensor.len();
        let count = if self.uncounted > 0 {
            format!("more than {MAX_SENSORS} sensors")
        } else if n == 1 {
            "1 sensor".to_owned()
        } else {
            format!("{n} sensors")
        };
        let more = if n > self.first_ids.len() {
            ", …"
        } else {
            ""
        };
        let ids = self
            .first_ids
            .iter()
            .map(|id| format!("{id:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mark = match self.time_like {
            0 => String::new(),
            k if k as usize == n => "   ← every id reads as a time or date".to_owned(),
            k => format!("   ← {k} ids read as times or dates"),
        };
        format!("{count}: {ids}{more}{mark}")
    }

    fn per_sensor_line(&self) -> String {
        let counts = self.per_sensor.values();
        let (min, max) = counts.fold((u64::MAX, 0), |(lo, hi), &c| (lo.min(c), hi.max(c)));
        let n = self.per_sensor.len().max(1) as f64;
        let mean = (self.readings - self.uncounted) as f64 / n;
        if min == max {
            format!("readings per sensor: {min}")
        } else {
            format!("readings per sensor: {min} to {max} (mean {mean:.1})")
        }
    }
}

impl MeasureLine {
    fn render(&self, width: usize) -> String {
        let stats = match (self.min, self.mean, self.max) {
            (Some(lo), Some(mean), Some(hi)) => {
                format!("min {} / mean {} / max {}", num(lo), num(mean), num(hi))
            }
            _ => "no values".to_owned(),
        };
        let mark = if self.count == 0 {
            "   ← always missing"
        } else if self.min == self.max {
            "   ← never changes"
        } else {
            ""
        };
        format!(
            "{:<width$}  {:<4} {} values, {:.0}% missing, {stats}{mark}",
            self.name,
            self.unit,
            self.count,
            self.missing * 100.0
        )
    }
}

/// The stored measures of the file, from its statistics.
fn measure_lines(report: &ReadReport) -> Vec<MeasureLine> {
    let Some(stats) = &report.stats else {
        return Vec::new();
    };
    stats.columns.iter().map(measure_line).collect()
}

fn measure_line(c: &ColumnSummary) -> MeasureLine {
    let unit = match c.name.as_str() {
        "temperature" => "°C".to_owned(),
        "humidity" => "%RH".to_owned(),
        "pressure" => "hPa".to_owned(),
        _ => c.source_unit.clone().unwrap_or_else(|| "-".to_owned()),
    };
    let total = c.stats.count + c.stats.nulls;
    MeasureLine {
        name: c.name.clone(),
        unit,
        count: c.stats.count,
        missing: if total == 0 {
            0.0
        } else {
            c.stats.nulls as f64 / total as f64
        },
        min: c.stats.min,
        mean: c.stats.mean(),
        max: c.stats.max,
    }
}

/// The summary of what the suggested profile `text` (named `name`) would store from the
/// sample `profile suggest` read of `path` (its first [`MAX_SAMPLE_BYTES`], at most
/// [`MAX_LINES`] lines, a cut last line left out), and whether the sample would be
/// refused, as lines without a prefix.
pub fn of_suggestion(settings: &Settings, path: &Path, name: &str, text: &str) -> Vec<String> {
    let profile = match Profile::from_text(name, Path::new("(suggested)"), text) {
        Ok(p) => p,
        Err(errors) => {
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            return vec![format!(
                "no summary: the profile does not load as it stands ({first})"
            )];
        }
    };
    let sample = match sample_of(path) {
        Ok(s) => s,
        Err(e) => return vec![format!("no summary: the sample cannot be read again ({e})")],
    };
    let mut cx = ReadContext {
        profile: Arc::new(profile),
        file_name: crate::intake::display_name(path),
        ranges: settings.ranges,
        tz: settings.source_timezone,
        order: None,
    };
    loop {
        let mut summary = Summary::default();
        let report = read_rows(sample.as_slice(), &cx, |row| {
            summary.push(&row.reading);
            true
        });
        match report.reread {
            Some(order) if cx.order.is_none() => cx.order = Some(order),
            _ => {
                let mut out = vec![format!(
                    "What this profile reads from the sample ({} rows):",
                    report.rows_read
                )];
                if let Some((reason, rule)) = report.reason() {
                    out.push(format!("the sample is refused ({rule}): {reason}"));
                }
                out.extend(summary.lines(&report, report.is_valid()));
                return out;
            }
        }
    }
}

/// The bytes `profile suggest` samples: the first [`MAX_SAMPLE_BYTES`], ending at the
/// last complete line when the file goes on, and at most [`MAX_LINES`] lines.
fn sample_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(MAX_SAMPLE_BYTES);
    file.take(MAX_SAMPLE_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    if buf.len() > MAX_SAMPLE_BYTES {
        buf.truncate(MAX_SAMPLE_BYTES);
        let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        buf.truncate(end);
    }
    if let Some((i, _)) = buf
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(MAX_LINES - 1)
    {
        buf.truncate(i + 1);
    }
    Ok(buf)
}

/// A duration for people: `3 days 4 h`, `2 h 30 min`, `45 s`.
fn span(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        0 => "one instant".to_owned(),
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A number for people: at most three decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reading(sensor: &str, minute: i64, humidity: Option<f64>) -> Reading {
        Reading {
            line: 2,
            timestamp: Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
                + chrono::Duration::minutes(minute),
            sensor_id: sensor.to_owned(),
            temperature: None,
            humidity,
            pressure: None,
            further: Vec::new(),
            coded_missing: 0,
            extra: None,
        }
    }

    #[test]
    fn clock_time_sensors_and_a_dead_humidity_show_at_a_glance() {
        let plan = crate::profile::plan::tests::default_plan("ts,sensor,rh");
        let mut stats = crate::stats::FileStats::new(&plan);
        let mut s = Summary::default();
        for h in 1..=24 {
            for day in 0..2 {
                let r = reading(&format!("{h:02}:00"), day * 1440, Some(0.0));
                stats.push(&r);
                s.push(&r);
            }
        }
        let report = ReadReport {
            stats: Some(stats),
            ..ReadReport::default()
        };
        let lines = s.lines(&report, true);
        assert_eq!(lines[0], "would store: 48 readings");
        assert_eq!(
            lines[1],
            "24 sensors: \"01:00\", \"02:00\", \"03:00\", \"04:00\", \"05:00\", …   \
             ← every id reads as a time or date"
        );
        assert_eq!(
            lines[2],
            "UTC span: 2024-05-01T00:00:00Z to 2024-05-02T00:00:00Z (24 h 0 min)"
        );
        assert_eq!(lines[3], "readings per sensor: 2");
        assert_eq!(
            lines[4],
            "humidity  %RH  48 values, 0% missing, min 0 / mean 0 / max 0   ← never changes"
        );
        let json = s.to_json(&report);
        assert_eq!(json["sensors"], 24);
        assert_eq!(json["sensor_ids_like_times"], 24);
        assert_eq!(json["measures"][0]["max"], 0.0);
    }

    #[test]
    fn missing_shares_and_uneven_sensors_are_counted() {
        let plan = crate::profile::plan::tests::default_plan("ts,sensor,rh");
        let mut stats = crate::stats::FileStats::new(&plan);
        let mut s = Summary::default();
        for (i, (id, rh)) in [
            ("a", Some(40.0)),
            ("a", None),
            ("a", Some(60.0)),
            ("b", None),
        ]
        .into_iter()
        .enumerate()
        {
            let r = reading(id, i as i64 * 90, rh);
            stats.push(&r);
            s.push(&r);
        }
        let report = ReadReport {
            stats: Some(stats),
            ..ReadReport::default()
        };
        let lines = s.lines(&report, false);
        assert_eq!(
            lines[0],
            "refused, nothing stored; valid readings read: 4 readings"
        );
        assert_eq!(lines[1], "2 sensors: \"a\", \"b\"");
        assert!(lines[2].ends_with("(4 h 30 min)"), "{}", lines[2]);
        assert_eq!(lines[3], "readings per sensor: 1 to 3 (mean 2.0)");
        assert_eq!(
            lines[4],
            "humidity  %RH  2 values, 50% missing, min 40 / mean 50 / max 60"
        );
    }
}
