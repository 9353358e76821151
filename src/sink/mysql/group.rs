//! Group commit on MariaDB/MySQL ([`Store::load_group`](crate::sink::Store::load_group)):
//! several small files (and the ledger rows of files that loaded nothing) in one
//! transaction, so that the commit (the redo log flush) is paid once per group.
//!
//! The group is first written at once: every ledger row, then the readings of every
//! file in shared multi-row statements, then all the metrics in one statement. A file
//! whose content is loaded already needs nothing special: InnoDB undoes only the
//! statement that hit the unique key. Only if the database refuses something of one
//! file is the group rolled back and written again with a savepoint per file, so that
//! the refused file rolls back alone.

use chrono::{DateTime, Utc};
use sqlx::{Connection, MySql, MySqlConnection, QueryBuilder};

use super::load::{insert_metrics, write_record};
use super::{MysqlStore, classify, describe, dt, err, is_unique_violation, qc, writer};
use crate::enrich::EnrichedRow;
use crate::sink::{EntryStatus, ErrorClass, GroupFile, GroupItem, LoadOutcome, SinkError};
use crate::stats::FileStats;

/// What writing one item of a group did.
enum Written {
    Rows(u64),
    /// A ledger row of a file that loaded nothing.
    Recorded,
    /// Its content is loaded already: nothing written.
    Loaded,
}

impl MysqlStore {
    /// See [`Store::load_group`](crate::sink::Store::load_group).
    pub(super) async fn load_group_in_one(
        &self,
        items: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        let written = {
            let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
            match self.write_at_once(&mut conn, items).await? {
                Some(answers) => answers,
                None => self.write_with_savepoints(&mut conn, items).await?,
            }
        };
        let mut outcomes = Vec::with_capacity(items.len());
        for (item, written) in items.iter().zip(written) {
            outcomes.push(match written {
                Ok(Written::Rows(rows)) => Ok(LoadOutcome::Committed { rows }),
                Ok(Written::Recorded) => Ok(LoadOutcome::Recorded),
                // Looked up now that the group committed: the load it collided with may
                // have been one of the group's own.
                Ok(Written::Loaded) => match self.find_loaded_row(item_hash(item)).await {
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
    /// database refused something of a file.
    async fn write_at_once(
        &self,
        conn: &mut MySqlConnection,
        items: &[GroupItem],
    ) -> Result<Option<Vec<Result<Written, SinkError>>>, SinkError> {
        let mut tx = conn.begin().await.map_err(err("starting the load"))?;
        let ingested_at = Utc::now();
        let mut answers = Vec::with_capacity(items.len());
        let mut loads: Vec<(String, &GroupFile)> = Vec::new();
        // Every load's ledger row in one statement; if the database refuses it (a content
        // loaded already, a refused value), InnoDB undoes just that statement and the
        // rows go in one by one, so each file gets its own answer.
        let files: Vec<&GroupFile> = items
            .iter()
            .filter_map(|item| match item {
                GroupItem::Load(file) => Some(file),
                GroupItem::Record(_) => None,
            })
            .collect();
        let together = match self.insert_ledger_rows(&mut tx, &files).await {
            Ok(()) => true,
            Err(e) if classify(&e) == ErrorClass::Data => false,
            Err(e) => return Err(err("claiming the content hash")(e)),
        };
        for item in items {
            let written = match item {
                GroupItem::Load(file) if together => {
                    loads.push((file.attempt.id.hyphenated().to_string(), file));
                    Ok(Written::Rows(file.rows.len() as u64))
                }
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
        let metrics: Vec<(&str, &FileStats)> = loads
            .iter()
            .map(|(id, f)| (id.as_str(), &*f.stats))
            .collect();
        let rest = async {
            writer::insert_files_readings(&mut tx, ingested_at, &rows).await?;
            insert_metrics(&mut tx, &metrics).await?;
            // Quality flags the files add to readings of earlier files, all at once.
            let summaries: Vec<_> = loads.iter().map(|(_, f)| &f.stats.qc).collect();
            qc::amend_all(&mut tx, &summaries).await?;
            for (id, file) in &loads {
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
        conn: &mut MySqlConnection,
        items: &[GroupItem],
    ) -> Result<Vec<Result<Written, SinkError>>, SinkError> {
        let mut tx = conn.begin().await.map_err(err("starting the load"))?;
        let ingested_at = Utc::now();
        let mut answers = Vec::with_capacity(items.len());
        for item in items {
            sqlx::query("SAVEPOINT file")
                .execute(&mut *tx)
                .await
                .map_err(err("loading a group of files"))?;
            let written = match item {
                GroupItem::Load(file) => self.write_one(&mut tx, file, ingested_at).await,
                GroupItem::Record(entry) => self.record_in(&mut tx, entry).await,
            };
            match &written {
                Ok(_) => {}
                // The whole group is retried; dropping `tx` rolls it back.
                Err(e) if e.class != ErrorClass::Data => return Err(e.clone()),
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

    /// One file's ledger row, readings and metrics, in the group's transaction.
    async fn write_one(
        &self,
        conn: &mut MySqlConnection,
        file: &GroupFile,
        ingested_at: DateTime<Utc>,
    ) -> Result<Written, SinkError> {
        if !self.write_ledger(conn, file).await? {
            return Ok(Written::Loaded);
        }
        let id = file.attempt.id.hyphenated().to_string();
        let rows = writer::insert_readings(conn, &id, ingested_at, &file.rows).await?;
        insert_metrics(conn, &[(&id, &file.stats)]).await?;
        qc::amend(conn, &file.stats.qc).await?;
        qc::amend_further(conn, &id, &file.stats.qc).await?;
        Ok(Written::Rows(rows))
    }

    /// The ledger row of a file that loaded nothing, in the group's transaction.
    async fn record_in(
        &self,
        conn: &mut MySqlConnection,
        entry: &crate::sink::LedgerEntry,
    ) -> Result<Written, SinkError> {
        write_record(conn, &self.agent, entry)
            .await
            .map(|()| Written::Recorded)
            .map_err(err("writing the ledger row"))
    }

    /// The files' complete ledger rows, in one statement (nothing for no files). On a
    /// content loaded already (a unique violation) the statement inserted nothing.
    async fn insert_ledger_rows(
        &self,
        conn: &mut MySqlConnection,
        files: &[&GroupFile],
    ) -> Result<(), sqlx::Error> {
        if files.is_empty() {
            return Ok(());
        }
        let finished_at = dt(Utc::now());
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent, row_count, first_timestamp, last_timestamp, finished_at, \
             rejected_rows, profile, profile_hash, source_identity) ",
        );
        q.push_values(files, |mut b, file| {
            let (attempt, stats) = (&file.attempt, &file.stats);
            b.push_bind(attempt.id.hyphenated().to_string())
                .push_bind(attempt.file_name.clone())
                .push_bind(attempt.hash.as_str().to_owned())
                .push_bind(attempt.size as i64)
                .push_bind(EntryStatus::of(stats).as_str())
                .push_bind(dt(attempt.started_at))
                .push_bind(self.agent.clone())
                .push_bind(file.rows.len() as i64)
                .push_bind(stats.first_timestamp.map(dt))
                .push_bind(stats.last_timestamp.map(dt))
                .push_bind(finished_at)
                .push_bind(stats.rejected_rows as i64)
                .push_bind(attempt.profile.name.clone())
                .push_bind(attempt.profile.hash.clone())
                .push_bind(attempt.source_identity.clone());
        });
        q.build().execute(&mut *conn).await?;
        Ok(())
    }

    /// The file's complete ledger row; false when its content is loaded already
    /// (nothing written).
    async fn write_ledger(
        &self,
        conn: &mut MySqlConnection,
        file: &GroupFile,
    ) -> Result<bool, SinkError> {
        match self.insert_ledger_rows(conn, &[file]).await {
            Ok(()) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(SinkError {
                class: classify(&e),
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
