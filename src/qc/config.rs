//! QC thresholds: the documented defaults per measure, the `QC_*` environment
//! variables that override them for the agent, and a profile's `[qc]` table that
//! overrides them for the files it reads.

use serde::Deserialize;

/// The canonical measures in bit order.
pub const MEASURE_NAMES: [&str; 3] = ["temperature", "humidity", "pressure"];

/// Longest window and flat-line count accepted: the history fetched per sensor and
/// file is this long at most.
pub const MAX_READINGS: u32 = 1000;

/// Thresholds of the four tests for one measure, in the stored unit (°C, %RH, hPa).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureQc {
    /// Step: allowed change per minute of gap.
    pub step_per_minute: f64,
    /// Step: a change up to this is never a step, however short the gap.
    pub step_floor: f64,
    /// Step: a change above this is always a step, however long the gap.
    pub step_max: f64,
    /// Spike: the least difference from both neighbours.
    pub spike: f64,
    /// Spike: how far apart the two neighbours may be.
    pub spike_tolerance: f64,
    /// Flat line: this many equal values in a row.
    pub flat_readings: u32,
    /// Flat line: or equal values for this many minutes.
    pub flat_minutes: f64,
    /// Outlier: robust z-score above this.
    pub outlier_z: f64,
    /// Outlier: the least MAD used (a window of equal values has MAD 0).
    pub outlier_mad_floor: f64,
}

impl MeasureQc {
    /// The step threshold for a gap of `minutes`.
    pub fn step_threshold(&self, minutes: f64) -> f64 {
        (self.step_per_minute * minutes).clamp(self.step_floor, self.step_max.max(self.step_floor))
    }
}

/// A further measure (a column the profile keeps in `extra`) checked with the
/// thresholds its profile gives (`[qc.<name>]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherMeasure {
    /// The column's name, its key in `extra`.
    pub name: String,
    pub qc: MeasureQc,
}

/// QC settings: whether it runs, the outlier window, each measure's thresholds, and
/// the two tests on a reading's time (gap, time travel).
#[derive(Debug, Clone, PartialEq)]
pub struct QcConfig {
    pub enabled: bool,
    /// Outlier window: the sensor's previous readings the median and MAD are taken over.
    pub window: u32,
    /// Gap: a reading more than this many usual intervals after the sensor's previous
    /// one is flagged; 0 turns the test off.
    pub gap_factor: f64,
    /// Time travel: a reading older than the sensor's latest one in the same file by
    /// more than the usual interval (a logger clock set back) is flagged.
    pub time_travel: bool,
    /// How far back a sensor's readings count (hours): a reading longer than this after
    /// the sensor's previous one starts its tests afresh, and no older history is read.
    pub history_hours: u32,
    /// Temperature, humidity, pressure.
    pub measures: [MeasureQc; 3],
    /// The further measures checked (none unless a profile names them), shared by the
    /// copies of these settings.
    pub further: std::sync::Arc<[FurtherMeasure]>,
}

impl Default for QcConfig {
    /// Defaults chosen for 1-minute to 1-hour readings of weather-grade sensors: they
    /// flag faults, not weather (see docs/quality.md).
    fn default() -> Self {
        Self {
            enabled: true,
            window: 60,
            gap_factor: DEFAULT_GAP_FACTOR,
            time_travel: true,
            history_hours: DEFAULT_HISTORY_HOURS,
            measures: [
                MeasureQc {
                    step_per_minute: 0.25,
                    step_floor: 2.5,
                    step_max: 8.0,
                    spike: 3.0,
                    spike_tolerance: 4.0,
                    flat_readings: 120,
                    flat_minutes: 360.0,
                    outlier_z: 6.0,
                    outlier_mad_floor: 0.1,
                },
                MeasureQc {
                    step_per_minute: 0.5,
                    step_floor: 10.0,
                    step_max: 25.0,
                    spike: 10.0,
                    spike_tolerance: 10.0,
                    flat_readings: 240,
                    flat_minutes: 720.0,
                    outlier_z: 6.0,
                    outlier_mad_floor: 0.5,
                },
                MeasureQc {
                    step_per_minute: 0.05,
                    step_floor: 1.0,
                    step_max: 6.0,
                    spike: 1.5,
                    spike_tolerance: 1.5,
                    flat_readings: 180,
                    flat_minutes: 480.0,
                    outlier_z: 6.0,
                    outlier_mad_floor: 0.2,
                },
            ],
            further: std::sync::Arc::new([]),
        }
    }
}

/// [`QcConfig::gap_factor`] by default: five usual intervals without a reading.
pub const DEFAULT_GAP_FACTOR: f64 = 5.0;

/// A gap factor: 0 (off) or a number above 1.
pub fn parse_gap_factor(value: &str) -> Result<f64, &'static str> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| valid_gap_factor(*v))
        .ok_or(GAP_FACTOR_EXPECTED)
}

const GAP_FACTOR_EXPECTED: &str = "0 (off) or a number above 1";

fn valid_gap_factor(v: f64) -> bool {
    v == 0.0 || (v.is_finite() && v > 1.0)
}

/// [`QcConfig::history_hours`] by default: a week.
pub const DEFAULT_HISTORY_HOURS: u32 = 7 * 24;
/// The longest [`QcConfig::history_hours`]: a year.
pub const MAX_HISTORY_HOURS: u32 = 366 * 24;

impl QcConfig {
    /// [`history_hours`](Self::history_hours) as a span of time.
    pub fn horizon(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(i64::from(self.history_hours))
    }

    /// Readings of history a sensor needs before a file so that its flags are those
    /// of one long file: the outlier window, the longest flat-line count, and the two
    /// neighbours of a spike.
    pub fn history_len(&self) -> u32 {
        let flat = self
            .measures
            .iter()
            .chain(self.further.iter().map(|f| &f.qc))
            .map(|m| m.flat_readings)
            .max()
            .unwrap_or(0);
        self.window.max(flat).max(2)
    }

    /// These settings with a profile's overrides applied (checked by the profile's
    /// checks: [`QcOverrides::problems`]).
    pub fn with(&self, o: &QcOverrides) -> QcConfig {
        let mut c = self.clone();
        if let Some(enabled) = o.enabled {
            c.enabled = enabled;
        }
        if let Some(w) = o.window {
            c.window = w;
        }
        if let Some(g) = o.gap_factor {
            c.gap_factor = g;
        }
        if let Some(t) = o.time_travel {
            c.time_travel = t;
        }
        for (m, over) in c
            .measures
            .iter_mut()
            .zip([&o.temperature, &o.humidity, &o.pressure])
        {
            if let Some(over) = over {
                over.apply(m);
            }
        }
        if !o.further.is_empty() {
            c.further = o
                .further
                .iter()
                .filter_map(|(name, over)| {
                    over.complete().map(|qc| FurtherMeasure {
                        name: name.clone(),
                        qc,
                    })
                })
                .collect();
        }
        c
    }

    /// Sets `key` of measure `measure` (index) from text; the error says what was
    /// expected.
    pub fn set(&mut self, measure: usize, key: &str, value: &str) -> Result<(), &'static str> {
        let m = &mut self.measures[measure];
        if key == "flat_readings" {
            m.flat_readings = parse_count(value)?;
            return Ok(());
        }
        let v = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or("a number, 0 or more")?;
        *field(m, key).ok_or("a known QC key")? = v;
        Ok(())
    }
}

/// The real-valued keys of [`MeasureQc`], in the order of [`MeasureOverrides`].
pub const REAL_KEYS: [&str; 8] = [
    "step_per_minute",
    "step_floor",
    "step_max",
    "spike",
    "spike_tolerance",
    "flat_minutes",
    "outlier_z",
    "outlier_mad_floor",
];

impl MeasureQc {
    /// The threshold named `key` (one of [`REAL_KEYS`] or `flat_readings`); `None` for
    /// any other name. The generated settings reference reads the defaults through it.
    pub fn get(&self, key: &str) -> Option<f64> {
        if key == "flat_readings" {
            return Some(f64::from(self.flat_readings));
        }
        let mut copy = *self;
        field(&mut copy, key).map(|v| *v)
    }
}

fn field<'a>(m: &'a mut MeasureQc, key: &str) -> Option<&'a mut f64> {
    Some(match key {
        "step_per_minute" => &mut m.step_per_minute,
        "step_floor" => &mut m.step_floor,
        "step_max" => &mut m.step_max,
        "spike" => &mut m.spike,
        "spike_tolerance" => &mut m.spike_tolerance,
        "flat_minutes" => &mut m.flat_minutes,
        "outlier_z" => &mut m.outlier_z,
        "outlier_mad_floor" => &mut m.outlier_mad_floor,
        _ => return None,
    })
}

/// A count of readings from 2 to [`MAX_READINGS`].
pub fn parse_count(value: &str) -> Result<u32, &'static str> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (2..=MAX_READINGS).contains(n))
        .ok_or("a whole number from 2 to 1000")
}

/// A profile's `[qc]` table: `enabled`, `window`, `gap_factor`, `time_travel`,
/// `[qc.temperature]`, `[qc.humidity]`, `[qc.pressure]` with any of the measure keys,
/// and `[qc.<measure>]` for a further measure (a column kept in `extra`) with all of
/// them: a further measure is checked only with thresholds the profile gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcOverrides {
    pub enabled: Option<bool>,
    pub window: Option<u32>,
    pub gap_factor: Option<f64>,
    pub time_travel: Option<bool>,
    pub temperature: Option<MeasureOverrides>,
    pub humidity: Option<MeasureOverrides>,
    pub pressure: Option<MeasureOverrides>,
    /// `[qc.<measure>]` of further measures, by name, in name order.
    pub further: std::collections::BTreeMap<String, MeasureOverrides>,
}

/// The keys of `[qc]` other than further measures' tables.
const QC_FIELDS: &[&str] = &[
    "enabled",
    "window",
    "gap_factor",
    "time_travel",
    "temperature",
    "humidity",
    "pressure",
];

impl<'de> Deserialize<'de> for QcOverrides {
    /// A struct to the deserializer (so the profile reference lists its fixed keys),
    /// whose every other key is a further measure's table of thresholds.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("QcOverrides", QC_FIELDS, QcVisitor)
    }
}

struct QcVisitor;

impl<'de> serde::de::Visitor<'de> for QcVisitor {
    type Value = QcOverrides;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a [qc] table")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<QcOverrides, A::Error> {
        use serde::de::Error;
        let mut o = QcOverrides::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "enabled" => o.enabled = Some(map.next_value()?),
                "window" => o.window = Some(map.next_value()?),
                "gap_factor" => o.gap_factor = Some(map.next_value()?),
                "time_travel" => o.time_travel = Some(map.next_value()?),
                "temperature" => o.temperature = Some(map.next_value()?),
                "humidity" => o.humidity = Some(map.next_value()?),
                "pressure" => o.pressure = Some(map.next_value()?),
                _ => {
                    let table = map.next_value::<MeasureOverrides>().map_err(|e| {
                        A::Error::custom(format!(
                            "qc.{key}: expected one of {} or a [qc.{key}] table of \
                             thresholds for the further measure {key} ({e})",
                            QC_FIELDS.join(", ")
                        ))
                    })?;
                    if o.further.insert(key.clone(), table).is_some() {
                        return Err(A::Error::custom(format!("qc.{key} given twice")));
                    }
                }
            }
        }
        Ok(o)
    }
}

/// Any of [`MeasureQc`]'s thresholds, for one measure.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureOverrides {
    pub step_per_minute: Option<f64>,
    pub step_floor: Option<f64>,
    pub step_max: Option<f64>,
    pub spike: Option<f64>,
    pub spike_tolerance: Option<f64>,
    pub flat_minutes: Option<f64>,
    pub outlier_z: Option<f64>,
    pub outlier_mad_floor: Option<f64>,
    pub flat_readings: Option<u32>,
}

impl MeasureOverrides {
    fn reals(&self) -> [Option<f64>; 8] {
        [
            self.step_per_minute,
            self.step_floor,
            self.step_max,
            self.spike,
            self.spike_tolerance,
            self.flat_minutes,
            self.outlier_z,
            self.outlier_mad_floor,
        ]
    }

    /// Every threshold, when all are given (a further measure has no defaults).
    pub fn complete(&self) -> Option<MeasureQc> {
        let mut m = MeasureQc {
            step_per_minute: 0.0,
            step_floor: 0.0,
            step_max: 0.0,
            spike: 0.0,
            spike_tolerance: 0.0,
            flat_readings: self.flat_readings?,
            flat_minutes: 0.0,
            outlier_z: 0.0,
            outlier_mad_floor: 0.0,
        };
        for (key, v) in REAL_KEYS.iter().zip(self.reals()) {
            *field(&mut m, key)? = v?;
        }
        Some(m)
    }

    /// The keys not given, `flat_readings` last.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = REAL_KEYS
            .iter()
            .zip(self.reals())
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if self.flat_readings.is_none() {
            out.push("flat_readings");
        }
        out
    }

    fn apply(&self, m: &mut MeasureQc) {
        for (key, v) in REAL_KEYS.iter().zip(self.reals()) {
            if let (Some(v), Some(f)) = (v, field(m, key)) {
                *f = v;
            }
        }
        if let Some(n) = self.flat_readings {
            m.flat_readings = n;
        }
    }
}

impl QcOverrides {
    /// Every value that cannot be used, as `qc.<measure>.<key> = value: expected …`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(w) = self.window
            && !(2..=MAX_READINGS).contains(&w)
        {
            out.push(format!(
                "qc.window = {w}: expected a whole number from 2 to 1000"
            ));
        }
        if let Some(g) = self.gap_factor
            && !valid_gap_factor(g)
        {
            out.push(format!(
                "qc.gap_factor = {g}: expected {GAP_FACTOR_EXPECTED}"
            ));
        }
        let canonical = MEASURE_NAMES
            .iter()
            .zip([&self.temperature, &self.humidity, &self.pressure])
            .filter_map(|(name, over)| over.as_ref().map(|o| (*name, o)));
        let further = self.further.iter().map(|(name, o)| (name.as_str(), o));
        for (name, over) in canonical.chain(further) {
            for (key, v) in REAL_KEYS.iter().zip(over.reals()) {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    out.push(format!(
                        "qc.{name}.{key} = {v}: expected a number, 0 or more"
                    ));
                }
            }
            if let Some(n) = over.flat_readings
                && !(2..=MAX_READINGS).contains(&n)
            {
                out.push(format!(
                    "qc.{name}.flat_readings = {n}: expected a whole number from 2 to 1000"
                ));
            }
        }
        for (name, over) in &self.further {
            let missing = over.missing();
            if !missing.is_empty() {
                out.push(format!(
                    "qc.{name}: missing {}: a further measure has no default thresholds, \
                     its table gives all nine",
                    missing.join(", ")
                ));
            }
        }
        out
    }
}

/// `QC_<MEASURE>_<KEY>` for every measure and key, `flat_readings` last: the variables
/// that override the defaults for the agent (names are static for the settings'
/// error messages).
pub const ENV_VARS: [[&str; 9]; 3] = [
    [
        "QC_TEMPERATURE_STEP_PER_MINUTE",
        "QC_TEMPERATURE_STEP_FLOOR",
        "QC_TEMPERATURE_STEP_MAX",
        "QC_TEMPERATURE_SPIKE",
        "QC_TEMPERATURE_SPIKE_TOLERANCE",
        "QC_TEMPERATURE_FLAT_MINUTES",
        "QC_TEMPERATURE_OUTLIER_Z",
        "QC_TEMPERATURE_OUTLIER_MAD_FLOOR",
        "QC_TEMPERATURE_FLAT_READINGS",
    ],
    [
        "QC_HUMIDITY_STEP_PER_MINUTE",
        "QC_HUMIDITY_STEP_FLOOR",
        "QC_HUMIDITY_STEP_MAX",
        "QC_HUMIDITY_SPIKE",
        "QC_HUMIDITY_SPIKE_TOLERANCE",
        "QC_HUMIDITY_FLAT_MINUTES",
        "QC_HUMIDITY_OUTLIER_Z",
        "QC_HUMIDITY_OUTLIER_MAD_FLOOR",
        "QC_HUMIDITY_FLAT_READINGS",
    ],
    [
        "QC_PRESSURE_STEP_PER_MINUTE",
        "QC_PRESSURE_STEP_FLOOR",
        "QC_PRESSURE_STEP_MAX",
        "QC_PRESSURE_SPIKE",
        "QC_PRESSURE_SPIKE_TOLERANCE",
        "QC_PRESSURE_FLAT_MINUTES",
        "QC_PRESSURE_OUTLIER_Z",
        "QC_PRESSURE_OUTLIER_MAD_FLOOR",
        "QC_PRESSURE_FLAT_READINGS",
    ],
];

/// The key a variable of [`ENV_VARS`] sets, by its position.
pub fn env_key(index: usize) -> &'static str {
    REAL_KEYS.get(index).copied().unwrap_or("flat_readings")
}

/// A history span for `QC_HISTORY`: hours (`48h`, `48 hours`) or days (`7d`, `7 days`),
/// from 1 hour to [`MAX_HISTORY_HOURS`].
pub fn parse_history(value: &str) -> Result<u32, &'static str> {
    const EXPECTED: &str = "a span such as 7d, 30 days or 48h, from 1 hour to 366 days";
    let v = value.trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u32 = number.parse().map_err(|_| EXPECTED)?;
    let hours = match unit.trim() {
        "h" | "hour" | "hours" => Some(n),
        "d" | "day" | "days" => n.checked_mul(24),
        _ => None,
    };
    hours
        .filter(|h| (1..=MAX_HISTORY_HOURS).contains(h))
        .ok_or(EXPECTED)
}
