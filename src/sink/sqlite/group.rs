//! Group commit on SQLite ([`Store::load_group`](crate::sink::Store::load_group)):
//! several small files (and the ledger rows of files that loaded nothing) in one
//! `BEGIN IMMEDIATE` transaction on the writer, so that the commit (the WAL write and
//! its sync) is paid once per group.
//!
//! The group is first written at once: every ledger row, then the readings of every
//! file through one set of prepared statements, then the metrics. Only if the database
//! refuses something of one file is that rolled back and the group written again with
//! a savepoint per file, so that the refused file rolls back alone. Savepoints are not
//! the first choice: inside one, SQLite copies every page it changes to a statement
//! journal first, and preparing each file's statements again costs as much as
//! inserting a small file's rows.

use chrono::Utc;
use sqlx::{Connection, SqliteConnection};

use super::load::{insert_metrics, write_record};
use super::{SqliteStore, describe, err, qc, writer};
use crate::enrich::EnrichedRow;
use crate::sink::{EntryStatus, ErrorClass, GroupFile, GroupItem, LoadOutcome, SinkError};
use crate::timestamp::format_utc;

impl SqliteStore {
    /// See [`Store::load_group`](crate::sink::Store::load_group).
    pub(super) async fn load_group_in_one(
        &self,
        files: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        let loaded = {
            let _writing = self.writer.lock().await;
            let mut conn = self.pool.acquire().await.map_err(err("opening"))?;
            match self.write_at_once(&mut conn, files).await? {
                Some(answers) => answers,
                None => self.write_with_savepoints(&mut conn, files).await?,
            }
        };
        let mut outcomes = Vec::with_capacity(files.len());
        for (file, written) in files.iter().zip(loaded) {
            outcomes.push(match written {
                Ok(Written::Rows(rows)) => Ok(LoadOutcome::Committed { rows }),
                Ok(Written::Recorded) => Ok(LoadOutcome::Recorded),
                // Looked up now that the group committed: the load it collided with may
                // have been one of the group's own.
                Ok(Written::Loaded) => match self.find_loaded_row(item_hash(file)).await {
                    Ok(Some(loaded)) => Ok(LoadOutcome::AlreadyLoaded(loaded)),
                    Err(e) => Err(e),
                    Ok(None) => Err(SinkError {
                        class: ErrorClass::Transient,
                        context: "claiming the content hash",
                        detail: "the load of the same content rolled back".into(),
                    }),
                },
                Err(e) => Err(e),
            });
        }
        Ok(outcomes)
    }

    /// The group in one go, without savepoints: `None` (and nothing written) when the
    /// database refused something of a file, to be found by
    /// [`write_with_savepoints`](Self::write_with_savepoints).
    async fn write_at_once(
        &self,
        conn: &mut SqliteConnection,
        files: &[GroupItem],
    ) -> Result<Option<Vec<Result<Written, SinkError>>>, SinkError> {
        let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("starting the load"))?;
        let ingested_at = format_utc(Utc::now());
        let mut answers = Vec::with_capacity(files.len());
        let mut loads: Vec<(String, &GroupFile)> = Vec::new();
        for item in files {
            let written = match item {
                GroupItem::Load(file) => match self.write_ledger(&mut tx, file).await {
                    Ok(true) => {
                        loads.push((file.attempt.id.hyphenated().to_string(), file));
                        Ok(Written::Rows(file.rows.len() as u64))
                    }
                    Ok(false) => Ok(Written::Loaded),
                    Err(e) => Err(e),
                },
                GroupItem::Record(entry) => self.record_in(&mut tx, entry).await,
            };
            match written {
                Ok(w) => answers.push(Ok(w)),
                // Dropping `tx` rolls the group back.
                Err(e) if e.class == ErrorClass::Data => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let rows: Vec<(&str, &[EnrichedRow])> = loads
            .iter()
            .map(|(id, f)| (id.as_str(), f.rows.as_slice()))
            .collect();
        let rest = async {
            writer::insert_files_readings(&mut tx, &ingested_at, &rows).await?;
            for (id, file) in &loads {
                insert_metrics(&mut tx, id, &file.stats).await?;
                // Quality flags this file adds to readings of earlier files.
                qc::amend(&mut tx, &file.stats.qc).await?;
                qc::amend_further(&mut tx, id, &file.stats.qc).await?;
            }
            Ok::<_, SinkError>(())
        };
        match rest.await {
            Ok(()) => {}
            Err(e) if e.class == ErrorClass::Data => return Ok(None),
            Err(e) => return Err(e),
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(Some(answers))
    }

    /// The group again, each file in a savepoint of its own: a file the database
    /// refuses rolls back alone, with its error as its answer.
    async fn write_with_savepoints(
        &self,
        conn: &mut SqliteConnection,
        files: &[GroupItem],
    ) -> Result<Vec<Result<Written, SinkError>>, SinkError> {
        let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("starting the load"))?;
        let ingested_at = format_utc(Utc::now());
        let mut answers = Vec::with_capacity(files.len());
        for file in files {
            sqlx::query("SAVEPOINT file")
                .execute(&mut *tx)
                .await
                .map_err(err("loading a group of files"))?;
            let written = match file {
                GroupItem::Load(file) => self.write_one(&mut tx, file, &ingested_at).await,
                GroupItem::Record(entry) => self.record_in(&mut tx, entry).await,
            };
            match &written {
                Ok(_) => {}
                Err(e) if e.class != ErrorClass::Data => {
                    // The whole group is retried; dropping `tx` rolls it back.
                    return Err(e.clone());
                }
                Err(_) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT file")
                        .execute(&mut *tx)
                        .await
                        .map_err(err("loading a group of files"))?;
                }
            }
            sqlx::query("RELEASE SAVEPOINT file")
                .execute(&mut *tx)
                .await
                .map_err(err("loading a group of files"))?;
            answers.push(written);
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(answers)
    }

    /// One file's ledger row (complete: the file was read in full), readings and
    /// metrics, in the group's transaction.
    async fn write_one(
        &self,
        conn: &mut SqliteConnection,
        file: &GroupFile,
        ingested_at: &str,
    ) -> Result<Written, SinkError> {
        if !self.write_ledger(conn, file).await? {
            return Ok(Written::Loaded);
        }
        let id = file.attempt.id.hyphenated().to_string();
        let rows = writer::insert_readings(conn, &id, ingested_at, &file.rows).await?;
        insert_metrics(conn, &id, &file.stats).await?;
        // Quality flags this file adds to readings of earlier files.
        qc::amend(conn, &file.stats.qc).await?;
        qc::amend_further(conn, &id, &file.stats.qc).await?;
        Ok(Written::Rows(rows))
    }

    /// The ledger row of a file that loaded nothing, in the group's transaction.
    async fn record_in(
        &self,
        conn: &mut SqliteConnection,
        entry: &crate::sink::LedgerEntry,
    ) -> Result<Written, SinkError> {
        write_record(conn, &self.agent, entry)
            .await
            .map(|()| Written::Recorded)
            .map_err(|e| SinkError {
                class: super::classify(&e),
                context: "writing the ledger row",
                detail: describe(&e),
            })
    }

    /// The file's ledger row; false when its content is loaded already (nothing
    /// written).
    async fn write_ledger(
        &self,
        conn: &mut SqliteConnection,
        file: &GroupFile,
    ) -> Result<bool, SinkError> {
        let (attempt, stats) = (&file.attempt, &file.stats);
        let id = attempt.id.hyphenated().to_string();
        let ledger = sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent, row_count, first_timestamp, last_timestamp, finished_at, \
             rejected_rows, profile, profile_hash, source_identity) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(EntryStatus::of(stats).as_str())
        .bind(format_utc(attempt.started_at))
        .bind(&self.agent)
        .bind(file.rows.len() as i64)
        .bind(stats.first_timestamp.map(format_utc))
        .bind(stats.last_timestamp.map(format_utc))
        .bind(format_utc(Utc::now()))
        .bind(stats.rejected_rows as i64)
        .bind(&attempt.profile.name)
        .bind(&attempt.profile.hash)
        .bind(&attempt.source_identity)
        .execute(&mut *conn)
        .await;
        match ledger {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(e) => Err(SinkError {
                class: super::classify(&e),
                context: "claiming the content hash",
                detail: describe(&e),
            }),
        }
    }
}

/// The content hash of the file of `item`.
fn item_hash(item: &GroupItem) -> &crate::read::ContentHash {
    match item {
        GroupItem::Load(file) => &file.attempt.hash,
        GroupItem::Record(entry) => &entry.attempt.hash,
    }
}

/// What writing one item of a group did.
enum Written {
    Rows(u64),
    /// A ledger row of a file that loaded nothing.
    Recorded,
    /// Its content is loaded already: nothing written.
    Loaded,
}
