//! Flagged readings as the `qc` command reads them back: the reading, its flags, and
//! the sensor's readings just before and after it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Flags, MEASURE_NAMES};

/// The values of further `measures` in a reading's `extra` (a JSON object holding each
/// under its name, as a number or `null`), in their order.
pub fn further_values(extra: Option<&str>, measures: &[super::FurtherMeasure]) -> Vec<Option<f64>> {
    let object: Option<serde_json::Map<String, serde_json::Value>> =
        extra.and_then(|e| serde_json::from_str(e).ok());
    measures
        .iter()
        .map(|m| object.as_ref()?.get(&m.name)?.as_f64())
        .collect()
}

/// A stored reading's time and canonical values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredValues {
    pub ts: DateTime<Utc>,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
}

impl StoredValues {
    /// Measure `m` (0 temperature, 1 humidity, 2 pressure).
    pub fn value(&self, m: usize) -> Option<f64> {
        [self.temperature, self.humidity, self.pressure][m]
    }
}

/// One flagged reading with its neighbours (the sensor's previous and next readings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlaggedReading {
    pub file_id: String,
    pub line: i64,
    pub flags: u16,
    /// `temperature:spike`, … `gap`, `time_travel`: one per flag.
    pub tests: Vec<String>,
    pub reading: StoredValues,
    pub previous: Option<StoredValues>,
    pub next: Option<StoredValues>,
    /// The further measures flagged (`qc_measure_flags`): name and test bits; their
    /// tests are in `tests` too, as `<measure>:<test>`.
    pub further: Vec<(String, u8)>,
}

impl FlaggedReading {
    pub fn new(
        file_id: String,
        line: i64,
        flags: u16,
        reading: StoredValues,
        previous: Option<StoredValues>,
        next: Option<StoredValues>,
    ) -> Self {
        let tests = Flags(flags).names();
        Self {
            file_id,
            line,
            flags,
            tests,
            reading,
            previous,
            next,
            further: Vec::new(),
        }
    }

    /// Adds the flags of a further measure.
    pub fn add_further(&mut self, measure: String, flags: u8) {
        for t in super::Test::ALL {
            if flags & super::further_bit(t) != 0 {
                self.tests.push(format!("{measure}:{}", t.name()));
            }
        }
        self.further.push((measure, flags));
    }

    /// The measures (indexes) with at least one flag.
    pub fn flagged_measures(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MEASURE_NAMES.len()).filter(|m| self.flags & (15 << (m * 4)) != 0)
    }
}

/// The query both backends run (placeholders `{sensor}`, `{since}`, `{limit}` replaced by
/// their own): flagged readings of a sensor from `since`, with the readings around them
/// by `lag`/`lead`; the window starts at the sensor's last reading before `since`, so
/// the first one has its predecessor too.
pub const FLAGGED_SQL: &str = "WITH r AS ( \
    SELECT file_id, line, ts, temperature, humidity, pressure, qc_flags, \
        lag(ts) OVER w AS p_ts, lag(temperature) OVER w AS p_t, \
        lag(humidity) OVER w AS p_h, lag(pressure) OVER w AS p_p, \
        lead(ts) OVER w AS n_ts, lead(temperature) OVER w AS n_t, \
        lead(humidity) OVER w AS n_h, lead(pressure) OVER w AS n_p \
    FROM sensor_readings \
    WHERE sensor_id = {sensor} AND ts >= coalesce((SELECT max(ts) FROM sensor_readings \
        WHERE sensor_id = {sensor} AND ts < {since}), {since}) \
    WINDOW w AS (ORDER BY ts, line)) \
SELECT file_id, line, ts, temperature, humidity, pressure, qc_flags, p_ts, p_t, p_h, p_p, \
    n_ts, n_t, n_h, n_p \
FROM r WHERE (qc_flags <> 0 OR EXISTS (SELECT 1 FROM qc_measure_flags f \
    WHERE f.file_id = r.file_id AND f.line = r.line)) \
    AND ts >= {since} ORDER BY ts, line LIMIT {limit}";

/// Adds the further measures' flags (file id, line, measure, flags: rows of
/// `qc_measure_flags` around them) to the flagged readings they belong to.
pub fn attach_further(readings: &mut [FlaggedReading], rows: Vec<(String, i64, String, u8)>) {
    for (file_id, line, measure, flags) in rows {
        if let Some(r) = readings
            .iter_mut()
            .find(|r| r.line == line && r.file_id == file_id)
        {
            r.add_further(measure, flags);
        }
    }
}

/// [`FLAGGED_SQL`] with these placeholders.
pub fn flagged_sql(sensor: &str, since: &str, limit: &str) -> String {
    FLAGGED_SQL
        .replace("{sensor}", sensor)
        .replace("{since}", since)
        .replace("{limit}", limit)
}
