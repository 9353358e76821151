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
//!   `writer.rs`): sqlx's per-value overhead cost three times SQLite's own work.
//!
//! Layout: this module opens the database, applies the schema and sorts errors;
//! `load.rs` is the write path ([`Store`](super::Store): a file's load in one
//! transaction, ledger rows for attempts that loaded nothing, archive names);
//! `ledger.rs` the read-only ledger queries ([`LedgerQueries`](super::LedgerQueries));
//! `writer.rs` the low-level writer, the only code here that calls SQLite's C API.

mod dashboard;
mod follow;
mod group;
mod ledger;
mod load;
mod qc;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Executor;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{ErrorClass, SinkError};
use crate::sink::SqliteSettings;

/// The schema, applied idempotently by [`Store::prepare`]. It mirrors `script.sql`.
///
/// [`Store::prepare`]: super::Store::prepare
pub const SCHEMA: &str = include_str!("../../../script.sqlite.sql");

/// How long a statement waits for another process's write lock before `SQLITE_BUSY`.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub fn new(settings: &SqliteSettings, connections: u32, agent: &str) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(settings.path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Writes take turns anyway; a few connections serve the reads, and each one
        // keeps its own page cache, so more would only cost memory. At least two: a
        // file's reader asks for its sensors' history while its load holds one.
        let pool = SqlitePoolOptions::new()
            .max_connections(connections.clamp(2, 4))
            .min_connections(0)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_lazy_with(options);
        Self {
            pool,
            path: settings.path().to_owned(),
            target: settings.to_string(),
            agent: agent.to_owned(),
            writer: Arc::new(Mutex::new(())),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates the database's folder and applies [`SCHEMA`] ([`Store::prepare`]).
    ///
    /// [`Store::prepare`]: super::Store::prepare
    async fn apply_schema(&self) -> Result<(), SinkError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SinkError {
                class: ErrorClass::Refused,
                context: "creating the database's folder",
                detail: format!("{}: {e}", dir.display()),
            })?;
        }
        let _writing = self.writer.lock().await;
        let mut conn = self.pool.acquire().await.map_err(err("opening"))?;
        migrate_before_profiles(&mut conn).await?;
        migrate_source_identity(&mut conn).await?;
        qc::migrate(&mut conn).await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("starting schema setup"))?;
        tx.execute(sqlx::raw_sql(SCHEMA))
            .await
            .map_err(err("applying script.sqlite.sql"))?;
        tx.commit().await.map_err(err("committing schema"))?;
        Ok(())
    }
}

/// The ledger's columns before source profiles, in order.
const LEDGER_COLUMNS_V1: &str = "id, file_name, content_hash, size_bytes, status, row_count, \
     rejected_rows, error_summary, duplicate_of, first_timestamp, last_timestamp, started_at, \
     finished_at, archived_as, archived_at, agent";

/// Brings a database created before source profiles up to the schema: SQLite cannot
/// change the status CHECK constraint in place, so the ledger is rebuilt (the way
/// SQLite's documentation describes: foreign keys off, new table, copy, drop, rename,
/// check, in one transaction), and `file_metrics` gains its two columns. Nothing happens
/// on a new or already migrated database.
async fn migrate_before_profiles(conn: &mut sqlx::SqliteConnection) -> Result<(), SinkError> {
    let ledger: Option<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ingest_files'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(err("reading the schema"))?;
    let rebuild = ledger.is_some_and(|sql| !sql.contains("'partial'"));
    let metrics_columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('file_metrics')")
            .fetch_all(&mut *conn)
            .await
            .map_err(err("reading the schema"))?;
    let add_metrics =
        !metrics_columns.is_empty() && !metrics_columns.iter().any(|c| c == "source_unit");
    if !rebuild && !add_metrics {
        return Ok(());
    }
    sqlx::raw_sql("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(err("migrating the schema"))?;
    let result = async {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .map_err(err("migrating the schema"))?;
        if rebuild {
            let create = SCHEMA
                .split_once("CREATE TABLE IF NOT EXISTS ingest_files (")
                .and_then(|(_, rest)| rest.split_once(");"))
                .map(|(columns, _)| columns)
                .ok_or_else(|| err("migrating the schema")(sqlx::Error::Protocol(
                    "script.sqlite.sql has no ingest_files table".into(),
                )))?;
            let script = format!(
                "CREATE TABLE ingest_files_v2 ({create});\n\
                 INSERT INTO ingest_files_v2 ({LEDGER_COLUMNS_V1}) SELECT {LEDGER_COLUMNS_V1} FROM ingest_files;\n\
                 DROP TABLE ingest_files;\n\
                 ALTER TABLE ingest_files_v2 RENAME TO ingest_files;"
            );
            tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(script)))
                .await
                .map_err(err("migrating the ledger"))?;
        }
        if add_metrics {
            tx.execute(sqlx::raw_sql(
                "ALTER TABLE file_metrics ADD COLUMN source_unit TEXT;\n\
                 ALTER TABLE file_metrics ADD COLUMN missing_codes INTEGER NOT NULL DEFAULT 0;",
            ))
            .await
            .map_err(err("migrating file_metrics"))?;
        }
        let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&mut *tx)
            .await
            .map_err(err("migrating the schema"))?;
        if let Some((table,)) = broken.first() {
            return Err(err("migrating the schema")(sqlx::Error::Protocol(format!(
                "a foreign key of {table} no longer holds"
            ))));
        }
        tx.commit().await.map_err(err("migrating the schema"))?;
        tracing::info!("database migrated for source profiles (profile columns, 'partial' status)");
        Ok(())
    }
    .await;
    sqlx::raw_sql("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .map_err(err("migrating the schema"))?;
    result
}

/// Gives a ledger created before source identities its `source_identity` column (the
/// script's index on it needs it). Nothing happens on a new or already migrated
/// database.
async fn migrate_source_identity(conn: &mut sqlx::SqliteConnection) -> Result<(), SinkError> {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('ingest_files')")
            .fetch_all(&mut *conn)
            .await
            .map_err(err("reading the schema"))?;
    if columns.is_empty() || columns.iter().any(|c| c == "source_identity") {
        return Ok(());
    }
    sqlx::raw_sql("ALTER TABLE ingest_files ADD COLUMN source_identity TEXT")
        .execute(&mut *conn)
        .await
        .map_err(err("migrating the ledger"))?;
    tracing::info!("database migrated for source identities (ingest_files.source_identity)");
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::EnrichedRow;
    use crate::read::ContentHash;
    use crate::sink::{FileAttempt, LoadMsg, LoadOutcome, Store};
    use tokio::sync::mpsc;

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
                further: Vec::new(),
                coded_missing: 0,
            },
            temperature_k: Some(line as f64 + 273.15),
            temperature_norm: Some(0.5),
            humidity_norm: None,
            pressure_norm: Some(0.25),
            qc_flags: 0,
            further_qc: Default::default(),
        }
    }

    async fn load(store: &SqliteStore, rows: Vec<EnrichedRow>) -> Result<LoadOutcome, SinkError> {
        let attempt = FileAttempt {
            id: Uuid::now_v7(),
            file_name: "f.csv".into(),
            hash: ContentHash::unread(&Uuid::now_v7().to_string()),
            size: 1,
            started_at: Utc::now(),
            profile: Default::default(),
            follow: None,
            source_identity: None,
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
        let store = SqliteStore::new(
            &SqliteSettings::new(dir.path().join("t.db"), false),
            1,
            "test",
        );
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
