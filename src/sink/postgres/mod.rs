//! PostgreSQL backend. A file whose rows fit in one batch is loaded by one statement
//! (ledger row, readings from `unnest` arrays, metrics); a larger one streams its
//! readings through binary `COPY … FROM STDIN` inside the transaction that claims its
//! ledger row and writes its metrics.
//!
//! Layout: this module connects, applies the schema and sorts errors; `load.rs` is the
//! write path ([`Store`](super::Store): a file's load, ledger rows for attempts that
//! loaded nothing, archive names); `ledger.rs` the read-only ledger queries
//! ([`LedgerQueries`](super::LedgerQueries)); `copy.rs` encodes readings in COPY's
//! binary format; `partitions.rs` the monthly partitions of the readings (created ahead
//! and on demand, dropped by retention); `migrate.rs` moves a plain readings table of an
//! older version into a partitioned one (`sensor-ingest migrate`).

mod claim;
mod copy;
mod dashboard;
mod follow;
mod group;
mod ledger;
mod load;
pub mod migrate;
mod partitions;
mod qc;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};

pub use self::partitions::{Layout, MONTHS_AHEAD, Month};
use super::{ErrorClass, SinkError};
use crate::sink::PostgresSettings;

/// The schema, applied idempotently by [`Store::prepare`].
///
/// [`Store::prepare`]: super::Store::prepare
pub const SCHEMA: &str = include_str!("../../../script.sql");

/// Any fixed number: all agents take this advisory lock while applying the schema.
const SCHEMA_LOCK: i64 = 0x5e_4503_1e57;

/// A PostgreSQL database reached through a small pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// One connection, opened when needed and closed after a minute idle, for looking
    /// at and creating partitions beside the loads (a load waiting for its month's
    /// partition keeps its own connection). Retention opens one of its own.
    maintenance: PgPool,
    target: String,
    agent: String,
    partitions: Arc<Mutex<partitions::Known>>,
    /// Claim calls made, to delete long-expired claims now and then.
    claims_made: claim::ClaimCounter,
}

impl PgStore {
    /// A store with `connections` connections. Nothing is connected until first use;
    /// [`Store::prepare`] then opens them all, and the pool keeps them open (replacing
    /// expired ones in the background), so no file waits for a connection to be set
    /// up — that costs tens of milliseconds (TLS negotiation, and sqlx 0.9 leaves
    /// Nagle's algorithm on). The pool gives up on a connection after a few seconds so
    /// that the agent's retry policy, not the pool, decides how long to keep trying.
    ///
    /// [`Store::prepare`]: super::Store::prepare
    pub fn new(settings: &PostgresSettings, connections: u32, agent: &str) -> Self {
        let connections = connections.max(1);
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(settings.connect_options().clone());
        let maintenance = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(60))
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(settings.connect_options().clone());
        Self {
            pool,
            maintenance,
            target: settings.to_string(),
            agent: agent.to_owned(),
            partitions: Arc::default(),
            claims_made: claim::ClaimCounter::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the five tables exist and grant the agent what loading needs.
    async fn tables_usable(&self, conn: &mut sqlx::PgConnection) -> Result<bool, SinkError> {
        // The privileges loading needs, and the columns of this version's schema: tables
        // the owner has not migrated yet would fail every file instead of the start.
        sqlx::query_scalar(
            "SELECT coalesce(bool_and(has_table_privilege(c.oid, p.privileges)), false) \
                    AND count(c.oid) = 5 \
                    AND (SELECT count(*) FROM pg_attribute a \
                         WHERE NOT a.attisdropped AND (a.attrelid, a.attname) IN ( \
                            (to_regclass('ingest_files'), 'profile'), \
                            (to_regclass('ingest_files'), 'profile_hash'), \
                            (to_regclass('file_metrics'), 'source_unit'), \
                            (to_regclass('file_metrics'), 'missing_codes'), \
                            (to_regclass('sensor_readings'), 'qc_flags'), \
                            (to_regclass('file_metrics'), 'qc_step'), \
                            (to_regclass('file_metrics'), 'qc_spike'), \
                            (to_regclass('file_metrics'), 'qc_flat'), \
                            (to_regclass('file_metrics'), 'qc_outlier'), \
                            (to_regclass('file_metrics'), 'qc_gap'), \
                            (to_regclass('file_metrics'), 'qc_time_travel'))) = 11 \
             FROM (VALUES ('ingest_files', 'SELECT, INSERT, UPDATE'), \
                          ('sensor_readings', 'SELECT, INSERT, UPDATE'), \
                          ('file_metrics', 'SELECT, INSERT, UPDATE'), \
                          ('qc_measure_flags', 'SELECT, INSERT, UPDATE'), \
                          ('ingest_claims', 'SELECT, INSERT, UPDATE, DELETE')) \
                    AS p (name, privileges) \
             LEFT JOIN pg_class c ON c.oid = to_regclass(p.name)",
        )
        .fetch_one(conn)
        .await
        .map_err(err("checking table privileges"))
    }

    /// Applies [`SCHEMA`] under an advisory lock and opens the rest of the pool
    /// ([`Store::prepare`]).
    ///
    /// [`Store::prepare`]: super::Store::prepare
    async fn apply_schema(&self) -> Result<(), SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        if schema_is_current(&mut conn).await? {
            // Still this role's to use: a DBA may own the tables and grant too little.
            if !self.tables_usable(&mut conn).await? {
                return Err(SinkError {
                    class: ErrorClass::Refused,
                    context: "checking table privileges",
                    detail: "the tables exist but this role lacks the privileges loading needs on \
                             them (docs/database.md: the grants for a DBA-owned schema)"
                        .into(),
                });
            }
            drop(conn);
            return self.after_schema().await;
        }
        let mut tx = conn.begin().await.map_err(err("starting schema setup"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err("locking schema setup"))?;
        // Another agent may have applied it while this one waited for the lock.
        if schema_is_current(&mut tx).await? {
            tx.commit().await.map_err(err("committing schema"))?;
            drop(conn);
            return self.after_schema().await;
        }
        let applied = match tx.execute(sqlx::raw_sql(SCHEMA)).await {
            Ok(_) => sqlx::query(
                "INSERT INTO sensor_ingest_schema (id, fingerprint) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
                 applied_at = now()",
            )
            .bind(schema_fingerprint())
            .execute(&mut *tx)
            .await
            .map(drop),
            Err(e) => Err(e),
        };
        match applied {
            Ok(()) => tx.commit().await.map_err(err("committing schema"))?,
            // Creating indexes and migrating need ownership. Where a DBA owns the tables
            // and granted the agent only what loading needs, use them as they are.
            Err(e) if sqlstate(&e).as_deref() == Some("42501") => {
                drop(tx);
                if !self.tables_usable(&mut conn).await? {
                    return Err(err("applying script.sql")(e));
                }
                tracing::warn!(error = %describe(&e),
                    "not the owner of the tables: using them as they are, without applying \
                     script.sql (its indexes, views and migrations are the owner's to apply)");
            }
            Err(e) => return Err(err("applying script.sql")(e)),
        }
        drop(conn);
        self.after_schema().await
    }

    /// What follows the schema at startup: the partitions, and the rest of the pool.
    async fn after_schema(&self) -> Result<(), SinkError> {
        self.check_partitions().await?;
        // Open the rest of the pool now rather than on the first files' time. Best
        // effort: a server short of connections slows the agent down, it does not stop it.
        let wanted = self.pool.options().get_max_connections() as usize;
        let mut warm = Vec::with_capacity(wanted);
        while warm.len() < wanted {
            match self.pool.acquire().await {
                Ok(conn) => warm.push(conn),
                Err(e) => {
                    tracing::warn!(opened = warm.len(), wanted, error = %describe(&e),
                        "could not open every database connection; continuing with fewer");
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The BLAKE3 of [`SCHEMA`], as recorded in `sensor_ingest_schema`.
fn schema_fingerprint() -> String {
    blake3::hash(SCHEMA.as_bytes()).to_hex().to_string()
}

/// Whether the database holds exactly this version's schema, so that applying
/// [`SCHEMA`] again can be skipped. Applying it takes ACCESS EXCLUSIVE locks (`ALTER
/// TABLE … IF NOT EXISTS` and `CREATE OR REPLACE VIEW` lock even when they change
/// nothing): an agent restarting beside others that are loading would stall their
/// loads, and could deadlock with one of them.
async fn schema_is_current(conn: &mut sqlx::PgConnection) -> Result<bool, SinkError> {
    // A role that may not read the record (a DBA owns the tables) applies the script,
    // which tells it what it may do.
    let readable: bool = sqlx::query_scalar(
        "SELECT coalesce(has_table_privilege(to_regclass('sensor_ingest_schema'), 'SELECT'), false)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err("reading the schema version"))?;
    if !readable {
        return Ok(false);
    }
    let fingerprint: Option<String> =
        sqlx::query_scalar("SELECT fingerprint FROM sensor_ingest_schema WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(err("reading the schema version"))?;
    Ok(fingerprint.is_some_and(|f| f == schema_fingerprint()))
}

impl PgStore {
    /// At startup: says once when the readings table still awaits `migrate`, and creates
    /// the months ahead when it is partitioned. An agent that may not create partitions
    /// (a DBA owns the table) says so and goes on: its owner must create them.
    async fn check_partitions(&self) -> Result<(), SinkError> {
        match self.refresh_partitions().await? {
            Layout::Plain => tracing::warn!(
                "sensor_readings is one unpartitioned table from an earlier version: a \
                 migration is pending. The agent keeps loading into it; run `sensor-ingest \
                 migrate` to move it to monthly partitions (docs/migration.md)"
            ),
            Layout::Partitioned => {
                if let Err(e) = self.create_ahead(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "could not create the readings partitions \
                        for the coming months; loads into them wait until they exist");
                }
            }
            Layout::Unknown => {}
        }
        Ok(())
    }
}

/// Whether `e` is PostgreSQL refusing a row no partition takes ("no partition of
/// relation … found for row", SQLSTATE 23514): not the row's fault but a partition's
/// absence, which creating it mends.
fn is_missing_partition(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"))
}

/// Sorts a driver error into transient or data.
///
/// Only errors the file's content can cause are `Data`: SQLSTATE classes 22 (data
/// exception), 23 (integrity constraint) and 54 (program limit, e.g. a row too large).
/// Class 28 (authorization), 3D000 (no such database) and 42501 (privilege) are
/// `Refused`. A row no partition takes (23514 "no partition of relation") is `Transient`:
/// the partition is created and the load retried. Everything else — connection loss, pool timeout, class 08, 40001, 40P01,
/// 53xxx, 57P01–57P03, a missing table — is not the file's fault and is `Transient`,
/// so a good file is never quarantined for the database's state.
pub fn classify(e: &sqlx::Error) -> ErrorClass {
    match e {
        _ if is_missing_partition(e) => ErrorClass::Transient,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("22") || code.starts_with("23") => ErrorClass::Data,
            Some(code) if code.starts_with("54") => ErrorClass::Data,
            Some(code) if code.starts_with("28") || code == "3D000" || code == "42501" => {
                ErrorClass::Refused
            }
            _ => ErrorClass::Transient,
        },
        sqlx::Error::Encode(_) => ErrorClass::Data,
        _ => ErrorClass::Transient,
    }
}

fn err(context: &'static str) -> impl FnOnce(sqlx::Error) -> SinkError {
    move |e| super::sink_error(&e, classify(&e), context, "SQLSTATE")
}

fn describe(e: &sqlx::Error) -> String {
    super::describe_sqlx(e, "SQLSTATE")
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_are_classified_by_sqlstate_class() {
        assert_eq!(
            classify(&sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into()
            )),
            ErrorClass::Transient
        );
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorClass::Transient);
    }
}
