//! Whole-file safety checks: what no careful person would store, whatever the profile
//! says (a profile turns one off only by naming it in `relax`).
//!
//! - sensor ids that read as clock times or dates ([`Rule::SensorIsTime`]);
//! - one sensor with two readings at one instant and different values
//!   ([`Rule::DuplicateTime`]), or three and more readings on one instant
//!   ([`Rule::StackedTimes`]: a time column that lost its time of day);
//! - a local time of the autumn change (it happens twice) that the file's order does
//!   not resolve ([`Rule::AmbiguousLocalTime`]);
//! - a humidity whose every value lies between 0 and 1, some strictly
//!   ([`Rule::HumidityFraction`]).
//!
//! Memory is bounded whatever the file: one small state per sensor for the first
//! [`SENSOR_MEMORY`] sensors, and the last [`WINDOW`] readings. The duplicate check is
//! exact for every sensor whose readings come in time order (rising or falling: a
//! duplicate is then its previous reading) and for any two readings at most [`WINDOW`]
//! readings apart; a file that jumps back and forth in time further than that is
//! checked within the window only.
//!
//! A local time that happens twice is resolved per sensor the way pandas'
//! `ambiguous="infer"` does it: read as the earlier instant until the sensor's local
//! times go back (the clock was turned back), the later instant from there until they
//! leave the repeated hour. A repeated hour the sensor runs through without going back,
//! goes back in twice, or leaves backwards, is refused: nothing proves which pass it is.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

use crate::profile::plan::{Plan, TimeSource};
use crate::read::FileError;
use crate::rule::Rule;
use crate::timestamp::SourceTimezone;
use crate::timestamp::reads_as_time;
use crate::units::{Quantity, Unit};

/// Sensors whose last reading is remembered.
pub const SENSOR_MEMORY: usize = 65_536;
/// Recent readings remembered to find a duplicate that is not a sensor's previous one.
pub const WINDOW: usize = 4096;
/// Readings of one sensor on one instant from which the time is taken to lack a part.
pub const STACKED_MIN: u64 = 3;

/// (sensor hash, instant) → (values hash, line).
type WindowIndex = HashMap<(u64, DateTime<Utc>), (u64, u64)>;

/// The safety state of one pass over a file.
#[derive(Debug, Default)]
pub struct Safety {
    sensors: HashMap<String, Track>,
    /// Recent readings: (sensor hash, instant, values hash, line), oldest first.
    recent: VecDeque<(u64, DateTime<Utc>, u64, u64)>,
    /// Built once a sensor's readings come out of order: (sensor hash, instant) →
    /// (values hash, line) of the readings in `recent`.
    index: Option<WindowIndex>,
    time_ids: Option<(u64, String, &'static str)>,
    time_id_count: u64,
    duplicate: Option<FileError>,
    duplicates: u64,
    stacked: Option<FileError>,
    /// The most readings of one sensor on one instant.
    stacked_most: u64,
    fold: Option<(u64, DateTime<Utc>, String)>,
    humidity: Option<(f64, f64, u64)>,
    /// A humidity strictly between 0 and 1 was seen (0 and 1 alone say nothing).
    humidity_inside: bool,
}

/// What is remembered of one sensor.
#[derive(Debug, Clone)]
struct Track {
    /// Its last reading's instant (as stored) and values.
    last: DateTime<Utc>,
    values: u64,
    /// Readings on `last` so far, from `run_line`.
    run: u64,
    run_line: u64,
    /// -1 falling, 1 rising, 0 not yet known.
    direction: i8,
    /// The sensor's readings came out of order once.
    disordered: bool,
    fold: Fold,
}

/// Where a sensor is in the repeated hour of an autumn change.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fold {
    Outside,
    /// Read as the earlier instants since this line.
    First(u64),
    /// The clock went back: read as the later instants.
    Second,
}

/// One reading, as the checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub line: u64,
    pub sensor: &'a str,
    /// The instant read (the earlier one of a repeated local time).
    pub time: DateTime<Utc>,
    /// The later instant, when the local time happens twice.
    pub later: Option<DateTime<Utc>>,
    /// A hash of the reading's values (see [`values_hash`]); `None` for long files,
    /// whose merger checks duplicates itself.
    pub values: Option<u64>,
}

/// A hash of a reading's measured values (bits, `None` apart from every number).
pub fn values_hash(values: impl IntoIterator<Item = Option<f64>>) -> u64 {
    let mut h = Fnv::default();
    for v in values {
        match v {
            None => h.write_u8(0),
            Some(v) => {
                h.write_u8(1);
                // -0 and 0 are one value.
                h.write_u64((v + 0.0).to_bits());
            }
        }
    }
    h.finish()
}

impl Safety {
    /// Takes one reading in; returns the instant to store (the later one of a repeated
    /// local time when the file's order proves it).
    pub fn observe(&mut self, seen: Seen<'_>) -> DateTime<Utc> {
        let key = sensor_hash(seen.sensor);
        let known = self.sensors.contains_key(seen.sensor);
        if !known {
            self.new_sensor(seen.line, seen.sensor);
        }
        let Some(track) = self.sensors.get_mut(seen.sensor) else {
            // Past the sensor memory: no per-sensor order, only the window.
            if seen.later.is_some() {
                note_fold(
                    &mut self.fold,
                    seen.line,
                    seen.time,
                    format!(
                        "the file has more than {SENSOR_MEMORY} sensors, too many to follow \
                         each one's order through the change"
                    ),
                );
            }
            if let Some(values) = seen.values {
                self.index_window();
                self.check_window(key, seen.time, values, seen.line, seen.sensor);
                self.remember(key, seen.time, values, seen.line);
            }
            return seen.time;
        };
        let time = resolve_fold(track, &seen, &mut self.fold);
        let Some(values) = seen.values else {
            track.last = time;
            return time;
        };
        if known {
            let prev = track.clone();
            if time == prev.last {
                track.run += 1;
                if values != prev.values {
                    self.duplicates += 1;
                    if self.duplicate.is_none() {
                        self.duplicate =
                            Some(duplicate(seen.sensor, time, prev.run_line, seen.line));
                    }
                }
                self.stacked_most = self.stacked_most.max(track.run);
                if track.run >= STACKED_MIN && self.stacked.is_none() {
                    self.stacked = Some(FileError::StackedTimes {
                        line: seen.line,
                        first_line: track.run_line,
                        sensor: seen.sensor.to_owned(),
                        time: shown(time),
                        readings: track.run,
                    });
                }
            } else {
                let direction = if time > prev.last { 1 } else { -1 };
                if prev.direction != 0 && direction != prev.direction {
                    track.disordered = true;
                }
                track.direction = direction;
                track.run = 1;
                track.run_line = seen.line;
            }
            track.last = time;
            track.values = values;
            if track.disordered && time != prev.last {
                self.index_window();
                self.check_window(key, time, values, seen.line, seen.sensor);
            }
        } else {
            track.last = time;
            track.values = values;
        }
        self.remember(key, time, values, seen.line);
        time
    }

    /// Takes in a humidity value in %RH.
    pub fn humidity(&mut self, v: f64) {
        self.humidity_inside |= v > 0.0 && v < 1.0;
        let (lo, hi, n) = self.humidity.get_or_insert((v, v, 0));
        *lo = lo.min(v);
        *hi = hi.max(v);
        *n += 1;
    }

    /// Every rule the file broke, in the order of the rules, except those the plan
    /// relaxes.
    pub fn refusals(&self, plan: &Plan) -> Vec<FileError> {
        let mut out = Vec::new();
        let on = |rule: Rule| !plan.relax.contains(&rule);
        if let (Some((line, example, what)), true) = (&self.time_ids, on(Rule::SensorIsTime)) {
            out.push(FileError::SensorIsTime {
                line: *line,
                example: example.clone(),
                what,
                count: self.time_id_count,
            });
        }
        let stacked = self.stacked.as_ref().filter(|_| on(Rule::StackedTimes));
        match (stacked, &self.duplicate) {
            (Some(e), _) => {
                let mut e = clone_error(e);
                if let FileError::StackedTimes { readings, .. } = &mut e {
                    *readings = self.stacked_most;
                }
                out.push(e);
            }
            (None, Some(e)) if on(Rule::DuplicateTime) => {
                let mut e = clone_error(e);
                if let FileError::DuplicateTime { count, .. } = &mut e {
                    *count = self.duplicates;
                }
                out.push(e);
            }
            _ => {}
        }
        // A sensor still in its first pass when the file ends never went back.
        let unfinished = self.sensors.iter().find_map(|(sensor, t)| match t.fold {
            Fold::First(line) => Some((
                line,
                t.last,
                format!(
                    "the file ends while sensor {sensor:?} is in the repeated hour, its \
                     times never going back: nothing says which pass they are"
                ),
            )),
            _ => None,
        });
        let fold = self.fold.clone().or(unfinished);
        if let (Some((line, time, why)), true) = (&fold, on(Rule::AmbiguousLocalTime)) {
            let (local, zone) = local_time(plan, *time);
            out.push(FileError::AmbiguousLocalTime {
                line: *line,
                local,
                zone,
                why: why.clone(),
            });
        }
        let fraction = plan
            .canonical(Quantity::Humidity)
            .is_some_and(|m| m.unit == Some(Unit::Fraction));
        if let (Some((min, max, count)), false, true) =
            (self.humidity, fraction, on(Rule::HumidityFraction))
            && max <= 1.0
            && self.humidity_inside
        {
            out.push(FileError::HumidityFraction { min, max, count });
        }
        out
    }

    fn new_sensor(&mut self, line: u64, sensor: &str) {
        if let Some(what) = reads_as_time(sensor) {
            self.time_id_count += 1;
            if self.time_ids.is_none() {
                self.time_ids = Some((line, sensor.to_owned(), what));
            }
        }
        if self.sensors.len() < SENSOR_MEMORY {
            self.sensors.insert(
                sensor.to_owned(),
                Track {
                    last: DateTime::<Utc>::MIN_UTC,
                    values: 0,
                    run: 1,
                    run_line: line,
                    direction: 0,
                    disordered: false,
                    fold: Fold::Outside,
                },
            );
        }
    }

    /// Keeps a reading in the window (and its index, once built).
    fn remember(&mut self, key: u64, time: DateTime<Utc>, values: u64, line: u64) {
        if self.recent.len() == WINDOW
            && let Some((k, t, _, l)) = self.recent.pop_front()
            && let Some(index) = &mut self.index
            && index.get(&(k, t)).is_some_and(|(_, held)| *held == l)
        {
            index.remove(&(k, t));
        }
        self.recent.push_back((key, time, values, line));
        if let Some(index) = &mut self.index {
            index.insert((key, time), (values, line));
        }
    }

    /// Builds the window's index from the readings in it (once).
    fn index_window(&mut self) {
        if self.index.is_none() {
            let mut index = HashMap::with_capacity(WINDOW);
            for &(k, t, v, l) in &self.recent {
                index.insert((k, t), (v, l));
            }
            self.index = Some(index);
        }
    }

    fn check_window(&mut self, key: u64, time: DateTime<Utc>, values: u64, line: u64, s: &str) {
        let Some(index) = &self.index else { return };
        if let Some(&(held, held_line)) = index.get(&(key, time))
            && held != values
        {
            self.duplicates += 1;
            if self.duplicate.is_none() {
                self.duplicate = Some(duplicate(s, time, held_line, line));
            }
        }
    }
}

/// The instant to store for `seen`, moving its sensor through the repeated hour.
fn resolve_fold(
    track: &mut Track,
    seen: &Seen<'_>,
    fold: &mut Option<(u64, DateTime<Utc>, String)>,
) -> DateTime<Utc> {
    let (t, line) = (seen.time, seen.line);
    // In a long file one instant comes once per measure: only an earlier time goes back.
    let long = seen.values.is_none();
    let back = |a: DateTime<Utc>, b: DateTime<Utc>| if long { a < b } else { a <= b };
    let Some(later) = seen.later else {
        match track.fold {
            Fold::First(from) => note_fold(
                fold,
                from,
                t,
                format!(
                    "sensor {:?} runs through the repeated hour without its times going \
                     back, so nothing says whether they are the first or the second pass",
                    seen.sensor
                ),
            ),
            Fold::Second if back(t, track.last) => note_fold(
                fold,
                line,
                t,
                "after the repeated hour the times go back again: the file is not in \
                 time order"
                    .into(),
            ),
            _ => {}
        }
        track.fold = Fold::Outside;
        return t;
    };
    match track.fold {
        Fold::Outside => {
            if track.last != DateTime::<Utc>::MIN_UTC && back(t, track.last) {
                note_fold(
                    fold,
                    line,
                    t,
                    "the times go back into the repeated hour: the file is not in time \
                     order"
                        .into(),
                );
            }
            track.fold = Fold::First(line);
            t
        }
        Fold::First(_) if !back(t, track.last) => t,
        Fold::First(_) => {
            if back(later, track.last) {
                note_fold(
                    fold,
                    line,
                    t,
                    "the times go back more than the change".into(),
                );
            }
            track.fold = Fold::Second;
            later
        }
        Fold::Second => {
            if back(later, track.last) {
                note_fold(
                    fold,
                    line,
                    t,
                    "the times go back a second time within the repeated hour".into(),
                );
            }
            later
        }
    }
}

fn note_fold(
    fold: &mut Option<(u64, DateTime<Utc>, String)>,
    line: u64,
    t: DateTime<Utc>,
    why: String,
) {
    if fold.is_none() {
        *fold = Some((line, t, why));
    }
}

fn duplicate(sensor: &str, time: DateTime<Utc>, first_line: u64, line: u64) -> FileError {
    FileError::DuplicateTime {
        line,
        first_line,
        sensor: sensor.to_owned(),
        time: shown(time),
        count: 1,
    }
}

/// The errors this module makes, copied (a [`FileError`] holding an I/O error is not
/// `Clone`).
fn clone_error(e: &FileError) -> FileError {
    match e {
        FileError::DuplicateTime {
            line,
            first_line,
            sensor,
            time,
            count,
        } => FileError::DuplicateTime {
            line: *line,
            first_line: *first_line,
            sensor: sensor.clone(),
            time: time.clone(),
            count: *count,
        },
        FileError::StackedTimes {
            line,
            first_line,
            sensor,
            time,
            readings,
        } => FileError::StackedTimes {
            line: *line,
            first_line: *first_line,
            sensor: sensor.clone(),
            time: time.clone(),
            readings: *readings,
        },
        other => FileError::Io(std::io::Error::other(other.to_string())),
    }
}

/// The local time of `t` as the file wrote it, and the zone's name.
fn local_time(plan: &Plan, t: DateTime<Utc>) -> (String, String) {
    let zone = match &plan.time {
        TimeSource::Builtin { tz, .. } => *tz,
        TimeSource::Spec(reader) => reader.zone(),
    };
    match zone {
        SourceTimezone::Named(tz) => (
            t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
            tz.name().to_owned(),
        ),
        SourceTimezone::Fixed(o) => (
            t.with_timezone(&o).format("%Y-%m-%d %H:%M:%S").to_string(),
            o.to_string(),
        ),
    }
}

/// An instant in a message.
fn shown(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn sensor_hash(s: &str) -> u64 {
    let mut h = Fnv::default();
    s.hash(&mut h);
    h.finish()
}

/// FNV-1a: short keys, no allocation, the same in every process.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use csv::ByteRecord;

    use super::*;
    use crate::profile::Profile;
    use crate::profile::plan::tests::{default_plan, plan_with};
    use crate::timestamp::format_utc;
    use crate::validate::{FileChecks, FileVerdict, Validator};

    fn profile(text: &str) -> Profile {
        Profile::from_text("p", std::path::Path::new("p.toml"), text).unwrap()
    }

    /// The readings' stored times, and the rules broken, of `rows` read with `plan`.
    fn run(plan: &Plan, rows: &[&[&str]]) -> (Vec<String>, Vec<Rule>) {
        let v = Validator::new(plan, None);
        let mut checks = FileChecks::new();
        let mut times = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let r = v
                .validate(i as u64 + 2, &ByteRecord::from(row.to_vec()), &mut checks)
                .unwrap()
                .unwrap();
            times.push(format_utc(r.timestamp)[11..16].to_owned());
        }
        assert!(matches!(checks.verdict(plan), FileVerdict::Valid));
        let rules = checks.refusals(plan).iter().map(FileError::rule).collect();
        (times, rules)
    }

    #[test]
    fn sensor_ids_that_read_as_times_or_dates_are_refused() {
        let p = default_plan("ts,sensor,temp");
        let (_, rules) = run(
            &p,
            &[
                &["2024-05-01T00:00:00Z", "01:00", "10"],
                &["2024-05-01T00:00:00Z", "02:00", "11"],
            ],
        );
        assert_eq!(rules, vec![Rule::SensorIsTime]);
        let (_, rules) = run(&p, &[&["2024-05-01T00:00:00Z", "2024-05-01", "10"]]);
        assert_eq!(rules, vec![Rule::SensorIsTime]);
        let (_, rules) = run(
            &p,
            &[
                &["2024-05-01T00:00:00Z", "1200", "10"],
                &["2024-05-01T00:00:00Z", "s-1", "10"],
            ],
        );
        assert_eq!(rules, Vec::<Rule>::new(), "numbers and names are sensors");
    }

    #[test]
    fn two_values_for_one_sensor_and_time_are_refused_wherever_they_are() {
        let p = default_plan("ts,sensor,temp");
        let t = |m: u32| format!("2024-05-01T00:{m:02}:00Z");
        let (a, b, c) = (t(0), t(1), t(2));
        // Consecutive.
        let (_, rules) = run(&p, &[&[&a, "s", "1"], &[&a, "s", "2"]]);
        assert_eq!(rules, vec![Rule::DuplicateTime]);
        // The same value twice is a repeated row, not a conflict.
        let (_, rules) = run(&p, &[&[&a, "s", "1"], &[&a, "s", "1"]]);
        assert_eq!(rules, Vec::<Rule>::new());
        // Other sensors between, and out of order: found in the window.
        let (_, rules) = run(
            &p,
            &[
                &[&a, "s", "1"],
                &[&a, "u", "5"],
                &[&b, "s", "2"],
                &[&c, "s", "3"],
                &[&a, "s", "9"],
            ],
        );
        assert_eq!(rules, vec![Rule::DuplicateTime]);
        // Out of order without a duplicate, falling times: fine.
        let (_, rules) = run(&p, &[&[&c, "s", "1"], &[&b, "s", "2"], &[&a, "s", "3"]]);
        assert_eq!(rules, Vec::<Rule>::new());
        let (_, rules) = run(&p, &[&[&b, "s", "1"], &[&c, "s", "2"], &[&a, "s", "3"]]);
        assert_eq!(rules, Vec::<Rule>::new());
    }

    #[test]
    fn a_duplicate_far_back_in_a_sensor_in_time_order_is_its_previous_reading() {
        let p = default_plan("ts,sensor,temp");
        let mut rows: Vec<Vec<String>> =
            vec![vec!["2024-05-01T00:00:00Z".into(), "s".into(), "1".into()]];
        for i in 0..(WINDOW as u32 + 10) {
            rows.push(vec![
                "2024-05-01T00:00:00Z".into(),
                format!("other-{i}"),
                "1".into(),
            ]);
        }
        rows.push(vec!["2024-05-01T00:00:00Z".into(), "s".into(), "2".into()]);
        let rows: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        let (_, rules) = run(&p, &rows);
        assert_eq!(rules, vec![Rule::DuplicateTime]);
    }

    #[test]
    fn many_readings_on_one_instant_are_stacked_times() {
        let plan = plan_with(
            &profile(
                "match = [\"*.csv\"]\n[sensor]\nconstant = \"st\"\n[time]\ncolumn = \"Date\"\n\
                 [measures.temperature]\ncolumn = \"T\"\n",
            ),
            "Date,Time,T",
        )
        .unwrap();
        let rows: Vec<[String; 3]> = (0..24)
            .map(|h| {
                [
                    "2024-05-01".into(),
                    format!("{h:02}:00"),
                    format!("{}", 10 + h),
                ]
            })
            .collect();
        let rows: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        let (_, rules) = run(&plan, &rows);
        assert_eq!(rules, vec![Rule::StackedTimes]);
    }

    #[test]
    fn relaxing_by_name_turns_one_rule_off() {
        let relaxed =
            profile("match = [\"*.csv\"]\nrelax = [\"sensor_is_time\", \"duplicate_time\"]\n");
        let p = plan_with(&relaxed, "ts,sensor,temp").unwrap();
        let a = "2024-05-01T00:00:00Z";
        let (_, rules) = run(&p, &[&[a, "01:00", "1"], &[a, "01:00", "2"]]);
        assert_eq!(rules, Vec::<Rule>::new());
        let stacked = profile("match = [\"*.csv\"]\nrelax = [\"stacked_times\"]\n");
        let p = plan_with(&stacked, "ts,sensor,temp").unwrap();
        let (_, rules) = run(&p, &[&[a, "s", "1"], &[a, "s", "2"], &[a, "s", "3"]]);
        assert_eq!(
            rules,
            vec![Rule::DuplicateTime],
            "the duplicates still hold"
        );
        for bad in [
            "\"no_such_rule\"",
            "\"empty_file\"",
            "\"duplicate_time\", \"duplicate_time\"",
        ] {
            let text = format!("match = [\"*.csv\"]\nrelax = [{bad}]\n");
            let errs = Profile::from_text("p", std::path::Path::new("p.toml"), &text).unwrap_err();
            assert_eq!(errs[0].key, "relax", "{bad}");
        }
    }

    #[test]
    fn humidity_as_a_fraction_is_refused_unless_declared() {
        let p = default_plan("ts,sensor,rh");
        let a = "2024-05-01T00:00:00Z";
        let b = "2024-05-01T00:01:00Z";
        let (_, rules) = run(&p, &[&[a, "s", "0.55"], &[b, "s", "0.84"]]);
        assert_eq!(rules, vec![Rule::HumidityFraction]);
        let (_, rules) = run(&p, &[&[a, "s", "0.55"], &[b, "s", "1.5"]]);
        assert_eq!(rules, Vec::<Rule>::new(), "one value over 1: percent");
        let (_, rules) = run(&p, &[&[a, "s", "0"], &[b, "s", "0"]]);
        assert_eq!(
            rules,
            Vec::<Rule>::new(),
            "all zero is for the summary to show"
        );
        let (_, rules) = run(&p, &[&[a, "s", "0"], &[b, "s", "1"]]);
        assert_eq!(rules, Vec::<Rule>::new(), "0 and 1 alone prove no fraction");
        let fraction = profile(
            "match = [\"*.csv\"]\n[measures.humidity]\ncolumn = \"rh\"\nunit = \"fraction\"\n",
        );
        let p = plan_with(&fraction, "ts,sensor,rh").unwrap();
        let v = Validator::new(&p, None);
        let mut checks = FileChecks::new();
        let r = v
            .validate(2, &ByteRecord::from(vec![a, "s", "0.55"]), &mut checks)
            .unwrap()
            .unwrap();
        assert!((r.humidity.unwrap() - 55.0).abs() < 1e-9);
        assert!(checks.refusals(&p).is_empty());
    }

    fn new_york(tz_rows: &[(&str, &str)]) -> (Vec<String>, Vec<Rule>) {
        let ny =
            profile("match = [\"*.csv\"]\n[time]\ncolumn = \"ts\"\nzone = \"America/New_York\"\n");
        let p = plan_with(&ny, "ts,sensor,temp").unwrap();
        let rows: Vec<Vec<&str>> = tz_rows
            .iter()
            .enumerate()
            .map(|(i, (t, s))| vec![*t, *s, ["1", "2", "3", "4", "5", "6", "7", "8"][i % 8]])
            .collect();
        let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        run(&p, &rows)
    }

    #[test]
    fn the_repeated_hour_is_read_from_the_order_of_the_file() {
        let d = |hm: &str| format!("2024-11-03 {hm}");
        let times = ["00:30", "01:00", "01:30", "01:00", "01:30", "02:00"].map(d);
        let rows: Vec<(&str, &str)> = times.iter().map(|t| (t.as_str(), "s")).collect();
        let (utc, rules) = new_york(&rows);
        assert_eq!(rules, Vec::<Rule>::new());
        assert_eq!(utc, ["04:30", "05:00", "05:30", "06:00", "06:30", "07:00"]);
        // Hourly: the same local time twice in a row is the clock going back.
        let times = ["00:00", "01:00", "01:00", "02:00"].map(d);
        let rows: Vec<(&str, &str)> = times.iter().map(|t| (t.as_str(), "s")).collect();
        let (utc, rules) = new_york(&rows);
        assert_eq!(
            (utc, rules),
            (
                vec![
                    "04:00".into(),
                    "05:00".into(),
                    "06:00".into(),
                    "07:00".into()
                ],
                Vec::<Rule>::new()
            )
        );
        // Two sensors interleaved: each its own order.
        let times = [
            "01:00", "01:00", "01:30", "01:30", "01:00", "01:00", "02:00", "02:00",
        ]
        .map(d);
        let rows: Vec<(&str, &str)> = times
            .iter()
            .zip(["a", "b"].iter().cycle())
            .map(|(t, s)| (t.as_str(), *s))
            .collect();
        let (utc, rules) = new_york(&rows);
        assert_eq!(rules, Vec::<Rule>::new());
        assert_eq!(utc[4..6], ["06:00", "06:00"]);
    }

    #[test]
    fn a_long_files_measures_of_one_instant_are_no_step_back() {
        let long = profile(
            "match = [\"*.csv\"]\n[shape]\nkind = \"long\"\nvalue = \"value\"\n\
             metric = \"metric\"\n[sensor]\ncolumn = \"sensor\"\n[time]\ncolumn = \"ts\"\n\
             zone = \"America/New_York\"\n[measures.temperature]\n[measures.humidity]\n",
        );
        let p = plan_with(&long, "ts,sensor,metric,value").unwrap();
        let v = Validator::new(&p, None);
        let mut checks = FileChecks::new();
        let mut merger = crate::validate::Merger::new(p.measures.len(), 16);
        let rows = [
            ("00:30", "temperature", "10"),
            ("00:30", "humidity", "50"),
            ("01:00", "temperature", "11"),
            ("01:00", "humidity", "51"),
            ("01:30", "temperature", "12"),
            ("01:30", "humidity", "52"),
            ("01:00", "temperature", "13"),
            ("01:00", "humidity", "53"),
            ("02:00", "temperature", "14"),
            ("02:00", "humidity", "54"),
        ];
        for (i, (hm, metric, value)) in rows.iter().enumerate() {
            let ts = format!("2024-11-03 {hm}");
            let rec = ByteRecord::from(vec![ts.as_str(), "s", metric, value]);
            v.validate_long(i as u64 + 2, &rec, &mut checks, &mut merger)
                .unwrap();
        }
        let times: Vec<String> = std::iter::from_fn(|| merger.pop())
            .map(|m| format_utc(m.timestamp)[11..16].to_owned())
            .collect();
        assert_eq!(times, ["04:30", "05:00", "05:30", "06:00", "07:00"]);
        assert!(checks.refusals(&p).is_empty());
    }

    #[test]
    fn a_repeated_hour_the_order_does_not_resolve_is_refused() {
        let d = |hm: &str| format!("2024-11-03 {hm}");
        let cases: [&[&str]; 4] = [
            // Never goes back: first or second pass?
            &["00:30", "01:00", "01:30", "02:00"],
            // Ends in the repeated hour.
            &["00:30", "01:00", "01:30"],
            // Goes back twice.
            &["01:00", "01:30", "01:00", "01:30", "01:00"],
            // Falling times.
            &["02:00", "01:00", "01:00", "00:00"],
        ];
        for case in cases {
            let times: Vec<String> = case.iter().map(|t| d(t)).collect();
            let rows: Vec<(&str, &str)> = times.iter().map(|t| (t.as_str(), "s")).collect();
            let (_, rules) = new_york(&rows);
            // Going back twice also stacks two readings on one instant.
            assert!(
                rules.contains(&Rule::AmbiguousLocalTime),
                "{case:?}: {rules:?}"
            );
        }
    }
}
