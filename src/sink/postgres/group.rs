//! Group commit on PostgreSQL ([`Store::load_group`](crate::sink::Store::load_group)):
//! several small files in one transaction, each by the one statement a small file
//! loads with alone ([`PgStore::write_at_once`]), with the ledger rows of files that
//! loaded nothing ([`PgStore::write_record`]), so the commit — the WAL flush, the
//! ceiling for small files — is paid once per group instead of once per file.
//!
//! The first pass runs the files one after the other with no savepoints: one round
//! trip per file. Should the database refuse one (a refused value, a constraint, its
//! content loaded already), the transaction is lost; it is rolled back and the group
//! is run again with a savepoint before each file, so that a refused file rolls back
//! alone and the others commit. A file refused for a data error in the first pass is
//! left out of the second (its answer is known); one whose content was loaded already
//! is run again, since the load it collided with may be one of the group's own.

use sqlx::Connection;

use super::load::months_of;
use super::{PgStore, classify, describe, err, is_unique_violation};
use crate::sink::{ErrorClass, GroupItem, LoadOutcome, SinkError};

/// The answer for one file of a group, before the commit.
enum Answer {
    /// Written in the transaction: committed with it.
    Written { rows: u64 },
    /// A ledger row of a file that loaded nothing, written in the transaction.
    Recorded,
    /// Its content hash is loaded already (before, or by an earlier file of the
    /// group): looked up after the commit.
    Loaded,
    /// The database refused its data.
    Refused(SinkError),
}

impl PgStore {
    /// See [`Store::load_group`](crate::sink::Store::load_group).
    pub(super) async fn load_group_at_once(
        &self,
        files: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        let rows = files.iter().filter_map(|item| match item {
            GroupItem::Load(file) => Some(&file.rows),
            GroupItem::Record(_) => None,
        });
        self.ensure_months(&months_of(rows)).await?;
        let answers = match self.write_group(files, None).await? {
            Ok(answers) => answers,
            Err(refused) => {
                self.write_group(files, Some(refused))
                    .await?
                    .map_err(|_| SinkError {
                        class: ErrorClass::Transient,
                        context: "loading a group of files",
                        detail: "a file was refused outside its savepoint".into(),
                    })?
            }
        };
        let mut outcomes = Vec::with_capacity(files.len());
        for (item, answer) in files.iter().zip(answers) {
            let hash = match item {
                GroupItem::Load(file) => &file.attempt.hash,
                GroupItem::Record(entry) => &entry.attempt.hash,
            };
            outcomes.push(match answer {
                Answer::Written { rows } => Ok(LoadOutcome::Committed { rows }),
                Answer::Recorded => Ok(LoadOutcome::Recorded),
                Answer::Refused(e) => Err(e),
                // Looked up now that the group committed: the load it collided with may
                // have been one of the group's own.
                Answer::Loaded => match self.find_loaded_row(hash).await {
                    Ok(Some(loaded)) => Ok(LoadOutcome::AlreadyLoaded(loaded)),
                    // The load it collided with rolled back meanwhile: try again.
                    Err(e) => Err(e),
                    Ok(None) => Err(SinkError {
                        class: ErrorClass::Transient,
                        context: "claiming the content hash",
                        detail: "the load of the same content rolled back".into(),
                    }),
                },
            });
        }
        Ok(outcomes)
    }

    /// One transaction over `files`. Without `savepoints` (the first pass), the first
    /// file the database refuses ends it: rolled back, and `Ok(Err(i, answer))` says
    /// which. With them (the second pass, given what the first found), each file is
    /// rolled back alone and every answer is known. `Err` is a failure of the whole
    /// transaction (nothing committed).
    async fn write_group(
        &self,
        files: &[GroupItem],
        savepoints: Option<(usize, Answer)>,
    ) -> Result<Result<Vec<Answer>, (usize, Answer)>, SinkError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(err("starting the load"))?;
        let mut tx = conn.begin().await.map_err(err("starting the load"))?;
        let with_savepoints = savepoints.is_some();
        let mut known = savepoints;
        let mut answers = Vec::with_capacity(files.len());
        for (i, file) in files.iter().enumerate() {
            if let Some((at, _)) = &known
                && *at == i
                && let Some((_, answer)) = known.take()
                && !matches!(answer, Answer::Loaded)
            {
                // Refused in the first pass: its answer stands, and it is not run again.
                answers.push(answer);
                continue;
            }
            if with_savepoints {
                sqlx::query("SAVEPOINT file")
                    .execute(&mut *tx)
                    .await
                    .map_err(err("loading a group of files"))?;
            }
            let (written, done) = match file {
                GroupItem::Load(file) => {
                    let rows = file.rows.len() as u64;
                    let written = self
                        .write_at_once(&mut *tx, &file.attempt, file.rows.clone(), &file.stats)
                        .await;
                    (written, Answer::Written { rows })
                }
                GroupItem::Record(entry) => {
                    (self.write_record(&mut *tx, entry).await, Answer::Recorded)
                }
            };
            let answer = match written {
                Ok(()) => done,
                Err(e) if is_unique_violation(&e) => Answer::Loaded,
                Err(e) if classify(&e) == ErrorClass::Data => Answer::Refused(SinkError {
                    class: ErrorClass::Data,
                    context: "loading the file",
                    detail: describe(&e),
                }),
                Err(e) => return Err(err("loading a group of files")(e)),
            };
            if !matches!(answer, Answer::Written { .. } | Answer::Recorded) {
                if !with_savepoints {
                    let _ = tx.rollback().await;
                    return Ok(Err((i, answer)));
                }
                sqlx::query("ROLLBACK TO SAVEPOINT file")
                    .execute(&mut *tx)
                    .await
                    .map_err(err("loading a group of files"))?;
            }
            answers.push(answer);
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(Ok(answers))
    }
}
