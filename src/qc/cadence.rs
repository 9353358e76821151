//! A sensor's usual interval between readings (its cadence), and the limits of the
//! four value tests derived from it: the thresholds of [`MeasureQc`] are meant for
//! readings 1 to 60 minutes apart; an hourly or daily series is judged with limits
//! widened for its interval (a day-to-day change of a daily maximum is no step
//! fault, two equal daily values are no stuck sensor).

use super::MeasureQc;

/// Intervals the usual one is the median of.
const INTERVALS: usize = 16;
/// Intervals known before the usual one is used (gap, time travel, widened limits).
const MIN_INTERVALS: u32 = 4;
/// Above this interval the step and spike limits widen.
const WIDEN_ABOVE_MINUTES: f64 = 10.0;
/// Above this interval a flat run must last longer than `flat_minutes`.
const FLAT_LONGER_ABOVE_MINUTES: f64 = 10.0;
/// A flat run judged by its duration has at least this many readings, whatever the
/// interval: a few equal values of a coarse series are chance, not a stuck sensor.
const FLAT_MIN_READINGS: u32 = 8;

/// The median of a sensor's last [`INTERVALS`] intervals (µs). Fixed memory, no
/// allocation; a pure function of the intervals seen, so a sensor replayed from its
/// stored history reaches the same value as one followed through every file.
#[derive(Debug, Clone)]
pub(super) struct Cadence {
    ring: [i64; INTERVALS],
    seen: u32,
    usual: i64,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            ring: [0; INTERVALS],
            seen: 0,
            usual: 0,
        }
    }
}

impl Cadence {
    /// The usual interval in µs, once known.
    pub(super) fn usual(&self) -> Option<i64> {
        (self.seen >= MIN_INTERVALS).then_some(self.usual)
    }

    /// Takes an interval (µs). Equal times (several readings at one instant) are no
    /// interval.
    pub(super) fn push(&mut self, dt: i64) {
        if dt <= 0 {
            return;
        }
        let at = self.seen as usize % INTERVALS;
        let old = self.ring[at];
        self.ring[at] = dt;
        self.seen = self.seen.saturating_add(1);
        // The common case, a regular series: the same interval replaces itself.
        if old == dt && self.seen as usize > INTERVALS {
            return;
        }
        let n = (self.seen as usize).min(INTERVALS);
        let mut sorted = self.ring;
        let part = &mut sorted[..n];
        let (_, median, _) = part.select_nth_unstable(n / 2);
        self.usual = *median;
    }
}

/// The limits of the four tests for one measure at one cadence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Limits {
    pub step_per_minute: f64,
    pub step_floor: f64,
    pub step_max: f64,
    pub spike: f64,
    pub spike_tolerance: f64,
    pub flat_readings: u32,
    pub flat_minutes: f64,
    pub flat_min_readings: u32,
    pub outlier_z: f64,
    pub outlier_mad_floor: f64,
}

impl Limits {
    /// `c`'s thresholds for readings `interval` minutes apart (as they are when the
    /// interval is not known yet):
    /// - above 10 minutes, the step floor and cap, the spike and its tolerance grow
    ///   with the cube root of the interval in tens of minutes (× 1.8 hourly, × 5.2
    ///   daily): changes over longer intervals are larger (humidity moves 30 %/h when
    ///   morning dew burns off), but grow slower than the interval;
    /// - the outlier MAD floor grows with the square root of the interval in minutes
    ///   (× 3.2 at ten minutes, × 7.7 hourly): the window of `window` readings spans
    ///   that much longer, and a wandering measure (pressure) strays further over it;
    /// - above 10 minutes, `flat_minutes` grows with the square root of the interval
    ///   in tens of minutes (× 2.4 hourly, × 12 daily), and a run judged by its
    ///   duration needs at least 8 readings: coarse series repeat values by chance.
    pub(super) fn new(c: &MeasureQc, interval_minutes: Option<f64>) -> Self {
        let minutes = interval_minutes.unwrap_or(1.0);
        let widen = (minutes / WIDEN_ABOVE_MINUTES).max(1.0).cbrt();
        let longer = (minutes / FLAT_LONGER_ABOVE_MINUTES).max(1.0).sqrt();
        let coarse = minutes > FLAT_LONGER_ABOVE_MINUTES;
        Self {
            step_per_minute: c.step_per_minute,
            step_floor: c.step_floor * widen,
            step_max: c.step_max * widen,
            spike: c.spike * widen,
            spike_tolerance: c.spike_tolerance * widen,
            flat_readings: c.flat_readings,
            flat_minutes: c.flat_minutes * longer,
            flat_min_readings: if coarse { FLAT_MIN_READINGS } else { 2 },
            outlier_z: c.outlier_z,
            outlier_mad_floor: c.outlier_mad_floor * minutes.max(1.0).sqrt(),
        }
    }

    /// The step threshold for a gap of `minutes`.
    pub(super) fn step_threshold(&self, minutes: f64) -> f64 {
        (self.step_per_minute * minutes).clamp(self.step_floor, self.step_max.max(self.step_floor))
    }

    /// Whether a run of `count` equal values over `minutes` is a flat line.
    pub(super) fn is_flat(&self, count: u32, minutes: f64) -> bool {
        count >= self.flat_readings
            || (count >= self.flat_min_readings.min(self.flat_readings)
                && minutes >= self.flat_minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qc::QcConfig;

    #[test]
    fn the_usual_interval_is_the_median_and_ignores_a_few_gaps() {
        let mut c = Cadence::default();
        assert_eq!(c.usual(), None);
        for dt in [60, 60, 60, 600, 60, 60, 3600, 60] {
            c.push(dt);
        }
        assert_eq!(c.usual(), Some(60));
        for _ in 0..20 {
            c.push(3600);
        }
        assert_eq!(c.usual(), Some(3600), "a new cadence takes over");
        c.push(0);
        assert_eq!(c.usual(), Some(3600));
    }

    #[test]
    fn limits_widen_for_hourly_and_daily_series_only() {
        let t = QcConfig::default().measures[0];
        let minute = Limits::new(&t, Some(1.0));
        assert_eq!(minute, Limits::new(&t, None));
        assert_eq!(minute.spike, t.spike);
        assert_eq!(minute.flat_minutes, t.flat_minutes);
        let ten = Limits::new(&t, Some(10.0));
        assert_eq!((ten.step_max, ten.spike), (t.step_max, t.spike));
        let hourly = Limits::new(&t, Some(60.0));
        assert!(hourly.spike > 1.5 * t.spike);
        assert!(hourly.flat_minutes > 2.0 * t.flat_minutes);
        let daily = Limits::new(&t, Some(1440.0));
        assert!(daily.step_max > 2.5 * t.step_max);
        assert!(!daily.is_flat(3, 3.0 * 1440.0), "three equal days");
        assert!(daily.is_flat(8, 7.0 * 1440.0));
    }
}
