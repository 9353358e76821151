//! Validate stage: turns one CSV record into a [`Reading`], or into the list of every
//! rule it breaks. Downstream stages take a `Reading` as proof that the row is valid
//! and never check it again.

use chrono::{DateTime, Utc};
use csv::ByteRecord;
use serde::Serialize;

use crate::config::{Range, Ranges, SourceTimezone};
use crate::read::Layout;
use crate::rule::Rule;
use crate::timestamp::{TimestampError, parse_timestamp};

/// Longest sensor id accepted, in bytes: ids are indexed, and an id this long is a
/// sign of a broken export rather than a real device name.
pub const MAX_SENSOR_ID_BYTES: usize = 256;

/// A valid row, as read (no derived values).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Physical line in the file; the header is line 1.
    pub line: u64,
    pub timestamp: DateTime<Utc>,
    pub sensor_id: String,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
    /// The non-canonical columns as a JSON object (`null` for empty cells), or `None`
    /// when the file has none.
    pub extra: Option<String>,
}

/// One broken rule in one row, with its position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    /// The raw cell (lossily decoded, cut to 200 characters).
    pub value: String,
    pub rule: Rule,
    pub message: String,
}

/// Validates records of files with one layout.
pub struct Validator<'a> {
    layout: &'a Layout,
    ranges: Ranges,
    tz: SourceTimezone,
    /// JSON-escaped extra header names, computed once per file.
    extra_keys: Vec<String>,
}

impl<'a> Validator<'a> {
    pub fn new(layout: &'a Layout, ranges: Ranges, tz: SourceTimezone) -> Self {
        let extra_keys = layout
            .extras
            .iter()
            .map(|e| serde_json::to_string(&e.name).expect("strings always serialize"))
            .collect();
        Self {
            layout,
            ranges,
            tz,
            extra_keys,
        }
    }

    /// Checks every rule on `record` (found at `line`), reporting all that fail.
    pub fn validate(&self, line: u64, record: &ByteRecord) -> Result<Reading, Vec<RowError>> {
        let l = self.layout;
        let mut errs = RowErrors {
            line,
            layout: l,
            errors: Vec::new(),
        };

        let timestamp = errs
            .required(l.timestamp, &record[l.timestamp], "timestamp")
            .and_then(|s| match parse_timestamp(s, self.tz) {
                Ok(t) => Some(t),
                Err(e) => {
                    let (rule, message) = timestamp_message(e);
                    errs.fail(l.timestamp, &record[l.timestamp], rule, message);
                    None
                }
            });

        let raw = &record[l.sensor_id];
        let sensor_id = errs.required(l.sensor_id, raw, "sensor id").and_then(|s| {
            if s.chars().any(char::is_control) {
                let message = "sensor id contains a control character".to_owned();
                errs.fail(l.sensor_id, raw, Rule::ControlCharacter, message);
                None
            } else if s.len() > MAX_SENSOR_ID_BYTES {
                let message = format!(
                    "sensor id is {} bytes long, more than the {MAX_SENSOR_ID_BYTES} allowed",
                    s.len()
                );
                errs.fail(l.sensor_id, raw, Rule::TooLong, message);
                None
            } else {
                Some(s.to_owned())
            }
        });

        let mut measure = |index: Option<usize>, range: Range, unit: &str, name: &str| {
            let index = index?;
            let raw = &record[index];
            match parse_measure(raw, range) {
                Ok(v) => v,
                Err(rule) => {
                    let message = measure_message(rule, raw, range, unit, name);
                    errs.fail(index, raw, rule, message);
                    None
                }
            }
        };
        let r = self.ranges;
        let temperature = measure(l.temperature, r.temperature, "°C", "TEMPERATURE");
        let humidity = measure(l.humidity, r.humidity, "%RH", "HUMIDITY");
        let pressure = measure(l.pressure, r.pressure, "hPa", "PRESSURE");

        let extra = self.extras(record, &mut errs);

        let all_measures_empty = [l.temperature, l.humidity, l.pressure]
            .into_iter()
            .flatten()
            .all(|i| text(&record[i]).is_ok_and(str::is_empty));
        if all_measures_empty {
            errs.errors.push(RowError {
                line,
                column: String::new(),
                value: String::new(),
                rule: Rule::NoMeasurement,
                message: "the row has no temperature, humidity or pressure value".into(),
            });
        }

        match (timestamp, sensor_id, extra) {
            (Some(timestamp), Some(sensor_id), Some(extra)) if errs.errors.is_empty() => {
                Ok(Reading {
                    line,
                    timestamp,
                    sensor_id,
                    temperature,
                    humidity,
                    pressure,
                    extra,
                })
            }
            _ => Err(errs.errors),
        }
    }

    /// The extra columns as a JSON object; `Some(None)` when the file has none and
    /// `None` when a cell is unusable (reported in `errs`).
    fn extras(&self, record: &ByteRecord, errs: &mut RowErrors) -> Option<Option<String>> {
        if self.layout.extras.is_empty() {
            return Some(None);
        }
        let mut json = String::with_capacity(64);
        let mut ok = true;
        json.push('{');
        for (extra, key) in self.layout.extras.iter().zip(&self.extra_keys) {
            let raw = &record[extra.index];
            let value = match text(raw) {
                Ok("") if extra.unnamed => continue,
                Ok("") => "null".to_owned(),
                // PostgreSQL's json types cannot hold U+0000.
                Ok(s) if s.contains('\0') => {
                    errs.fail(
                        extra.index,
                        raw,
                        Rule::ControlCharacter,
                        "contains a NUL byte".into(),
                    );
                    ok = false;
                    continue;
                }
                Ok(s) => serde_json::Value::from(s).to_string(),
                Err(()) => {
                    errs.fail(
                        extra.index,
                        raw,
                        Rule::InvalidUtf8,
                        "is not valid UTF-8".into(),
                    );
                    ok = false;
                    continue;
                }
            };
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(key);
            json.push(':');
            json.push_str(&value);
        }
        json.push('}');
        if json == "{}" {
            return ok.then_some(None);
        }
        ok.then_some(Some(json))
    }
}

/// The errors of one row, positioned as they are found.
struct RowErrors<'a> {
    line: u64,
    layout: &'a Layout,
    errors: Vec<RowError>,
}

impl RowErrors<'_> {
    fn fail(&mut self, index: usize, raw: &[u8], rule: Rule, message: String) {
        self.errors.push(RowError {
            line: self.line,
            column: self.layout.header(index).to_owned(),
            value: shorten(String::from_utf8_lossy(raw).trim()),
            rule,
            message,
        });
    }

    /// The trimmed text of a required cell; an empty or non-UTF-8 cell is reported.
    fn required<'r>(&mut self, index: usize, raw: &'r [u8], what: &str) -> Option<&'r str> {
        match text(raw) {
            Ok("") => {
                self.fail(index, raw, Rule::MissingValue, format!("{what} is empty"));
                None
            }
            Ok(s) => Some(s),
            Err(()) => {
                self.fail(index, raw, Rule::InvalidUtf8, "is not valid UTF-8".into());
                None
            }
        }
    }
}

/// The trimmed text of a cell, or `Err` when it is not UTF-8.
fn text(raw: &[u8]) -> Result<&str, ()> {
    std::str::from_utf8(raw).map(str::trim).map_err(|_| ())
}

/// An empty cell is `Ok(None)`; anything else must be a finite number inside `range`.
fn parse_measure(raw: &[u8], range: Range) -> Result<Option<f64>, Rule> {
    let s = text(raw).map_err(|()| Rule::InvalidUtf8)?;
    if s.is_empty() {
        return Ok(None);
    }
    let v: f64 = s.parse().map_err(|_| Rule::NotANumber)?;
    if !v.is_finite() {
        return Err(Rule::NotFinite);
    }
    if !range.contains(v) {
        return Err(Rule::OutOfRange);
    }
    Ok(Some(v))
}

fn measure_message(rule: Rule, raw: &[u8], range: Range, unit: &str, var: &str) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.trim();
    match rule {
        Rule::OutOfRange => format!(
            "{s} is outside the accepted range {} to {} {unit} ({var}_MIN / {var}_MAX)",
            range.min, range.max
        ),
        Rule::NotFinite => format!("{s:?} is not a finite number"),
        Rule::NotANumber if s.contains(',') => format!(
            "{s:?} is not a number: write decimals with a point and no thousands separators"
        ),
        Rule::NotANumber => format!("{s:?} is not a number"),
        Rule::InvalidUtf8 => "is not valid UTF-8".to_owned(),
        other => other.name().to_owned(),
    }
}

fn timestamp_message(e: TimestampError) -> (Rule, String) {
    match e {
        TimestampError::Format => (
            Rule::InvalidTimestamp,
            "not a timestamp: expected RFC 3339 (2024-05-01T12:00:00Z), ISO 8601 without offset, \
             DD-MM-YYYY HH:MM or Unix epoch seconds/milliseconds"
                .into(),
        ),
        TimestampError::OutOfRange => (
            Rule::InvalidTimestamp,
            "not a real date or time (or outside years 0001-9999)".into(),
        ),
        TimestampError::NonexistentLocalTime => (
            Rule::NonexistentLocalTime,
            "this local time does not exist in SOURCE_TIMEZONE (clocks were moved forward)".into(),
        ),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(header: &str) -> Layout {
        Layout::from_header(&ByteRecord::from(header.split(',').collect::<Vec<_>>())).unwrap()
    }

    fn check(header: &str, row: &[&str]) -> Result<Reading, Vec<RowError>> {
        let l = layout(header);
        let v = Validator::new(&l, Ranges::default(), SourceTimezone::default());
        v.validate(7, &ByteRecord::from(row.to_vec()))
    }

    fn rules(r: Result<Reading, Vec<RowError>>) -> Vec<(String, Rule)> {
        r.unwrap_err()
            .into_iter()
            .map(|e| (e.column, e.rule))
            .collect()
    }

    #[test]
    fn a_valid_row_becomes_a_reading() {
        let r = check(
            "ts,id,temp,rh,p,room",
            &[
                "2024-05-01T12:00:00Z",
                " s-1 ",
                " 21.5 ",
                "",
                "1013",
                "kitchen",
            ],
        )
        .unwrap();
        assert_eq!(r.line, 7);
        assert_eq!(r.sensor_id, "s-1");
        assert_eq!(r.temperature, Some(21.5));
        assert_eq!(r.humidity, None);
        assert_eq!(r.pressure, Some(1013.0));
        assert_eq!(r.extra.as_deref(), Some(r#"{"room":"kitchen"}"#));
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_column() {
        let got = rules(check(
            "ts,id,temp,rh,p",
            &["2024-02-30", "", "NaN", "101", "1,013"],
        ));
        assert_eq!(
            got,
            vec![
                ("ts".into(), Rule::InvalidTimestamp),
                ("id".into(), Rule::MissingValue),
                ("temp".into(), Rule::NotFinite),
                ("rh".into(), Rule::OutOfRange),
                ("p".into(), Rule::NotANumber),
            ]
        );
    }

    #[test]
    fn range_bounds_are_inclusive() {
        assert!(check("ts,id,temp,rh", &["0", "a", "-50", "100"]).is_ok());
        assert!(check("ts,id,temp", &["0", "a", "60"]).is_ok());
        assert!(check("ts,id,temp", &["0", "a", "-0"]).is_ok());
        assert_eq!(
            rules(check("ts,id,temp", &["0", "a", "60.0001"])),
            vec![("temp".into(), Rule::OutOfRange)]
        );
        assert_eq!(
            rules(check("ts,id,temp", &["0", "a", "1e309"])),
            vec![("temp".into(), Rule::NotFinite)]
        );
    }

    #[test]
    fn a_row_without_any_measurement_is_invalid() {
        assert_eq!(
            rules(check("ts,id,temp,rh", &["0", "a", "", " "])),
            vec![(String::new(), Rule::NoMeasurement)]
        );
    }

    #[test]
    fn sensor_ids_are_checked() {
        assert_eq!(
            rules(check("ts,id,temp", &["0", "a\u{7}b", "1"])),
            vec![("id".into(), Rule::ControlCharacter)]
        );
        let long = "x".repeat(MAX_SENSOR_ID_BYTES + 1);
        assert_eq!(
            rules(check("ts,id,temp", &["0", &long, "1"])),
            vec![("id".into(), Rule::TooLong)]
        );
        let r = check(
            "ts,id,temp",
            &["0", "Robert'); DROP TABLE sensor_readings;--", "1"],
        );
        assert!(r.is_ok());
        assert_eq!(
            check("ts,id,temp", &["0", "温度計-7", "1"])
                .unwrap()
                .sensor_id,
            "温度計-7"
        );
    }

    #[test]
    fn invalid_utf8_and_nul_are_reported() {
        let l = layout("ts,id,temp,note");
        let v = Validator::new(&l, Ranges::default(), SourceTimezone::default());
        let rec = ByteRecord::from(vec![&b"0"[..], b"\xff\xfe", b"1", b"a\0b"]);
        let errs = v.validate(2, &rec).unwrap_err();
        let got: Vec<_> = errs.iter().map(|e| (e.column.as_str(), e.rule)).collect();
        assert_eq!(
            got,
            vec![("id", Rule::InvalidUtf8), ("note", Rule::ControlCharacter)]
        );
    }

    #[test]
    fn extra_json_escapes_and_nulls() {
        let r = check("ts,id,temp,a \"q\",b", &["0", "s", "1", "x\"y\\z\n", ""]).unwrap();
        let v: serde_json::Value = serde_json::from_str(r.extra.as_deref().unwrap()).unwrap();
        assert_eq!(v["a \"q\""], "x\"y\\z");
        assert!(v["b"].is_null());
    }

    #[test]
    fn trailing_empty_columns_add_nothing() {
        assert_eq!(
            check("ts,id,temp,,", &["0", "s", "1", "", ""])
                .unwrap()
                .extra,
            None
        );
        assert_eq!(
            check("ts,id,temp,", &["0", "s", "1", "x"])
                .unwrap()
                .extra
                .as_deref(),
            Some(r#"{"column_4":"x"}"#)
        );
    }

    #[test]
    fn long_values_are_shortened_in_reports() {
        let long = "9".repeat(5000);
        let errs = check("ts,id,temp", &["0", "s", &long]).unwrap_err();
        assert_eq!(errs[0].value.chars().count(), 201);
    }
}
