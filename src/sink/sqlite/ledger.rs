//! Read-only SQLite ledger queries: the content lookup before a load, and what the
//! operator tools (`status`, `quarantine`) and readiness checks ask.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, err, parse_id, parse_time};
use crate::read::ContentHash;
use crate::sink::{
    Activity, AgentShare, KNOWN_CHUNK, KNOWN_STATUSES, LedgerQueries, LedgerRecord, LoadedFile,
    SinkError, ledger_status,
};
use crate::timestamp::format_utc;

impl SqliteStore {
    /// The `loaded` ledger row for this content, if any ([`Store::find_loaded`]).
    ///
    /// [`Store::find_loaded`]: crate::sink::Store::find_loaded
    pub(super) async fn find_loaded_row(
        &self,
        hash: &ContentHash,
    ) -> Result<Option<LoadedFile>, SinkError> {
        let row = sqlx::query(
            "SELECT id, file_name, archived_as, started_at FROM ingest_files \
             WHERE content_hash = ? AND status IN ('loaded', 'partial')",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err("looking up the content hash"))?;
        row.map(|r| {
            Ok(LoadedFile {
                id: parse_id(r.get(0))?,
                file_name: r.get(1),
                archived_as: r.get(2),
                started_at: parse_time(r.get(3))?,
            })
        })
        .transpose()
    }
}

impl SqliteStore {
    /// Which of `identities` a ledger row that needs no second look records
    /// ([`Store::known_sources`]), [`KNOWN_CHUNK`] at a time.
    ///
    /// [`Store::known_sources`]: crate::sink::Store::known_sources
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
}

#[async_trait]
impl LedgerQueries for SqliteStore {
    async fn ping(&self) -> Result<(), SinkError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err("checking the database"))?;
        Ok(())
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> Result<Activity, SinkError> {
        // Times are fixed-width UTC text, so text order is time order.
        let rows: Vec<crate::sink::ActivityRow> = sqlx::query_as(
            "SELECT status, count(*), coalesce(sum(row_count), 0), \
             coalesce(sum(rejected_rows), 0), \
             total((julianday(finished_at) - julianday(started_at)) * 86400.0) \
             FROM ingest_files WHERE finished_at >= ? GROUP BY status",
        )
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the ledger"))?;
        Ok(Activity::from_rows(rows))
    }

    async fn agents_since(&self, since: DateTime<Utc>) -> Result<Vec<AgentShare>, SinkError> {
        let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT agent, count(*), \
             coalesce(sum(CASE WHEN status IN ('loaded', 'partial') THEN row_count END), 0), \
             max(finished_at) FROM ingest_files WHERE finished_at >= ? GROUP BY agent",
        )
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the agents"))?;
        let rows = rows
            .into_iter()
            .map(|(agent, files, loaded, last)| Ok((agent, files, loaded, parse_time(last)?)))
            .collect::<Result<Vec<_>, SinkError>>()?;
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
pub(super) fn ledger_record(r: &SqliteRow) -> Result<LedgerRecord, SinkError> {
    Ok(LedgerRecord {
        id: parse_id(r.get(0))?,
        file_name: r.get(1),
        content_hash: r.get(2),
        size_bytes: r.get::<i64, _>(3).max(0) as u64,
        status: ledger_status(r.get(4))?,
        row_count: r.get::<i64, _>(5).max(0) as u64,
        rejected_rows: r.get::<i64, _>(6).max(0) as u64,
        error_summary: r.get(7),
        started_at: parse_time(r.get(8))?,
        finished_at: parse_time(r.get(9))?,
        archived_as: r.get(10),
        agent: r.get(11),
        profile: r.get(12),
    })
}
