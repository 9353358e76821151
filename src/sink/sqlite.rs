//! SQLite backend, the embedded default: the same ledger, readings and metrics as the
//! PostgreSQL backend, in one file, with the same one-transaction-per-file guarantee.
//!
//! - The file is opened in WAL mode with `synchronous=FULL`, so a commit is on disk
//!   before the pipeline moves the file out of the data folder (with `NORMAL`, a power
//!   cut could undo a commit whose file was already archived).
//! - SQLite has one writer at a time. The store serialises its own writers with an
//!   async mutex, so workers queue instead of spinning on `SQLITE_BUSY`; the busy
//!   timeout only matters when another process (the `sqlite3` shell, say) holds the
//!   write lock, and `SQLITE_BUSY` that outlasts it is a transient error, retried.
//! - Loads begin with `BEGIN IMMEDIATE`: a deferred transaction that upgrades to a
//!   write can fail with `SQLITE_BUSY_SNAPSHOT` without waiting at all.
//! - Readings go in through SQLite's C API on the transaction's own connection (see
//!   [`insert_readings`]): sqlx's per-value overhead cost three times SQLite's own work.

#![allow(unsafe_code)] // until the C-API writer has its own module

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Executor, Row, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::{
    Activity, ErrorClass, FileAttempt, LedgerEntry, LedgerRecord, LoadMsg, LoadOutcome, LoadedFile,
    SinkError, Store, agent_name,
};
use crate::config::SqliteSettings;
use crate::enrich::EnrichedRow;
use crate::read::ContentHash;
use crate::stats::FileStats;
use crate::timestamp::format_utc;

/// The schema, applied idempotently by [`Store::prepare`]. It mirrors `script.sql`.
pub const SCHEMA: &str = include_str!("../../script.sqlite.sql");

/// How long a statement waits for another process's write lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    target: String,
    agent: String,
    /// Held by every write: SQLite takes one writer at a time.
    writer: Arc<Mutex<()>>,
}

impl SqliteStore {
    /// A store on the file of `settings`, created (with its folder) on first use.
    /// Nothing is opened until then.
    pub fn new(settings: &SqliteSettings, connections: u32) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(settings.path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Writes take turns anyway; a few connections serve the reads, and each one
        // keeps its own page cache, so more would only cost memory.
        let pool = SqlitePoolOptions::new()
            .max_connections(connections.clamp(1, 4))
            .min_connections(0)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_lazy_with(options);
        Self {
            pool,
            path: settings.path().to_owned(),
            target: settings.to_string(),
            agent: agent_name(),
            writer: Arc::new(Mutex::new(())),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Sorts an SQLite error into transient, refused or data, mirroring the PostgreSQL
/// backend's rules.
///
/// SQLite reports extended result codes; the low byte is the primary code.
/// - `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6): another connection holds the lock —
///   transient.
/// - `SQLITE_CONSTRAINT` (19), `SQLITE_TOOBIG` (18), `SQLITE_MISMATCH` (20),
///   `SQLITE_RANGE` (25): the data — quarantine, like PostgreSQL's classes 22/23/54.
/// - `SQLITE_PERM` (3), `SQLITE_READONLY` (8), `SQLITE_CORRUPT` (11),
///   `SQLITE_CANTOPEN` (14), `SQLITE_AUTH` (23), `SQLITE_NOTADB` (26): the database
///   refuses the agent — fatal at startup.
/// - Everything else (`SQLITE_IOERR`, `SQLITE_FULL`, a pool timeout…) is not the file's
///   fault: transient.
pub fn classify(e: &sqlx::Error) -> ErrorClass {
    match e {
        sqlx::Error::Database(db) => {
            classify_code(db.code().and_then(|c| c.parse().ok()).unwrap_or(0))
        }
        sqlx::Error::Encode(_) => ErrorClass::Data,
        _ => ErrorClass::Transient,
    }
}

/// [`classify`] for an SQLite (extended) result code.
fn classify_code(code: i32) -> ErrorClass {
    match code & 0xff {
        18 | 19 | 20 | 25 => ErrorClass::Data,
        3 | 8 | 11 | 14 | 23 | 26 => ErrorClass::Refused,
        _ => ErrorClass::Transient,
    }
}

fn err(context: &'static str) -> impl FnOnce(sqlx::Error) -> SinkError {
    move |e| super::sink_error(&e, classify(&e), context, "SQLite code")
}

fn describe(e: &sqlx::Error) -> String {
    super::describe_sqlx(e, "SQLite code")
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn prepare(&self) -> Result<(), SinkError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SinkError {
                class: ErrorClass::Refused,
                context: "creating the database's folder",
                detail: format!("{}: {e}", dir.display()),
            })?;
        }
        let _writing = self.writer.lock().await;
        let mut conn = self.pool.acquire().await.map_err(err("opening"))?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("starting schema setup"))?;
        tx.execute(sqlx::raw_sql(SCHEMA))
            .await
            .map_err(err("applying script.sqlite.sql"))?;
        tx.commit().await.map_err(err("committing schema"))?;
        Ok(())
    }

    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError> {
        let row = sqlx::query(
            "SELECT id, file_name, archived_as FROM ingest_files \
             WHERE content_hash = ? AND status = 'loaded'",
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
            })
        })
        .transpose()
    }

    async fn load(
        &self,
        attempt: &FileAttempt,
        mut rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        let _writing = self.writer.lock().await;
        let mut conn = self.pool.acquire().await.map_err(err("opening"))?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("starting the load"))?;

        let id = attempt.id.hyphenated().to_string();
        // Same order as PostgreSQL: the claim fails on the unique index before any
        // reading is written if this content is already loaded.
        let claim = sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent) VALUES (?, ?, ?, ?, 'loaded', ?, ?)",
        )
        .bind(&id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(format_utc(attempt.started_at))
        .bind(&self.agent)
        .execute(&mut *tx)
        .await;
        if let Err(e) = claim {
            if matches!(&e, sqlx::Error::Database(db) if db.is_unique_violation()) {
                drop(tx);
                if let Some(loaded) = self.find_loaded(&attempt.hash).await? {
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

        let ingested_at = format_utc(Utc::now());
        let mut inserted = 0u64;
        let stats = loop {
            match rows.recv().await {
                Some(LoadMsg::Rows(batch)) => {
                    inserted += insert_readings(&mut tx, &id, &ingested_at, &batch).await?;
                }
                Some(LoadMsg::Commit(stats)) => break stats,
                Some(LoadMsg::Abort) | None => {
                    let _ = tx.rollback().await;
                    return Ok(LoadOutcome::Aborted);
                }
            }
        };

        insert_metrics(&mut tx, &id, &stats).await?;
        sqlx::query(
            "UPDATE ingest_files SET row_count = ?, first_timestamp = ?, last_timestamp = ?, \
             finished_at = ? WHERE id = ?",
        )
        .bind(inserted as i64)
        .bind(stats.first_timestamp.map(format_utc))
        .bind(stats.last_timestamp.map(format_utc))
        .bind(format_utc(Utc::now()))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(err("completing the ledger row"))?;
        tx.commit().await.map_err(err("committing"))?;
        Ok(LoadOutcome::Committed { rows: inserted })
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        let a = &entry.attempt;
        let _writing = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             row_count, rejected_rows, error_summary, duplicate_of, started_at, finished_at, \
             agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(format_utc(a.started_at))
        .bind(format_utc(Utc::now()))
        .bind(&self.agent)
        .execute(&self.pool)
        .await
        .map_err(err("writing the ledger row"))?;
        Ok(())
    }

    async fn mark_archived(&self, id: Uuid, archived_as: &str) -> Result<(), SinkError> {
        let _writing = self.writer.lock().await;
        sqlx::query("UPDATE ingest_files SET archived_as = ?, archived_at = ? WHERE id = ?")
            .bind(archived_as)
            .bind(format_utc(Utc::now()))
            .bind(id.hyphenated().to_string())
            .execute(&self.pool)
            .await
            .map_err(err("recording the archive name"))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), SinkError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err("checking the database"))?;
        Ok(())
    }

    async fn activity_since(&self, since: DateTime<Utc>) -> Result<Activity, SinkError> {
        // Times are fixed-width UTC text, so text order is time order.
        let rows: Vec<super::ActivityRow> = sqlx::query_as(
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

    async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM ingest_files WHERE status = 'loaded' \
             ORDER BY finished_at DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading the last loaded file"))?;
        row.as_ref().map(ledger_record).transpose()
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
const RECORD_COLUMNS: &str = "id, file_name, content_hash, status, row_count, rejected_rows, \
    error_summary, started_at, finished_at, archived_as";

fn ledger_record(r: &SqliteRow) -> Result<LedgerRecord, SinkError> {
    Ok(LedgerRecord {
        id: parse_id(r.get(0))?,
        file_name: r.get(1),
        content_hash: r.get(2),
        status: r.get(3),
        row_count: r.get::<i64, _>(4).max(0) as u64,
        rejected_rows: r.get::<i64, _>(5).max(0) as u64,
        error_summary: r.get(6),
        started_at: parse_time(r.get(7))?,
        finished_at: parse_time(r.get(8))?,
        archived_as: r.get(9),
    })
}

/// Reads the schema's fixed-width UTC text (any RFC 3339 text, in fact).
fn parse_time(text: String) -> Result<DateTime<Utc>, SinkError> {
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.to_utc())
        .map_err(|e| SinkError {
            class: ErrorClass::Refused,
            context: "reading the ledger",
            detail: format!("time {text:?} is not RFC 3339: {e}"),
        })
}

fn parse_id(text: String) -> Result<Uuid, SinkError> {
    Uuid::parse_str(&text).map_err(|e| SinkError {
        class: ErrorClass::Refused,
        context: "reading the ledger",
        detail: format!("ledger id {text:?} is not a UUID: {e}"),
    })
}

/// Readings per INSERT statement: one statement of this many `VALUES` tuples opens its
/// cursors (the table and its three indexes) and runs its program once for all of
/// them; a single-row statement takes the rest of a batch.
const ROWS_PER_INSERT: usize = 32;
/// Parameters per reading.
const READING_PARAMS: usize = 13;

/// `INSERT INTO sensor_readings … VALUES (…), (…)` for `rows` readings.
fn insert_readings_sql(rows: usize) -> CString {
    let mut sql = String::from(
        "INSERT OR FAIL INTO sensor_readings (file_id, line, ts, sensor_id, temperature, humidity, \
         pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, \
         ingested_at) VALUES ",
    );
    let tuple = format!("({})", vec!["?"; READING_PARAMS].join(", "));
    sql.push_str(&vec![tuple; rows].join(", "));
    CString::new(sql).expect("no NUL in SQL")
}

/// Inserts one batch of readings inside the open transaction on `conn`, through
/// SQLite's C API rather than sqlx.
///
/// Hand-written for speed: through sqlx every bound value is boxed in an `Arc` and
/// each statement crosses to sqlx's worker thread. Loading 1 M rows took 6 s that way
/// (chunked 500-row INSERTs), while SQLite itself needs under 2 s to insert them with
/// every index (`INSERT … SELECT` between two files). Here prepared statements of
/// [`ROWS_PER_INSERT`] rows are bound with borrowed values (`SQLITE_STATIC`), stepped
/// and reset, on the connection sqlx locked for us — the same transaction.
///
/// `INSERT OR FAIL`, not the default `OR ABORT`: to undo just the failing statement,
/// `OR ABORT` makes SQLite write every page a multi-row statement touches to a
/// statement journal first, which tripled the system time of a bulk load. On a failure
/// the whole file's transaction is rolled back anyway, so nothing is lost by keeping
/// the failing statement's earlier rows until then. 1 M rows: 3.3 s with single-row
/// statements, 2.7 s with 32-row ones (8 rows: 2.9 s; 64 or 128: no better).
async fn insert_readings(
    conn: &mut SqliteConnection,
    file_id: &str,
    ingested_at: &str,
    rows: &[EnrichedRow],
) -> Result<u64, SinkError> {
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(err("inserting readings"))?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `handle` guarantees that sqlx's worker makes no call on this connection
    // until it is dropped, after the insert; `db` is valid for that long.
    let insert = || unsafe { insert_raw(db, file_id, ingested_at, rows) };
    // A batch takes a few milliseconds of CPU: let the runtime move other tasks off
    // this thread while it runs (not possible on a current-thread runtime, as in tests).
    if matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread
    ) {
        tokio::task::block_in_place(insert)
    } else {
        insert()
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(*mut ffi::sqlite3_stmt);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful sqlite3_prepare_v2 and is
        // finalized once.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

/// The error SQLite reports for its last call on `db`, classified like sqlx's.
///
/// # Safety
/// `db` must be a valid, open connection.
unsafe fn last_error(db: *mut ffi::sqlite3, context: &'static str) -> SinkError {
    // SAFETY: `db` is valid (caller); errmsg returns a NUL-terminated string owned by
    // SQLite, copied before any further call.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db);
        let message = CStr::from_ptr(ffi::sqlite3_errmsg(db))
            .to_string_lossy()
            .into_owned();
        (code, message)
    };
    SinkError {
        class: classify_code(code),
        context,
        detail: format!("{message} (SQLite code {code})"),
    }
}

/// Prepares `sql` on `db`.
///
/// # Safety
/// `db` must be a valid connection that no other thread uses during the call.
unsafe fn prepare(db: *mut ffi::sqlite3, sql: &CStr) -> Result<Statement, SinkError> {
    let mut raw = ptr::null_mut();
    // SAFETY: valid db (caller), NUL-terminated SQL, out-pointer to a local.
    let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut raw, ptr::null_mut()) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: valid db.
        return Err(unsafe { last_error(db, "inserting readings") });
    }
    Ok(Statement(raw))
}

/// # Safety
/// `db` must be a valid connection that no other thread uses during the call.
unsafe fn insert_raw(
    db: *mut ffi::sqlite3,
    file_id: &str,
    ingested_at: &str,
    rows: &[EnrichedRow],
) -> Result<u64, SinkError> {
    let (grouped, rest) = rows.split_at(rows.len() - rows.len() % ROWS_PER_INSERT);
    // One timestamp buffer per tuple: text is bound in place (SQLITE_STATIC), so each
    // must stay unchanged until its statement has stepped.
    let mut ts: Vec<Vec<u8>> = (0..ROWS_PER_INSERT)
        .map(|_| Vec::with_capacity(32))
        .collect();
    let mut insert = |sql: CString, chunks: std::slice::Chunks<'_, EnrichedRow>| {
        // SAFETY: valid db, used by this thread only (caller).
        let stmt = unsafe { prepare(db, &sql)? };
        for chunk in chunks {
            // SAFETY: `stmt` is a live statement of `db` with `chunk.len()` tuples; every
            // bound buffer (`file_id`, `ts`, the rows' strings, `ingested_at`) outlives
            // the step, and `bind_and_step` resets the statement before returning.
            unsafe { bind_and_step(db, &stmt, chunk, file_id, ingested_at, &mut ts)? };
        }
        Ok::<_, SinkError>(())
    };
    if !grouped.is_empty() {
        insert(
            insert_readings_sql(ROWS_PER_INSERT),
            grouped.chunks(ROWS_PER_INSERT),
        )?;
    }
    if !rest.is_empty() {
        insert(insert_readings_sql(1), rest.chunks(1))?;
    }
    Ok(rows.len() as u64)
}

/// Binds `rows` to the tuples of `stmt`, steps it once and resets it.
///
/// # Safety
/// `db` must be a valid connection that no other thread uses during the call, and
/// `stmt` a live statement of it with `rows.len()` reading tuples.
unsafe fn bind_and_step(
    db: *mut ffi::sqlite3,
    stmt: &Statement,
    rows: &[EnrichedRow],
    file_id: &str,
    ingested_at: &str,
    ts: &mut [Vec<u8>],
) -> Result<(), SinkError> {
    let s = stmt.0;
    // SAFETY (the binds below): `s` is live (caller). Text is bound in place
    // (SQLITE_STATIC): `file_id`, `ingested_at` and the rows' strings are borrowed for
    // the whole call, each tuple has its own `ts` buffer, and the reset before returning
    // drops every binding. Lengths fit in i32: records are at most 1 MiB.
    let text = |i: i32, v: &[u8]| unsafe {
        ffi::sqlite3_bind_text(
            s,
            i,
            v.as_ptr().cast(),
            v.len() as i32,
            ffi::SQLITE_STATIC(),
        )
    };
    let real = |i: i32, v: Option<f64>| unsafe {
        match v {
            Some(v) => ffi::sqlite3_bind_double(s, i, v),
            None => ffi::sqlite3_bind_null(s, i),
        }
    };
    for (j, (row, ts)) in rows.iter().zip(ts.iter_mut()).enumerate() {
        let r = &row.reading;
        ts.clear();
        crate::timestamp::write_utc(ts, r.timestamp);
        let at = (j * READING_PARAMS) as i32;
        let binds = [
            text(at + 1, file_id.as_bytes()),
            unsafe { ffi::sqlite3_bind_int64(s, at + 2, r.line as i64) },
            text(at + 3, ts),
            text(at + 4, r.sensor_id.as_bytes()),
            real(at + 5, r.temperature),
            real(at + 6, r.humidity),
            real(at + 7, r.pressure),
            real(at + 8, row.temperature_k),
            real(at + 9, row.temperature_norm),
            real(at + 10, row.humidity_norm),
            real(at + 11, row.pressure_norm),
            match &r.extra {
                Some(json) => text(at + 12, json.as_bytes()),
                None => unsafe { ffi::sqlite3_bind_null(s, at + 12) },
            },
            text(at + 13, ingested_at.as_bytes()),
        ];
        if binds.iter().any(|rc| *rc != ffi::SQLITE_OK) {
            // SAFETY: valid db (caller); the statement's drop releases the bindings.
            return Err(unsafe { last_error(db, "inserting readings") });
        }
    }
    // SAFETY: live statement of a valid db (caller); the error is read before any
    // other call on `db`.
    unsafe {
        let rc = ffi::sqlite3_step(s);
        ffi::sqlite3_reset(s);
        match rc {
            ffi::SQLITE_DONE => Ok(()),
            _ => Err(last_error(db, "inserting readings")),
        }
    }
}

async fn insert_metrics(
    conn: &mut SqliteConnection,
    file_id: &str,
    stats: &FileStats,
) -> Result<(), SinkError> {
    let columns: Vec<_> = stats.columns().collect();
    if columns.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<Sqlite>::new(
        "INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
         max_value, mean_value, stddev_value) ",
    );
    q.push_values(columns, |mut b, (name, c)| {
        b.push_bind(file_id.to_owned())
            .push_bind(name)
            .push_bind(c.count as i64)
            .push_bind(c.nulls as i64)
            .push_bind(c.min)
            .push_bind(c.max)
            .push_bind(c.mean())
            .push_bind(c.stddev());
    });
    q.build()
        .persistent(false)
        .execute(conn)
        .await
        .map_err(err("writing file metrics"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open(path: &std::path::Path, busy: Duration) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(busy);
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    fn reading(line: u64) -> EnrichedRow {
        EnrichedRow {
            reading: crate::validate::Reading {
                line,
                timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + line as i64, 0)
                    .unwrap(),
                sensor_id: format!("s-{}", line % 3),
                temperature: Some(line as f64),
                humidity: None,
                pressure: Some(1000.5),
                extra: line.is_multiple_of(2).then(|| format!("{{\"n\":{line}}}")),
            },
            temperature_k: Some(line as f64 + 273.15),
            temperature_norm: Some(0.5),
            humidity_norm: None,
            pressure_norm: Some(0.25),
        }
    }

    async fn load(store: &SqliteStore, rows: Vec<EnrichedRow>) -> Result<LoadOutcome, SinkError> {
        let attempt = FileAttempt {
            id: Uuid::now_v7(),
            file_name: "f.csv".into(),
            hash: ContentHash::unread(&Uuid::now_v7().to_string()),
            size: 1,
            started_at: Utc::now(),
        };
        let (tx, rx) = mpsc::channel(2);
        tx.send(LoadMsg::Rows(rows)).await.unwrap();
        tx.send(LoadMsg::Commit(Box::default())).await.unwrap();
        store.load(&attempt, rx).await
    }

    /// Readings go in 32 to a statement with `INSERT OR FAIL`, which keeps the rows a
    /// failing statement inserted before its failure: the file's transaction must still
    /// leave nothing behind, and the connection must load the next file exactly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_inside_a_multi_row_insert_leaves_nothing_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::new(&SqliteSettings::from_url(&url).unwrap(), 1);
        store.prepare().await.unwrap();
        let count = |sql: &'static str| {
            let pool = store.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };

        // 100 rows: three full statements and four single rows; line 42 twice breaks
        // the primary key in the middle of the second statement.
        let mut rows: Vec<EnrichedRow> = (2..102).map(reading).collect();
        rows[41].reading.line = 42;
        let e = load(&store, rows).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Data, "{e}");
        assert_eq!(count("SELECT count(*) FROM sensor_readings").await, 0);
        assert_eq!(count("SELECT count(*) FROM ingest_files").await, 0);

        let outcome = load(&store, (2..102).map(reading).collect()).await.unwrap();
        assert_eq!(outcome, LoadOutcome::Committed { rows: 100 });
        assert_eq!(count("SELECT count(*) FROM sensor_readings").await, 100);
        assert_eq!(
            count("SELECT count(DISTINCT line) FROM sensor_readings WHERE line BETWEEN 2 AND 101")
                .await,
            100
        );
        assert_eq!(count("SELECT count(*) FROM ingest_files").await, 1);
    }

    /// Provokes each kind of failure on a real SQLite file and checks its class.
    #[tokio::test]
    async fn real_sqlite_failures_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let holder = open(&path, Duration::ZERO).await;
        sqlx::raw_sql("CREATE TABLE t (v INTEGER NOT NULL CHECK (v > 0))")
            .execute(&holder)
            .await
            .unwrap();

        let bad = sqlx::query("INSERT INTO t VALUES (-1)")
            .execute(&holder)
            .await
            .unwrap_err();
        assert_eq!(classify(&bad), ErrorClass::Data, "{bad}");

        let mut lock = holder.acquire().await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *lock)
            .await
            .unwrap();
        let other = open(&path, Duration::ZERO).await;
        let busy = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&other)
            .await
            .unwrap_err();
        assert_eq!(classify(&busy), ErrorClass::Transient, "{busy}");
        assert!(
            describe(&busy).contains("SQLite code 5"),
            "{}",
            describe(&busy)
        );
        sqlx::raw_sql("ROLLBACK").execute(&mut *lock).await.unwrap();

        let not_a_db = dir.path().join("text.db");
        std::fs::write(&not_a_db, vec![b'x'; 4096]).unwrap();
        let options = SqliteConnectOptions::new().filename(&not_a_db);
        let refused = match SqlitePoolOptions::new().connect_with(options).await {
            Ok(pool) => sqlx::query("SELECT * FROM sqlite_master")
                .fetch_all(&pool)
                .await
                .unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(classify(&refused), ErrorClass::Refused, "{refused}");
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorClass::Transient);
    }
}
