//! MariaDB/MySQL backend: the same ledger, readings, metrics, quality flags and claims
//! as the PostgreSQL backend, on InnoDB, with the same one-transaction-per-file
//! guarantee.
//!
//! - Readings go in by prepared multi-row `INSERT`s inside the file's transaction
//!   (`writer.rs`); sqlx's MySQL driver has no `LOAD DATA LOCAL INFILE`.
//! - InnoDB has no partial unique index: the ledger's generated column `loaded_hash`
//!   holds the content hash while a row is loaded or partial, and is unique.
//! - Every session runs in UTC (`time_zone = '+00:00'`, sqlx's default), in strict SQL
//!   mode (a value the column cannot hold is refused, never truncated), at READ
//!   COMMITTED (no gap locks between concurrent loads).
//! - No partitions: `RETENTION` and `migrate` are PostgreSQL's (docs/mariadb.md).
//!
//! Layout: this module connects, applies the schema and sorts errors; `load.rs` is the
//! write path ([`Store`](super::Store)); `group.rs` the group commit of small files;
//! `writer.rs` the readings' multi-row INSERTs; `ledger.rs` the read-only ledger queries
//! ([`LedgerQueries`](super::LedgerQueries)); `follow.rs` followed files (append mode);
//! `qc.rs` quality control's history and amendments; `claim.rs` the claims of several agents; `dashboard.rs` the dashboard.

mod claim;
mod dashboard;
mod follow;
mod group;
mod ledger;
mod load;
mod qc;
mod writer;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySqlConnection};
use uuid::Uuid;

use super::{ErrorClass, SinkError};
use crate::sink::MysqlSettings;

/// The schema, applied idempotently by [`Store::prepare`](super::Store::prepare).
pub const SCHEMA: &str = include_str!("../../../script.mysql.sql");

/// The named lock every agent takes while applying the schema.
const SCHEMA_LOCK: &str = "sensor_ingest_schema";

/// A MariaDB or MySQL database reached through a small pool.
#[derive(Debug, Clone)]
pub struct MysqlStore {
    pool: MySqlPool,
    target: String,
    agent: String,
    /// Keys claimed, to delete long-expired claims now and then.
    claims_made: Arc<AtomicU32>,
}

impl MysqlStore {
    /// A store with `connections` connections, opened on first use. The pool gives up
    /// on a connection after a few seconds, so that the agent's retry policy, not the
    /// pool, decides how long to keep trying.
    pub fn new(settings: &MysqlSettings, connections: u32, agent: &str) -> Self {
        Self::with_pool(settings, connections, agent, false)
    }

    pub(super) fn with_pool(
        settings: &MysqlSettings,
        connections: u32,
        agent: &str,
        read_only: bool,
    ) -> Self {
        let pool = MySqlPoolOptions::new()
            .max_connections(connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(move |conn, _| Box::pin(async move { session(conn, read_only).await }))
            .connect_lazy_with(settings.connect_options().clone());
        Self {
            pool,
            target: settings.to_string(),
            agent: agent.to_owned(),
            claims_made: Arc::default(),
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Applies [`SCHEMA`] under a named lock, one statement at a time
    /// ([`Store::prepare`](super::Store::prepare)).
    async fn apply_schema(&self) -> Result<(), SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
            .bind(SCHEMA_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(err("locking schema setup"))?;
        if locked != Some(1) {
            return Err(SinkError {
                class: ErrorClass::Transient,
                context: "locking schema setup",
                detail: "another agent held the schema lock for a minute".into(),
            });
        }
        let applied = async {
            for statement in statements(SCHEMA) {
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)))
                    .await
                    .map_err(err("applying script.mysql.sql"))?;
            }
            add_source_identity(&mut conn).await
        }
        .await;
        let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *conn)
            .await;
        applied
    }
}

/// Gives a ledger created before source identities its `source_identity` column and
/// index (MySQL has no `ADD COLUMN IF NOT EXISTS`: the column is looked up first).
/// Nothing happens on a new or already migrated database. Runs under the schema lock.
async fn add_source_identity(conn: &mut MySqlConnection) -> Result<(), SinkError> {
    let present: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
         AND table_name = 'ingest_files' AND column_name = 'source_identity'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err("reading the schema"))?;
    if present > 0 {
        return Ok(());
    }
    conn.execute(sqlx::raw_sql(
        "ALTER TABLE ingest_files ADD COLUMN source_identity CHAR(32) CHARACTER SET ascii, \
         ADD KEY ingest_files_source (source_identity)",
    ))
    .await
    .map_err(err("migrating the ledger"))?;
    tracing::info!("database migrated for source identities (ingest_files.source_identity)");
    Ok(())
}

/// Sets up one session: strict mode (refuse, never truncate), READ COMMITTED, and for
/// the dashboard's pool read-only transactions.
async fn session(conn: &mut MySqlConnection, read_only: bool) -> Result<(), sqlx::Error> {
    let access = if read_only { "READ ONLY" } else { "READ WRITE" };
    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES,NO_ZERO_DATE'); \
         SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, {access}"
    ))))
    .await?;
    Ok(())
}

/// The statements of a script: split at `;` ending a line, comments left out.
fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let code = line.trim_end();
        if code.trim_start().starts_with("--") || code.is_empty() {
            continue;
        }
        current.push_str(code);
        current.push('\n');
        if code.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The server's error number, when the error is the server's.
fn error_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Sorts a driver error into transient, refused or data, mirroring the PostgreSQL
/// backend's rules, by the server's error number:
/// - the file's data: a value out of range or of the wrong kind, too long, NULL where
///   none may be, a duplicate key or broken constraint, a row or packet too large
///   (1048, 1062, 1153, 1264, 1292, 1366, 1367, 1406, 1452, 3819, 4025) — quarantine;
/// - the agent itself: access denied, no such database, no privilege (1044, 1045,
///   1049, 1142, 1143, 1227) — fatal at startup;
/// - everything else is not the file's fault: lost connection (2006, 2013, and the
///   driver's I/O errors), deadlock (1213), lock wait timeout (1205), server shutdown
///   (1053), too many connections (1040), connection killed (1927), read-only server
///   (1290, 1792), a pool timeout, a missing table — transient, retried with backoff.
pub fn classify(e: &sqlx::Error) -> ErrorClass {
    match (e, error_number(e)) {
        (_, Some(number)) => classify_number(number),
        (sqlx::Error::Encode(_), None) => ErrorClass::Data,
        _ => ErrorClass::Transient,
    }
}

/// [`classify`] for a server error number.
fn classify_number(number: u16) -> ErrorClass {
    match number {
        1048 | 1062 | 1153 | 1264 | 1292 | 1366 | 1367 | 1406 | 1452 | 3819 | 4025 => {
            ErrorClass::Data
        }
        1044 | 1045 | 1049 | 1142 | 1143 | 1227 => ErrorClass::Refused,
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

/// The server's message with its error number and SQLSTATE, the driver's otherwise.
fn describe(e: &sqlx::Error) -> String {
    match (e, error_number(e)) {
        (sqlx::Error::Database(db), Some(number)) => match db.code() {
            Some(state) => format!("{} (MySQL error {number}, SQLSTATE {state})", db.message()),
            None => format!("{} (MySQL error {number})", db.message()),
        },
        _ => super::describe_sqlx(e, "SQLSTATE"),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A UTC time as the DATETIME(6) parameter the schema stores. sqlx sends a
/// `DateTime<Utc>` as a TIMESTAMP, whose range (1970 to 2038) MariaDB applies by
/// turning every other time into NULL; a DATETIME holds the years 1000 to 9999.
fn dt(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
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

    #[test]
    fn errors_are_classified_by_server_error_number() {
        for number in [1213, 1205, 1053, 1040, 1927, 2006, 2013, 1146, 1290] {
            assert_eq!(classify_number(number), ErrorClass::Transient, "{number}");
        }
        for number in [1062, 1264, 1292, 1366, 1406, 1048, 3819, 4025] {
            assert_eq!(classify_number(number), ErrorClass::Data, "{number}");
        }
        for number in [1045, 1044, 1049, 1142] {
            assert_eq!(classify_number(number), ErrorClass::Refused, "{number}");
        }
        assert_eq!(
            classify(&sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into()
            )),
            ErrorClass::Transient
        );
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorClass::Transient);
    }

    #[test]
    fn the_schema_splits_into_whole_statements() {
        let parts = statements(SCHEMA);
        assert_eq!(
            parts
                .iter()
                .filter(|s| s.starts_with("CREATE TABLE"))
                .count(),
            6
        );
        assert_eq!(
            parts
                .iter()
                .filter(|s| s.starts_with("CREATE OR REPLACE VIEW"))
                .count(),
            4
        );
        assert!(parts.iter().all(|s| s.trim_end().ends_with(';')));
    }
}
