//! The tests themselves: one [`Track`] per sensor and measure (the neighbours, the
//! step reference, the current run of equal values, the outlier window), and the
//! [`Judge`] that follows every sensor of one file, in file order, after replaying
//! the sensor's history from the database.
//!
//! A reading's spike is decided by the sensor's next reading, so the judge holds the
//! last reading of each sensor back ("pending") until then: memory is one reading and
//! one window per sensor of the file. At the end of the file the pending readings go
//! out without a spike decision; the next file of the sensor decides it and, when it
//! is a spike, asks for the flag to be added to the stored reading ([`Amendment`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::window::Window;
use super::{Flags, MeasureQc, QcConfig, Test};

/// Readings in the window before the outlier test judges (or the whole window, if
/// shorter).
const OUTLIER_MIN_READINGS: usize = 20;
/// The consistency constant of the robust z-score (the normal distribution's MAD).
const Z_SCALE: f64 = 0.6745;
const MICROS_PER_MINUTE: f64 = 60e6;
/// Sensors followed per file: the state of one is a few kilobytes (its windows and the
/// reading held back), and its history is fetched once. Readings of further sensors
/// in the same file go through unjudged (flags 0).
pub const MAX_SENSORS: usize = 10_000;

/// A reading the judge can flag.
pub trait Judged {
    fn sensor(&self) -> &str;
    /// The reading's line in its file (its identity once stored, with the file).
    fn line(&self) -> i64;
    fn timestamp(&self) -> DateTime<Utc>;
    /// Measure `m` (0 temperature, 1 humidity, 2 pressure) in the stored unit.
    fn value(&self, m: usize) -> Option<f64>;
    fn flags_mut(&mut self) -> &mut u16;
}

/// A reading stored before the file, as the database returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryReading {
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub values: [Option<f64>; 3],
    pub flags: u16,
}

/// A question for the database: `sensor`'s last readings before `before`, from
/// `from` on when given (a remembered sensor needs only what came after its memory).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub sensor: String,
    pub from: Option<DateTime<Utc>>,
    pub before: DateTime<Utc>,
}

/// A spike found on a reading stored by an earlier file (its last reading of the
/// sensor): `add` is or-ed into its stored flags in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Amendment {
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub add: u16,
}

/// What a file's QC found: flags per measure and test over its readings, and the
/// flags it adds to earlier files' readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcSummary {
    /// `counts[measure][test]`: readings of this file flagged.
    pub counts: [[u64; 4]; 3],
    pub amendments: Vec<Amendment>,
}

impl QcSummary {
    /// `counts` of one measure by test: step, spike, flat, outlier.
    pub fn of(&self, measure: &str) -> [u64; 4] {
        super::MEASURE_NAMES
            .iter()
            .position(|m| *m == measure)
            .map_or([0; 4], |m| self.counts[m])
    }

    /// Spike flags added to earlier files, per file and measure: (file id, measure,
    /// readings), for those files' `file_metrics`.
    pub fn amended_spikes(&self) -> Vec<(&str, &'static str, u64)> {
        let mut out: Vec<(&str, &'static str, u64)> = Vec::new();
        for a in &self.amendments {
            for (m, name) in super::MEASURE_NAMES.iter().enumerate() {
                if a.add & Flags::bit(m, Test::Spike) == 0 {
                    continue;
                }
                match out
                    .iter_mut()
                    .find(|(f, c, _)| *f == a.file_id && c == name)
                {
                    Some(entry) => entry.2 += 1,
                    None => out.push((&a.file_id, name, 1)),
                }
            }
        }
        out
    }

    fn count(&mut self, flags: u16) {
        if flags == 0 {
            return;
        }
        for (m, row) in self.counts.iter_mut().enumerate() {
            for (t, n) in row.iter_mut().enumerate() {
                *n += u64::from(flags >> (m * 4 + t) & 1);
            }
        }
    }
}

/// One measure of one sensor.
#[derive(Debug, Clone)]
struct Track {
    /// The value before `pending`.
    before: Option<f64>,
    /// The sensor's last value (time, value), whose spike is not decided yet.
    pending: Option<(i64, f64)>,
    /// The last value known not to be a spike: what a step is measured from.
    reference: Option<(i64, f64)>,
    run_value: f64,
    run_count: u32,
    run_start: i64,
    window: Window,
}

impl Track {
    fn new(window: usize) -> Self {
        Self {
            before: None,
            pending: None,
            reference: None,
            run_value: f64::NAN,
            run_count: 0,
            run_start: 0,
            window: Window::new(window),
        }
    }

    /// Takes value `x` at `t`: returns whether the pending value was a spike (`known`
    /// when the history already says) and the step, flat and outlier bits of `x`.
    fn observe(&mut self, t: i64, x: f64, c: &MeasureQc, known: Option<bool>) -> (bool, u16) {
        let spike = known.unwrap_or_else(|| match (self.before, self.pending) {
            (Some(b), Some((_, p))) => is_spike(b, p, x, c),
            _ => false,
        });
        if !spike && let Some(p) = self.pending {
            self.reference = Some(p);
        }
        let mut bits = 0;
        if let Some((rt, rv)) = self.reference {
            let minutes = (t - rt) as f64 / MICROS_PER_MINUTE;
            if (x - rv).abs() > c.step_threshold(minutes) {
                bits |= 1 << Test::Step as u16;
            }
        }
        if self.run_count > 0 && x == self.run_value {
            self.run_count = self.run_count.saturating_add(1);
        } else {
            self.run_value = x;
            self.run_count = 1;
            self.run_start = t;
        }
        let run_minutes = (t - self.run_start) as f64 / MICROS_PER_MINUTE;
        if self.run_count >= c.flat_readings
            || (self.run_count >= 2 && run_minutes >= c.flat_minutes)
        {
            bits |= 1 << Test::Flat as u16;
        }
        if self.is_outlier(x, c) {
            bits |= 1 << Test::Outlier as u16;
        }
        self.window.push(x);
        self.before = self.pending.map(|(_, v)| v);
        self.pending = Some((t, x));
        (spike, bits)
    }

    /// The reading has no value of this measure: the pending value has no next
    /// neighbour, so it is no spike.
    fn skip(&mut self) {
        if let Some(p) = self.pending.take() {
            self.reference = Some(p);
        }
        self.before = None;
    }

    fn is_outlier(&self, x: f64, c: &MeasureQc) -> bool {
        let n = self.window.len();
        if n == 0 || n < OUTLIER_MIN_READINGS.min(self.window_capacity()) {
            return false;
        }
        let Some(median) = self.window.median() else {
            return false;
        };
        let deviation = Z_SCALE * (x - median).abs();
        // The MAD is at least the floor: below this the score cannot exceed the limit,
        // and most readings end here without computing the MAD.
        if deviation <= c.outlier_z * c.outlier_mad_floor {
            return false;
        }
        let mad = self.window.mad(median).max(c.outlier_mad_floor);
        mad > 0.0 && deviation / mad > c.outlier_z
    }

    fn window_capacity(&self) -> usize {
        self.window.capacity()
    }
}

/// `p` stands out from both neighbours `b` and `x` on the same side, and they agree.
fn is_spike(b: f64, p: f64, x: f64, c: &MeasureQc) -> bool {
    let (d1, d2) = (p - b, p - x);
    d1.abs() > c.spike
        && d2.abs() > c.spike
        && (d1 > 0.0) == (d2 > 0.0)
        && (x - b).abs() <= c.spike_tolerance
}

/// The sensor's last reading, waiting for its spike decision.
#[derive(Debug)]
enum Pending<P> {
    None,
    Row(P),
    Stored {
        file_id: String,
        line: i64,
        ts: DateTime<Utc>,
        flags: u16,
    },
}

#[derive(Debug)]
struct Sensor<P> {
    tracks: [Track; 3],
    /// Time of the last reading taken (µs): an older one is not judged.
    last: i64,
    pending: Pending<P>,
}

impl<P> Sensor<P> {
    /// A reading at `t` longer than the history span ([`QcConfig::history_hours`])
    /// after the sensor's previous one starts its tests afresh: what came before says
    /// nothing certain about it (a sensor back after a long silence is not a step), and
    /// the previous reading's spike stays undecided.
    fn forget_before(&mut self, t: i64, cfg: &QcConfig) {
        let span = i64::from(cfg.history_hours) * 3_600 * 1_000_000;
        if self.last != i64::MIN && t.saturating_sub(self.last) > span {
            let window = cfg.window as usize;
            self.tracks = [Track::new(window), Track::new(window), Track::new(window)];
        }
    }
}

/// What the judge knows of a sensor after a file: the state its tests continue from
/// and the stored reading that state ends with. Kept by the pipeline between files so
/// that the next file of the sensor need not replay its history: it is used when the
/// database's last reading of the sensor before the next file is still that one.
#[derive(Debug, Clone)]
pub struct SensorMemory {
    cfg: QcConfig,
    tracks: [Track; 3],
    last: i64,
    /// The last reading: file id, line, time, and its flags as stored (its spike is
    /// still to be decided by the sensor's next reading).
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    flags: u16,
}

impl SensorMemory {
    /// Taken with these thresholds (a memory of other thresholds is not used).
    pub fn cfg(&self) -> &QcConfig {
        &self.cfg
    }
}

/// Follows the sensors of one file. `P` is the row type handed on to the sink.
#[derive(Debug)]
pub struct Judge<P> {
    cfg: QcConfig,
    names: Vec<String>,
    index: HashMap<String, usize>,
    sensors: Vec<Sensor<P>>,
    /// The sensor of the previous row: files often hold one sensor's rows in a run.
    last: usize,
    summary: QcSummary,
}

impl<P: Judged> Judge<P> {
    pub fn new(cfg: QcConfig) -> Self {
        Self {
            cfg,
            names: Vec::new(),
            index: HashMap::new(),
            sensors: Vec::new(),
            last: usize::MAX,
            summary: QcSummary::default(),
        }
    }

    /// Sensors that can still be followed in this file (of [`MAX_SENSORS`]).
    pub fn room(&self) -> usize {
        MAX_SENSORS.saturating_sub(self.sensors.len())
    }

    /// Readings of history wanted per sensor ([`QcConfig::history_len`]).
    pub fn history_len(&self) -> u32 {
        self.cfg.history_len()
    }

    /// Judges `row`. The first time a sensor appears, `history` is asked for its last
    /// readings before `row`'s time (oldest first). Returns the reading that is now
    /// decided, if any: the sensor's previous reading, or `row` itself when it is
    /// older than the sensor's last reading (such a reading is not judged: flags 0).
    pub fn push<E>(
        &mut self,
        mut row: P,
        history: impl FnOnce(&str, DateTime<Utc>, u32) -> Result<Vec<HistoryReading>, E>,
    ) -> Result<Option<P>, E> {
        let i = match self.find(row.sensor()) {
            Some(i) => i,
            None if self.sensors.len() >= MAX_SENSORS => {
                *row.flags_mut() = 0;
                return Ok(Some(row));
            }
            None => {
                let h = history(row.sensor(), row.timestamp(), self.history_len())?;
                self.add(row.sensor(), h)
            }
        };
        self.last = i;
        let cfg = &self.cfg;
        let s = &mut self.sensors[i];
        let t = row.timestamp().timestamp_micros();
        *row.flags_mut() = 0;
        if t < s.last {
            return Ok(Some(row));
        }
        s.forget_before(t, cfg);
        s.last = t;
        let mut flags = 0u16;
        let mut spikes = 0u16;
        for (m, track) in s.tracks.iter_mut().enumerate() {
            match row.value(m) {
                Some(x) => {
                    let (spike, bits) = track.observe(t, x, &cfg.measures[m], None);
                    if spike {
                        spikes |= Flags::bit(m, Test::Spike);
                    }
                    flags |= bits << (m * 4);
                }
                None => track.skip(),
            }
        }
        *row.flags_mut() = flags;
        match std::mem::replace(&mut s.pending, Pending::Row(row)) {
            Pending::Row(mut p) => {
                *p.flags_mut() |= spikes;
                self.summary.count(*p.flags_mut());
                Ok(Some(p))
            }
            Pending::Stored {
                file_id,
                line,
                ts,
                flags,
            } => {
                if spikes & !flags != 0 {
                    self.summary.amendments.push(Amendment {
                        file_id,
                        line,
                        ts,
                        add: spikes & !flags,
                    });
                }
                Ok(None)
            }
            Pending::None => Ok(None),
        }
    }

    /// The readings still held back (their spikes wait for the sensor's next file),
    /// and what the file's QC found.
    pub fn finish(self) -> (Vec<P>, QcSummary) {
        let (rows, summary, _) = self.finish_remembering("");
        (rows, summary)
    }

    /// [`finish`](Self::finish), and what to remember of each sensor once the file is
    /// stored as `file_id`.
    pub fn finish_remembering(
        mut self,
        file_id: &str,
    ) -> (Vec<P>, QcSummary, Vec<(String, SensorMemory)>) {
        let mut rows = Vec::new();
        let mut memories = Vec::new();
        for (s, name) in self.sensors.into_iter().zip(self.names) {
            let last = match s.pending {
                Pending::Row(mut p) => {
                    let flags = *p.flags_mut();
                    self.summary.count(flags);
                    let stored = (file_id.to_owned(), p.line(), p.timestamp(), flags);
                    rows.push(p);
                    Some(stored)
                }
                Pending::Stored {
                    file_id,
                    line,
                    ts,
                    flags,
                } => Some((file_id, line, ts, flags)),
                Pending::None => None,
            };
            if let Some((file_id, line, ts, flags)) = last {
                memories.push((
                    name,
                    SensorMemory {
                        cfg: self.cfg,
                        tracks: s.tracks,
                        last: s.last,
                        file_id,
                        line,
                        ts,
                        flags,
                    },
                ));
            }
        }
        (rows, self.summary, memories)
    }

    /// Starts following `sensor` from what an earlier file left ([`SensorMemory`]),
    /// brought up to date by `since`: the stored readings from the memory's last one
    /// (first, with its flags as stored now) up to this file. False, and nothing
    /// done, when `since` does not start with the memory's last reading: the caller
    /// then reads the history instead.
    pub fn resume(
        &mut self,
        sensor: &str,
        memory: SensorMemory,
        mut since: Vec<HistoryReading>,
    ) -> bool {
        let starts_there = since
            .first()
            .is_some_and(|h| h.file_id == memory.file_id && h.line == memory.line);
        if !starts_there || memory.cfg != self.cfg {
            return false;
        }
        if self.knows(sensor) || self.room() == 0 {
            return true;
        }
        let first = since.remove(0);
        let mut s = Sensor {
            tracks: memory.tracks,
            last: memory.last,
            pending: Pending::Stored {
                file_id: first.file_id,
                line: first.line,
                ts: first.ts,
                flags: first.flags,
            },
        };
        replay(&self.cfg, &mut s, first.flags, since);
        self.insert(sensor, s);
        true
    }

    /// Starts following `sensor` straight from what an earlier file left, without
    /// asking the database: for a file judged right after that one (group commit,
    /// where the earlier file may not be committed yet). False, and nothing done, when
    /// the memory was taken with other thresholds.
    pub fn continue_from(&mut self, sensor: &str, memory: SensorMemory) -> bool {
        if memory.cfg != self.cfg {
            return false;
        }
        if self.knows(sensor) || self.room() == 0 {
            return true;
        }
        let s = Sensor {
            tracks: memory.tracks,
            last: memory.last,
            pending: Pending::Stored {
                file_id: memory.file_id,
                line: memory.line,
                ts: memory.ts,
                flags: memory.flags,
            },
        };
        self.insert(sensor, s);
        true
    }

    /// Whether `sensor` has been seen (its history is in).
    pub fn knows(&self, sensor: &str) -> bool {
        self.find(sensor).is_some()
    }

    /// Starts following `sensor` from `history` (its last stored readings, oldest
    /// first), fetched ahead of its first reading; a sensor already followed is kept.
    pub fn start(&mut self, sensor: &str, history: Vec<HistoryReading>) {
        if !self.knows(sensor) && self.room() > 0 {
            self.add(sensor, history);
        }
    }

    fn find(&self, sensor: &str) -> Option<usize> {
        if self.names.get(self.last).is_some_and(|n| n == sensor) {
            return Some(self.last);
        }
        self.index.get(sensor).copied()
    }

    /// A new sensor, its state rebuilt from `history`: the stored spike flags decide
    /// the spikes of all but the last stored reading, which stays pending.
    fn add(&mut self, sensor: &str, history: Vec<HistoryReading>) -> usize {
        let window = self.cfg.window as usize;
        let mut s = Sensor {
            tracks: [Track::new(window), Track::new(window), Track::new(window)],
            last: i64::MIN,
            pending: Pending::None,
        };
        replay(&self.cfg, &mut s, 0, history);
        self.insert(sensor, s)
    }

    fn insert(&mut self, sensor: &str, s: Sensor<P>) -> usize {
        let i = self.sensors.len();
        self.sensors.push(s);
        self.names.push(sensor.to_owned());
        self.index.insert(sensor.to_owned(), i);
        i
    }
}

/// Takes stored readings (oldest first) into `s` without flagging them: their spikes
/// are the stored ones (`prev_flags`: those of the reading before the first), and the
/// last one stays pending.
fn replay<P>(cfg: &QcConfig, s: &mut Sensor<P>, mut prev_flags: u16, history: Vec<HistoryReading>) {
    for h in history {
        let t = h.ts.timestamp_micros();
        if t < s.last {
            continue;
        }
        s.forget_before(t, cfg);
        s.last = t;
        for (m, track) in s.tracks.iter_mut().enumerate() {
            match h.values[m] {
                Some(x) => {
                    let known = prev_flags & Flags::bit(m, Test::Spike) != 0;
                    track.observe(t, x, &cfg.measures[m], Some(known));
                }
                None => track.skip(),
            }
        }
        prev_flags = h.flags;
        s.pending = Pending::Stored {
            file_id: h.file_id,
            line: h.line,
            ts: h.ts,
            flags: h.flags,
        };
    }
}
