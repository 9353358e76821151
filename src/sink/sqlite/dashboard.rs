//! The dashboard's read-only queries on SQLite ([`DashboardQueries`]), and the
//! read-only pool they run on. Times are the schema's fixed-width UTC text, so text
//! ranges are time ranges and use the `(sensor_id, ts)` index.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::ledger::{RECORD_COLUMNS, ledger_record};
use super::{BUSY_TIMEOUT, SqliteStore, err, parse_time};
use crate::sink::SqliteSettings;
use crate::sink::dashboard::{
    Band, ColumnMetrics, DashboardQueries, FollowedSummary, MinuteCount, SensorSummary, SeriesPoint,
};
use crate::sink::{LedgerRecord, SinkError};
use crate::sys::agent_name;
use crate::timestamp::format_utc;

impl SqliteStore {
    /// A store for the dashboard: connections (opened on first use, never creating the
    /// file) with `query_only` set, so no page can write whatever its SQL says.
    pub fn read_only(settings: &SqliteSettings, connections: u32) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(settings.path())
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("query_only", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(connections.max(1))
            .min_connections(0)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_lazy_with(options);
        Self {
            pool,
            path: settings.path().to_owned(),
            target: settings.to_string(),
            agent: agent_name(),
            writer: Arc::new(Mutex::new(())),
        }
    }
}

fn optional_time(text: Option<String>) -> Result<Option<DateTime<Utc>>, SinkError> {
    text.map(parse_time).transpose()
}

fn epoch(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

#[async_trait]
impl DashboardQueries for SqliteStore {
    async fn per_minute(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, SinkError> {
        // The first 16 characters of the fixed-width text are the minute.
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT substr(finished_at, 1, 16) AS m, count(*), \
             coalesce(sum(CASE WHEN status IN ('loaded', 'partial') THEN row_count END), 0) \
             FROM ingest_files WHERE finished_at >= ? AND finished_at < ? \
             GROUP BY m ORDER BY m",
        )
        .bind(format_utc(from))
        .bind(format_utc(to))
        .fetch_all(&self.pool)
        .await
        .map_err(err("counting files per minute"))?;
        rows.into_iter()
            .map(|(minute, files, rows)| {
                Ok(MinuteCount {
                    minute: parse_time(format!("{minute}:00Z"))?,
                    files: files.max(0) as u64,
                    rows: rows.max(0) as u64,
                })
            })
            .collect()
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
        let rows = sqlx::query(
            "SELECT column_name, value_count, null_count, min_value, max_value, mean_value, \
             stddev_value, source_unit FROM file_metrics WHERE file_id = ? ORDER BY column_name",
        )
        .bind(id.hyphenated().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading file metrics"))?;
        Ok(rows
            .iter()
            .map(|r| ColumnMetrics {
                column: r.get(0),
                values: r.get::<i64, _>(1).max(0) as u64,
                nulls: r.get::<i64, _>(2).max(0) as u64,
                min: r.get(3),
                max: r.get(4),
                mean: r.get(5),
                stddev: r.get(6),
                source_unit: r.get(7),
            })
            .collect())
    }

    async fn sensors(&self, at: DateTime<Utc>) -> Result<Vec<SensorSummary>, SinkError> {
        // A loose index scan: one probe of the (sensor_id, ts) index per sensor.
        let rows = sqlx::query(
            "WITH RECURSIVE s(id) AS ( \
                 SELECT min(sensor_id) FROM sensor_readings \
                 UNION ALL \
                 SELECT (SELECT min(sensor_id) FROM sensor_readings WHERE sensor_id > s.id) \
                 FROM s WHERE s.id IS NOT NULL) \
             SELECT s.id, \
                    (SELECT max(ts) FROM sensor_readings r WHERE r.sensor_id = s.id), \
                    (SELECT count(*) FROM sensor_readings r \
                     WHERE r.sensor_id = s.id AND r.ts >= ?1 AND r.ts < ?2), \
                    (SELECT min(ts) FROM sensor_readings r \
                     WHERE r.sensor_id = s.id AND r.ts >= ?1 AND r.ts < ?2), \
                    (SELECT max(ts) FROM sensor_readings r \
                     WHERE r.sensor_id = s.id AND r.ts >= ?1 AND r.ts < ?2) \
             FROM s WHERE s.id IS NOT NULL ORDER BY s.id",
        )
        .bind(format_utc(at - TimeDelta::days(1)))
        .bind(format_utc(at))
        .fetch_all(&self.pool)
        .await
        .map_err(err("listing sensors"))?;
        rows.iter()
            .map(|r| {
                Ok(SensorSummary {
                    sensor_id: r.get(0),
                    last_reading: parse_time(r.get(1))?,
                    day_readings: r.get::<i64, _>(2).max(0) as u64,
                    day_first: optional_time(r.get(3))?,
                    day_last: optional_time(r.get(4))?,
                })
            })
            .collect()
    }

    async fn series(
        &self,
        sensor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<SeriesPoint>, SinkError> {
        let rows = sqlx::query(
            "SELECT CAST(strftime('%s', ts) AS INTEGER) / ?4 * ?4 AS b, count(*), \
             avg(temperature), min(temperature), max(temperature), \
             avg(humidity), min(humidity), max(humidity), \
             avg(pressure), min(pressure), max(pressure), \
             sum(qc_flags & 15 <> 0), sum(qc_flags & 240 <> 0), sum(qc_flags & 3840 <> 0) \
             FROM sensor_readings WHERE sensor_id = ?1 AND ts >= ?2 AND ts < ?3 \
             GROUP BY b ORDER BY b",
        )
        .bind(sensor_id)
        .bind(format_utc(from))
        .bind(format_utc(to))
        .bind(i64::from(bucket_seconds.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading a sensor's series"))?;
        Ok(rows
            .iter()
            .map(|r| SeriesPoint {
                at: epoch(r.get(0)),
                readings: r.get::<i64, _>(1).max(0) as u64,
                temperature: Band::from_parts(r.get(2), r.get(3), r.get(4)),
                humidity: Band::from_parts(r.get(5), r.get(6), r.get(7)),
                pressure: Band::from_parts(r.get(8), r.get(9), r.get(10)),
                flagged: [11, 12, 13].map(|i| r.get::<i64, _>(i).max(0) as u64),
            })
            .collect())
    }

    async fn followed(&self) -> Result<Vec<FollowedSummary>, SinkError> {
        self.followed_with_status().await
    }
}
