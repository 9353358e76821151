//! The MariaDB/MySQL write path: one file's ledger claim, readings and metrics in one
//! InnoDB transaction, ledger rows for attempts that loaded nothing, and archive names.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{Connection, MySql, MySqlConnection, QueryBuilder};
use tokio::sync::mpsc;

use super::{MysqlStore, describe, dt, err, follow, is_unique_violation, qc, writer};
use crate::read::ContentHash;
use crate::sink::{
    ArchiveName, Claims, EntryStatus, ErrorClass, FileAttempt, FollowedFile, GroupItem,
    LedgerEntry, LoadMsg, LoadOutcome, LoadedFile, ReadingKey, SinkError, Store, StoredReading,
};
use crate::stats::FileStats;

#[async_trait]
impl Store for MysqlStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn prepare(&self) -> Result<(), SinkError> {
        self.apply_schema().await
    }

    fn claims(&self) -> Option<&dyn Claims> {
        Some(self)
    }

    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError> {
        self.find_loaded_row(hash).await
    }

    fn follows(&self) -> bool {
        true
    }

    async fn followed_file(&self, file_name: &str) -> Result<Option<FollowedFile>, SinkError> {
        self.followed_row(file_name).await
    }

    async fn followed_files(&self) -> Result<Vec<FollowedFile>, SinkError> {
        self.followed_rows().await
    }

    async fn forget_followed(
        &self,
        file_name: &str,
        ledger_id: uuid::Uuid,
    ) -> Result<(), SinkError> {
        self.forget(file_name, ledger_id).await
    }

    async fn any_stored_within(
        &self,
        spans: &[(
            String,
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
        )],
    ) -> Result<bool, SinkError> {
        self.any_within(spans).await
    }

    async fn stored_readings(&self, keys: &[ReadingKey]) -> Result<Vec<StoredReading>, SinkError> {
        self.stored(keys).await
    }

    async fn known_sources(&self, identities: &[String]) -> Result<Vec<String>, SinkError> {
        self.known_source_rows(identities).await
    }

    async fn recent_readings(
        &self,
        queries: &[crate::qc::HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<crate::qc::HistoryReading>>, SinkError> {
        self.recent(queries, limit).await
    }

    async fn load(
        &self,
        attempt: &FileAttempt,
        mut rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        // The first message before taking a connection: the reader may still be reading.
        let mut first = match rows.recv().await {
            Some(LoadMsg::Abort) | None => return Ok(LoadOutcome::Aborted),
            Some(msg) => Some(msg),
        };
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        let mut tx = conn.begin().await.map_err(err("starting the load"))?;
        let id = attempt.id.hyphenated().to_string();
        // The claim fails on the unique `loaded_hash` before any reading is written if
        // this content is loaded already; while another transaction holds the same
        // claim uncommitted, InnoDB makes this one wait for its outcome.
        let claim = sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent, source_identity) VALUES (?, ?, ?, ?, 'loaded', ?, ?, ?)",
        )
        .bind(&id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(dt(attempt.started_at))
        .bind(&self.agent)
        .bind(&attempt.source_identity)
        .execute(&mut *tx)
        .await;
        if let Err(e) = claim {
            if is_unique_violation(&e) {
                drop(tx);
                if let Some(loaded) = self.find_loaded_row(&attempt.hash).await? {
                    return Ok(LoadOutcome::AlreadyLoaded(loaded));
                }
                return Err(SinkError {
                    class: ErrorClass::Transient,
                    context: "claiming the content hash",
                    detail: describe(&e),
                });
            }
            return Err(err("claiming the content hash")(e));
        }

        let ingested_at = Utc::now();
        let mut inserted = 0u64;
        let stats = loop {
            let msg = match first.take() {
                Some(msg) => Some(msg),
                None => rows.recv().await,
            };
            match msg {
                Some(LoadMsg::Rows(batch)) => {
                    inserted += writer::insert_readings(&mut tx, &id, ingested_at, &batch).await?;
                }
                Some(LoadMsg::Commit(stats)) => break stats,
                Some(LoadMsg::Abort) | None => {
                    let _ = tx.rollback().await;
                    return Ok(LoadOutcome::Aborted);
                }
            }
        };

        insert_metrics(&mut tx, &[(&id, &stats)]).await?;
        qc::amend(&mut tx, &stats.qc).await?;
        qc::amend_further(&mut tx, &id, &stats.qc).await?;
        sqlx::query(
            "UPDATE ingest_files SET row_count = ?, first_timestamp = ?, last_timestamp = ?, \
             finished_at = ?, status = ?, rejected_rows = ?, profile = ?, profile_hash = ? \
             WHERE id = ?",
        )
        .bind(inserted as i64)
        .bind(stats.first_timestamp.map(dt))
        .bind(stats.last_timestamp.map(dt))
        .bind(dt(Utc::now()))
        .bind(EntryStatus::of(&stats).as_str())
        .bind(stats.rejected_rows as i64)
        .bind(&attempt.profile.name)
        .bind(&attempt.profile.hash)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(err("completing the ledger row"))?;
        if let Some(mark) = &attempt.follow {
            follow::write_mark(&mut tx, mark).await?;
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(LoadOutcome::Committed { rows: inserted })
    }

    async fn load_group(
        &self,
        items: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        self.load_group_in_one(items).await
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        let Some(mark) = &entry.attempt.follow else {
            return write_record(&mut conn, &self.agent, entry)
                .await
                .map_err(err("writing the ledger row"));
        };
        // An increment refused: its ledger row and the followed file's new position
        // commit together.
        let mut tx = conn.begin().await.map_err(err("starting the ledger row"))?;
        write_record(&mut tx, &self.agent, entry)
            .await
            .map_err(err("writing the ledger row"))?;
        follow::write_mark(&mut tx, mark).await?;
        tx.commit().await.map_err(err("committing"))
    }

    async fn mark_archived_all(&self, names: &[ArchiveName]) -> Result<(), SinkError> {
        if names.is_empty() {
            return Ok(());
        }
        // One statement for all the names: a join with the names as a derived table.
        let mut update = QueryBuilder::<MySql>::new("UPDATE ingest_files AS f JOIN (");
        for (i, name) in names.iter().enumerate() {
            update.push(if i == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            });
            update.push_bind(name.id.hyphenated().to_string());
            update.push(" AS id, ");
            update.push_bind(name.archived_as.as_str());
            update.push(" AS archived_as");
        }
        update.push(") AS n ON f.id = n.id SET f.archived_as = n.archived_as, f.archived_at = ");
        update.push_bind(dt(Utc::now()));
        update
            .build()
            .execute(&self.pool)
            .await
            .map_err(err("recording archive names"))?;
        Ok(())
    }
}

/// Writes the ledger row of an attempt that loaded nothing, on `conn` (in a group's
/// transaction, or by itself).
pub(super) async fn write_record(
    conn: &mut MySqlConnection,
    agent: &str,
    entry: &LedgerEntry,
) -> Result<(), sqlx::Error> {
    let a = &entry.attempt;
    sqlx::query(
        "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
         row_count, rejected_rows, error_summary, duplicate_of, started_at, finished_at, \
         agent, profile, profile_hash, source_identity) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id.hyphenated().to_string())
    .bind(&a.file_name)
    .bind(a.hash.as_str())
    .bind(a.size as i64)
    .bind(entry.status.as_str())
    .bind(entry.rows_read as i64)
    .bind(entry.rejected_rows as i64)
    .bind(&entry.error_summary)
    .bind(entry.duplicate_of.map(|d| d.hyphenated().to_string()))
    .bind(dt(a.started_at))
    .bind(dt(Utc::now()))
    .bind(agent)
    .bind(&a.profile.name)
    .bind(&a.profile.hash)
    .bind(&a.source_identity)
    .execute(conn)
    .await?;
    Ok(())
}

/// The `file_metrics` rows of one or more loaded files, in one statement.
pub(super) async fn insert_metrics(
    conn: &mut MySqlConnection,
    files: &[(&str, &FileStats)],
) -> Result<(), SinkError> {
    let columns: Vec<_> = files
        .iter()
        .flat_map(|(id, stats)| stats.columns.iter().map(move |c| (*id, *stats, c)))
        .collect();
    if columns.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
         max_value, mean_value, stddev_value, source_unit, missing_codes, qc_step, qc_spike, \
         qc_flat, qc_outlier, qc_gap, qc_time_travel) ",
    );
    q.push_values(&columns, |mut b, (file_id, stats, col)| {
        let c = &col.stats;
        b.push_bind(*file_id)
            .push_bind(col.name.as_str())
            .push_bind(c.count as i64)
            .push_bind(c.nulls as i64)
            .push_bind(c.min)
            .push_bind(c.max)
            .push_bind(c.mean())
            .push_bind(c.stddev())
            .push_bind(col.source_unit.as_deref())
            .push_bind(col.coded_missing as i64);
        for n in stats.qc.of(&col.name) {
            b.push_bind(n as i64);
        }
    });
    q.build()
        .execute(conn)
        .await
        .map_err(err("writing file metrics"))?;
    Ok(())
}
