//! Enrich stage: derived values and lineage for a valid [`Reading`]. Original values
//! are kept as read; derived ones sit beside them.

use crate::units::{KELVIN_OFFSET, Ranges};
use crate::validate::Reading;

/// A valid reading with its derived columns. Lineage (file id, line, ingest time) is the
/// file's id, `reading.line`, and the load transaction's time.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedRow {
    pub reading: Reading,
    pub temperature_k: Option<f64>,
    /// `(value - min) / (max - min)` over the configured range: 0..=1 for accepted values,
    /// comparable across files.
    pub temperature_norm: Option<f64>,
    pub humidity_norm: Option<f64>,
    pub pressure_norm: Option<f64>,
    /// Quality flags ([`crate::qc::Flags`]): 0 until the QC stage judges the reading.
    pub qc_flags: u16,
    /// Quality flags of the further measures the QC settings name, in their order
    /// (bit = test; `None` where the reading has no value): empty when they name none.
    pub further_qc: crate::qc::FurtherFlags,
}

/// Adds the derived columns to `reading`.
pub fn enrich(reading: Reading, ranges: &Ranges) -> EnrichedRow {
    EnrichedRow {
        temperature_k: reading.temperature.map(|c| c + KELVIN_OFFSET),
        temperature_norm: reading.temperature.map(|v| ranges.temperature.normalize(v)),
        humidity_norm: reading.humidity.map(|v| ranges.humidity.normalize(v)),
        pressure_norm: reading.pressure.map(|v| ranges.pressure.normalize(v)),
        qc_flags: 0,
        further_qc: crate::qc::FurtherFlags::default(),
        reading,
    }
}

impl crate::qc::Judged for EnrichedRow {
    fn sensor(&self) -> &str {
        &self.reading.sensor_id
    }

    fn line(&self) -> i64 {
        self.reading.line as i64
    }

    fn timestamp(&self) -> chrono::DateTime<chrono::Utc> {
        self.reading.timestamp
    }

    fn value(&self, m: usize) -> Option<f64> {
        match m {
            0 => self.reading.temperature,
            1 => self.reading.humidity,
            _ => self.reading.pressure,
        }
    }

    fn flags_mut(&mut self) -> &mut u16 {
        &mut self.qc_flags
    }

    /// Read from `extra`, where every further measure is kept under its name (as a
    /// number, or `null`), parsed once per reading.
    fn further(&self, measures: &[crate::qc::FurtherMeasure]) -> Vec<Option<f64>> {
        crate::qc::further_values(self.reading.extra.as_deref(), measures)
    }

    fn further_flags_mut(&mut self) -> &mut crate::qc::FurtherFlags {
        &mut self.further_qc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn derived_values_use_the_configured_ranges() {
        let reading = Reading {
            line: 2,
            timestamp: DateTime::UNIX_EPOCH,
            sensor_id: "s".into(),
            temperature: Some(5.0),
            humidity: Some(25.0),
            pressure: None,
            extra: None,
            further: Vec::new(),
            coded_missing: 0,
        };
        let row = enrich(reading.clone(), &Ranges::default());
        assert_eq!(row.reading, reading, "originals are untouched");
        assert!((row.temperature_k.unwrap() - 278.15).abs() < 1e-12);
        assert!((row.temperature_norm.unwrap() - 0.5).abs() < 1e-12);
        assert!((row.humidity_norm.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(row.pressure_norm, None);
    }
}
