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
//! - Readings go in through one prepared multi-row `INSERT` of [`ROWS_PER_INSERT`]
//!   rows, reused for every full chunk: one statement per row through sqlx is about
//!   12 k rows/s here, chunks of a few hundred rows are dozens of times faster.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Executor, Row, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::{
    Activity, ErrorClass, FileAttempt, LedgerEntry, LedgerRecord, LoadMsg, LoadOutcome, LoadedFile,
    SinkError, StatusTotals, Store, agent_name,
};
use crate::config::SqliteSettings;
use crate::enrich::EnrichedRow;
use crate::read::ContentHash;
use crate::stats::FileStats;
use crate::timestamp::format_utc;

/// The schema, applied idempotently by [`Store::prepare`]. It mirrors `script.sql`.
pub const SCHEMA: &str = include_str!("../../script.sqlite.sql");

/// Rows per `INSERT` statement. 12 parameters a row keeps a chunk far below SQLite's
/// limit of 32,766 bound parameters.
pub const ROWS_PER_INSERT: usize = 500;

const READING_COLUMNS: &str = "INSERT INTO sensor_readings (file_id, line, ts, sensor_id, \
    temperature, humidity, pressure, temperature_k, temperature_norm, humidity_norm, \
    pressure_norm, extra, ingested_at) VALUES ";
const PARAMS_PER_ROW: &str = "(?,?,?,?,?,?,?,?,?,?,?,?,?)";

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
        let pool = SqlitePoolOptions::new()
            .max_connections(connections.max(1))
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
            let code: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            match code & 0xff {
                18 | 19 | 20 | 25 => ErrorClass::Data,
                3 | 8 | 11 | 14 | 23 | 26 => ErrorClass::Refused,
                _ => ErrorClass::Transient,
            }
        }
        sqlx::Error::Encode(_) => ErrorClass::Data,
        _ => ErrorClass::Transient,
    }
}

fn err(context: &'static str) -> impl FnOnce(sqlx::Error) -> SinkError {
    move |e| SinkError {
        class: classify(&e),
        context,
        detail: describe(&e),
    }
}

/// SQLite's own message and result code for database errors; the driver's otherwise.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLite code {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
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

        let file_id: Arc<str> = Arc::from(id.as_str());
        let ingested_at: Arc<str> = Arc::from(format_utc(Utc::now()));
        let mut pending: Vec<EnrichedRow> = Vec::with_capacity(ROWS_PER_INSERT);
        let mut inserted = 0u64;
        let stats = loop {
            match rows.recv().await {
                Some(LoadMsg::Rows(batch)) => {
                    for row in batch {
                        pending.push(row);
                        if pending.len() == ROWS_PER_INSERT {
                            inserted +=
                                insert_readings(&mut tx, &file_id, &ingested_at, &mut pending)
                                    .await?;
                        }
                    }
                }
                Some(LoadMsg::Commit(stats)) => break stats,
                Some(LoadMsg::Abort) | None => {
                    let _ = tx.rollback().await;
                    return Ok(LoadOutcome::Aborted);
                }
            }
        };
        if !pending.is_empty() {
            inserted += insert_readings(&mut tx, &file_id, &ingested_at, &mut pending).await?;
        }

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
        let rows = sqlx::query(
            "SELECT status, count(*), coalesce(sum(row_count), 0), \
             coalesce(sum(rejected_rows), 0), \
             total((julianday(finished_at) - julianday(started_at)) * 86400.0) \
             FROM ingest_files WHERE finished_at >= ? GROUP BY status",
        )
        .bind(format_utc(since))
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the ledger"))?;
        let mut activity = Activity::default();
        for r in rows {
            let status: String = r.get(0);
            let totals = StatusTotals {
                files: r.get::<i64, _>(1).max(0) as u64,
                rows: r.get::<i64, _>(2).max(0) as u64,
                rejected_rows: r.get::<i64, _>(3).max(0) as u64,
            };
            activity.add(&status, totals, r.get::<f64, _>(4).max(0.0));
        }
        Ok(activity)
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

/// The `INSERT` for `rows` readings.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(READING_COLUMNS.len() + rows * (PARAMS_PER_ROW.len() + 1));
    sql.push_str(READING_COLUMNS);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(PARAMS_PER_ROW);
    }
    sql
}

/// Inserts and drains `rows`. A full chunk reuses one cached prepared statement; the
/// last, shorter chunk of a file is prepared once and not cached.
async fn insert_readings(
    conn: &mut SqliteConnection,
    file_id: &Arc<str>,
    ingested_at: &Arc<str>,
    rows: &mut Vec<EnrichedRow>,
) -> Result<u64, SinkError> {
    static FULL_CHUNK: OnceLock<String> = OnceLock::new();
    let full = rows.len() == ROWS_PER_INSERT;
    let sql = if full {
        FULL_CHUNK
            .get_or_init(|| insert_sql(ROWS_PER_INSERT))
            .clone()
    } else {
        insert_sql(rows.len())
    };
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(full);
    for row in rows.drain(..) {
        let r = row.reading;
        q = q
            .bind(file_id.clone())
            .bind(r.line as i64)
            .bind(format_utc(r.timestamp))
            .bind(r.sensor_id)
            .bind(r.temperature)
            .bind(r.humidity)
            .bind(r.pressure)
            .bind(row.temperature_k)
            .bind(row.temperature_norm)
            .bind(row.humidity_norm)
            .bind(row.pressure_norm)
            .bind(r.extra)
            .bind(ingested_at.clone());
    }
    let done = q
        .execute(&mut *conn)
        .await
        .map_err(err("inserting readings"))?;
    Ok(done.rows_affected())
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

    #[test]
    fn one_chunk_stays_under_the_parameter_limit() {
        let params = insert_sql(ROWS_PER_INSERT).matches('?').count();
        assert_eq!(params, ROWS_PER_INSERT * 13);
        assert!(params <= 32_766);
    }

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
