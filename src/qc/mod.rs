//! Quality control stage: per reading and per canonical measure (temperature, humidity,
//! pressure), four tests of environmental monitoring networks, and two on the
//! reading's time, as flags beside the values — never a rejection, never a changed
//! value.
//!
//! - **step**: the change from the sensor's previous value (not a spike, not part of
//!   a flat line) is larger than `step_per_minute` × the gap in minutes, bounded below
//!   by `step_floor` and above by `step_max`, and larger than the series' resolution
//!   (its smallest change, `resolution`: one step of a coarse series is no fault);
//! - **spike**: the value differs from both neighbours by more than `spike`, on the
//!   same side, while the two agree within `spike_tolerance`. A reading is judged
//!   when the sensor's next reading arrives, so the last reading of a file is judged
//!   when the sensor's next file loads (its flag is then added to the stored reading,
//!   see [`Amendment`]);
//! - **flat line**: the same value for at least `flat_readings` readings or
//!   `flat_minutes` minutes, unlikely at the rate the series repeats values and longer
//!   than three times its longest recent run (`resolution`: a coarse series stays on
//!   one value for days); every reading of the run is flagged, the earlier ones by
//!   a [`RunAmendment`] the sink applies in the load's transaction;
//! - **outlier**: the robust z-score 0.6745·|x − median| / MAD over the sensor's
//!   previous `window` readings exceeds `outlier_z` (MAD at least
//!   `outlier_mad_floor`), for a value that also moved half a step limit from the one
//!   before. Spikes and flat readings never enter the window, and a step empties it:
//!   readings after a fault are judged against normal ones;
//! - **gap**: the reading comes more than `gap_factor` usual intervals after the
//!   previous one; **time travel**: it is older than the sensor's latest reading in
//!   the same file by more than the usual interval (a logger clock set back).
//!
//! The usual interval (the median of the sensor's last intervals) also widens the
//! limits of the value tests for hourly and daily series (`cadence`).
//!
//! Flags are a bitmask per reading ([`Flags`]): bit `4·m + t` for measure `m`
//! (temperature 0, humidity 1, pressure 2) and test `t` (step 0, spike 1, flat 2,
//! outlier 3), then [`Flags::GAP`] (bit 12) and [`Flags::TIME_TRAVEL`] (bit 13); 0
//! means nothing flagged.
//!
//! A profile's further measures (kept in `extra`) are judged with the same tests when
//! it gives their thresholds (`[qc.<measure>]`, [`FurtherMeasure`]); their flags, 4
//! test bits per measure ([`FurtherFlags`]), are stored apart (`qc_measure_flags`, only
//! the flagged readings) and amended across files as the canonical ones.
//!
//! The module does no I/O. [`Judge`] follows every sensor of a file in file order,
//! after its history (the last readings before the file, from the database) has been
//! replayed, so a day loaded as one file or as 24 hourly files in time order gets the
//! same flags. Settings: [`QcConfig`] (defaults, `QC_*` variables, a profile's `[qc.*]`).

mod cadence;
pub mod config;
mod judge;
mod resolution;
mod stored;
mod summary;
mod track;
mod window;

pub use config::{FurtherMeasure, MEASURE_NAMES, MeasureQc, QcConfig, QcOverrides};
pub use judge::{
    COUNTED, FurtherFlags, HistoryQuery, HistoryReading, Judge, Judged, MAX_SENSORS, SensorMemory,
};
pub use stored::{FlaggedReading, StoredValues, attach_further, flagged_sql, further_values};
pub use summary::{
    Amendment, FurtherAmendment, FurtherFlagged, FurtherRun, QcSummary, RunAmendment, further_bit,
};

/// One of the four tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Test {
    Step = 0,
    Spike = 1,
    Flat = 2,
    Outlier = 3,
}

impl Test {
    pub const ALL: [Test; 4] = [Test::Step, Test::Spike, Test::Flat, Test::Outlier];

    /// The name used in the `qc` command, `file_metrics` (`qc_<name>`) and settings.
    pub fn name(self) -> &'static str {
        match self {
            Test::Step => "step",
            Test::Spike => "spike",
            Test::Flat => "flat",
            Test::Outlier => "outlier",
        }
    }
}

/// The flags of one reading: bit `4·measure + test`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u16);

impl Flags {
    /// The reading came more than `gap_factor` usual intervals after the sensor's
    /// previous one.
    pub const GAP: u16 = 1 << 12;
    /// The reading is older than the sensor's latest one in its file by more than the
    /// usual interval (the logger's clock was set back).
    pub const TIME_TRAVEL: u16 = 1 << 13;

    /// The bit of `test` on measure `measure` (0 temperature, 1 humidity, 2 pressure).
    pub const fn bit(measure: usize, test: Test) -> u16 {
        1 << (measure * 4 + test as usize)
    }

    pub fn has(self, measure: usize, test: Test) -> bool {
        self.0 & Self::bit(measure, test) != 0
    }

    pub fn set(&mut self, measure: usize, test: Test) {
        self.0 |= Self::bit(measure, test);
    }

    /// Every (measure name, test) flagged, measure by measure.
    pub fn list(self) -> impl Iterator<Item = (&'static str, Test)> {
        (0..3).flat_map(move |m| {
            Test::ALL
                .into_iter()
                .filter(move |t| self.has(m, *t))
                .map(move |t| (MEASURE_NAMES[m], t))
        })
    }

    /// The names of the reading's flags: `temperature:spike`, … then `gap` and
    /// `time_travel`.
    pub fn names(self) -> Vec<String> {
        let mut out: Vec<String> = self
            .list()
            .map(|(m, t)| format!("{m}:{}", t.name()))
            .collect();
        if self.0 & Self::GAP != 0 {
            out.push("gap".to_owned());
        }
        if self.0 & Self::TIME_TRAVEL != 0 {
            out.push("time_travel".to_owned());
        }
        out
    }

    /// `temperature:spike humidity:step gap`, or `-` when nothing is flagged.
    pub fn describe(self) -> String {
        let parts = self.names();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests;
