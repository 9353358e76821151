//! Accepted measurement ranges (`TEMPERATURE_MIN` … `PRESSURE_MAX` in the settings).

/// Accepted range of one measurement; values outside it make the row invalid, and
/// `*_norm` columns are `(value - min) / (max - min)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    /// True when `v` lies within the range, bounds included.
    pub fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }

    /// Where `v` lies in the range: 0 at `min`, 1 at `max`.
    pub fn normalize(&self, v: f64) -> f64 {
        (v - self.min) / (self.max - self.min)
    }
}

/// Accepted ranges of the three canonical measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranges {
    pub temperature: Range,
    pub humidity: Range,
    pub pressure: Range,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            temperature: Range {
                min: -50.0,
                max: 60.0,
            },
            humidity: Range {
                min: 0.0,
                max: 100.0,
            },
            pressure: Range {
                min: 800.0,
                max: 1100.0,
            },
        }
    }
}
