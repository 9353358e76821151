//! The four value tests on one measure of one sensor: the neighbours (spike), the
//! step reference, the current run of equal values (flat line) and the outlier
//! window.
//!
//! A reading enters the outlier window and becomes the step reference only once its
//! spike is decided (by the next reading) and only if it is neither a spike nor part
//! of a flat line; a reading decided to be a step (a level shift) empties the window
//! first. So normal readings after a fault are judged against normal readings, not
//! against the stuck values or the old level.

use super::Test;
use super::cadence::Limits;
use super::resolution::Resolution;
use super::window::Window;

/// Readings in the window before the outlier test judges (or the whole window, if
/// shorter).
const OUTLIER_MIN_READINGS: usize = 20;
/// The share of the step threshold an outlier must have moved from the value before.
const OUTLIER_JUMP: f64 = 0.5;
/// The consistency constant of the robust z-score (the normal distribution's MAD).
const Z_SCALE: f64 = 0.6745;
pub(super) const MICROS_PER_MINUTE: f64 = 60e6;

const STEP: u16 = 1 << Test::Step as u16;
const FLAT: u16 = 1 << Test::Flat as u16;
const OUTLIER: u16 = 1 << Test::Outlier as u16;

/// The last reading, its spike not decided yet, with its step and flat bits.
#[derive(Debug, Clone, Copy)]
struct Held {
    t: i64,
    x: f64,
    bits: u16,
}

/// A run of equal values that has just become a flat line: its readings from `from`
/// (µs) up to `to` (excluded: the reading that made it one, flagged already) are to
/// be flagged too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FlatRun {
    pub from: i64,
    pub to: i64,
    pub value: f64,
}

/// What one value tells: whether the previous value was a spike, the step, flat and
/// outlier bits of this one (bit = test), and a flat run to flag back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observed {
    pub spike: bool,
    pub bits: u16,
    pub run: Option<FlatRun>,
}

#[derive(Debug, Clone)]
pub(super) struct Track {
    /// The value before `pending`.
    before: Option<f64>,
    pending: Option<Held>,
    /// The last value known to be no spike and no flat line: what a step is measured
    /// from.
    reference: Option<(i64, f64)>,
    run_value: f64,
    run_count: u32,
    run_start: i64,
    /// The run is a flat line already (its earlier readings were flagged back).
    run_flat: bool,
    /// The reference before the run began: a stuck run is no reference.
    run_reference: Option<(i64, f64)>,
    /// The last transitions between readings of runs that ended, a bit each: 1 where
    /// a value repeated the one before. A series that repeats its
    /// values often (coarse resolution) needs a longer run to be a flat line.
    repeats: u128,
    transitions: u8,
    /// The series' resolution and its recent run lengths.
    resolution: Resolution,
    window: Window,
}

/// Transitions known before the repeat rate counts.
const MIN_TRANSITIONS: u8 = 32;
/// A flat line must be at most this likely by chance, at the series' repeat rate.
const FLAT_CHANCE: f64 = 1e-4;

impl Track {
    pub(super) fn new(window: usize) -> Self {
        Self {
            before: None,
            pending: None,
            reference: None,
            run_value: f64::NAN,
            run_count: 0,
            run_start: 0,
            run_flat: false,
            run_reference: None,
            repeats: 0,
            transitions: 0,
            resolution: Resolution::default(),
            window: Window::new(window),
        }
    }

    /// A track starting afresh (after a long silence, or a clock gone back years),
    /// keeping what it knows of the sensor rather than of its recent values: how often
    /// its values repeat.
    pub(super) fn restarted(&self, window: usize) -> Self {
        Self {
            repeats: self.repeats,
            transitions: self.transitions,
            resolution: self.resolution.clone(),
            ..Self::new(window)
        }
    }

    /// Takes value `x` at `t` (µs) judged with `c`. Replaying stored readings,
    /// `stored` says what their flags already say: whether the pending value was a
    /// spike, and whether `x` is part of a flat line (its run may have begun before
    /// the history read).
    pub(super) fn observe(
        &mut self,
        t: i64,
        x: f64,
        c: &Limits,
        stored: Option<(bool, bool)>,
    ) -> Observed {
        let known = stored.map(|(spike, _)| spike);
        let stored_flat = stored.is_some_and(|(_, flat)| flat);
        // A change of one step of the series' resolution is the smallest it can show:
        // no spike, no step fault.
        let res = self.resolution.smallest_change();
        let spike = known.unwrap_or_else(|| match (self.before, self.pending) {
            (Some(b), Some(p)) => is_spike(b, p.x, x, c, res),
            _ => false,
        });
        self.resolution.value(x, self.pending.map(|p| p.x));
        if let Some(p) = self.pending {
            self.settle(p, spike);
        }
        let mut bits = 0;
        // A value far from the window is an outlier only if it also moved away from
        // the value before it: a series that moves steadily (a sunny morning after a
        // still night) is weather, however far it has come from the window's median.
        let mut jumped = true;
        if let Some((rt, rv)) = self.reference {
            let minutes = (t - rt) as f64 / MICROS_PER_MINUTE;
            let threshold = c.step_threshold(minutes).max(res);
            if (x - rv).abs() > threshold {
                bits |= STEP;
            }
            jumped = (x - rv).abs() > threshold * OUTLIER_JUMP;
        }
        let mut run = None;
        if self.run_count > 0 && x == self.run_value {
            self.run_count = self.run_count.saturating_add(1);
        } else {
            self.run_ended();
            self.run_value = x;
            self.run_count = 1;
            self.run_start = t;
            self.run_flat = false;
            self.run_reference = self.reference;
        }
        let run_minutes = (t - self.run_start) as f64 / MICROS_PER_MINUTE;
        if stored_flat
            || (c.is_flat(self.run_count, run_minutes)
                && self.run_count >= self.chance_run()
                && self.resolution.long_enough(self.run_count, c.step_floor))
        {
            bits |= FLAT;
            if !self.run_flat {
                // The whole run is the fault: its values leave the window and the
                // step is measured from the value before it.
                self.run_flat = true;
                self.window.clear();
                self.reference = self.run_reference;
                run = Some(FlatRun {
                    from: self.run_start,
                    to: t,
                    value: x,
                })
                .filter(|r| r.from < r.to && stored.is_none());
            }
        } else if jumped && self.is_outlier(x, c) {
            bits |= OUTLIER;
        }
        self.before = self.pending.map(|p| p.x);
        self.pending = Some(Held { t, x, bits });
        Observed { spike, bits, run }
    }

    /// Counts the transitions of the run that just ended (a flat line's too: a series
    /// that stays on one value for days at its resolution does so again).
    fn run_ended(&mut self) {
        if self.run_count == 0 {
            return;
        }
        self.resolution.run_ended(self.run_count, self.run_flat);
        let repeated = (self.run_count - 1).min(128);
        for _ in 0..repeated {
            self.repeats = self.repeats << 1 | 1;
        }
        self.repeats <<= 1;
        self.transitions = self.transitions.saturating_add(repeated as u8 + 1).min(128);
    }

    /// The shortest run that is unlikely by chance (below [`FLAT_CHANCE`]) at the rate
    /// this series repeats a value: 0 for a series that does not (or is not known yet).
    fn chance_run(&self) -> u32 {
        if self.transitions < MIN_TRANSITIONS {
            return 0;
        }
        let known = if self.transitions >= 128 {
            u128::MAX
        } else {
            (1u128 << self.transitions) - 1
        };
        let rate = f64::from((self.repeats & known).count_ones()) / f64::from(self.transitions);
        if rate <= 0.0 {
            0
        } else if rate >= 1.0 {
            u32::MAX
        } else {
            (FLAT_CHANCE.ln() / rate.ln()).ceil() as u32
        }
    }

    /// The pending value is decided: unless a spike or a flat line, it becomes the
    /// step reference and enters the window (emptied first when it is a step).
    fn settle(&mut self, p: Held, spike: bool) {
        if spike || p.bits & FLAT != 0 {
            return;
        }
        self.reference = Some((p.t, p.x));
        if p.bits & STEP != 0 {
            self.window.clear();
        }
        self.window.push(p.x);
    }

    /// The reading has no value of this measure: the pending value has no next
    /// neighbour, so it is no spike.
    pub(super) fn skip(&mut self) {
        if let Some(p) = self.pending.take() {
            self.settle(p, false);
        }
        self.before = None;
    }

    fn is_outlier(&self, x: f64, c: &Limits) -> bool {
        let n = self.window.len();
        if n == 0 || n < OUTLIER_MIN_READINGS.min(self.window.capacity()) {
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
}

/// `p` stands out from both neighbours `b` and `x` on the same side, by more than
/// the spike limit and the series' resolution `res`, and they agree.
fn is_spike(b: f64, p: f64, x: f64, c: &Limits, res: f64) -> bool {
    let (d1, d2) = (p - b, p - x);
    let spike = c.spike.max(res);
    d1.abs() > spike
        && d2.abs() > spike
        && (d1 > 0.0) == (d2 > 0.0)
        && (x - b).abs() <= c.spike_tolerance.max(res)
}
