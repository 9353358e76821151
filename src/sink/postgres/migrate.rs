//! `sensor-ingest migrate`: moves a plain `sensor_readings` of an earlier version into
//! the monthly-partitioned table, resumably, while agents keep loading.
//!
//! 1. A new partitioned table, `sensor_readings_migrating`, is created beside the old
//!    one with the partitions its data needs (the final names, `sensor_readings_pYYYYMM`).
//! 2. Readings are copied one batch of ledger files at a time, in ledger-id order; each
//!    batch commits with the cursor in `readings_migration`, so a killed migration
//!    resumes after its last committed batch. Agents go on loading into the old table.
//! 3. The primary key and indexes are built on the new table.
//! 4. One short transaction locks the old table against writes (agents' loads wait; no
//!    error), copies the files loaded since their batch was passed, checks that both
//!    tables hold the same number of readings, swaps the names, re-points the views
//!    and drops the old table. Agents notice the new layout at their next load.
//!
//! Only one `migrate` runs at a time (a session advisory lock).

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres, Row};
use uuid::Uuid;

use super::partitions::{Layout, Month, survey};
use super::{PgStore, SCHEMA, SCHEMA_LOCK, err, is_missing_partition};
use crate::sink::SinkError;

/// Session advisory lock held by the one running `migrate`.
const MIGRATE_LOCK: i64 = 0x5e_4514_3167;

/// Times the swap waits up to its lock timeout (2 s) for loads in progress to finish.
const SWAP_TRIES: u32 = 30;

/// Ledger files looked at per round when a batch is put together.
const CANDIDATES: i64 = 10_000;

/// How a migration is run.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// Readings per copy batch (by the ledger's row counts; a larger file is a batch
    /// of its own).
    pub batch_rows: u64,
    /// Stop after this many batches (to spread the copy over quiet hours); run again
    /// to continue. `None`: copy everything and swap.
    pub max_batches: Option<u64>,
    /// Keep the old table as `sensor_readings_unpartitioned` instead of dropping it.
    pub keep_old: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            batch_rows: 500_000,
            max_batches: None,
            keep_old: false,
        }
    }
}

/// How far a migration got, as recorded in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub batches: i64,
    pub files: i64,
    pub rows: i64,
    /// Readings in the old table by the ledger's count (loaded and partial files).
    pub rows_total: i64,
}

/// How `migrate` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrated {
    /// The table is partitioned already; nothing was done.
    AlreadyPartitioned,
    /// Stopped after the batch limit; run again to continue.
    Stopped(Progress),
    /// Copied and swapped: `rows` readings now in the partitioned table.
    Done { rows: i64, swap_ms: u128 },
}

/// Why `migrate` stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Database(#[from] SinkError),
    #[error(
        "another `sensor-ingest migrate` is running on this database; wait for it (or stop it: \
         it resumes where it stopped)"
    )]
    Busy,
    #[error(
        "the copy holds {copied} readings but the old table {old}: nothing was swapped. Readings \
         whose file is not a loaded or partial ledger row cannot be moved by file; check \
         `SELECT file_id FROM sensor_readings EXCEPT SELECT id FROM ingest_files`"
    )]
    Mismatch { old: i64, copied: i64 },
}

/// Moves the plain readings table into the partitioned layout (see the module doc),
/// calling `progress` after every batch. The schema must have been applied
/// ([`Store::prepare`](crate::sink::Store::prepare)).
pub async fn migrate(
    store: &PgStore,
    options: MigrateOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Migrated, MigrateError> {
    let mut conn = store.pool.acquire().await.map_err(err("connecting"))?;
    if survey(&mut conn).await?.layout != Layout::Plain {
        return Ok(Migrated::AlreadyPartitioned);
    }
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATE_LOCK)
        .fetch_one(&mut *conn)
        .await
        .map_err(err("locking the migration"))?;
    if !locked {
        return Err(MigrateError::Busy);
    }
    let result = run(&mut conn, options, &mut progress).await;
    // The connection goes back to the pool: let the next migrate in. Should this fail,
    // the lock goes with the connection when the process exits.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *conn)
        .await;
    if matches!(result, Ok(Migrated::Done { .. })) {
        store.forget_partitions();
    }
    result
}

/// The state of a started migration, `None` when none is under way; for `status`.
pub async fn state(conn: &mut PgConnection) -> Result<Option<Progress>, SinkError> {
    let started: bool = sqlx::query_scalar("SELECT to_regclass('readings_migration') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(err("reading the migration state"))?;
    if !started {
        return Ok(None);
    }
    read_progress(conn).await.map(Some)
}

async fn read_progress(conn: &mut PgConnection) -> Result<Progress, SinkError> {
    let row = sqlx::query(
        "SELECT batches, files_copied, rows_copied, \
                (SELECT coalesce(sum(row_count), 0)::int8 FROM ingest_files \
                 WHERE status IN ('loaded', 'partial')) \
         FROM readings_migration",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err("reading the migration state"))?;
    Ok(Progress {
        batches: row.get(0),
        files: row.get(1),
        rows: row.get(2),
        rows_total: row.get(3),
    })
}

async fn run(
    conn: &mut PoolConnection<Postgres>,
    options: MigrateOptions,
    progress: &mut impl FnMut(&Progress),
) -> Result<Migrated, MigrateError> {
    set_up(conn).await?;
    let mut done = 0;
    loop {
        if options.max_batches.is_some_and(|max| done >= max) {
            return Ok(Migrated::Stopped(read_progress(conn).await?));
        }
        let cursor: Option<Uuid> = sqlx::query_scalar("SELECT cursor FROM readings_migration")
            .fetch_one(&mut **conn)
            .await
            .map_err(err("reading the migration state"))?;
        let batch = next_batch(conn, cursor, options.batch_rows).await?;
        if batch.ids.is_empty() {
            break;
        }
        copy_batch(conn, &batch).await?;
        done += 1;
        progress(&read_progress(conn).await?);
    }
    build_indexes(conn).await?;
    // The swap waits for loads in progress to commit, and loads wait behind it: a short
    // lock timeout, tried again, keeps a long load from holding all the others up.
    let mut tries = 0;
    loop {
        let started = std::time::Instant::now();
        match swap(conn, options.keep_old).await {
            Ok(rows) => {
                return Ok(Migrated::Done {
                    rows,
                    swap_ms: started.elapsed().as_millis(),
                });
            }
            Err(MigrateError::Database(e)) if e.detail.contains("55P03") && tries < SWAP_TRIES => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The state table, the new table (its columns following the old one's, including any
/// added since a previous run) and the partitions of the months ahead.
async fn set_up(conn: &mut PgConnection) -> Result<(), SinkError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS readings_migration (
             one          boolean PRIMARY KEY DEFAULT true CHECK (one),
             started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
             cursor       uuid,          -- the last ledger id whose readings are copied
             batches      bigint NOT NULL DEFAULT 0,
             files_copied bigint NOT NULL DEFAULT 0,
             rows_copied  bigint NOT NULL DEFAULT 0,
             updated_at   timestamptz
         );
         INSERT INTO readings_migration DEFAULT VALUES ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS sensor_readings_migrating
             (LIKE sensor_readings INCLUDING DEFAULTS) PARTITION BY RANGE (ts);",
    )
    .execute(&mut *conn)
    .await
    .map_err(err("setting up the migration"))?;
    let added: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'sensor_readings'::regclass AND attnum > 0 AND NOT attisdropped \
           AND attname NOT IN (SELECT attname FROM pg_attribute \
               WHERE attrelid = 'sensor_readings_migrating'::regclass AND NOT attisdropped) \
         ORDER BY attnum",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err("comparing the tables' columns"))?;
    for (name, ty) in added {
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE sensor_readings_migrating ADD COLUMN {} {ty}",
            quote(&name)
        )))
        .execute(&mut *conn)
        .await
        .map_err(err("adding a column to the new table"))?;
    }
    let this = Month::of(Utc::now());
    let ahead: Vec<Month> = (-1..=super::MONTHS_AHEAD).map(|k| this.offset(k)).collect();
    create_partitions(conn, &ahead).await
}

/// Creates the new table's partitions of `months` that do not exist yet. The new table
/// is the migration's alone, so `PARTITION OF` (an exclusive lock on it) is fine here.
async fn create_partitions(conn: &mut PgConnection, months: &[Month]) -> Result<(), SinkError> {
    for &month in months {
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS \"{}\" PARTITION OF sensor_readings_migrating \
             FOR VALUES FROM ({}) TO ({})",
            month.table(),
            month.bound(),
            month.next().bound()
        )))
        .execute(&mut *conn)
        .await
        .map_err(err("creating a partition of the new table"))?;
    }
    Ok(())
}

/// Ledger files whose readings are copied together, and the months they cover.
struct Batch {
    ids: Vec<Uuid>,
    months: Vec<Month>,
}

/// A ledger file: id, readings, first and last timestamp.
type LedgerFile = (Uuid, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The next files after `cursor`, up to `batch_rows` readings (at least one file).
async fn next_batch(
    conn: &mut PgConnection,
    cursor: Option<Uuid>,
    batch_rows: u64,
) -> Result<Batch, SinkError> {
    let rows: Vec<LedgerFile> = sqlx::query_as(
        "SELECT id, row_count, first_timestamp, last_timestamp FROM ingest_files \
         WHERE status IN ('loaded', 'partial') AND ($1::uuid IS NULL OR id > $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(cursor)
    .bind(CANDIDATES)
    .fetch_all(&mut *conn)
    .await
    .map_err(err("choosing the next batch"))?;
    let mut batch = Batch {
        ids: Vec::new(),
        months: Vec::new(),
    };
    let mut total = 0u64;
    for (id, count, first, last) in rows {
        let count = count.max(0) as u64;
        if !batch.ids.is_empty() && total + count > batch_rows {
            break;
        }
        total += count;
        batch.ids.push(id);
        if let (Some(first), Some(last)) = (first, last) {
            let (mut m, end) = (Month::of(first), Month::of(last));
            while m <= end {
                batch.months.push(m);
                m = m.next();
            }
        }
    }
    batch.months.sort();
    batch.months.dedup();
    Ok(batch)
}

/// Copies the readings of `batch`'s files into the new table and moves the cursor past
/// them, in one transaction. A row of a month without a
/// partition (a ledger row without first/last times) makes it look the months up and
/// try once more.
async fn copy_batch(conn: &mut PgConnection, batch: &Batch) -> Result<i64, SinkError> {
    create_partitions(conn, &batch.months).await?;
    match copy_batch_once(conn, batch).await {
        Err(e) if is_missing_partition(&e) => {
            let months: Vec<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM sensor_readings \
                 WHERE file_id = ANY($1)",
            )
            .bind(&batch.ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(err("listing a batch's months"))?;
            let months: Vec<Month> = months.into_iter().map(Month::of).collect();
            create_partitions(conn, &months).await?;
            copy_batch_once(conn, batch)
                .await
                .map_err(err("copying readings"))
        }
        other => other.map_err(err("copying readings")),
    }
}

async fn copy_batch_once(conn: &mut PgConnection, batch: &Batch) -> Result<i64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let columns = columns(&mut tx).await?;
    let copied = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO sensor_readings_migrating ({columns}) \
         SELECT {columns} FROM sensor_readings WHERE file_id = ANY($1)"
    )))
    .bind(&batch.ids)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(
        "UPDATE readings_migration SET \
             cursor = $1, batches = batches + 1, \
             files_copied = files_copied + $2, rows_copied = rows_copied + $3, \
             updated_at = clock_timestamp()",
    )
    .bind(batch.ids.last())
    .bind(batch.ids.len() as i64)
    .bind(copied)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(copied)
}

/// The old table's columns, quoted, comma-separated (the new table has them all).
async fn columns(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'sensor_readings'::regclass \
         AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", "))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The primary key and indexes of the new table, under temporary names (the old
/// table's hold the final ones until the swap). Each is one transaction.
async fn build_indexes(conn: &mut PgConnection) -> Result<(), SinkError> {
    let has_key: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'p' \
         AND conrelid = 'sensor_readings_migrating'::regclass)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err("looking for the new table's key"))?;
    if !has_key {
        sqlx::query(
            "ALTER TABLE sensor_readings_migrating ADD CONSTRAINT \
             sensor_readings_migrating_pkey PRIMARY KEY (file_id, line, ts)",
        )
        .execute(&mut *conn)
        .await
        .map_err(err("building the new table's primary key"))?;
    }
    for sql in [
        "CREATE INDEX IF NOT EXISTS sensor_readings_migrating_sensor_ts \
         ON sensor_readings_migrating (sensor_id, ts)",
        "CREATE INDEX IF NOT EXISTS sensor_readings_migrating_ts_brin \
         ON sensor_readings_migrating USING brin (ts)",
    ] {
        sqlx::query(sql)
            .execute(&mut *conn)
            .await
            .map_err(err("building the new table's indexes"))?;
    }
    Ok(())
}

/// The swap (step 4 of the module doc); the readings now in the partitioned table.
async fn swap(conn: &mut PgConnection, keep_old: bool) -> Result<i64, MigrateError> {
    let mut tx = conn.begin().await.map_err(err("starting the swap"))?;
    for sql in [
        "SET LOCAL lock_timeout = '2s'",
        // Readers go on; agents' loads wait for the swap (they do not fail).
        "LOCK TABLE sensor_readings IN EXCLUSIVE MODE",
    ] {
        sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .map_err(err("locking the old table for the swap"))?;
    }
    // Files passed by the cursor while their load was still running, and those after.
    let late: Vec<Uuid> = sqlx::query_scalar(
        "SELECT f.id FROM ingest_files f, readings_migration m \
         WHERE f.status IN ('loaded', 'partial') \
           AND (m.cursor IS NULL OR f.id > m.cursor \
                OR f.finished_at >= m.started_at - interval '1 day') \
           AND NOT EXISTS (SELECT 1 FROM sensor_readings_migrating r WHERE r.file_id = f.id)",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(err("finding files loaded during the migration"))?;
    for ids in late.chunks(1_000) {
        let months: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM sensor_readings \
             WHERE file_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(err("listing late files' months"))?;
        let months: Vec<Month> = months.into_iter().map(Month::of).collect();
        create_partitions(&mut tx, &months).await?;
        let columns = columns(&mut tx).await.map_err(err("copying late files"))?;
        let copied = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO sensor_readings_migrating ({columns}) \
             SELECT {columns} FROM sensor_readings WHERE file_id = ANY($1)"
        )))
        .bind(ids)
        .execute(&mut *tx)
        .await
        .map_err(err("copying late files"))?
        .rows_affected() as i64;
        sqlx::query("UPDATE readings_migration SET rows_copied = rows_copied + $1")
            .bind(copied)
            .execute(&mut *tx)
            .await
            .map_err(err("copying late files"))?;
    }
    let (old, copied): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sensor_readings), \
                (SELECT rows_copied FROM readings_migration)",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(err("counting the readings"))?;
    if old != copied {
        return Err(MigrateError::Mismatch { old, copied });
    }
    let old_name = "sensor_readings_unpartitioned";
    let renames = format!(
        "SELECT pg_advisory_xact_lock({SCHEMA_LOCK});
         ALTER TABLE sensor_readings RENAME TO {old_name};
         ALTER TABLE {old_name} RENAME CONSTRAINT sensor_readings_pkey TO {old_name}_pkey;
         ALTER INDEX IF EXISTS sensor_readings_sensor_ts RENAME TO {old_name}_sensor_ts;
         ALTER INDEX IF EXISTS sensor_readings_ts_brin RENAME TO {old_name}_ts_brin;
         ALTER TABLE sensor_readings_migrating RENAME TO sensor_readings;
         ALTER TABLE sensor_readings RENAME CONSTRAINT sensor_readings_migrating_pkey
             TO sensor_readings_pkey;
         ALTER INDEX sensor_readings_migrating_sensor_ts RENAME TO sensor_readings_sensor_ts;
         ALTER INDEX sensor_readings_migrating_ts_brin RENAME TO sensor_readings_ts_brin;"
    );
    sqlx::raw_sql(AssertSqlSafe(renames))
        .execute(&mut *tx)
        .await
        .map_err(err("swapping the tables"))?;
    // The schema again: its views now read the partitioned table.
    sqlx::raw_sql(SCHEMA)
        .execute(&mut *tx)
        .await
        .map_err(err("re-applying script.sql after the swap"))?;
    let finish = if keep_old {
        "DROP TABLE readings_migration".to_owned()
    } else {
        format!("DROP TABLE {old_name}; DROP TABLE readings_migration")
    };
    sqlx::raw_sql(AssertSqlSafe(finish))
        .execute(&mut *tx)
        .await
        .map_err(err("dropping the old table"))?;
    tx.commit().await.map_err(err("committing the swap"))?;
    Ok(copied)
}
