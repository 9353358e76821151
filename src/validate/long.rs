//! Long files: one value per row (`time,sensor,metric,value`, or a Home Assistant
//! `entity_id,state,last_changed` history), turned into one [`Reading`] per sensor and
//! time.
//!
//! Rows of one (sensor, time) are merged by a [`Merger`] within a bounded window of
//! pending readings, kept in arrival order; when the window is full the oldest is
//! emitted. A (sensor, time) that comes back after its reading left the window starts
//! a new reading: a file sorted by time merges fully, and a Home Assistant export
//! (grouped by entity) gives one reading per entity change, which is right since its
//! values change at different times. Memory stays bounded whatever the file size.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use csv::ByteRecord;

use super::safety::Seen;
use super::{Cell, FileChecks, Reading, RowError, RowErrors, Validator, json_number};
use crate::profile::MeasureTarget;
use crate::profile::plan::{LongKeyPlan, LongPlan};
use crate::rule::Rule;
use crate::units::Quantity;

/// Readings a [`Merger`] keeps pending in the readers of the pipeline.
pub const MERGE_WINDOW: usize = 4096;

/// What one row of a long file turned out to be.
#[derive(Debug)]
pub enum LongRow {
    /// Every cell empty, and the profile skips such rows.
    Blank,
    /// Its metric or entity is not one the profile maps: skipped, not an error.
    Unmapped,
    /// No value for the plan's measure `measure`: an empty cell, or a missing-value
    /// code (`coded`). Not an error: in a long file that is just an absent reading.
    Missing { measure: usize, coded: bool },
    /// A value, taken into the merger; the reading it pushed out of the window.
    Taken(Option<Reading>),
}

/// The same (sensor, time, measure) already holds another value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conflict {
    /// The line of the value already held.
    pub line: u64,
    /// That value, in the stored unit.
    pub value: f64,
}

/// A merged reading: the values of every row of one (sensor, time) seen while it was
/// pending, by the plan's measure index.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// Its first row's line.
    pub line: u64,
    pub sensor_id: String,
    pub timestamp: DateTime<Utc>,
    pub values: Vec<Option<f64>>,
}

struct Pending {
    line: u64,
    sensor_id: String,
    timestamp: DateTime<Utc>,
    /// Value and line, by measure.
    values: Vec<Option<(f64, u64)>>,
}

/// Merges the values of one (sensor, time) into one reading, holding at most
/// `capacity` pending readings (emitted oldest first).
pub struct Merger {
    capacity: usize,
    measures: usize,
    pending: VecDeque<Pending>,
    /// (sensor, time) → sequence number of its pending reading.
    index: HashMap<(String, DateTime<Utc>), u64>,
    /// The sequence number of the front of `pending`.
    first: u64,
    peak: usize,
}

impl Merger {
    /// A merger of readings with `measures` measures, holding at most `capacity`
    /// (at least 1) pending readings.
    pub fn new(measures: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            measures,
            pending: VecDeque::with_capacity(capacity.min(MERGE_WINDOW)),
            index: HashMap::with_capacity(capacity.min(MERGE_WINDOW)),
            first: 0,
            peak: 0,
        }
    }

    /// Adds `value` for measure `measure` of (`sensor_id`, `timestamp`), read at
    /// `line`. `Ok(Some(_))`: the oldest pending reading, pushed out to make room.
    /// The same value twice is fine; another value is a [`Conflict`] (nothing changes).
    pub fn push(
        &mut self,
        line: u64,
        sensor_id: String,
        timestamp: DateTime<Utc>,
        measure: usize,
        value: f64,
    ) -> Result<Option<Merged>, Conflict> {
        if measure >= self.measures {
            return Ok(None);
        }
        let key = (sensor_id, timestamp);
        if let Some(&seq) = self.index.get(&key) {
            let position = (seq - self.first) as usize;
            if let Some(p) = self.pending.get_mut(position) {
                match p.values[measure] {
                    Some((held, held_line)) if held != value => {
                        return Err(Conflict {
                            line: held_line,
                            value: held,
                        });
                    }
                    Some(_) => {}
                    None => p.values[measure] = Some((value, line)),
                }
            }
            return Ok(None);
        }
        let out = if self.pending.len() >= self.capacity {
            self.pop()
        } else {
            None
        };
        let seq = self.first + self.pending.len() as u64;
        let mut values = vec![None; self.measures];
        values[measure] = Some((value, line));
        self.pending.push_back(Pending {
            line,
            sensor_id: key.0.clone(),
            timestamp,
            values,
        });
        self.index.insert(key, seq);
        self.peak = self.peak.max(self.pending.len());
        Ok(out)
    }

    /// The oldest pending reading, removed.
    pub fn pop(&mut self) -> Option<Merged> {
        let p = self.pending.pop_front()?;
        self.first += 1;
        let key = (p.sensor_id, p.timestamp);
        self.index.remove(&key);
        let (sensor_id, timestamp) = key;
        Some(Merged {
            line: p.line,
            sensor_id,
            timestamp,
            values: p.values.into_iter().map(|v| v.map(|(v, _)| v)).collect(),
        })
    }

    /// Readings pending now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The most readings ever pending at once (never more than the capacity).
    pub fn peak(&self) -> usize {
        self.peak
    }
}

/// The measure a long row's key names (its index in the plan's measures) and, for an
/// entity key, the sensor; `None` when the profile maps neither.
fn key_measure(long: &LongPlan, key_text: &str) -> Option<(usize, Option<String>)> {
    match &long.key {
        LongKeyPlan::Metric(_) => long.measures.get(key_text).map(|&m| (m, None)),
        LongKeyPlan::Entity { pattern, .. } => {
            let caps = pattern.captures(key_text)?;
            let measure_text = caps.name("measure").map_or("", |m| m.as_str());
            let sensor = caps.name("sensor").map_or("", |m| m.as_str()).trim();
            match long.measures.get(measure_text) {
                Some(&m) if !sensor.is_empty() => Some((m, Some(sensor.to_owned()))),
                _ => None,
            }
        }
    }
}

impl Validator<'_> {
    /// Reads one row of a long file (the plan has [`crate::profile::plan::LongPlan`]):
    /// an unmapped or valueless row is said so, a valid value goes into `merger`, and
    /// every broken rule is reported with its column (a conflicting value as
    /// [`Rule::ConflictingValues`]).
    pub fn validate_long(
        &self,
        line: u64,
        record: &ByteRecord,
        checks: &mut FileChecks,
        merger: &mut Merger,
    ) -> Result<LongRow, Vec<RowError>> {
        let p = self.plan;
        let Some(long) = &p.long else {
            return Ok(LongRow::Unmapped);
        };
        if p.skip_blank && record.iter().all(|f| f.trim_ascii().is_empty()) {
            return Ok(LongRow::Blank);
        }
        let mut errs = RowErrors {
            line,
            plan: p,
            errors: Vec::new(),
        };
        let key_index = match &long.key {
            LongKeyPlan::Metric(i) | LongKeyPlan::Entity { index: i, .. } => *i,
        };
        let key_raw = &record[key_index];
        let Some(key_text) = p.text.decode(key_raw) else {
            errs.fail(
                key_index,
                key_raw,
                Rule::InvalidUtf8,
                "is not valid UTF-8".into(),
            );
            return Err(errs.errors);
        };
        let Some((measure, entity_sensor)) = key_measure(long, key_text.trim()) else {
            return Ok(LongRow::Unmapped);
        };
        let Some(m) = p.measures.get(measure) else {
            return Ok(LongRow::Unmapped);
        };
        let raw = &record[long.value];
        let value = match self.measure(raw, m) {
            Ok(Cell::Value(v)) => Some(v),
            Ok(Cell::Empty) => {
                return Ok(LongRow::Missing {
                    measure,
                    coded: false,
                });
            }
            Ok(Cell::Coded) => {
                return Ok(LongRow::Missing {
                    measure,
                    coded: true,
                });
            }
            Err((rule, message)) => {
                errs.fail(long.value, raw, rule, message);
                None
            }
        };
        let time = self.time(record, &mut errs, checks);
        let sensor_id = match entity_sensor {
            Some(id) => self.checked_sensor(key_index, key_raw, id, &mut errs),
            None => self.sensor(record, &mut errs),
        };
        let (Some((time, later)), Some(sensor_id), Some(value)) = (time, sensor_id, value) else {
            return Err(errs.errors);
        };
        if !errs.errors.is_empty() {
            return Err(errs.errors);
        }
        // The merger checks a long file's duplicates; the other safety rules hold here too.
        let timestamp = checks.safety.observe(Seen {
            line,
            sensor: &sensor_id,
            time,
            later,
            values: None,
        });
        if m.target == MeasureTarget::Canonical(Quantity::Humidity) {
            checks.safety.humidity(value);
        }
        match merger.push(line, sensor_id, timestamp, measure, value) {
            Ok(out) => Ok(LongRow::Taken(out.map(|m| self.merged_reading(m)))),
            Err(c) => {
                let message = format!(
                    "{} already has the value {} from line {} for this sensor and time; \
                     this row says {}",
                    m.name,
                    json_number(c.value),
                    c.line,
                    json_number(value)
                );
                errs.fail(long.value, raw, Rule::ConflictingValues, message);
                Err(errs.errors)
            }
        }
    }

    /// A merged reading as a [`Reading`]: canonical values in their columns, further
    /// ones in `further` and `extra` (with the metadata constants, and nothing else).
    pub fn merged_reading(&self, m: Merged) -> Reading {
        let mut canonical = [None::<f64>; 3];
        let mut further = Vec::with_capacity(self.further_keys.len());
        for (plan, value) in self.plan.measures.iter().zip(&m.values) {
            match &plan.target {
                MeasureTarget::Canonical(q) => canonical[*q as usize] = *value,
                MeasureTarget::Further(_) => further.push(*value),
            }
        }
        let extra = if self.further_keys.is_empty() && self.constants.is_empty() {
            None
        } else {
            let mut json = String::from("{");
            for ((_, key), value) in self.further_keys.iter().zip(&further) {
                if json.len() > 1 {
                    json.push(',');
                }
                json.push_str(key);
                json.push(':');
                json.push_str(&value.map_or_else(|| "null".to_owned(), json_number));
            }
            if !self.constants.is_empty() {
                if json.len() > 1 {
                    json.push(',');
                }
                json.push_str(&self.constants);
            }
            json.push('}');
            Some(json)
        };
        Reading {
            line: m.line,
            timestamp: m.timestamp,
            sensor_id: m.sensor_id,
            temperature: canonical[Quantity::Temperature as usize],
            humidity: canonical[Quantity::Humidity as usize],
            pressure: canonical[Quantity::Pressure as usize],
            further,
            coded_missing: 0,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 0, minute, 0).unwrap()
    }

    #[test]
    fn rows_of_one_sensor_and_time_merge_and_the_first_line_stays() {
        let mut m = Merger::new(3, 16);
        assert_eq!(m.push(2, "a".into(), t(0), 0, 18.0), Ok(None));
        assert_eq!(m.push(3, "b".into(), t(0), 0, 19.0), Ok(None));
        assert_eq!(m.push(4, "a".into(), t(0), 1, 70.0), Ok(None));
        assert_eq!(m.push(5, "a".into(), t(0), 1, 70.0), Ok(None), "same value");
        assert_eq!(m.pending(), 2);
        let a = m.pop().unwrap();
        assert_eq!(
            (a.line, a.sensor_id.as_str(), a.values),
            (2, "a", vec![Some(18.0), Some(70.0), None])
        );
        assert_eq!(m.pop().unwrap().sensor_id, "b");
        assert_eq!(m.pop(), None);
    }

    #[test]
    fn a_different_value_for_the_same_measure_is_a_conflict() {
        let mut m = Merger::new(2, 4);
        m.push(2, "a".into(), t(0), 0, 18.0).unwrap();
        assert_eq!(
            m.push(7, "a".into(), t(0), 0, 18.5),
            Err(Conflict {
                line: 2,
                value: 18.0
            })
        );
        assert_eq!(m.pop().unwrap().values, vec![Some(18.0), None]);
    }

    #[test]
    fn a_full_window_emits_the_oldest_and_a_late_row_starts_a_new_reading() {
        let mut m = Merger::new(1, 2);
        assert_eq!(m.push(2, "a".into(), t(0), 0, 1.0), Ok(None));
        assert_eq!(m.push(3, "a".into(), t(1), 0, 2.0), Ok(None));
        let out = m.push(4, "a".into(), t(2), 0, 3.0).unwrap().unwrap();
        assert_eq!((out.line, out.timestamp), (2, t(0)));
        // t(0) left the window: the same time again is a new reading, not a conflict.
        let out = m.push(5, "a".into(), t(0), 0, 9.0).unwrap().unwrap();
        assert_eq!(out.timestamp, t(1));
        // Merging still finds the readings that moved in the queue.
        assert_eq!(m.push(6, "a".into(), t(2), 0, 3.0), Ok(None));
        let rest: Vec<_> = std::iter::from_fn(|| m.pop()).map(|r| r.line).collect();
        assert_eq!(rest, vec![4, 5]);
        assert_eq!(m.peak(), 2);
    }

    proptest::proptest! {
        /// Whatever rows arrive, the window holds, nothing panics, and every value
        /// taken comes out in exactly one reading.
        #[test]
        fn the_window_holds_and_no_value_is_lost(
            capacity in 1usize..8,
            rows in proptest::collection::vec((0u8..4, 0u32..6, 0usize..4, 0u8..3), 0..200),
        ) {
            let mut m = Merger::new(3, capacity);
            let mut taken = 0usize;
            let mut out = Vec::new();
            for (line, (sensor, minute, measure, value)) in rows.into_iter().enumerate() {
                match m.push(line as u64, sensor.to_string(), t(minute), measure, f64::from(value)) {
                    Ok(Some(r)) => out.push(r),
                    Ok(None) => {}
                    Err(c) => proptest::prop_assert!(c.line < line as u64),
                }
                proptest::prop_assert!(m.pending() <= capacity);
                if measure < 3 {
                    taken += 1;
                }
            }
            out.extend(std::iter::from_fn(|| m.pop()));
            let values: usize = out.iter().map(|r| r.values.iter().flatten().count()).sum();
            proptest::prop_assert!(values <= taken);
            proptest::prop_assert!(out.iter().all(|r| r.values.iter().any(Option::is_some)));
        }
    }

    #[test]
    fn pending_never_exceeds_the_window_over_a_large_stream() {
        let mut m = Merger::new(3, MERGE_WINDOW);
        let mut emitted = 0;
        let sensors: Vec<String> = (0..7).map(|s| format!("s{s}")).collect();
        for row in 0..200_000u64 {
            let minute = row / 21;
            let sensor = sensors[(row % 7) as usize].clone();
            let ts = t(0) + chrono::Duration::minutes(minute as i64);
            let measure = ((row / 7) % 3) as usize;
            if m.push(row + 2, sensor, ts, measure, 1.0).unwrap().is_some() {
                emitted += 1;
            }
            assert!(m.pending() <= MERGE_WINDOW);
        }
        while m.pop().is_some() {
            emitted += 1;
        }
        assert_eq!(m.peak(), MERGE_WINDOW);
        // Sorted by time: every (sensor, minute) merged into exactly one reading: 9,523
        // full minutes of 7 sensors, then 17 rows of 7 more readings.
        assert_eq!(emitted, 9_523 * 7 + 7);
    }
}
