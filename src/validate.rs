//! Validate stage: turns one CSV record into a [`Reading`], or into the list of every
//! rule it breaks, as the file's [`Plan`] says. Downstream stages take a `Reading` as
//! proof that the row is valid and never check it again.
//!
//! Some decisions concern the whole file and are taken when the pass ends
//! ([`FileChecks::verdict`]): the date order of day/month dates, and whether a sensor
//! column found by its name is really a row id; and the [`safety`] rules that hold
//! under every profile ([`FileChecks::refusals`]). A local time that happens twice is
//! resolved row by row, from the sensor's order, before the reading leaves.

mod long;
mod number;
pub mod safety;

use self::number::{extra_value, json_number};

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use csv::ByteRecord;
use serde::Serialize;

use crate::profile::MeasureTarget;
use crate::profile::plan::{MeasurePlan, Plan, ROW_ID_MIN_ROWS, SensorSource, TimeSource};
use crate::read::{FileError, parse_number, shorten};
use crate::rule::Rule;
use crate::timestamp::{
    DateOrder, OrderEvidence, OrderTally, OrderVerdict, TimestampError, parse_timestamp_folded,
};
use crate::units::Range;
use crate::units::{Quantity, physically_possible};

pub use long::{Conflict, LongRow, MERGE_WINDOW, Merged, Merger};

/// Longest sensor id accepted, in bytes: ids are indexed, and an id this long is a
/// sign of a broken export rather than a real device name.
pub const MAX_SENSOR_ID_BYTES: usize = 256;

/// Distinct sensor ids remembered to tell a row id from a sensor; past this many, all
/// different, the column is a row id for sure.
const ROW_ID_MEMORY: usize = 65_536;

/// A valid row, as read (no derived values), in the stored units.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Physical line in the file; the header is line 1.
    pub line: u64,
    pub timestamp: DateTime<Utc>,
    pub sensor_id: String,
    /// °C.
    pub temperature: Option<f64>,
    /// %RH.
    pub humidity: Option<f64>,
    /// hPa.
    pub pressure: Option<f64>,
    /// The further measures of the plan, in its order (also in `extra`, as numbers).
    pub further: Vec<Option<f64>>,
    /// Bit `i` set: the plan's measure `i` held a missing-value code.
    pub coded_missing: u64,
    /// The non-canonical columns as a JSON object (`null` for empty cells, numbers as
    /// numbers), or `None` when the file has none.
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

/// What the whole pass saw, for the decisions taken at its end.
#[derive(Debug)]
pub struct FileChecks {
    order: OrderTally,
    /// The first ambiguous date, as written, for the message.
    ambiguous_example: Option<String>,
    ids: HashSet<u64>,
    all_ids_distinct: bool,
    rows: u64,
    safety: safety::Safety,
}

/// The end-of-file decision.
#[derive(Debug)]
pub enum FileVerdict {
    Valid,
    /// The dates proved month-first after some were read day-first: read the file
    /// again in that order.
    Reread(DateOrder),
    Invalid(FileError),
}

impl Default for FileChecks {
    fn default() -> Self {
        Self::new()
    }
}

impl FileChecks {
    /// Nothing seen yet: every sensor id so far distinct.
    pub fn new() -> Self {
        Self {
            order: OrderTally::default(),
            ambiguous_example: None,
            ids: HashSet::new(),
            all_ids_distinct: true,
            rows: 0,
            safety: safety::Safety::default(),
        }
    }

    /// The safety rules the file broke (see [`safety`]), except those the plan's
    /// profile relaxes. Meaningless when [`FileChecks::verdict`] asks for a second
    /// pass (the times were read in a tentative order).
    pub fn refusals(&self, plan: &Plan) -> Vec<FileError> {
        self.safety.refusals(plan)
    }

    /// Decides what the pass could not decide row by row.
    pub fn verdict(&self, plan: &Plan) -> FileVerdict {
        if let Some(index) = plan.row_id_check
            && self.all_ids_distinct
            && self.rows >= ROW_ID_MIN_ROWS
        {
            return FileVerdict::Invalid(FileError::SensorIsRowId {
                column: plan.header(index).to_owned(),
                rows: self.rows,
            });
        }
        match self.order.verdict() {
            OrderVerdict::Unneeded => FileVerdict::Valid,
            OrderVerdict::Proven { order, line } => {
                // Ambiguous dates were read day-first on the way.
                if order == DateOrder::Mdy && self.ambiguous_example.is_some() {
                    match plan.time {
                        TimeSource::Builtin { .. } => FileVerdict::Reread(DateOrder::Mdy),
                        // A profile's reader takes its order from the profile.
                        TimeSource::Spec(_) => {
                            FileVerdict::Invalid(FileError::AmbiguousDateOrder {
                                line,
                                example: self.ambiguous_example.clone().unwrap_or_default(),
                            })
                        }
                    }
                } else {
                    FileVerdict::Valid
                }
            }
            OrderVerdict::Ambiguous { first_line } => {
                FileVerdict::Invalid(FileError::AmbiguousDateOrder {
                    line: first_line,
                    example: self.ambiguous_example.clone().unwrap_or_default(),
                })
            }
            OrderVerdict::Conflicting {
                day_first_line,
                month_first_line,
            } => FileVerdict::Invalid(FileError::ConflictingDateOrder {
                day_first_line,
                month_first_line,
            }),
        }
    }

    fn note_sensor(&mut self, id: &str) {
        self.rows += 1;
        if !self.all_ids_distinct || self.ids.len() >= ROW_ID_MEMORY {
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        if !self.ids.insert(h.finish()) {
            self.all_ids_distinct = false;
            self.ids = HashSet::new();
        }
    }
}

/// Validates records of files with one plan.
pub struct Validator<'a> {
    plan: &'a Plan,
    /// A date order proven by an earlier pass over the same file.
    order: Option<DateOrder>,
    /// JSON-escaped keys of the extra columns and of further measures, computed once.
    extra_keys: Vec<String>,
    further_keys: Vec<(usize, String)>,
    /// The metadata constants, rendered once as `"key":"value"` pairs.
    constants: String,
}

impl<'a> Validator<'a> {
    pub fn new(plan: &'a Plan, order: Option<DateOrder>) -> Self {
        let json = |s: &str| serde_json::to_string(s).expect("strings always serialize");
        let extra_keys = plan.extras.iter().map(|e| json(&e.name)).collect();
        let further_keys = plan
            .measures
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m.target, MeasureTarget::Further(_)))
            .map(|(i, m)| (i, json(&m.name)))
            .collect();
        let constants = plan
            .constants
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v)))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            plan,
            order,
            extra_keys,
            further_keys,
            constants,
        }
    }

    /// Checks every rule on `record` (found at `line`), reporting all that fail.
    /// `Ok(None)`: a blank or unmeasured row the profile skips.
    pub fn validate(
        &self,
        line: u64,
        record: &ByteRecord,
        checks: &mut FileChecks,
    ) -> Result<Option<Reading>, Vec<RowError>> {
        let p = self.plan;
        if p.skip_blank && record.iter().all(|f| f.trim_ascii().is_empty()) {
            return Ok(None);
        }
        let mut errs = RowErrors {
            line,
            plan: p,
            errors: Vec::new(),
        };
        let time = self.time(record, &mut errs, checks);
        let sensor_id = self.sensor(record, &mut errs);
        if let Some(id) = &sensor_id
            && p.row_id_check.is_some()
        {
            checks.note_sensor(id);
        }

        let mut values = [None::<f64>; 3];
        let mut further = Vec::with_capacity(self.further_keys.len());
        let mut coded_missing = 0u64;
        let mut all_empty = true;
        for (i, m) in p.measures.iter().enumerate() {
            let raw = &record[m.index];
            let value = match self.measure(raw, m) {
                Ok(Cell::Value(v)) => {
                    all_empty = false;
                    Some(v)
                }
                Ok(Cell::Empty) => None,
                Ok(Cell::Coded) => {
                    if i < 64 {
                        coded_missing |= 1 << i;
                    }
                    None
                }
                Err((rule, message)) => {
                    all_empty = false;
                    errs.fail(m.index, raw, rule, message);
                    None
                }
            };
            match &m.target {
                MeasureTarget::Canonical(q) => values[*q as usize] = value,
                MeasureTarget::Further(_) => further.push(value),
            }
        }
        if all_empty {
            // A logger's event row (a time, nothing measured), where the profile says so.
            if p.skip_unmeasured && errs.errors.is_empty() {
                return Ok(None);
            }
            errs.errors.push(RowError {
                line,
                column: String::new(),
                value: String::new(),
                rule: Rule::NoMeasurement,
                message: "the row has no value in any measured column".into(),
            });
        }
        let extra = self.extras(record, &further, &mut errs);

        match (time, sensor_id, extra) {
            (Some((time, later)), Some(sensor_id), Some(extra)) if errs.errors.is_empty() => {
                let safety = &mut checks.safety;
                let timestamp = safety.observe(safety::Seen {
                    line,
                    sensor: &sensor_id,
                    time,
                    later,
                    values: Some(safety::values_hash(
                        values.iter().copied().chain(further.iter().copied()),
                    )),
                });
                if let Some(h) = values[Quantity::Humidity as usize] {
                    safety.humidity(h);
                }
                Ok(Some(Reading {
                    line,
                    timestamp,
                    sensor_id,
                    temperature: values[Quantity::Temperature as usize],
                    humidity: values[Quantity::Humidity as usize],
                    pressure: values[Quantity::Pressure as usize],
                    further,
                    coded_missing,
                    extra,
                }))
            }
            _ => Err(errs.errors),
        }
    }

    /// The row's time, and the later instant when its local time happens twice.
    fn time(
        &self,
        record: &ByteRecord,
        errs: &mut RowErrors,
        checks: &mut FileChecks,
    ) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        let (result, index) = match &self.plan.time {
            TimeSource::Builtin { index, tz } => {
                let raw = &record[*index];
                let text = errs.required(*index, raw, "timestamp", self.plan)?;
                (
                    parse_timestamp_folded(&text, *tz, self.order, false).map_err(|e| (*index, e)),
                    *index,
                )
            }
            TimeSource::Spec(reader) => {
                let r = reader.read_folded(record);
                let index = match &r {
                    Err((i, _)) => *i,
                    Ok(_) => reader.columns().first().copied().unwrap_or(0),
                };
                (r, index)
            }
        };
        match result {
            Ok((t, evidence, later)) => {
                if self.order.is_none() {
                    checks.order.note(evidence, errs.line);
                    if evidence == OrderEvidence::Ambiguous && checks.ambiguous_example.is_none() {
                        checks.ambiguous_example =
                            Some(String::from_utf8_lossy(&record[index]).trim().to_owned());
                    }
                }
                Some((t, later))
            }
            Err((i, e)) => {
                let (rule, message) = timestamp_message(e);
                errs.fail(i, &record[i], rule, message);
                None
            }
        }
    }

    fn sensor(&self, record: &ByteRecord, errs: &mut RowErrors) -> Option<String> {
        let (index, id) = match &self.plan.sensor {
            SensorSource::Constant(id) => return Some(id.clone()),
            // Only long plans have it, and their rows are read by `validate_long`.
            SensorSource::Entity => return None,
            SensorSource::Column(i) => (
                *i,
                errs.required(*i, &record[*i], "sensor id", self.plan)?
                    .into_owned(),
            ),
            SensorSource::Columns { indexes, separator } => {
                let mut parts = Vec::with_capacity(indexes.len());
                for &i in indexes {
                    parts.push(errs.required(i, &record[i], "sensor id part", self.plan));
                }
                let parts: Option<Vec<_>> = parts.into_iter().collect();
                (indexes[0], parts?.join(separator))
            }
        };
        self.checked_sensor(index, &record[index], id, errs)
    }

    /// `id` (read from the cell `raw` of column `index`) if it is a usable sensor id.
    fn checked_sensor(
        &self,
        index: usize,
        raw: &[u8],
        id: String,
        errs: &mut RowErrors,
    ) -> Option<String> {
        if id.chars().any(char::is_control) {
            let message = "sensor id contains a control character".to_owned();
            errs.fail(index, raw, Rule::ControlCharacter, message);
            None
        } else if id.len() > MAX_SENSOR_ID_BYTES {
            let message = format!(
                "sensor id is {} bytes long, more than the {MAX_SENSOR_ID_BYTES} allowed",
                id.len()
            );
            errs.fail(index, raw, Rule::TooLong, message);
            None
        } else {
            Some(id)
        }
    }

    /// One measured cell, in the stored unit.
    fn measure(&self, raw: &[u8], m: &MeasurePlan) -> Result<Cell, (Rule, String)> {
        let text = self
            .plan
            .text
            .decode(raw)
            .ok_or_else(|| (Rule::InvalidUtf8, "is not valid UTF-8".to_owned()))?;
        let s = text.trim();
        if s.is_empty() {
            return Ok(Cell::Empty);
        }
        if self.is_missing_code(s, &m.missing) {
            return Ok(Cell::Coded);
        }
        let v = parse_number(s, self.plan.text.decimal_comma).map_err(|hint| {
            let message = match hint {
                Some(hint) => format!("{s:?} is not a number: {hint}"),
                None => format!("{s:?} is not a number"),
            };
            (Rule::NotANumber, message)
        })?;
        if !v.is_finite() {
            return Err((Rule::NotFinite, format!("{s:?} is not a finite number")));
        }
        let v = m.unit.map_or(v, |u| u.to_canonical(v));
        if let MeasureTarget::Canonical(q) = &m.target
            && !physically_possible(*q, v)
        {
            return Err((
                Rule::PhysicallyImpossible,
                format!(
                    "{s} {} is physically impossible for {}",
                    unit_shown(m),
                    q.name()
                ),
            ));
        }
        if let Some(range) = m.range
            && !range.contains(v)
        {
            return Err((Rule::OutOfRange, range_message(s, v, range, m)));
        }
        Ok(Cell::Value(v))
    }

    fn is_missing_code(&self, s: &str, own: &[String]) -> bool {
        self.plan.missing.iter().chain(own).any(|c| c.trim() == s)
    }

    /// The extra columns (and further measures, and metadata constants) as a JSON
    /// object; `Some(None)` when there are none and `None` when a cell is unusable
    /// (reported in `errs`).
    fn extras(
        &self,
        record: &ByteRecord,
        further: &[Option<f64>],
        errs: &mut RowErrors,
    ) -> Option<Option<String>> {
        let p = self.plan;
        if p.extras.is_empty() && self.further_keys.is_empty() && self.constants.is_empty() {
            return Some(None);
        }
        let mut json = String::with_capacity(64);
        let mut ok = true;
        json.push('{');
        let push = |json: &mut String, key: &str, value: &str| {
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(key);
            json.push(':');
            json.push_str(value);
        };
        for ((_, key), value) in self.further_keys.iter().zip(further) {
            let v = value.map_or_else(|| "null".to_owned(), json_number);
            push(&mut json, key, &v);
        }
        for (extra, key) in p.extras.iter().zip(&self.extra_keys) {
            let raw = &record[extra.index];
            let value = match p.text.decode(raw) {
                Some(s) if s.trim().is_empty() && extra.unnamed => continue,
                Some(s) if s.trim().is_empty() || self.is_missing_code(s.trim(), &[]) => {
                    "null".to_owned()
                }
                // PostgreSQL's json types cannot hold U+0000.
                Some(s) if s.contains('\0') => {
                    errs.fail(
                        extra.index,
                        raw,
                        Rule::ControlCharacter,
                        "contains a NUL byte".into(),
                    );
                    ok = false;
                    continue;
                }
                Some(s) => extra_value(s.trim(), p.text.decimal_comma),
                None => {
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
            push(&mut json, key, &value);
        }
        if !self.constants.is_empty() {
            if json.len() > 1 {
                json.push(',');
            }
            json.push_str(&self.constants);
        }
        json.push('}');
        if json == "{}" {
            return ok.then_some(None);
        }
        ok.then_some(Some(json))
    }
}

/// A measured cell.
enum Cell {
    Value(f64),
    Empty,
    /// A missing-value code.
    Coded,
}

/// The errors of one row, positioned as they are found.
struct RowErrors<'a> {
    line: u64,
    plan: &'a Plan,
    errors: Vec<RowError>,
}

impl RowErrors<'_> {
    fn fail(&mut self, index: usize, raw: &[u8], rule: Rule, message: String) {
        self.errors.push(RowError {
            line: self.line,
            column: self.plan.header(index).to_owned(),
            value: shorten(String::from_utf8_lossy(raw).trim(), VALUE_CHARS, false),
            rule,
            message,
        });
    }

    /// The trimmed text of a required cell; an empty or undecodable cell is reported.
    fn required<'r>(
        &mut self,
        index: usize,
        raw: &'r [u8],
        what: &str,
        plan: &Plan,
    ) -> Option<std::borrow::Cow<'r, str>> {
        match plan.text.decode(raw) {
            Some(s) if s.trim().is_empty() => {
                self.fail(index, raw, Rule::MissingValue, format!("{what} is empty"));
                None
            }
            Some(std::borrow::Cow::Borrowed(s)) => Some(std::borrow::Cow::Borrowed(s.trim())),
            Some(std::borrow::Cow::Owned(s)) => Some(std::borrow::Cow::Owned(s.trim().to_owned())),
            None => {
                self.fail(index, raw, Rule::InvalidUtf8, "is not valid UTF-8".into());
                None
            }
        }
    }
}

fn unit_shown(m: &MeasurePlan) -> &str {
    m.unit_text.as_deref().unwrap_or("")
}

fn range_message(s: &str, v: f64, range: Range, m: &MeasurePlan) -> String {
    let setting = match &m.target {
        MeasureTarget::Canonical(q) => format!(
            "{}_MIN / {}_MAX, or measures.{}.range in a profile",
            q.name().to_ascii_uppercase(),
            q.name().to_ascii_uppercase(),
            q.name()
        ),
        MeasureTarget::Further(name) => format!("measures.{name}.range"),
    };
    let stored = match &m.target {
        MeasureTarget::Canonical(q) => q.canonical_unit().name(),
        MeasureTarget::Further(_) => unit_shown(m),
    };
    if m.unit.is_some() {
        format!(
            "{s} {} is {v:.2} {stored}, outside the accepted range {} to {} {stored} ({setting})",
            unit_shown(m),
            range.min,
            range.max
        )
    } else {
        format!(
            "{s} is outside the accepted range {} to {} {stored} ({setting})",
            range.min, range.max
        )
    }
}

fn timestamp_message(e: TimestampError) -> (Rule, String) {
    match e {
        TimestampError::NonexistentLocalTime => (
            Rule::NonexistentLocalTime,
            "this local time does not exist in the source time zone (clocks were moved \
             forward); a file in local standard time needs a fixed offset (time.zone = \"-07:00\")"
                .into(),
        ),
        TimestampError::OutOfRange => (
            Rule::InvalidTimestamp,
            "not a real date or time (or outside years 0001-9999)".into(),
        ),
        _ => (
            Rule::InvalidTimestamp,
            "not a timestamp: expected RFC 3339 (2024-05-01T12:00:00Z), ISO 8601 without \
             offset, or Unix epoch seconds/milliseconds; other forms need a profile's [time]"
                .into(),
        ),
    }
}

/// Characters of a refused value kept in its row error.
const VALUE_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::profile::plan::tests::{default_plan, plan_with};

    fn check(header: &str, row: &[&str]) -> Result<Reading, Vec<RowError>> {
        let p = default_plan(header);
        let v = Validator::new(&p, None);
        v.validate(7, &ByteRecord::from(row.to_vec()), &mut FileChecks::new())
            .map(|r| r.expect("not a blank row"))
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
        let p = default_plan("ts,id,temp,note");
        let v = Validator::new(&p, None);
        let rec = ByteRecord::from(vec![&b"0"[..], b"\xff\xfe", b"1", b"a\0b"]);
        let errs = v.validate(2, &rec, &mut FileChecks::new()).unwrap_err();
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

    #[test]
    fn units_are_converted_and_physics_holds_whatever_the_range() {
        let r = check("ts,id,Temp (F),Pressure [kPa]", &["0", "s", "50", "101.3"]).unwrap();
        assert!((r.temperature.unwrap() - 10.0).abs() < 1e-9);
        assert!((r.pressure.unwrap() - 1013.0).abs() < 1e-9);
        let wide = crate::profile::Profile::from_text(
            "p",
            std::path::Path::new("p.toml"),
            "match = [\"*.csv\"]\n[measures.temperature]\ncolumn = \"t\"\nrange = [-10000, 100]\n",
        )
        .unwrap();
        let p = plan_with(&wide, "ts,id,t").unwrap();
        let v = Validator::new(&p, None);
        let errs = v
            .validate(
                2,
                &ByteRecord::from(vec!["0", "s", "-7999"]),
                &mut FileChecks::new(),
            )
            .unwrap_err();
        assert_eq!(errs[0].rule, Rule::PhysicallyImpossible);
    }

    #[test]
    fn missing_codes_are_null_and_counted_and_extras_are_typed() {
        let coded = crate::profile::Profile::from_text(
            "p",
            std::path::Path::new("p.toml"),
            "match = [\"*.csv\"]\nmissing = [\"-9999\", \"NA\"]\n",
        )
        .unwrap();
        let p = plan_with(&coded, "ts,id,temp,rh,code,battery,label").unwrap();
        let v = Validator::new(&p, None);
        let r = v
            .validate(
                2,
                &ByteRecord::from(vec!["0", "s", "-9999", "40", "007", "3.61", "NA"]),
                &mut FileChecks::new(),
            )
            .unwrap()
            .unwrap();
        assert_eq!((r.temperature, r.humidity), (None, Some(40.0)));
        assert_eq!(r.coded_missing, 1);
        assert_eq!(
            r.extra.as_deref(),
            Some(r#"{"code":"007","battery":3.61,"label":null}"#)
        );
    }

    #[test]
    fn decimal_commas_never_guess_a_thousands_separator() {
        assert_eq!(parse_number("21,5", true), Ok(21.5));
        assert_eq!(parse_number("60.00", true), Ok(60.0));
        assert!(parse_number("1.013", true).is_err());
        assert!(parse_number("1.013,25", true).is_err());
        assert!(parse_number("21,5", false).is_err());
    }

    #[test]
    fn extra_numbers_stay_as_written_and_other_text_is_a_string() {
        assert_eq!(extra_value("812", false), "812");
        assert_eq!(extra_value("-3.610", false), "-3.610");
        assert_eq!(extra_value("1e5", false), "1e5");
        assert_eq!(extra_value("21,5", true), "21.5");
        assert_eq!(extra_value("007", false), r#""007""#);
        assert_eq!(extra_value("1.", false), r#""1.""#);
        assert_eq!(extra_value("NaN", false), r#""NaN""#);
        assert_eq!(extra_value("1,013.5", true), r#""1,013.5""#);
        assert_eq!(extra_value("1.013", true), r#""1.013""#);
        assert_eq!(extra_value("60.00", true), "60.00");
        assert_eq!(json_number(7.0), "7");
        assert_eq!(json_number(2.5), "2.5");
    }

    #[test]
    fn a_row_id_is_not_a_sensor_and_dates_must_prove_their_order() {
        let p = default_plan("ts,id,temp");
        let v = Validator::new(&p, None);
        let mut checks = FileChecks::new();
        for i in 0..ROW_ID_MIN_ROWS {
            let id = format!("log-{i}");
            v.validate(
                i + 2,
                &ByteRecord::from(vec!["0", id.as_str(), "1"]),
                &mut checks,
            )
            .unwrap();
        }
        assert!(matches!(
            checks.verdict(&p),
            FileVerdict::Invalid(FileError::SensorIsRowId { .. })
        ));

        let dates = |values: &[&str]| {
            let mut checks = FileChecks::new();
            for (i, d) in values.iter().enumerate() {
                v.validate(
                    i as u64 + 2,
                    &ByteRecord::from(vec![*d, "s", "1"]),
                    &mut checks,
                )
                .unwrap();
            }
            checks.verdict(&p)
        };
        assert!(matches!(
            dates(&["01-05-2022 10:00", "02-05-2022 10:00"]),
            FileVerdict::Invalid(FileError::AmbiguousDateOrder { line: 2, .. })
        ));
        assert!(matches!(
            dates(&["01-05-2022", "13-05-2022"]),
            FileVerdict::Valid
        ));
        assert!(matches!(
            dates(&["01/05/2022", "01/13/2022"]),
            FileVerdict::Reread(DateOrder::Mdy)
        ));
        assert!(matches!(
            dates(&["2022-05-01T10:00:00Z"]),
            FileVerdict::Valid
        ));
    }
}
