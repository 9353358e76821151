//! `sensor-ingest simulate`: writes realistic sensor CSV files into the data folder,
//! the way a careful producer does (a hidden temporary name, fsync, then a rename that
//! never replaces a file).
//!
//! Each sensor has its own daily temperature cycle (base, amplitude and phase drawn
//! per sensor), humidity that moves against temperature, and pressure that drifts
//! slowly as a random walk. A few cells are left empty, and at `bad_rate` a row is
//! replaced by one the validator rejects (a word for a number, an impossible date, a
//! value out of range, a missing sensor id, no measurement at all, `NaN`).
//!
//! At `anomalies` a reading starts a labelled fault on one measure, of a kind drawn
//! at random: a spike (one reading off by three times the QC spike threshold), a step
//! (the level shifts by twice the step threshold for the sample interval, and stays
//! until the next step puts it back), or a flat line (the value stuck for two
//! readings more than the flat-line test needs). Faults of a sensor never overlap, the
//! readings around them keep all their values, and each labelled reading is listed
//! ([`Simulator::anomalies`]; `simulate` writes them to a labels file per data file),
//! so a test can check that quality control flags every one.
//!
//! The output depends only on the options: the generator is a seeded SplitMix64 and
//! time starts at a fixed instant, so a seed gives the same bytes on every run and
//! every machine.

use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use crate::archive;
use crate::config::{Range, Ranges};

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct SimulateError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub sensors: u32,
    /// Files written per round.
    pub files: u32,
    /// Data rows per file.
    pub rows: u32,
    /// Share of rows (0 to 1) replaced by invalid ones.
    pub bad_rate: f64,
    pub seed: u64,
    /// Time of the first reading.
    pub start: DateTime<Utc>,
    /// Time between two readings of one sensor.
    pub sample_every: Duration,
    /// Accepted ranges: good values stay inside, out-of-range ones go outside.
    pub ranges: Ranges,
    /// Share of readings (0 to 1) that start an injected anomaly.
    pub anomalies: f64,
}

/// One reading made anomalous on purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Physical line in the data file (header = 1).
    pub line: u64,
    pub sensor: String,
    pub at: DateTime<Utc>,
    /// `temperature`, `humidity` or `pressure`.
    pub measure: &'static str,
    pub kind: AnomalyKind,
}

/// What was injected on a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// The one reading of a spike.
    Spike,
    /// The first reading after the level shifted.
    Step,
    /// A reading of a flat line; `qualifies` from the reading on which the run is long
    /// enough for the flat-line test.
    Flat { qualifies: bool },
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Spike => "spike",
            AnomalyKind::Step => "step",
            AnomalyKind::Flat { .. } => "flat",
        }
    }
}

/// A fault in progress on one sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Readings to wait before another fault may start.
    Cooldown(u32),
    /// A stuck value on `measure` for `left` more readings (`done` so far).
    Flat {
        measure: usize,
        value: f64,
        left: u32,
        done: u32,
        needed: u32,
    },
}

/// The default first reading time: fixed, so output does not depend on the clock.
pub fn default_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .expect("constant is valid")
        .to_utc()
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub rows: u32,
    /// Physical line numbers (header = 1) of the rows made invalid on purpose.
    pub bad_lines: Vec<u64>,
    /// False when a file of that name was already in the folder (left as it was).
    pub created: bool,
    /// Readings made anomalous on purpose, and the labels file that lists them.
    pub anomalies: usize,
    pub labels: Option<PathBuf>,
}

/// SplitMix64: tiny, fast, and its sequence for a seed never changes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// One simulated sensor's character and state.
#[derive(Debug, Clone)]
struct Sensor {
    id: String,
    base_temperature: f64,
    amplitude: f64,
    /// Hour of the day at which it is warmest.
    warmest_hour: f64,
    base_humidity: f64,
    pressure: f64,
    /// Level shifts in force per measure (injected steps).
    offsets: [f64; 3],
    fault: Fault,
    /// The sensor's last reading had all three values (a spike may follow it).
    last_complete: bool,
}

/// The state of a simulation across rounds.
#[derive(Debug, Clone)]
pub struct Simulator {
    options: SimOptions,
    rng: Rng,
    sensors: Vec<Sensor>,
    /// Index of the next file.
    next_file: u64,
    /// Index of the next sample step (one reading per sensor per step).
    next_step: u64,
    /// The anomalies of the last file generated.
    anomalies: Vec<Anomaly>,
    /// Its own generator, so that `anomalies = 0` gives the same files as before.
    fault_rng: Rng,
    /// Where labels files go.
    labels: Option<PathBuf>,
}

impl Simulator {
    pub fn new(options: SimOptions) -> Self {
        let mut rng = Rng::new(options.seed);
        let sensors = (0..options.sensors.max(1))
            .map(|i| Sensor {
                id: format!("sim-{:03}", i + 1),
                base_temperature: rng.range(12.0, 24.0),
                amplitude: rng.range(2.0, 7.0),
                warmest_hour: rng.range(13.0, 17.0),
                base_humidity: rng.range(40.0, 65.0),
                pressure: rng.range(1000.0, 1025.0),
                offsets: [0.0; 3],
                fault: Fault::None,
                last_complete: false,
            })
            .collect();
        let fault_rng = Rng::new(options.seed ^ 0xa0a0_5eed);
        Self {
            options,
            rng,
            sensors,
            next_file: 0,
            next_step: 0,
            anomalies: Vec::new(),
            fault_rng,
            labels: None,
        }
    }

    /// Writes, for each data file with anomalies, a labels file of the same name into
    /// `dir` ([`labels_csv`]): kept apart so the data files stay as a logger writes them.
    pub fn with_labels(mut self, dir: PathBuf) -> Self {
        self.labels = Some(dir);
        self
    }

    /// The readings made anomalous in the last file [`next_file`](Self::next_file)
    /// generated.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// The name and content of the next file, and the lines made invalid.
    pub fn next_file(&mut self) -> (String, String, Vec<u64>) {
        let name = format!("sim-{}-{:06}.csv", self.options.seed, self.next_file);
        self.next_file += 1;
        let mut csv = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
        let mut bad_lines = Vec::new();
        self.anomalies.clear();
        let n_sensors = self.sensors.len() as u64;
        let step = TimeDelta::from_std(self.options.sample_every).unwrap_or(TimeDelta::minutes(1));
        for r in 0..self.options.rows as u64 {
            let line = r + 2;
            let sensor_index = (r % n_sensors) as usize;
            if r > 0 && sensor_index == 0 {
                self.next_step += 1;
            }
            let at = self.options.start + step * self.next_step as i32;
            let mut good = self.reading(sensor_index, at);
            if self.options.anomalies > 0.0 {
                self.inject(sensor_index, line, &mut good);
            }
            if self.rng.unit() < self.options.bad_rate {
                csv.push_str(&self.bad_row(&good));
                bad_lines.push(line);
                self.anomalies.retain(|a| a.line != line);
            } else {
                csv.push_str(&good.to_csv());
            }
        }
        self.next_step += 1;
        (name, csv, bad_lines)
    }

    fn reading(&mut self, index: usize, at: DateTime<Utc>) -> Row {
        let ranges = self.options.ranges;
        let rng = &mut self.rng;
        let s = &mut self.sensors[index];
        let hour = (at.timestamp().rem_euclid(86_400)) as f64 / 3600.0;
        let cycle = (TAU * (hour - s.warmest_hour) / 24.0).cos();
        let temperature = s.base_temperature + s.amplitude * cycle + 0.2 * rng.normal();
        let humidity = s.base_humidity - 2.5 * (temperature - s.base_temperature) + rng.normal();
        s.pressure += 0.05 * rng.normal();
        s.pressure = s.pressure.clamp(980.0, 1040.0);
        let mut row = Row {
            full: [temperature, humidity, s.pressure],
            at,
            sensor: s.id.clone(),
            temperature: Some(clamp(temperature, ranges.temperature)),
            humidity: Some(clamp(humidity, ranges.humidity)),
            pressure: Some(clamp(s.pressure, ranges.pressure)),
        };
        // An occasional empty cell, never all three (that row would be invalid).
        if rng.unit() < 0.01 {
            match rng.below(3) {
                0 => row.temperature = None,
                1 => row.humidity = None,
                _ => row.pressure = None,
            }
        }
        row
    }

    /// Applies the sensor's fault in progress to `row`, or starts one at the
    /// anomaly rate, and labels the readings it changed.
    fn inject(&mut self, index: usize, line: u64, row: &mut Row) {
        let minutes = self.options.sample_every.as_secs_f64() / 60.0;
        let rate = self.options.anomalies;
        let rng = &mut self.fault_rng;
        let s = &mut self.sensors[index];
        let mut labels: Vec<(usize, AnomalyKind)> = Vec::new();
        let mut values = [row.temperature, row.humidity, row.pressure];
        // Readings in and around a fault keep every value: a spike needs both
        // neighbours, a flat line every reading of its run.
        let start = matches!(s.fault, Fault::None) && s.last_complete && rng.unit() < rate;
        let faulty = start || !matches!(s.fault, Fault::None);
        if faulty {
            values = row.full.map(Some);
        }
        for (v, offset) in values.iter_mut().zip(s.offsets) {
            *v = v.map(|x| x + offset);
        }
        match s.fault {
            Fault::Cooldown(n) => {
                s.fault = if n > 1 {
                    Fault::Cooldown(n - 1)
                } else {
                    Fault::None
                };
            }
            Fault::Flat {
                measure,
                value,
                left,
                done,
                needed,
            } => {
                values[measure] = Some(value);
                labels.push((
                    measure,
                    AnomalyKind::Flat {
                        qualifies: done + 1 >= needed,
                    },
                ));
                s.fault = if left > 1 {
                    Fault::Flat {
                        measure,
                        value,
                        left: left - 1,
                        done: done + 1,
                        needed,
                    }
                } else {
                    Fault::Cooldown(3)
                };
            }
            Fault::None if start => labels.push(start_fault(rng, s, &mut values, minutes)),
            Fault::None => {}
        }
        s.last_complete = values.iter().all(Option::is_some);
        let ranges = self.options.ranges;
        row.temperature = values[0].map(|v| clamp(v, ranges.temperature));
        row.humidity = values[1].map(|v| clamp(v, ranges.humidity));
        row.pressure = values[2].map(|v| clamp(v, ranges.pressure));
        for (measure, kind) in labels {
            self.anomalies.push(Anomaly {
                line,
                sensor: row.sensor.clone(),
                at: row.at,
                measure: crate::qc::MEASURE_NAMES[measure],
                kind,
            });
        }
    }

    /// A row the validator rejects, of a kind drawn at random.
    fn bad_row(&mut self, good: &Row) -> String {
        let ts = good.timestamp();
        let fmt =
            |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
        let (t, h, p) = (
            fmt(good.temperature, 2),
            fmt(good.humidity, 1),
            fmt(good.pressure, 1),
        );
        let sensor = &good.sensor;
        match self.rng.below(6) {
            0 => format!("{ts},{sensor},n/a,{h},{p}\n"),
            1 => format!(
                "{ts},{sensor},{:.1},{h},{p}\n",
                self.options.ranges.temperature.max + 100.0
            ),
            2 => format!(
                "{},{sensor},{t},{h},{p}\n",
                good.at.format("%Y-%m-%dT25:%M:%SZ")
            ),
            3 => format!("{ts},,{t},{h},{p}\n"),
            4 => format!("{ts},{sensor},,,\n"),
            _ => format!("{ts},{sensor},{t},NaN,{p}\n"),
        }
    }
}

fn clamp(v: f64, range: Range) -> f64 {
    v.clamp(range.min, range.max)
}

/// Starts a fault on a measure of `s` drawn at random — a spike, a step or the first
/// reading of a flat line — changing `values`; the measure and the label of the
/// reading changed.
fn start_fault(
    rng: &mut Rng,
    s: &mut Sensor,
    values: &mut [Option<f64>; 3],
    minutes: f64,
) -> (usize, AnomalyKind) {
    let qc = crate::qc::QcConfig::default();
    let measure = rng.below(3) as usize;
    let c = qc.measures[measure];
    let sign = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
    let current = values[measure].unwrap_or_default();
    match rng.below(3) {
        0 => {
            values[measure] = Some(current + sign * 3.0 * c.spike);
            s.fault = Fault::Cooldown(3);
            (measure, AnomalyKind::Spike)
        }
        1 => {
            // Shift away, or back when shifted, so the level stays in range.
            let jump = 2.0 * c.step_threshold(minutes);
            let old = s.offsets[measure];
            s.offsets[measure] = if old == 0.0 { sign * jump } else { 0.0 };
            values[measure] = Some(current - old + s.offsets[measure]);
            s.fault = Fault::Cooldown(3);
            (measure, AnomalyKind::Step)
        }
        _ => {
            let by_time = (c.flat_minutes / minutes).ceil() as u32 + 1;
            let needed = c.flat_readings.min(by_time).max(2);
            s.fault = Fault::Flat {
                measure,
                value: current,
                left: needed + 1,
                done: 1,
                needed,
            };
            (measure, AnomalyKind::Flat { qualifies: false })
        }
    }
}

#[derive(Debug, Clone)]
struct Row {
    /// The three values before any cell was left empty.
    full: [f64; 3],
    at: DateTime<Utc>,
    sensor: String,
    temperature: Option<f64>,
    humidity: Option<f64>,
    pressure: Option<f64>,
}

impl Row {
    fn timestamp(&self) -> String {
        self.at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn to_csv(&self) -> String {
        let mut s = self.timestamp();
        let _ = write!(s, ",{}", self.sensor);
        for (v, digits) in [
            (self.temperature, 2),
            (self.humidity, 1),
            (self.pressure, 1),
        ] {
            s.push(',');
            if let Some(v) = v {
                let _ = write!(s, "{v:.digits$}");
            }
        }
        s.push('\n');
        s
    }
}

/// Writes `content` to `dir/name` atomically: a hidden temporary file in the same
/// folder (never taken by the agent), fsynced, then renamed without replacing. Returns
/// false when `name` already exists (nothing is changed).
pub fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> Result<bool, SimulateError> {
    let tmp = dir.join(format!(".{name}.part"));
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |source| SimulateError { path, source }
    };
    let target = dir.join(name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(fail(&tmp)(e));
    }
    match archive::move_no_clobber(&tmp, &target) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            if e.kind() == io::ErrorKind::AlreadyExists {
                Ok(false)
            } else {
                Err(fail(&target)(e))
            }
        }
    }
}

/// The labels of `anomalies` as CSV: `line,timestamp,sensor_id,measure,anomaly`, one
/// row per reading made anomalous (every reading of a flat line).
pub fn labels_csv(anomalies: &[Anomaly]) -> String {
    let mut csv = String::from("line,timestamp,sensor_id,measure,anomaly\n");
    for a in anomalies {
        let _ = writeln!(
            csv,
            "{},{},{},{},{}",
            a.line,
            a.at.format("%Y-%m-%dT%H:%M:%SZ"),
            a.sensor,
            a.measure,
            a.kind.name()
        );
    }
    csv
}

/// Writes one round of `options.files` files into `dir`.
pub fn write_round(sim: &mut Simulator, dir: &Path) -> Result<Vec<Written>, SimulateError> {
    archive::ensure_dir(dir).map_err(|source| SimulateError {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for _ in 0..sim.options.files {
        let (name, content, bad_lines) = sim.next_file();
        let created = write_atomically(dir, &name, content.as_bytes())?;
        let labels = match &sim.labels {
            Some(labels) if created && !sim.anomalies.is_empty() => {
                archive::ensure_dir(labels).map_err(|source| SimulateError {
                    path: labels.clone(),
                    source,
                })?;
                write_atomically(labels, &name, labels_csv(&sim.anomalies).as_bytes())?;
                Some(labels.join(&name))
            }
            _ => None,
        };
        out.push(Written {
            path: dir.join(&name),
            rows: sim.options.rows,
            bad_lines,
            created,
            anomalies: sim.anomalies.len(),
            labels,
        });
    }
    Ok(out)
}

/// Writes a round every `interval` until `shutdown` is cancelled, calling `on_round`
/// after each.
pub async fn run(
    mut sim: Simulator,
    dir: &Path,
    interval: Duration,
    shutdown: CancellationToken,
    mut on_round: impl FnMut(&[Written]),
) -> Result<(), SimulateError> {
    loop {
        let written = write_round(&mut sim, dir)?;
        on_round(&written);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> SimOptions {
        SimOptions {
            sensors: 5,
            files: 2,
            rows: 200,
            bad_rate: 0.05,
            seed,
            start: default_start(),
            sample_every: Duration::from_secs(60),
            ranges: Ranges::default(),
            anomalies: 0.0,
        }
    }

    #[test]
    fn a_seed_always_gives_the_same_files_and_another_seed_others() {
        let a: Vec<_> = {
            let mut s = Simulator::new(options(7));
            (0..3).map(|_| s.next_file()).collect()
        };
        let b: Vec<_> = {
            let mut s = Simulator::new(options(7));
            (0..3).map(|_| s.next_file()).collect()
        };
        assert_eq!(a, b);
        let c = Simulator::new(options(8)).next_file();
        assert_ne!(a[0].1, c.1);
        // Consecutive files continue the time series instead of repeating it.
        assert_ne!(a[0].1, a[1].1);
        // The first value of seed 7 is pinned: the sequence must not change between
        // versions, or the same seed would stop reproducing the same files.
        assert_eq!(Rng::new(7).next_u64(), 0x63cb_e1e4_5932_0dd7);
    }

    #[test]
    fn the_daily_cycle_is_warmest_in_the_afternoon() {
        let mut sim = Simulator::new(SimOptions {
            sensors: 1,
            rows: 24 * 60,
            bad_rate: 0.0,
            ..options(1)
        });
        let (_, csv, bad) = sim.next_file();
        assert!(bad.is_empty());
        let temps: Vec<(u32, f64)> = csv
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let hour = f[0][11..13].parse().ok()?;
                Some((hour, f[2].parse().ok()?))
            })
            .collect();
        let mean_at = |h: u32| {
            let v: Vec<f64> = temps.iter().filter(|t| t.0 == h).map(|t| t.1).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(
            mean_at(15) > mean_at(3) + 2.0,
            "{} vs {}",
            mean_at(15),
            mean_at(3)
        );
    }

    #[test]
    fn anomalies_of_every_kind_are_labelled_on_their_lines() {
        let mut sim = Simulator::new(SimOptions {
            anomalies: 0.01,
            bad_rate: 0.0,
            rows: 3000,
            ..options(3)
        });
        let (_, csv, _) = sim.next_file();
        let labels = sim.anomalies().to_vec();
        assert!(labels.iter().any(|a| a.kind == AnomalyKind::Spike));
        assert!(labels.iter().any(|a| a.kind == AnomalyKind::Step));
        assert!(
            labels
                .iter()
                .any(|a| matches!(a.kind, AnomalyKind::Flat { qualifies: true }))
        );
        let lines: Vec<&str> = csv.lines().collect();
        for a in &labels {
            let row = lines[a.line as usize - 1];
            assert!(row.contains(&a.sensor), "line {} is {row}", a.line);
        }
        let text = labels_csv(&labels);
        assert!(text.starts_with("line,timestamp,sensor_id,measure,anomaly\n"));
        assert_eq!(text.lines().count(), labels.len() + 1);
    }

    #[test]
    fn files_appear_whole_and_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomically(dir.path(), "a.csv", b"one").unwrap());
        assert!(!write_atomically(dir.path(), "a.csv", b"two").unwrap());
        assert_eq!(fs::read(dir.path().join("a.csv")).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("a.csv")],
            "no temporary left"
        );
    }
}
