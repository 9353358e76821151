//! Read-only MariaDB/MySQL ledger queries: the content lookup before a load, and what
//! the operator tools (`status`, `quarantine`) and readiness checks ask.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{AssertSqlSafe, Row};

use super::{MysqlStore, dt, err, parse_id};
use crate::read::ContentHash;
use crate::sink::{
    Activity, AgentShare, KNOWN_CHUNK, KNOWN_STATUSES, LedgerQueries, LedgerRecord, LoadedFile,
    SinkError, ledger_status,
};

impl MysqlStore {
    /// Which of `identities` a ledger row that needs no second look records
    /// ([`Store::known_sources`](crate::sink::Store::known_sources)), [`KNOWN_CHUNK`] at
    /// a time.
    pub(super) async fn known_source_rows(
        &self,
        identities: &[String],
    ) -> Result<Vec<String>, SinkError> {
        let mut known = Vec::new();
        for chunk in identities.chunks(KNOWN_CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT DISTINCT source_identity FROM ingest_files \
                 WHERE source_identity IN ({marks}) AND status IN {KNOWN_STATUSES}"
            );
            let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
            for identity in chunk {
                query = query.bind(identity);
            }
            let found: Vec<String> = query
                .fetch_all(&self.pool)
                .await
                .map_err(err("looking up source identities"))?;
            known.extend(found);
        }
        Ok(known)
    }

    /// The `loaded` ledger row for this content, if any
    /// ([`Store::find_loaded`](crate::sink::Store::find_loaded)).
    pub(super) async fn find_loaded_row(
        &self,
        hash: &ContentHash,
    ) -> Result<Option<LoadedFile>, SinkError> {
        let row: Option<(String, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, file_name, archived_as, started_at FROM ingest_files \
             WHERE loaded_hash = ?",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err("looking up the content hash"))?;
        row.map(|(id, file_name, archived_as, started_at)| {
            Ok(LoadedFile {
                id: parse_id(id)?,
                file_name,
                archived_as,
                started_at,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl LedgerQueries for MysqlStore {
    async fn ping(&self) -> Result<(), SinkError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err("checking the database"))?;
        Ok(())
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> Result<Activity, SinkError> {
        let rows: Vec<crate::sink::ActivityRow> = sqlx::query_as(
            "SELECT status, count(*), CAST(coalesce(sum(row_count), 0) AS SIGNED), \
             CAST(coalesce(sum(rejected_rows), 0) AS SIGNED), \
             CAST(coalesce(sum(TIMESTAMPDIFF(MICROSECOND, started_at, finished_at)), 0) / 1e6 \
                  AS DOUBLE) \
             FROM ingest_files WHERE finished_at >= ? GROUP BY status",
        )
        .bind(dt(since))
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the ledger"))?;
        Ok(Activity::from_rows(rows))
    }

    async fn agents_since(&self, since: DateTime<Utc>) -> Result<Vec<AgentShare>, SinkError> {
        let rows: Vec<crate::sink::AgentRow> = sqlx::query_as(
            "SELECT agent, count(*), CAST(coalesce(sum(CASE WHEN status IN ('loaded', 'partial') \
             THEN row_count END), 0) AS SIGNED), max(finished_at) \
             FROM ingest_files WHERE finished_at >= ? GROUP BY agent",
        )
        .bind(dt(since))
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the agents"))?;
        Ok(AgentShare::from_rows(rows))
    }

    async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files WHERE status IN ('loaded', 'partial') \
             ORDER BY finished_at DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading the last loaded file"))?;
        row.as_ref().map(ledger_record).transpose()
    }

    async fn flagged_readings(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::qc::FlaggedReading>, SinkError> {
        self.flagged(sensor, since, limit).await
    }

    async fn history(
        &self,
        content_hash: &str,
        file_name: &str,
    ) -> Result<Vec<LedgerRecord>, SinkError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files \
             WHERE content_hash = ? OR file_name = ? ORDER BY started_at, finished_at"
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
pub(super) fn ledger_record(r: &MySqlRow) -> Result<LedgerRecord, SinkError> {
    let read = |e: sqlx::Error| err("reading the ledger")(e);
    Ok(LedgerRecord {
        id: parse_id(r.try_get(0).map_err(read)?)?,
        file_name: r.try_get(1).map_err(read)?,
        content_hash: r.try_get(2).map_err(read)?,
        size_bytes: r.try_get::<i64, _>(3).map_err(read)?.max(0) as u64,
        status: ledger_status(r.try_get(4).map_err(read)?)?,
        row_count: r.try_get::<i64, _>(5).map_err(read)?.max(0) as u64,
        rejected_rows: r.try_get::<i64, _>(6).map_err(read)?.max(0) as u64,
        error_summary: r.try_get(7).map_err(read)?,
        started_at: r.try_get(8).map_err(read)?,
        finished_at: r.try_get(9).map_err(read)?,
        archived_as: r.try_get(10).map_err(read)?,
        agent: r.try_get(11).map_err(read)?,
        profile: r.try_get(12).map_err(read)?,
    })
}
