//! Read-only questions the browser dashboard asks ([`DashboardQueries`]), and the rows
//! they answer with. Both backends implement them in their `dashboard.rs`; every
//! question on readings is a range on `(sensor_id, ts)` or on `ts`, so it uses the
//! `sensor_readings_sensor_ts` index (and prunes monthly partitions where there are
//! some) instead of scanning all history.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{EntryStatus, FollowedFile, LedgerQueries, LedgerRecord, SinkError};

/// Files finished and rows loaded in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MinuteCount {
    /// The minute's start (UTC).
    pub minute: DateTime<Utc>,
    pub files: u64,
    pub rows: u64,
}

/// One measured column of one loaded file (a `file_metrics` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnMetrics {
    pub column: String,
    pub values: u64,
    pub nulls: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    pub source_unit: Option<String>,
}

/// A sensor's latest reading and its readings over the day before a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorSummary {
    pub sensor_id: String,
    pub last_reading: DateTime<Utc>,
    /// Readings in the 24 hours before the moment asked about.
    pub day_readings: u64,
    /// First and last of those readings.
    pub day_first: Option<DateTime<Utc>>,
    pub day_last: Option<DateTime<Utc>>,
}

impl SensorSummary {
    /// The mean time between its readings over the day, when it had at least 3.
    pub fn usual_interval_seconds(&self) -> Option<f64> {
        match (self.day_first, self.day_last) {
            (Some(first), Some(last)) if self.day_readings >= 3 => {
                let span = (last - first).num_milliseconds() as f64 / 1000.0;
                (span > 0.0).then(|| span / (self.day_readings - 1) as f64)
            }
            _ => None,
        }
    }
}

/// One time bucket of one sensor: mean, minimum and maximum of each measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub readings: u64,
    pub temperature: Option<Band>,
    pub humidity: Option<Band>,
    pub pressure: Option<Band>,
    /// Readings in the bucket whose temperature, humidity, pressure (in that order)
    /// carry a quality flag (`qc_flags`).
    pub flagged: [u64; 3],
}

/// Mean, minimum and maximum in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Band {
    /// A band from nullable mean, min and max (all present or none).
    pub(crate) fn from_parts(
        mean: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Option<Self> {
        Some(Self {
            mean: mean?,
            min: min?,
            max: max?,
        })
    }
}

/// A followed file (append mode) as the dashboard lists it: its stored position and
/// the ledger status of the increment that committed it.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedSummary {
    pub position: FollowedFile,
    /// `None` when the ledger row is gone (removed by retention).
    pub last_status: Option<EntryStatus>,
}

/// Read-only questions of the dashboard. Implementations answer from a pool that
/// cannot write (PostgreSQL: `default_transaction_read_only`; SQLite: `query_only`).
#[async_trait]
pub trait DashboardQueries: LedgerQueries {
    /// Files finished and rows loaded per minute in `[from, to)`, minutes with none
    /// left out, oldest first.
    async fn per_minute(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, SinkError>;

    /// Ledger rows, most recently finished first: `limit` of them after skipping
    /// `offset`.
    async fn recent_files(&self, limit: u32, offset: u64) -> Result<Vec<LedgerRecord>, SinkError>;

    /// One ledger row.
    async fn file(&self, id: Uuid) -> Result<Option<LedgerRecord>, SinkError>;

    /// The `file_metrics` rows of one loaded file.
    async fn file_metrics(&self, id: Uuid) -> Result<Vec<ColumnMetrics>, SinkError>;

    /// Every sensor with its last reading and its readings in `[at - 24 h, at)`.
    async fn sensors(&self, at: DateTime<Utc>) -> Result<Vec<SensorSummary>, SinkError>;

    /// One sensor's readings in `[from, to)` in buckets of `bucket_seconds`, oldest first.
    async fn series(
        &self,
        sensor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<SeriesPoint>, SinkError>;

    /// Every followed file (append mode) by name, with its last increment's ledger
    /// status. A store that does not follow files has none.
    async fn followed(&self) -> Result<Vec<FollowedSummary>, SinkError> {
        Ok(Vec::new())
    }
}
