//! What a file's quality control found ([`QcSummary`]): flags counted per measure and
//! test, and the flags it adds to readings stored before it (spikes decided late,
//! whole flat runs), for the canonical measures and the further ones.

use chrono::{DateTime, Utc};

use super::{Flags, Test};

/// A spike found on a reading stored by an earlier file (its last reading of the
/// sensor): `add` is or-ed into its stored flags in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Amendment {
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub add: u16,
}

/// A flat line found: the sensor's readings from `from` up to `to` (excluded) whose
/// value of `measure` is `value` get the flat flag of that measure, in this file
/// (they are stored in the same transaction before the flag is added) and in
/// earlier ones; each file's `file_metrics` count the readings flagged.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAmendment {
    pub sensor: String,
    pub measure: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub value: f64,
}

/// A spike found on a further measure of a reading stored by an earlier file: `add`
/// (test bits) is or-ed into its row of the further measures' flags.
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherAmendment {
    pub sensor: String,
    pub file_id: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub measure: String,
    pub add: u8,
}

/// A flat line found on a further measure: as [`RunAmendment`], the readings from
/// `from` up to `to` (excluded) whose value of `measure` is `value` get its flat bit.
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherRun {
    pub sensor: String,
    pub measure: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub value: f64,
}

/// The test bit of `test` in a further measure's flags.
pub const fn further_bit(test: Test) -> u8 {
    1 << test as u8
}

impl RunAmendment {
    /// The flag added.
    pub fn add(&self) -> u16 {
        Flags::bit(self.measure, Test::Flat)
    }
}

/// What a file's QC found: flags per measure and test over its readings, and the
/// flags it adds to earlier readings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcSummary {
    /// `counts[measure][k]`: readings of this file flagged, `k` as in [`COUNTED`]
    /// (the flat readings found by a [`RunAmendment`] are counted by the database).
    pub counts: [[u64; 6]; 3],
    pub amendments: Vec<Amendment>,
    pub runs: Vec<RunAmendment>,
    /// Per further measure of the settings (in their order): its name and counts, as
    /// `counts`.
    pub further_counts: Vec<(String, [u64; 6])>,
    pub further_amendments: Vec<FurtherAmendment>,
    pub further_runs: Vec<FurtherRun>,
    /// This file's readings with a further measure flagged: the sink stores them
    /// (`qc_measure_flags`) in the load's transaction, before the amendments.
    pub further_flagged: Vec<FurtherFlagged>,
}

/// A reading of the file with flags on a further measure.
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherFlagged {
    pub sensor: String,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub measure: String,
    pub flags: u8,
}

impl QcSummary {
    /// `counts` of one measure, as in [`COUNTED`].
    pub fn of(&self, measure: &str) -> [u64; 6] {
        match super::MEASURE_NAMES.iter().position(|m| *m == measure) {
            Some(m) => self.counts[m],
            None => self
                .further_counts
                .iter()
                .find(|(name, _)| name == measure)
                .map_or([0; 6], |(_, c)| *c),
        }
    }

    /// Whether the file adds flags to readings stored before it.
    pub fn amends(&self) -> bool {
        !self.amendments.is_empty()
            || !self.runs.is_empty()
            || !self.further_amendments.is_empty()
            || !self.further_runs.is_empty()
    }

    /// Counts the further measures' flags of a reading with time flags `flags`.
    pub(super) fn count_further(&mut self, flags: u16, further: &[Option<u8>]) {
        let gap = u64::from(flags & Flags::GAP != 0);
        let travel = u64::from(flags & Flags::TIME_TRAVEL != 0);
        for ((_, row), bits) in self.further_counts.iter_mut().zip(further) {
            let Some(bits) = bits else { continue };
            for (t, n) in row.iter_mut().take(4).enumerate() {
                *n += u64::from(bits >> t & 1);
            }
            row[4] += gap;
            row[5] += travel;
        }
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

    /// Counts a reading's flags; `present`: the measures it holds (bit per measure).
    pub(super) fn count(&mut self, flags: u16, present: u8) {
        if flags == 0 {
            return;
        }
        let gap = u64::from(flags & Flags::GAP != 0);
        let travel = u64::from(flags & Flags::TIME_TRAVEL != 0);
        for (m, row) in self.counts.iter_mut().enumerate() {
            if present >> m & 1 == 0 {
                continue;
            }
            for (t, n) in row.iter_mut().take(4).enumerate() {
                *n += u64::from(flags >> (m * 4 + t) & 1);
            }
            row[4] += gap;
            row[5] += travel;
        }
    }
}
