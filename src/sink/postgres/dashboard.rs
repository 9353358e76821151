//! The dashboard's read-only queries on PostgreSQL ([`DashboardQueries`]), and the
//! read-only pool they run on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use super::ledger::{RECORD_COLUMNS, ledger_record};
use super::{PgStore, err};
use crate::sink::PostgresSettings;
use crate::sink::dashboard::{
    Band, ColumnMetrics, DashboardQueries, FollowedSummary, MinuteCount, SensorSummary, SeriesPoint,
};
use crate::sink::{LedgerRecord, SinkError};
use crate::sys::agent_name;

impl PgStore {
    /// A store for the dashboard: `connections` connections (opened on first use) whose
    /// transactions are read-only, so no page can write whatever its SQL says.
    pub fn read_only(settings: &PostgresSettings, connections: u32) -> Self {
        let options = settings
            .connect_options()
            .clone()
            .options([("default_transaction_read_only", "on")])
            .application_name("sensor-ingest dashboard");
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options.clone());
        // Never used by the dashboard's queries (it neither creates nor drops
        // partitions); lazy, so it opens no connection, and read-only like the rest.
        let maintenance = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(options);
        Self {
            pool,
            maintenance,
            target: settings.to_string(),
            agent: agent_name(),
            partitions: Default::default(),
            claims_made: Default::default(),
        }
    }
}

#[async_trait]
impl DashboardQueries for PgStore {
    async fn per_minute(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, SinkError> {
        let rows: Vec<(DateTime<Utc>, i64, i64)> = sqlx::query_as(
            "SELECT date_trunc('minute', finished_at) AS m, count(*), \
             coalesce(sum(row_count) FILTER (WHERE status IN ('loaded', 'partial')), 0)::bigint \
             FROM ingest_files WHERE finished_at >= $1 AND finished_at < $2 \
             GROUP BY m ORDER BY m",
        )
        .bind(from)
        .bind(to)
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
             ORDER BY finished_at DESC, id LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(offset.min(i64::MAX as u64) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing recent files"))?;
        rows.iter().map(ledger_record).collect()
    }

    async fn file(&self, id: Uuid) -> Result<Option<LedgerRecord>, SinkError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM ingest_files WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a ledger row"))?;
        row.as_ref().map(ledger_record).transpose()
    }

    async fn file_metrics(&self, id: Uuid) -> Result<Vec<ColumnMetrics>, SinkError> {
        let rows = sqlx::query(
            "SELECT column_name, value_count, null_count, min_value, max_value, mean_value, \
             stddev_value, source_unit FROM file_metrics WHERE file_id = $1 ORDER BY column_name",
        )
        .bind(id)
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
        // A loose index scan: one index probe per sensor for the next id, then the last
        // reading and the day's count from the (sensor_id, ts) index, instead of
        // grouping every reading ever stored.
        let rows = sqlx::query(
            "WITH RECURSIVE s(id) AS ( \
                 (SELECT sensor_id FROM sensor_readings ORDER BY sensor_id LIMIT 1) \
                 UNION ALL \
                 SELECT (SELECT sensor_id FROM sensor_readings WHERE sensor_id > s.id \
                         ORDER BY sensor_id LIMIT 1) FROM s WHERE s.id IS NOT NULL) \
             SELECT s.id, \
                    (SELECT max(ts) FROM sensor_readings r WHERE r.sensor_id = s.id), \
                    d.n, d.first, d.last \
             FROM s CROSS JOIN LATERAL ( \
                 SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM sensor_readings r \
                 WHERE r.sensor_id = s.id AND r.ts >= $1 AND r.ts < $2) d \
             WHERE s.id IS NOT NULL ORDER BY s.id",
        )
        .bind(at - TimeDelta::days(1))
        .bind(at)
        .fetch_all(&self.pool)
        .await
        .map_err(err("listing sensors"))?;
        Ok(rows
            .iter()
            .map(|r| SensorSummary {
                sensor_id: r.get(0),
                last_reading: r.get(1),
                day_readings: r.get::<i64, _>(2).max(0) as u64,
                day_first: r.get(3),
                day_last: r.get(4),
            })
            .collect())
    }

    async fn series(
        &self,
        sensor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<SeriesPoint>, SinkError> {
        let rows = sqlx::query(
            "SELECT to_timestamp(floor(extract(epoch FROM ts) / $4) * $4) AS b, count(*), \
             avg(temperature), min(temperature), max(temperature), \
             avg(humidity), min(humidity), max(humidity), \
             avg(pressure), min(pressure), max(pressure), \
             count(*) FILTER (WHERE qc_flags & 15 <> 0), \
             count(*) FILTER (WHERE qc_flags & 240 <> 0), \
             count(*) FILTER (WHERE qc_flags & 3840 <> 0) \
             FROM sensor_readings WHERE sensor_id = $1 AND ts >= $2 AND ts < $3 \
             GROUP BY b ORDER BY b",
        )
        .bind(sensor_id)
        .bind(from)
        .bind(to)
        .bind(f64::from(bucket_seconds.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading a sensor's series"))?;
        Ok(rows
            .iter()
            .map(|r| SeriesPoint {
                at: r.get(0),
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
