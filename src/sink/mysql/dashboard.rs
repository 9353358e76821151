//! The dashboard's read-only queries on MariaDB/MySQL ([`DashboardQueries`]), and the
//! read-only pool they run on. Every question on readings is a range on
//! `(sensor_id, ts)` or on `ts`.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::ledger::{RECORD_COLUMNS, ledger_record};
use super::{MysqlStore, dt, err};
use crate::sink::MysqlSettings;
use crate::sink::dashboard::{
    Band, ColumnMetrics, DashboardQueries, FollowedSummary, MinuteCount, SensorSummary, SeriesPoint,
};
use crate::sink::{LedgerRecord, SinkError};
use crate::sys::agent_name;

impl MysqlStore {
    /// A store for the dashboard: connections (opened on first use) whose transactions
    /// are read-only (`SET SESSION TRANSACTION READ ONLY`), so no page can write
    /// whatever its SQL says.
    pub fn read_only(settings: &MysqlSettings, connections: u32) -> Self {
        Self::with_pool(settings, connections, &agent_name(), true)
    }
}

fn epoch(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

#[async_trait]
impl DashboardQueries for MysqlStore {
    async fn per_minute(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, SinkError> {
        let rows: Vec<(DateTime<Utc>, i64, i64)> = sqlx::query_as(
            "SELECT CAST(DATE_FORMAT(finished_at, '%Y-%m-%d %H:%i:00') AS DATETIME(6)) AS m, \
             count(*), CAST(coalesce(sum(CASE WHEN status IN ('loaded', 'partial') \
             THEN row_count END), 0) AS SIGNED) \
             FROM ingest_files WHERE finished_at >= ? AND finished_at < ? \
             GROUP BY m ORDER BY m",
        )
        .bind(dt(from))
        .bind(dt(to))
        .fetch_all(&self.pool)
        .await
        .map_err(err("counting files per minute"))?;
        Ok(rows
            .into_iter()
            .map(|(minute, files, rows)| MinuteCount {
                minute,
                files: files.max(0) as u64,
                rows: rows.max(0) as u64,
            })
            .collect())
    }

    async fn recent_files(&self, limit: u32, offset: u64) -> Result<Vec<LedgerRecord>, SinkError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files \
             ORDER BY finished_at DESC, id LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(offset.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing recent files"))?;
        rows.iter().map(ledger_record).collect()
    }

    async fn file(&self, id: Uuid) -> Result<Option<LedgerRecord>, SinkError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM ingest_files WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.hyphenated().to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a ledger row"))?;
        row.as_ref().map(ledger_record).transpose()
    }

    async fn file_metrics(&self, id: Uuid) -> Result<Vec<ColumnMetrics>, SinkError> {
        type Metric = (
            String,
            i64,
            i64,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<String>,
        );
        let rows: Vec<Metric> = sqlx::query_as(
            "SELECT column_name, value_count, null_count, min_value, max_value, mean_value, \
             stddev_value, source_unit FROM file_metrics WHERE file_id = ? ORDER BY column_name",
        )
        .bind(id.hyphenated().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading file metrics"))?;
        Ok(rows
            .into_iter()
            .map(
                |(column, values, nulls, min, max, mean, stddev, source_unit)| ColumnMetrics {
                    column,
                    values: values.max(0) as u64,
                    nulls: nulls.max(0) as u64,
                    min,
                    max,
                    mean,
                    stddev,
                    source_unit,
                },
            )
            .collect())
    }

    async fn sensors(&self, at: DateTime<Utc>) -> Result<Vec<SensorSummary>, SinkError> {
        // The last reading per sensor is a loose scan of the (sensor_id, ts) index
        // ("Using index for group-by"); the day's figures a range of the ts index.
        type Sensor = (
            String,
            DateTime<Utc>,
            i64,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Sensor> = sqlx::query_as(
            "SELECT l.sensor_id, l.last_ts, coalesce(d.n, 0), d.first_ts, d.day_last_ts \
             FROM (SELECT sensor_id, max(ts) AS last_ts FROM sensor_readings \
                   GROUP BY sensor_id) AS l \
             LEFT JOIN (SELECT sensor_id, count(*) AS n, min(ts) AS first_ts, \
                        max(ts) AS day_last_ts FROM sensor_readings \
                        WHERE ts >= ? AND ts < ? GROUP BY sensor_id) AS d \
                    ON d.sensor_id = l.sensor_id \
             ORDER BY l.sensor_id",
        )
        .bind(dt(at - TimeDelta::days(1)))
        .bind(dt(at))
        .fetch_all(&self.pool)
        .await
        .map_err(err("listing sensors"))?;
        Ok(rows
            .into_iter()
            .map(
                |(sensor_id, last_reading, n, day_first, day_last)| SensorSummary {
                    sensor_id,
                    last_reading,
                    day_readings: n.max(0) as u64,
                    day_first,
                    day_last,
                },
            )
            .collect())
    }

    async fn series(
        &self,
        sensor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<SeriesPoint>, SinkError> {
        let bucket = i64::from(bucket_seconds.max(1));
        let rows = sqlx::query(
            "SELECT CAST(FLOOR(TIMESTAMPDIFF(SECOND, '1970-01-01', ts) / ?) * ? AS SIGNED) AS b, \
             count(*), avg(temperature), min(temperature), max(temperature), \
             avg(humidity), min(humidity), max(humidity), \
             avg(pressure), min(pressure), max(pressure), \
             CAST(sum(qc_flags & 15 <> 0) AS SIGNED), CAST(sum(qc_flags & 240 <> 0) AS SIGNED), \
             CAST(sum(qc_flags & 3840 <> 0) AS SIGNED) \
             FROM sensor_readings WHERE sensor_id = ? AND ts >= ? AND ts < ? \
             GROUP BY b ORDER BY b",
        )
        .bind(bucket)
        .bind(bucket)
        .bind(sensor_id)
        .bind(dt(from))
        .bind(dt(to))
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading a sensor's series"))?;
        rows.iter()
            .map(|r| {
                let get_i = |i: usize| r.try_get::<i64, _>(i).map(|v| v.max(0) as u64);
                let get_f = |i: usize| r.try_get::<Option<f64>, _>(i);
                Ok(SeriesPoint {
                    at: epoch(r.try_get(0)?),
                    readings: get_i(1)?,
                    temperature: Band::from_parts(get_f(2)?, get_f(3)?, get_f(4)?),
                    humidity: Band::from_parts(get_f(5)?, get_f(6)?, get_f(7)?),
                    pressure: Band::from_parts(get_f(8)?, get_f(9)?, get_f(10)?),
                    flagged: [get_i(11)?, get_i(12)?, get_i(13)?],
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(err("reading a sensor's series"))
    }

    async fn followed(&self) -> Result<Vec<FollowedSummary>, SinkError> {
        self.followed_with_status().await
    }
}
