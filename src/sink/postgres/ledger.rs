//! Read-only PostgreSQL ledger queries: the content lookup before a load, and what the
//! operator tools (`status`, `quarantine`) and readiness checks ask.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PgStore, err};
use crate::read::ContentHash;
use crate::sink::{
    Activity, AgentShare, KNOWN_STATUSES, LedgerQueries, LedgerRecord, LoadedFile, RetentionDone,
    SinkError, Storage, ledger_status,
};

impl PgStore {
    /// Which of `identities` a ledger row that needs no second look records
    /// ([`Store::known_sources`](crate::sink::Store::known_sources)): one statement.
    pub(super) async fn known_source_rows(
        &self,
        identities: &[String],
    ) -> Result<Vec<String>, SinkError> {
        let sql = format!(
            "SELECT DISTINCT source_identity FROM ingest_files \
             WHERE source_identity = ANY($1) AND status IN {KNOWN_STATUSES}"
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(identities)
            .fetch_all(&self.pool)
            .await
            .map_err(err("looking up source identities"))
    }

    /// What `status` shows of the partitions, a pending migration and retention.
    pub(super) async fn storage_state(&self) -> Result<Storage, SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        let known = super::partitions::survey(&mut conn).await?;
        let migration_copied = match known.layout {
            super::partitions::Layout::Plain => super::migrate::state(&mut conn)
                .await?
                .map(|p| (p.rows, p.rows_total)),
            _ => None,
        };
        let row = sqlx::query(
            "SELECT max(range_to), count(*), coalesce(sum(readings), 0)::int8, max(dropped_at) \
             FROM retention_log WHERE to_regclass('retention_log') IS NOT NULL",
        )
        .fetch_optional(&mut *conn)
        .await;
        // A DBA-owned schema without the log: nothing to show.
        let retention = match row {
            Ok(Some(r)) => match (r.get(0), r.get(3)) {
                (Some(before), Some(last_dropped_at)) => Some(RetentionDone {
                    before,
                    months: r.get(1),
                    readings: r.get(2),
                    last_dropped_at,
                }),
                _ => None,
            },
            Ok(None) => None,
            Err(e) if super::sqlstate(&e).as_deref() == Some("42P01") => None,
            Err(e) => return Err(err("reading the retention log")(e)),
        };
        Ok(Storage {
            partitions: known.months.len(),
            first_month: known
                .months
                .first()
                .map(super::partitions::Month::to_string),
            last_month: known.months.last().map(super::partitions::Month::to_string),
            migration_pending: known.layout == super::partitions::Layout::Plain,
            migration_copied,
            retention,
        })
    }

    /// The `loaded` ledger row for this content, if any ([`Store::find_loaded`]).
    ///
    /// [`Store::find_loaded`]: crate::sink::Store::find_loaded
    pub(super) async fn find_loaded_row(
        &self,
        hash: &ContentHash,
    ) -> Result<Option<LoadedFile>, SinkError> {
        let row = sqlx::query(
            "SELECT id, file_name, archived_as, started_at FROM ingest_files \
             WHERE content_hash = $1 AND status IN ('loaded', 'partial')",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err("looking up the content hash"))?;
        Ok(row.map(|r| LoadedFile {
            id: r.get(0),
            file_name: r.get(1),
            archived_as: r.get(2),
            started_at: r.get(3),
        }))
    }
}

#[async_trait]
impl LedgerQueries for PgStore {
    async fn storage(&self) -> Result<Option<Storage>, SinkError> {
        self.storage_state().await.map(Some)
    }

    async fn ping(&self) -> Result<(), SinkError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err("checking the database"))?;
        Ok(())
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> Result<Activity, SinkError> {
        let rows: Vec<crate::sink::ActivityRow> = sqlx::query_as(
            "SELECT status, count(*), coalesce(sum(row_count), 0)::bigint, \
             coalesce(sum(rejected_rows), 0)::bigint, \
             coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)::float8 \
             FROM ingest_files WHERE finished_at >= $1 GROUP BY status",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the ledger"))?;
        Ok(Activity::from_rows(rows))
    }

    async fn agents_since(&self, since: DateTime<Utc>) -> Result<Vec<AgentShare>, SinkError> {
        let rows: Vec<crate::sink::AgentRow> = sqlx::query_as(
            "SELECT agent, count(*), \
             coalesce(sum(row_count) FILTER (WHERE status IN ('loaded', 'partial')), 0)::bigint, \
             max(finished_at) FROM ingest_files WHERE finished_at >= $1 GROUP BY agent",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the agents"))?;
        Ok(AgentShare::from_rows(rows))
    }

    async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files \
             WHERE status IN ('loaded', 'partial') ORDER BY finished_at DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading the last loaded file"))?;
        row.as_ref().map(ledger_record).transpose()
    }

    async fn flagged_readings(
        &self,
        sensor: &str,
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<crate::qc::FlaggedReading>, SinkError> {
        self.flagged(sensor, since, limit).await
    }

    async fn history(
        &self,
        content_hash: &str,
        file_name: &str,
    ) -> Result<Vec<LedgerRecord>, SinkError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files \
             WHERE content_hash = $1 OR file_name = $2 ORDER BY started_at, finished_at"
        )))
        .bind(content_hash)
        .bind(file_name)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading the ledger history"))?;
        rows.iter().map(ledger_record).collect()
    }
}

/// Columns of a [`LedgerRecord`], in the order [`ledger_record`] reads them.
pub(super) const RECORD_COLUMNS: &str = "id, file_name, content_hash, size_bytes, status, \
    row_count, rejected_rows, error_summary, started_at, finished_at, archived_as, agent, profile";

/// Reads the [`RECORD_COLUMNS`] of a ledger row.
pub(super) fn ledger_record(r: &PgRow) -> Result<LedgerRecord, SinkError> {
    Ok(LedgerRecord {
        id: r.get(0),
        file_name: r.get(1),
        content_hash: r.get(2),
        size_bytes: r.get::<i64, _>(3).max(0) as u64,
        status: ledger_status(r.get(4))?,
        row_count: r.get::<i64, _>(5).max(0) as u64,
        rejected_rows: r.get::<i64, _>(6).max(0) as u64,
        error_summary: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
        archived_as: r.get(10),
        agent: r.get(11),
        profile: r.get(12),
    })
}
