//! Group commit on PostgreSQL ([`Store::load_group`](crate::sink::Store::load_group)):
//! several small files, and the ledger rows of files that loaded nothing, in one
//! transaction, so the commit — the WAL flush — and the round trips are paid once per
//! group instead of once per file.
//!
//! The whole group goes first at once: its ledger rows in one statement, every reading
//! in one binary COPY (each row carrying its file's id), the metrics in one statement,
//! then the commit. Should the database refuse
//! anything in it (a refused value, a constraint, content loaded already), that
//! transaction is rolled back and the group runs file by file to find out which: one
//! statement per file ([`PgStore::write_at_once`], the statement a small file loads
//! with alone; [`PgStore::write_record`]) with no savepoints, and, at the first refusal,
//! once more with a savepoint before each file, so that a refused file rolls back alone
//! and the others commit. A file refused for a data error is left out of that last pass
//! (its answer is known); one whose content was loaded already is run again, since the
//! load it collided with may be one of the group's own.

use sqlx::Connection;

use super::copy::{BINARY_HEADER, BINARY_TRAILER, COPY_CHUNK, COPY_READINGS, encode_row};
use super::load::months_of;
use super::{PgStore, classify, describe, err, is_unique_violation, qc};
use crate::sink::{EntryStatus, ErrorClass, GroupFile, GroupItem, LoadOutcome, SinkError};

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
        // The usual case first: the whole group in one statement (one round trip).
        if let Some(outcomes) = self.write_group_at_once(files).await? {
            return Ok(outcomes);
        }
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

    /// The group's loads — their ledger rows in one statement ([`LEDGER_ROWS`]), every
    /// reading in one binary COPY, the metrics in one statement ([`METRICS_ROWS`]) — and
    /// its ledger rows of files that loaded nothing, in one transaction. `None` when the database refused
    /// something (a value, a constraint, content loaded already): the transaction is
    /// rolled back and the group is to be run file by file to find out which.
    async fn write_group_at_once(
        &self,
        items: &[GroupItem],
    ) -> Result<Option<Vec<Result<LoadOutcome, SinkError>>>, SinkError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(err("starting the load"))?;
        let mut tx = conn.begin().await.map_err(err("starting the load"))?;
        let mut outcomes = Vec::with_capacity(items.len());
        let mut loads = Vec::new();
        for item in items {
            match item {
                GroupItem::Load(file) => {
                    loads.push(file);
                    outcomes.push(Ok(LoadOutcome::Committed {
                        rows: file.rows.len() as u64,
                    }));
                }
                GroupItem::Record(entry) => {
                    match self.write_record(&mut *tx, entry).await {
                        Ok(()) => {}
                        Err(e) if classify(&e) == ErrorClass::Data => return Ok(None),
                        Err(e) => return Err(err("writing the ledger row")(e)),
                    }
                    outcomes.push(Ok(LoadOutcome::Recorded));
                }
            }
        }
        if !loads.is_empty() {
            let written = async {
                ledger_statement(&loads, &self.agent)
                    .execute(&mut *tx)
                    .await?;
                copy_readings(&mut tx, &loads).await?;
                metrics_statement(&loads).execute(&mut *tx).await?;
                Ok::<_, sqlx::Error>(())
            };
            match written.await {
                Ok(()) => {}
                Err(e) if classify(&e) == ErrorClass::Data => return Ok(None),
                Err(e) => return Err(err("loading a group of files")(e)),
            } // Quality flags that files of the group add to readings of earlier files.
            for file in &loads {
                qc::amend(&mut tx, &file.stats.qc).await?;
                qc::amend_further(&mut tx, file.attempt.id, &file.stats.qc).await?;
            }
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(Some(outcomes))
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
                    if written.is_ok() {
                        qc::amend(&mut tx, &file.stats.qc).await?;
                        qc::amend_further(&mut tx, file.attempt.id, &file.stats.qc).await?;
                    }
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

/// A group's complete ledger rows from one array per column (`$7` the agent). The
/// unique index on the content hash refuses content loaded already, before any reading
/// is copied (then the group is run file by file).
const LEDGER_ROWS: &str = "INSERT INTO ingest_files (id, file_name, content_hash, \
        size_bytes, status, started_at, agent, row_count, first_timestamp, last_timestamp, \
        finished_at, rejected_rows, profile, profile_hash, source_identity) \
    SELECT id, name, hash, size, status, started, $7, n, first_ts, last_ts, \
        clock_timestamp(), rejected, profile, profile_hash, source \
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[], \
        $6::timestamptz[], $8::int8[], $9::timestamptz[], $10::timestamptz[], $11::int8[], \
        $12::text[], $13::text[], $14::text[]) \
        AS l (id, name, hash, size, status, started, n, first_ts, last_ts, rejected, \
        profile, profile_hash, source)";

/// A group's metrics from one array per column.
const METRICS_ROWS: &str = "INSERT INTO file_metrics (file_id, column_name, value_count, \
        null_count, min_value, max_value, mean_value, stddev_value, source_unit, \
        missing_codes, qc_step, qc_spike, qc_flat, qc_outlier, qc_gap, qc_time_travel) \
    SELECT file_id, name, n, nulls, lo, hi, mean, sd, unit, coded, step, spike, flat, \
        outlier, gap, travel \
    FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::float8[], \
        $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::int8[], $11::int8[], \
        $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::int8[]) \
        AS m (file_id, name, n, nulls, lo, hi, mean, sd, unit, coded, step, spike, flat, \
        outlier, gap, travel)";

/// The complete ledger rows of a group's `files`, one statement.
fn ledger_statement<'q>(
    files: &[&'q GroupFile],
    agent: &'q str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(LEDGER_ROWS)
        .bind(column(files, |f| f.attempt.id))
        .bind(column(files, |f| f.attempt.file_name.as_str()))
        .bind(column(files, |f| f.attempt.hash.as_str()))
        .bind(column(files, |f| f.attempt.size as i64))
        .bind(column(files, |f| EntryStatus::of(&f.stats).as_str()))
        .bind(column(files, |f| f.attempt.started_at))
        .bind(agent)
        .bind(column(files, |f| f.rows.len() as i64))
        .bind(column(files, |f| f.stats.first_timestamp))
        .bind(column(files, |f| f.stats.last_timestamp))
        .bind(column(files, |f| f.stats.rejected_rows as i64))
        .bind(column(files, |f| f.attempt.profile.name.as_str()))
        .bind(column(files, |f| f.attempt.profile.hash.as_str()))
        .bind(column(files, |f| f.attempt.source_identity.as_deref()))
}

/// One array argument of [`LEDGER_ROWS`]: `field` of each of `files`, in order.
fn column<'q, T>(files: &[&'q GroupFile], field: impl Fn(&'q GroupFile) -> T) -> Vec<T> {
    files.iter().map(|&f| field(f)).collect()
}

/// Every reading of a group's `files` through one binary COPY, each row carrying its
/// file's id.
///
/// The files go in the order of their ids, which is the readings' primary key order
/// (`file_id, line, ts`; ids are time-ordered UUIDv7): each file's rows then append at
/// the right edge of the key's B-tree. In the group's own order (by first reading, for
/// quality control) the same 200,000 readings cost the server about 10% more CPU
/// (`psql \copy` of both orders here: 2.0–2.15 against 2.3–2.35 CPU-seconds).
async fn copy_readings(
    tx: &mut sqlx::PgConnection,
    files: &[&GroupFile],
) -> Result<(), sqlx::Error> {
    let mut files = files.to_vec();
    files.sort_unstable_by_key(|f| f.attempt.id);
    let mut copy = tx.copy_in_raw(COPY_READINGS).await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
    buf.extend_from_slice(BINARY_HEADER);
    for file in files {
        let file_id = *file.attempt.id.as_bytes();
        for row in &file.rows {
            encode_row(&mut buf, &file_id, row);
            if buf.len() >= COPY_CHUNK {
                copy.send(buf.as_slice()).await?;
                buf.clear();
            }
        }
    }
    buf.extend_from_slice(&BINARY_TRAILER.to_be_bytes());
    copy.send(buf.as_slice()).await?;
    copy.finish().await?;
    Ok(())
}

/// The metrics of a group's `files`, one statement.
fn metrics_statement<'q>(
    files: &[&'q GroupFile],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut m_file = Vec::new();
    let mut m_name = Vec::new();
    let mut m_count = Vec::new();
    let mut m_nulls = Vec::new();
    let mut m_values: [Vec<Option<f64>>; 4] = Default::default();
    let mut m_unit = Vec::new();
    let mut m_coded = Vec::new();
    let mut m_qc: [Vec<i64>; 6] = Default::default();
    for f in files {
        for col in &f.stats.columns {
            for (column, n) in m_qc.iter_mut().zip(f.stats.qc.of(&col.name)) {
                column.push(n as i64);
            }
            let c = &col.stats;
            m_file.push(f.attempt.id);
            m_name.push(col.name.as_str());
            m_unit.push(col.source_unit.as_deref());
            m_coded.push(col.coded_missing as i64);
            m_count.push(c.count as i64);
            m_nulls.push(c.nulls as i64);
            for (column, v) in m_values
                .iter_mut()
                .zip([c.min, c.max, c.mean(), c.stddev()])
            {
                column.push(v);
            }
        }
    }
    let [m_min, m_max, m_mean, m_sd] = m_values;
    let [m_step, m_spike, m_flat, m_outlier, m_gap, m_travel] = m_qc;
    sqlx::query(METRICS_ROWS)
        .bind(m_file)
        .bind(m_name)
        .bind(m_count)
        .bind(m_nulls)
        .bind(m_min)
        .bind(m_max)
        .bind(m_mean)
        .bind(m_sd)
        .bind(m_unit)
        .bind(m_coded)
        .bind(m_step)
        .bind(m_spike)
        .bind(m_flat)
        .bind(m_outlier)
        .bind(m_gap)
        .bind(m_travel)
}
