//! Group commit on SQLite ([`Store::load_group`](crate::sink::Store::load_group)):
//! several small files (and the ledger rows of files that loaded nothing) in one
//! `BEGIN IMMEDIATE` transaction on the writer, each inside a savepoint of its own, so that a file the database refuses rolls back alone while
//! the commit (the WAL write and its sync) is paid once per group.

use chrono::Utc;
use sqlx::{Connection, SqliteConnection};

use super::load::{insert_metrics, write_record};
use super::{SqliteStore, describe, err, qc, writer};
use crate::sink::{ErrorClass, GroupFile, GroupItem, LoadOutcome, SinkError};
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
                    GroupItem::Record(entry) => write_record(&mut tx, &self.agent, entry)
                        .await
                        .map(|()| Written::Recorded)
                        .map_err(|e| SinkError {
                            class: super::classify(&e),
                            context: "writing the ledger row",
                            detail: describe(&e),
                        }),
                };
                match &written {
                    Ok(_) => {}
                    Err(e) if e.class != ErrorClass::Data => {
                        // The whole group is retried; dropping `tx` rolls it back.
                        return Err(SinkError {
                            class: e.class,
                            context: e.context,
                            detail: e.detail.clone(),
                        });
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
            answers
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

    /// One file's ledger row (complete: the file was read in full), readings and
    /// metrics, in the group's transaction.
    async fn write_one(
        &self,
        conn: &mut SqliteConnection,
        file: &GroupFile,
        ingested_at: &str,
    ) -> Result<Written, SinkError> {
        let (attempt, stats) = (&file.attempt, &file.stats);
        let id = attempt.id.hyphenated().to_string();
        let ledger = sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent, row_count, first_timestamp, last_timestamp, finished_at, \
             rejected_rows, profile, profile_hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(stats.status().as_str())
        .bind(format_utc(attempt.started_at))
        .bind(&self.agent)
        .bind(file.rows.len() as i64)
        .bind(stats.first_timestamp.map(format_utc))
        .bind(stats.last_timestamp.map(format_utc))
        .bind(format_utc(Utc::now()))
        .bind(stats.rejected_rows as i64)
        .bind(&attempt.profile.name)
        .bind(&attempt.profile.hash)
        .execute(&mut *conn)
        .await;
        match ledger {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(Written::Loaded);
            }
            Err(e) => {
                return Err(SinkError {
                    class: super::classify(&e),
                    context: "claiming the content hash",
                    detail: describe(&e),
                });
            }
        }
        let rows = writer::insert_readings(conn, &id, ingested_at, &file.rows).await?;
        insert_metrics(conn, &id, stats).await?;
        // Quality flags this file adds to readings of earlier files.
        qc::amend(conn, &stats.qc).await?;
        Ok(Written::Rows(rows))
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
