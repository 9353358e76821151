//! The [`Judge`] follows every sensor of one file, in file order, after replaying the
//! sensor's history from the database: per sensor its usual interval ([`Cadence`],
//! for the gap and time-travel tests and the limits of the value tests) and one
//! [`Track`] per measure (the value tests).
//!
//! A reading's spike is decided by the sensor's next reading, so the judge holds the
//! last reading of each sensor back ("pending") until then: memory is one reading and
//! one window per sensor of the file. At the end of the file the pending readings go
//! out without a spike decision; the next file of the sensor decides it and, when it
//! is a spike, asks for the flag to be added to the stored reading ([`Amendment`]).
//! A run of equal values that becomes a flat line asks for its earlier readings to be
//! flagged too ([`RunAmendment`]), in this file or earlier ones.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::cadence::{Cadence, Limits};
use super::summary::{
    Amendment, FurtherAmendment, FurtherFlagged, FurtherRun, QcSummary, RunAmendment, further_bit,
};
use super::track::{MICROS_PER_MINUTE, Track};
use super::{Flags, FurtherMeasure, QcConfig, Test};

/// Sensors followed per file: the state of one is a few kilobytes (its windows and the
/// reading held back), and its history is fetched once. Readings of further sensors
/// in the same file go through unjudged (flags 0).
pub const MAX_SENSORS: usize = 10_000;
/// What `counts` of a [`QcSummary`] count per measure, in order: the four value
/// tests, then the gap and time-travel flags of readings holding the measure.
pub const COUNTED: [&str; 6] = ["step", "spike", "flat", "outlier", "gap", "time_travel"];

/// A reading the judge can flag.
pub trait Judged {
    fn sensor(&self) -> &str;
    /// The reading's line in its file (its identity once stored, with the file).
    fn line(&self) -> i64;
    fn timestamp(&self) -> DateTime<Utc>;
    /// Measure `m` (0 temperature, 1 humidity, 2 pressure) in the stored unit.
    fn value(&self, m: usize) -> Option<f64>;
    fn flags_mut(&mut self) -> &mut u16;
    /// The values of the further `measures` (in their order; `None` where the row has
    /// none). Asked only when the settings name further measures.
    fn further(&self, measures: &[FurtherMeasure]) -> Vec<Option<f64>>;
    /// The flags of the further measures: empty until judged, and left empty when the
    /// settings name none.
    fn further_flags_mut(&mut self) -> &mut FurtherFlags;
}

/// A reading's flags of the further measures its settings name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FurtherFlags {
    /// The measures judged (shared with the settings); `None` until judged, so that a
    /// reading without further measures to judge carries no allocation.
    pub measures: Option<std::sync::Arc<[FurtherMeasure]>>,
    /// One per measure, in their order: its test bits ([`further_bit`]), `None` where
    /// the reading has no value.
    pub bits: Vec<Option<u8>>,
}

impl FurtherFlags {
    /// The measures flagged: name and test bits (what `qc_measure_flags` stores).
    pub fn flagged(&self) -> impl Iterator<Item = (&str, u8)> {
        self.measures
            .iter()
            .flat_map(|m| m.iter())
            .zip(&self.bits)
            .filter_map(|(m, b)| b.filter(|b| *b != 0).map(|b| (m.name.as_str(), b)))
    }
}

/// A reading stored before the file, as the database returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryReading {
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub values: [Option<f64>; 3],
    pub flags: u16,
    /// The further measures of the settings, in their order: value and stored flags
    /// (empty when the settings name none).
    pub further: Vec<(Option<f64>, u8)>,
}

/// A question for the database: `sensor`'s last readings before `before`, from
/// `from` on when given (a remembered sensor needs only what came after its memory).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub sensor: String,
    pub from: Option<DateTime<Utc>>,
    pub before: DateTime<Utc>,
    /// The further measures judged: their values and stored flags are wanted too
    /// ([`HistoryReading::further`]); none, and nothing more is read.
    pub further: std::sync::Arc<[FurtherMeasure]>,
}

/// Counts the further measures' flags of `row`, decided, and lists it when one is
/// flagged.
fn count_further_row<P: Judged>(summary: &mut QcSummary, row: &mut P) {
    if row.further_flags_mut().bits.is_empty() {
        // No further measure judged: nothing to count, nothing to list.
        return;
    }
    let flags = *row.flags_mut();
    let further = row.further_flags_mut();
    summary.count_further(flags, &further.bits);
    let flagged: Vec<(String, u8)> = further.flagged().map(|(m, b)| (m.to_owned(), b)).collect();
    if flagged.is_empty() {
        return;
    }
    let (sensor, line, ts) = (row.sensor(), row.line(), row.timestamp());
    for (measure, flags) in flagged {
        summary.further_flagged.push(FurtherFlagged {
            sensor: sensor.to_owned(),
            line,
            ts,
            measure,
            flags,
        });
    }
}

/// The measures `row` holds, a bit each.
fn present<P: Judged>(row: &P) -> u8 {
    (0..3).fold(0, |bits, m| bits | u8::from(row.value(m).is_some()) << m)
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
        further: Vec<u8>,
    },
}

/// What is known of a sensor's series: its tests' state, its usual interval, the
/// limits derived from it, and the time of its latest reading.
#[derive(Debug, Clone)]
struct Series {
    tracks: [Track; 3],
    /// One per further measure of the settings (none when they name none).
    further: Vec<Track>,
    further_limits: Vec<Limits>,
    cadence: Cadence,
    /// The limits of each measure, for the interval `limits_for` (µs; 0: unknown).
    limits: [Limits; 3],
    limits_for: i64,
    /// Time of the latest reading taken (µs): an older one is not judged.
    last: i64,
}

impl Series {
    fn new(cfg: &QcConfig) -> Self {
        let window = cfg.window as usize;
        Self {
            tracks: [Track::new(window), Track::new(window), Track::new(window)],
            further: cfg.further.iter().map(|_| Track::new(window)).collect(),
            further_limits: further_limits(&cfg.further, None),
            cadence: Cadence::default(),
            limits: cfg.measures.map(|m| Limits::new(&m, None)),
            limits_for: 0,
            last: i64::MIN,
        }
    }

    /// Starts the tests afresh, keeping what is known of the sensor itself: its usual
    /// interval (and the limits from it) and how often its values repeat.
    fn restart(&mut self, cfg: &QcConfig) {
        let window = cfg.window as usize;
        self.tracks = self.tracks.each_ref().map(|t| t.restarted(window));
        self.further = self.further.iter().map(|t| t.restarted(window)).collect();
        self.last = i64::MIN;
    }

    /// Moves the series on to a reading at `t` (not older than the latest): returns
    /// its gap flag. A reading longer than the history span
    /// ([`QcConfig::history_hours`]) after the previous one starts the tests afresh:
    /// what came before says nothing certain about it (a sensor back after a long
    /// silence is not a step), and the previous reading's spike stays undecided.
    fn advance(&mut self, t: i64, cfg: &QcConfig) -> u16 {
        if self.last == i64::MIN {
            self.last = t;
            return 0;
        }
        let dt = t - self.last;
        let gap = match self.cadence.usual() {
            Some(usual) if cfg.gap_factor > 0.0 && dt as f64 > cfg.gap_factor * usual as f64 => {
                Flags::GAP
            }
            _ => 0,
        };
        self.last = t;
        let span = i64::from(cfg.history_hours) * 3_600 * 1_000_000;
        if dt > span {
            self.restart(cfg);
            self.last = t;
            return gap;
        }
        self.cadence.push(dt);
        let usual = self.cadence.usual().unwrap_or(0);
        if usual != self.limits_for {
            self.limits_for = usual;
            let minutes = (usual > 0).then(|| usual as f64 / MICROS_PER_MINUTE);
            self.limits = cfg.measures.map(|m| Limits::new(&m, minutes));
            self.further_limits = further_limits(&cfg.further, minutes);
        }
        gap
    }
}

fn further_limits(further: &[FurtherMeasure], minutes: Option<f64>) -> Vec<Limits> {
    further
        .iter()
        .map(|f| Limits::new(&f.qc, minutes))
        .collect()
}

#[derive(Debug)]
struct Sensor<P> {
    series: Box<Series>,
    pending: Pending<P>,
    /// A reading of this file has been taken (time travel is judged within a file).
    in_file: bool,
    /// The previous reading taken was the latest (no clock set back before it).
    at_latest: bool,
    /// The readings are older than the latest by more than the usual interval: the
    /// logger's clock was set back in this file.
    travelling: bool,
}

impl<P> Sensor<P> {
    fn new(series: Box<Series>, pending: Pending<P>) -> Self {
        Self {
            series,
            pending,
            in_file: false,
            at_latest: true,
            travelling: false,
        }
    }

    /// Whether a reading at `t`, right after the latest one in this file, goes back
    /// further than the history span: the series then starts afresh from it (its
    /// readings say nothing about those years away: a typical-year file joins months
    /// of different years), and only that reading is flagged time travel.
    fn goes_far_back(&self, t: i64, cfg: &QcConfig) -> bool {
        let span = i64::from(cfg.history_hours) * 3_600 * 1_000_000;
        self.in_file && self.at_latest && self.series.last.saturating_sub(t) > span
    }

    /// The time-travel flag of a reading at `t`, older than the latest one: set when
    /// the clock went back by more than the usual interval after a reading that was
    /// the latest (a file written newest first goes back one interval at a time, and
    /// is not flagged), and on every reading after it until the clock has caught up
    /// (the one at the latest time included: its time is wrong too).
    fn travel(&mut self, t: i64, cfg: &QcConfig) -> u16 {
        let far = match self.series.cadence.usual() {
            Some(usual) => self.series.last - t > usual,
            None => false,
        };
        self.travelling =
            cfg.time_travel && self.in_file && (self.travelling || (self.at_latest && far));
        self.at_latest = false;
        if self.travelling {
            Flags::TIME_TRAVEL
        } else {
            0
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
    series: Box<Series>,
    /// The last reading: file id, line, time, and its flags as stored (its spike is
    /// still to be decided by the sensor's next reading).
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    flags: u16,
    further: Vec<u8>,
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
        let summary = QcSummary {
            further_counts: cfg
                .further
                .iter()
                .map(|f| (f.name.clone(), [0; 6]))
                .collect(),
            ..QcSummary::default()
        };
        Self {
            cfg,
            names: Vec::new(),
            index: HashMap::new(),
            sensors: Vec::new(),
            last: usize::MAX,
            summary,
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
    /// older than the sensor's latest reading (such a reading is only judged for time
    /// travel).
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
        let mut restart = 0;
        if t < s.series.last || (s.travelling && t == s.series.last) {
            if s.goes_far_back(t, cfg) {
                s.series.restart(cfg);
                s.travelling = false;
                restart = if cfg.time_travel {
                    Flags::TIME_TRAVEL
                } else {
                    0
                };
            } else {
                let travel = s.travel(t, cfg);
                s.in_file = true;
                *row.flags_mut() = travel;
                self.summary.count(travel, present(&row));
                if !cfg.further.is_empty() {
                    let further: Vec<Option<u8>> = row
                        .further(&cfg.further)
                        .iter()
                        .map(|v| v.map(|_| 0))
                        .collect();
                    self.summary.count_further(travel, &further);
                    *row.further_flags_mut() = FurtherFlags {
                        measures: Some(cfg.further.clone()),
                        bits: further,
                    };
                }
                return Ok(Some(row));
            }
        }
        let mut flags = s.series.advance(t, cfg) | restart;
        s.in_file = true;
        s.at_latest = true;
        s.travelling = false;
        let mut spikes = 0u16;
        let series = &mut s.series;
        for (m, track) in series.tracks.iter_mut().enumerate() {
            match row.value(m) {
                Some(x) => {
                    let seen = track.observe(t, x, &series.limits[m], None);
                    if seen.spike {
                        spikes |= Flags::bit(m, Test::Spike);
                    }
                    flags |= seen.bits << (m * 4);
                    if let Some(run) = seen.run {
                        self.summary.runs.push(RunAmendment {
                            sensor: self.names[i].clone(),
                            measure: m,
                            from: micros(run.from),
                            to: micros(run.to),
                            value: run.value,
                        });
                    }
                }
                None => track.skip(),
            }
        }
        *row.flags_mut() = flags;
        let further_spikes = if cfg.further.is_empty() {
            Vec::new()
        } else {
            let (bits, spikes, runs) = observe_further(cfg, series, &self.names[i], t, &row);
            *row.further_flags_mut() = FurtherFlags {
                measures: Some(cfg.further.clone()),
                bits,
            };
            self.summary.further_runs.extend(runs);
            spikes
        };
        match std::mem::replace(&mut s.pending, Pending::Row(row)) {
            Pending::Row(mut p) => {
                *p.flags_mut() |= spikes;
                for (bits, spike) in p.further_flags_mut().bits.iter_mut().zip(&further_spikes) {
                    if let Some(bits) = bits {
                        *bits |= spike;
                    }
                }
                let flags = *p.flags_mut();
                self.summary.count(flags, present(&p));
                count_further_row(&mut self.summary, &mut p);
                Ok(Some(p))
            }
            Pending::Stored {
                file_id,
                line,
                ts,
                flags,
                further,
            } => {
                for (k, spike) in further_spikes.iter().enumerate() {
                    let add = spike & !further.get(k).copied().unwrap_or(0);
                    if add != 0 {
                        self.summary.further_amendments.push(FurtherAmendment {
                            sensor: self.names[i].clone(),
                            file_id: file_id.clone(),
                            line,
                            ts,
                            measure: cfg.further[k].name.clone(),
                            add,
                        });
                    }
                }
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
                    self.summary.count(flags, present(&p));
                    count_further_row(&mut self.summary, &mut p);
                    let further = p.further_flags_mut().bits.iter().map(|b| b.unwrap_or(0));
                    let further = further.collect();
                    let stored = (file_id.to_owned(), p.line(), p.timestamp(), flags, further);
                    rows.push(p);
                    Some(stored)
                }
                Pending::Stored {
                    file_id,
                    line,
                    ts,
                    flags,
                    further,
                } => Some((file_id, line, ts, flags, further)),
                Pending::None => None,
            };
            if let Some((file_id, line, ts, flags, further)) = last {
                memories.push((
                    name,
                    SensorMemory {
                        cfg: self.cfg.clone(),
                        series: s.series,
                        file_id,
                        line,
                        ts,
                        flags,
                        further,
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
        let mut s = Sensor::new(
            memory.series,
            Pending::Stored {
                file_id: first.file_id,
                line: first.line,
                ts: first.ts,
                flags: first.flags,
                further: first.further.iter().map(|(_, b)| *b).collect(),
            },
        );
        let prev_further: Vec<u8> = first.further.iter().map(|(_, b)| *b).collect();
        replay(&self.cfg, &mut s, (first.flags, prev_further), since);
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
        let s = Sensor::new(
            memory.series,
            Pending::Stored {
                file_id: memory.file_id,
                line: memory.line,
                ts: memory.ts,
                flags: memory.flags,
                further: memory.further,
            },
        );
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
        let mut s = Sensor::new(Box::new(Series::new(&self.cfg)), Pending::None);
        replay(&self.cfg, &mut s, (0, Vec::new()), history);
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

fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or_default()
}

/// The further measures' tests on `row` (of sensor `sensor`, at `t`): its flags, the
/// spike bits of the sensor's previous reading, and the flat runs found.
fn observe_further<P: Judged>(
    cfg: &QcConfig,
    series: &mut Series,
    sensor: &str,
    t: i64,
    row: &P,
) -> (Vec<Option<u8>>, Vec<u8>, Vec<FurtherRun>) {
    let values = row.further(&cfg.further);
    let mut bits = Vec::with_capacity(cfg.further.len());
    let mut spikes = vec![0u8; cfg.further.len()];
    let mut runs = Vec::new();
    for (k, track) in series.further.iter_mut().enumerate() {
        match values.get(k).copied().flatten() {
            Some(x) => {
                let seen = track.observe(t, x, &series.further_limits[k], None);
                if seen.spike {
                    spikes[k] = further_bit(Test::Spike);
                }
                bits.push(Some(seen.bits as u8));
                if let Some(run) = seen.run {
                    runs.push(FurtherRun {
                        sensor: sensor.to_owned(),
                        measure: cfg.further[k].name.clone(),
                        from: micros(run.from),
                        to: micros(run.to),
                        value: run.value,
                    });
                }
            }
            None => {
                track.skip();
                bits.push(None);
            }
        }
    }
    (bits, spikes, runs)
}

/// Takes stored readings (oldest first) into `s` without flagging them: their spikes
/// and flat lines are the stored ones (`prev`: the flags and further measures' flags
/// of the reading before the first), and the last one stays pending.
fn replay<P>(
    cfg: &QcConfig,
    s: &mut Sensor<P>,
    prev: (u16, Vec<u8>),
    history: Vec<HistoryReading>,
) {
    let (mut prev_flags, mut prev_further) = prev;
    for h in history {
        let t = h.ts.timestamp_micros();
        if t < s.series.last {
            continue;
        }
        s.series.advance(t, cfg);
        let series = &mut s.series;
        for (m, track) in series.tracks.iter_mut().enumerate() {
            match h.values[m] {
                Some(x) => {
                    let spike = prev_flags & Flags::bit(m, Test::Spike) != 0;
                    let flat = h.flags & Flags::bit(m, Test::Flat) != 0;
                    track.observe(t, x, &series.limits[m], Some((spike, flat)));
                }
                None => track.skip(),
            }
        }
        let further: Vec<u8> = h.further.iter().map(|(_, b)| *b).collect();
        for (k, track) in series.further.iter_mut().enumerate() {
            match h.further.get(k).and_then(|(v, _)| *v) {
                Some(x) => {
                    let spike =
                        prev_further.get(k).copied().unwrap_or(0) & further_bit(Test::Spike);
                    let flat = further[k] & further_bit(Test::Flat) != 0;
                    let limits = &series.further_limits[k];
                    track.observe(t, x, limits, Some((spike != 0, flat)));
                }
                None => track.skip(),
            }
        }
        prev_flags = h.flags;
        prev_further = further.clone();
        s.pending = Pending::Stored {
            file_id: h.file_id,
            line: h.line,
            ts: h.ts,
            flags: h.flags,
            further,
        };
    }
}
