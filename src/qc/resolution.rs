//! What a series' own values say about how far its tests can see: its resolution
//! (the smallest change it can show) and how long it usually stays on one value.
//!
//! A series published at a coarse resolution (pressure in steps of 10 mbar, a
//! temperature in whole degrees) moves below its resolution most of the time: a change
//! of one step is the smallest it can show (no step fault, no spike), and it stays on a
//! value for as long as the weather keeps it within one step, days in a calm spell.
//! The flat test then judges a run against the series' own run lengths, which are
//! heavy-tailed (a calm week, then a stormy one), not against a fixed count.

/// Ended runs remembered: the series' own run lengths.
const RUNS: usize = 32;
/// A run is a flat line only if it lasts this many times the longest of the series'
/// last [`RUNS`] runs (that were no flat line): run lengths of a coarse series are
/// heavy-tailed, three times the longest of 32 is far out in that tail.
const LONGEST_FACTOR: u32 = 3;
/// Runs known before a series whose resolution is as coarse as a step fault is judged
/// flat at all: before that, how long it stays on one value is unknown.
const COARSE_MIN_RUNS: u32 = 8;
/// Powers of ten tried as the resolution of a value, coarsest first (10^3 … 10^-6).
const DECIMAL_EXPONENTS: std::ops::RangeInclusive<i32> = -6..=3;

/// A series' resolution and recent run lengths (fixed memory).
#[derive(Debug, Clone)]
pub(super) struct Resolution {
    /// The smallest non-zero change between consecutive values seen (∞: none yet).
    smallest_change: f64,
    /// The coarsest power of ten every value seen is a multiple of: what the
    /// resolution can be before the series has changed.
    decimal: f64,
    runs: [u32; RUNS],
    runs_seen: u32,
}

impl Default for Resolution {
    fn default() -> Self {
        Self {
            smallest_change: f64::INFINITY,
            decimal: 10f64.powi(*DECIMAL_EXPONENTS.end()),
            runs: [0; RUNS],
            runs_seen: 0,
        }
    }
}

impl Resolution {
    /// The series' resolution: its smallest change seen, or, before it has changed,
    /// the coarsest power of ten all its values are multiples of (790 and 780: 10).
    pub(super) fn step(&self) -> f64 {
        if self.smallest_change.is_finite() {
            self.smallest_change
        } else {
            self.decimal
        }
    }

    /// The smallest non-zero change seen (0 before the series has changed): a change
    /// no larger is the least the series can show, no fault.
    pub(super) fn smallest_change(&self) -> f64 {
        if self.smallest_change.is_finite() {
            self.smallest_change
        } else {
            0.0
        }
    }

    /// Takes value `x`, `before` the previous one.
    pub(super) fn value(&mut self, x: f64, before: Option<f64>) {
        if let Some(b) = before {
            let d = (x - b).abs();
            if d > 0.0 && d < self.smallest_change {
                self.smallest_change = d;
            }
        }
        if self.decimal > decimal_quantum(x) {
            self.decimal = decimal_quantum(x);
        }
    }

    /// A run of `count` readings ended; a flat line's is not the series' usual
    /// behaviour and is not remembered.
    pub(super) fn run_ended(&mut self, count: u32, flat: bool) {
        if flat {
            return;
        }
        self.runs[self.runs_seen as usize % RUNS] = count;
        self.runs_seen = self.runs_seen.saturating_add(1);
    }

    /// Whether a run of `count` readings is long enough to be a flat line for this
    /// series, where a step fault is `step_floor`: longer than [`LONGEST_FACTOR`] ×
    /// its longest recent run, and, for a series as coarse as a step fault, only once
    /// [`COARSE_MIN_RUNS`] runs are known.
    pub(super) fn long_enough(&self, count: u32, step_floor: f64) -> bool {
        if self.step() >= step_floor && self.runs_seen < COARSE_MIN_RUNS {
            return false;
        }
        let longest = self.runs.iter().copied().max().unwrap_or(0);
        count > LONGEST_FACTOR.saturating_mul(longest)
    }
}

/// The coarsest power of ten (10^-6 … 10^3) `x` is a whole multiple of (0: 10^3).
fn decimal_quantum(x: f64) -> f64 {
    for k in DECIMAL_EXPONENTS.rev() {
        let p = 10f64.powi(k);
        let r = x / p;
        if (r - r.round()).abs() <= 1e-6 * r.abs().max(1.0) {
            return p;
        }
    }
    10f64.powi(*DECIMAL_EXPONENTS.start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolution_is_the_smallest_change_or_the_values_decimals() {
        let mut r = Resolution::default();
        r.value(790.0, None);
        assert_eq!(r.step(), 10.0);
        r.value(780.0, Some(790.0));
        assert_eq!(r.step(), 10.0);
        r.value(20.13, None);
        assert!((r.step() - 10.0).abs() < 1e-9, "a change seen decides");
        let mut fine = Resolution::default();
        fine.value(20.13, None);
        assert!((fine.step() - 0.01).abs() < 1e-12);
        assert_eq!(decimal_quantum(0.0), 1000.0);
        assert!((decimal_quantum(1012.4) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_run_must_outlast_the_series_own_runs() {
        let mut r = Resolution::default();
        r.value(1.23, None);
        assert!(
            r.long_enough(10, 1.0),
            "nothing known of a fine series: yes"
        );
        for n in [5, 12, 7] {
            r.run_ended(n, false);
        }
        r.run_ended(500, true);
        assert!(!r.long_enough(36, 1.0));
        assert!(
            r.long_enough(37, 1.0),
            "a flat line's run is not remembered"
        );
        let mut coarse = Resolution::default();
        coarse.value(790.0, None);
        assert!(!coarse.long_enough(1000, 1.8), "coarse, no run known");
        for _ in 0..COARSE_MIN_RUNS {
            coarse.run_ended(2, false);
        }
        assert!(coarse.long_enough(7, 1.8));
    }
}
