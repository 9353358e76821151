//! Statistics stage: per-column summaries computed in the same pass as validation,
//! in constant memory, with Welford's numerically stable update.

use chrono::{DateTime, Utc};

use crate::profile::MeasureTarget;
use crate::profile::plan::Plan;
use crate::units::Quantity;
use crate::validate::Reading;

/// Running count, nulls, extremes, mean and variance of one column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ColumnStats {
    /// Non-null values seen.
    pub count: u64,
    pub nulls: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    mean: f64,
    /// Sum of squared distances from the mean (Welford's M2).
    m2: f64,
}

impl ColumnStats {
    pub fn push(&mut self, value: Option<f64>) {
        let Some(x) = value else {
            self.nulls += 1;
            return;
        };
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Sample standard deviation (n − 1); needs at least two values.
    pub fn stddev(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

/// Summary of one measured column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    /// The measure's name (`temperature`, or a further measure's).
    pub name: String,
    /// The unit the file wrote it in.
    pub source_unit: Option<String>,
    pub stats: ColumnStats,
    /// Cells that held a missing-value code (counted in `stats.nulls` too).
    pub coded_missing: u64,
    slot: Slot,
}

/// Where a column's values sit in a [`Reading`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Canonical(Quantity),
    Further(usize),
}

/// Summary of one file's valid rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    pub rows: u64,
    /// The measured columns, in the plan's order.
    pub columns: Vec<ColumnSummary>,
    /// Earliest and latest timestamp in the file.
    pub first_timestamp: Option<DateTime<Utc>>,
    pub last_timestamp: Option<DateTime<Utc>>,
    /// Rows skipped because every cell was empty.
    pub blank_rows: u64,
    /// Bad rows left out of a partial load (skip-rows policy).
    pub rejected_rows: u64,
    /// What quality control flagged (set by the pipeline just before the commit).
    pub qc: crate::qc::QcSummary,
}

impl FileStats {
    /// Empty statistics for a file read with `plan`.
    pub fn new(plan: &Plan) -> Self {
        let mut further = 0;
        let columns = plan
            .measures
            .iter()
            .map(|m| ColumnSummary {
                name: m.name.clone(),
                source_unit: m.unit_text.clone(),
                stats: ColumnStats::default(),
                coded_missing: 0,
                slot: match &m.target {
                    MeasureTarget::Canonical(q) => Slot::Canonical(*q),
                    MeasureTarget::Further(_) => {
                        further += 1;
                        Slot::Further(further - 1)
                    }
                },
            })
            .collect();
        Self {
            columns,
            ..Self::default()
        }
    }

    pub fn push(&mut self, r: &Reading) {
        self.rows += 1;
        for (i, c) in self.columns.iter_mut().enumerate() {
            let value = match c.slot {
                Slot::Canonical(Quantity::Temperature) => r.temperature,
                Slot::Canonical(Quantity::Humidity) => r.humidity,
                Slot::Canonical(Quantity::Pressure) => r.pressure,
                Slot::Further(k) => r.further.get(k).copied().flatten(),
            };
            c.stats.push(value);
            if i < 64 && r.coded_missing & (1 << i) != 0 {
                c.coded_missing += 1;
            }
        }
        self.first_timestamp = Some(
            self.first_timestamp
                .map_or(r.timestamp, |t| t.min(r.timestamp)),
        );
        self.last_timestamp = Some(
            self.last_timestamp
                .map_or(r.timestamp, |t| t.max(r.timestamp)),
        );
    }

    /// The measured columns the file has, by name.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &ColumnStats)> {
        self.columns.iter().map(|c| (c.name.as_str(), &c.stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::statistics::{Data, Distribution, Max, Min};

    fn stats_of(values: &[Option<f64>]) -> ColumnStats {
        let mut s = ColumnStats::default();
        values.iter().for_each(|v| s.push(*v));
        s
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn matches_statrs_on_the_same_values() {
        // A deterministic pseudo-random walk with gaps, like a real sensor.
        let mut x = 0x2545F4914F6CDD1Du64;
        let values: Vec<Option<f64>> = (0..10_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (i % 97 != 0).then(|| 20.0 + (x % 10_000) as f64 / 1000.0 - 5.0)
            })
            .collect();
        let s = stats_of(&values);
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        let data = Data::new(present.clone());
        assert_eq!(s.count, present.len() as u64);
        assert_eq!(s.nulls, (values.len() - present.len()) as u64);
        assert_eq!(s.min, Some(data.min()));
        assert_eq!(s.max, Some(data.max()));
        assert!(close(s.mean().unwrap(), data.mean().unwrap()));
        assert!(close(s.stddev().unwrap(), data.std_dev().unwrap()));
    }

    #[test]
    fn stable_with_a_large_offset() {
        // The naive sum-of-squares formula loses every digit here.
        let values: Vec<Option<f64>> = [4.0, 7.0, 13.0, 16.0]
            .iter()
            .map(|v| Some(1e9 + v))
            .collect();
        let s = stats_of(&values);
        let expected = Data::new(values.iter().flatten().copied().collect::<Vec<_>>());
        assert!(close(s.stddev().unwrap(), expected.std_dev().unwrap()));
        assert!(close(s.stddev().unwrap(), 30f64.sqrt()));
    }

    #[test]
    fn only_the_files_columns_are_reported() {
        let plan = crate::profile::plan::tests::default_plan("ts,id,rh,wind");
        let stats = FileStats::new(&plan);
        let names: Vec<_> = stats.columns().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["humidity"]);
    }

    #[test]
    fn empty_and_single_value_columns() {
        let s = stats_of(&[None, None]);
        assert_eq!(
            (s.count, s.nulls, s.min, s.mean(), s.stddev()),
            (0, 2, None, None, None)
        );
        let s = stats_of(&[Some(3.0)]);
        assert_eq!((s.mean(), s.stddev()), (Some(3.0), None));
    }
}
