//! PostgreSQL backend. A file whose rows fit in one batch is loaded by one statement
//! (ledger row, readings from `unnest` arrays, metrics); a larger one streams its
//! readings through binary `COPY … FROM STDIN` inside the transaction that claims its
//! ledger row and writes its metrics.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, Row};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    Activity, ErrorClass, FileAttempt, LedgerEntry, LedgerRecord, LoadMsg, LoadOutcome, LoadedFile,
    SinkError, Store, agent_name,
};
use crate::config::PostgresSettings;
use crate::enrich::EnrichedRow;
use crate::read::ContentHash;
use crate::stats::FileStats;

/// The schema, applied idempotently by [`Store::prepare`].
pub const SCHEMA: &str = include_str!("../../script.sql");

/// Any fixed number: all agents take this advisory lock while applying the schema.
const SCHEMA_LOCK: i64 = 0x5e_4503_1e57;

const COPY_READINGS: &str = "COPY sensor_readings (file_id, line, ts, sensor_id, temperature, \
    humidity, pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra) \
    FROM STDIN WITH (FORMAT binary)";

/// Bytes gathered before one COPY message is sent.
const COPY_CHUNK: usize = 256 * 1024;

/// A PostgreSQL database reached through a small pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    target: String,
    agent: String,
}

impl PgStore {
    /// A store with `connections` connections. Nothing is connected until first use;
    /// [`Store::prepare`] then opens them all, and the pool keeps them open (replacing
    /// expired ones in the background), so no file waits for a connection to be set
    /// up — that costs tens of milliseconds (TLS negotiation, and sqlx 0.9 leaves
    /// Nagle's algorithm on). The pool gives up on a connection after a few seconds so
    /// that the agent's retry policy, not the pool, decides how long to keep trying.
    pub fn new(settings: &PostgresSettings, connections: u32) -> Self {
        let connections = connections.max(1);
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(settings.connect_options().clone());
        Self {
            pool,
            target: settings.to_string(),
            agent: agent_name(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the three tables exist and grant the agent what loading needs.
    async fn tables_usable(&self, conn: &mut sqlx::PgConnection) -> Result<bool, SinkError> {
        sqlx::query_scalar(
            "SELECT coalesce(bool_and(has_table_privilege(c.oid, p.privileges)), false) \
                    AND count(c.oid) = 3 \
             FROM (VALUES ('ingest_files', 'SELECT, INSERT, UPDATE'), \
                          ('sensor_readings', 'SELECT, INSERT'), \
                          ('file_metrics', 'SELECT, INSERT')) AS p (name, privileges) \
             LEFT JOIN pg_class c ON c.oid = to_regclass(p.name)",
        )
        .fetch_one(conn)
        .await
        .map_err(err("checking table privileges"))
    }
}

/// Sorts a driver error into transient or data.
///
/// Only errors the file's content can cause are `Data`: SQLSTATE classes 22 (data
/// exception), 23 (integrity constraint) and 54 (program limit, e.g. a row too large).
/// Class 28 (authorization), 3D000 (no such database) and 42501 (privilege) are
/// `Refused`. Everything else — connection loss, pool timeout, class 08, 40001, 40P01,
/// 53xxx, 57P01–57P03, a missing table — is not the file's fault and is `Transient`,
/// so a good file is never quarantined for the database's state.
pub fn classify(e: &sqlx::Error) -> ErrorClass {
    match e {
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

#[async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn prepare(&self) -> Result<(), SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("connecting"))?;
        let mut tx = conn.begin().await.map_err(err("starting schema setup"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err("locking schema setup"))?;
        match tx.execute(sqlx::raw_sql(SCHEMA)).await {
            Ok(_) => tx.commit().await.map_err(err("committing schema"))?,
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

    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError> {
        let row = sqlx::query(
            "SELECT id, file_name, archived_as FROM ingest_files \
             WHERE content_hash = $1 AND status = 'loaded'",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(err("looking up the content hash"))?;
        Ok(row.map(|r| LoadedFile {
            id: r.get(0),
            file_name: r.get(1),
            archived_as: r.get(2),
        }))
    }

    async fn load(
        &self,
        attempt: &FileAttempt,
        mut rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        // A file that fits in one batch (the reader has sent everything and said Commit
        // by the second message) is loaded by one statement: ledger row, readings and
        // metrics, atomic as any single statement, in one round trip instead of seven.
        // Small files are dominated by round trips, not by rows.
        let first = match rows.recv().await {
            Some(LoadMsg::Rows(batch)) => batch,
            Some(LoadMsg::Commit(stats)) => {
                return self.load_at_once(attempt, Vec::new(), &stats).await;
            }
            Some(LoadMsg::Abort) | None => return Ok(LoadOutcome::Aborted),
        };
        let second = match rows.recv().await {
            Some(LoadMsg::Rows(batch)) => batch,
            Some(LoadMsg::Commit(stats)) => return self.load_at_once(attempt, first, &stats).await,
            Some(LoadMsg::Abort) | None => return Ok(LoadOutcome::Aborted),
        };

        // Larger files stream through COPY in a transaction that first claims the hash:
        // a concurrent load of the same content waits there and then fails on the
        // unique index, before either copies a row.
        let mut tx = self.pool.begin().await.map_err(err("starting the load"))?;
        let claim = sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent) VALUES ($1, $2, $3, $4, 'loaded', $5, $6)",
        )
        .bind(attempt.id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(attempt.started_at)
        .bind(&self.agent)
        .execute(&mut *tx)
        .await;
        if let Err(e) = claim {
            drop(tx);
            return self
                .claim_failed(attempt, e, "claiming the content hash")
                .await;
        }

        let mut copy = tx
            .copy_in_raw(COPY_READINGS)
            .await
            .map_err(err("starting COPY"))?;
        let file_id = *attempt.id.as_bytes();
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        buf.extend_from_slice(BINARY_HEADER);
        let mut pending = vec![first, second].into_iter();
        let stats = loop {
            let msg = match pending.next() {
                Some(batch) => Some(LoadMsg::Rows(batch)),
                None => rows.recv().await,
            };
            match msg {
                Some(LoadMsg::Rows(batch)) => {
                    for row in &batch {
                        encode_row(&mut buf, &file_id, row);
                        if buf.len() >= COPY_CHUNK {
                            copy.send(buf.as_slice())
                                .await
                                .map_err(err("copying readings"))?;
                            buf.clear();
                        }
                    }
                }
                Some(LoadMsg::Commit(stats)) => break stats,
                Some(LoadMsg::Abort) | None => {
                    // Rolling back is all that matters; the abort's own reply is noise.
                    let _ = copy.abort("file rejected by sensor-ingest").await;
                    let _ = tx.rollback().await;
                    return Ok(LoadOutcome::Aborted);
                }
            }
        };
        buf.extend_from_slice(&BINARY_TRAILER.to_be_bytes());
        copy.send(buf.as_slice())
            .await
            .map_err(err("copying readings"))?;
        let copied = copy.finish().await.map_err(err("copying readings"))?;
        self.complete(tx, attempt, copied, &stats).await
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        let a = &entry.attempt;
        sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             row_count, rejected_rows, error_summary, duplicate_of, started_at, agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(a.id)
        .bind(&a.file_name)
        .bind(a.hash.as_str())
        .bind(a.size as i64)
        .bind(entry.status.as_str())
        .bind(entry.rows_read as i64)
        .bind(entry.rejected_rows as i64)
        .bind(&entry.error_summary)
        .bind(entry.duplicate_of)
        .bind(a.started_at)
        .bind(&self.agent)
        .execute(&self.pool)
        .await
        .map_err(err("writing the ledger row"))?;
        Ok(())
    }

    async fn mark_archived(&self, id: Uuid, archived_as: &str) -> Result<(), SinkError> {
        // Committed without waiting for the WAL flush (`synchronous_commit = off` for this
        // transaction only): the name is for people, and waiting for a second fsync per
        // file cost small files 7% of their throughput. A server crash within ~0.6 s may
        // forget the name; exactly-once does not rest on it (the rows and the `loaded`
        // row were committed synchronously before the move). Visible at once either way.
        sqlx::query(
            "WITH no_wait AS (SELECT set_config('synchronous_commit', 'off', true)) \
             UPDATE ingest_files SET archived_as = $2, archived_at = clock_timestamp() \
             FROM no_wait WHERE id = $1",
        )
        .bind(id)
        .bind(archived_as)
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
        let rows: Vec<super::ActivityRow> = sqlx::query_as(
            "SELECT status, count(*), coalesce(sum(row_count), 0)::bigint, \
             coalesce(sum(rejected_rows), 0)::bigint, \
             coalesce(sum(extract(epoch FROM finished_at - started_at)), 0)::float8 \
             FROM ingest_files WHERE finished_at >= $1 GROUP BY status",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(err("summarising the ledger"))?;
        Ok(Activity::from_rows(rows))
    }

    async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError> {
        let row = sqlx::query(
            "SELECT id, file_name, content_hash, status, row_count, rejected_rows, \
             error_summary, started_at, finished_at, archived_as FROM ingest_files \
             WHERE status = 'loaded' ORDER BY finished_at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(err("reading the last loaded file"))?;
        Ok(row.as_ref().map(ledger_record))
    }

    async fn history(
        &self,
        content_hash: &str,
        file_name: &str,
    ) -> Result<Vec<LedgerRecord>, SinkError> {
        let rows = sqlx::query(
            "SELECT id, file_name, content_hash, status, row_count, rejected_rows, \
             error_summary, started_at, finished_at, archived_as FROM ingest_files \
             WHERE content_hash = $1 OR file_name = $2 ORDER BY started_at, finished_at",
        )
        .bind(content_hash)
        .bind(file_name)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading the ledger history"))?;
        Ok(rows.iter().map(ledger_record).collect())
    }
}

/// Reads the columns listed by `last_loaded` and `history`, in that order.
fn ledger_record(r: &PgRow) -> LedgerRecord {
    LedgerRecord {
        id: r.get(0),
        file_name: r.get(1),
        content_hash: r.get(2),
        status: r.get(3),
        row_count: r.get::<i64, _>(4).max(0) as u64,
        rejected_rows: r.get::<i64, _>(5).max(0) as u64,
        error_summary: r.get(6),
        started_at: r.get(7),
        finished_at: r.get(8),
        archived_as: r.get(9),
    }
}

impl PgStore {
    /// The claim of `attempt`'s hash failed with `e`. On the unique index, the content
    /// is loaded already (another worker or agent won) — or the winner rolled back in
    /// between, which the retry policy sorts out.
    async fn claim_failed(
        &self,
        attempt: &FileAttempt,
        e: sqlx::Error,
        context: &'static str,
    ) -> Result<LoadOutcome, SinkError> {
        if !is_unique_violation(&e) {
            return Err(err(context)(e));
        }
        if let Some(loaded) = self.find_loaded(&attempt.hash).await? {
            return Ok(LoadOutcome::AlreadyLoaded(loaded));
        }
        Err(SinkError {
            class: ErrorClass::Transient,
            context: "claiming the content hash",
            detail: describe(&e),
        })
    }

    /// Loads a whole file with one statement (see [`LOAD_AT_ONCE`]).
    async fn load_at_once(
        &self,
        attempt: &FileAttempt,
        batch: Vec<EnrichedRow>,
        stats: &FileStats,
    ) -> Result<LoadOutcome, SinkError> {
        let rows = batch.len() as u64;
        let r = Columns::of(batch);
        let mut metric_names = Vec::new();
        let mut metric_counts = Vec::new();
        let mut metric_nulls = Vec::new();
        let mut metric_values: [Vec<Option<f64>>; 4] = Default::default();
        for (name, c) in stats.columns() {
            metric_names.push(name);
            metric_counts.push(c.count as i64);
            metric_nulls.push(c.nulls as i64);
            for (column, v) in metric_values
                .iter_mut()
                .zip([c.min, c.max, c.mean(), c.stddev()])
            {
                column.push(v);
            }
        }
        let [min, max, mean, stddev] = metric_values;
        let done = sqlx::query(LOAD_AT_ONCE)
            .bind(attempt.id)
            .bind(&attempt.file_name)
            .bind(attempt.hash.as_str())
            .bind(attempt.size as i64)
            .bind(attempt.started_at)
            .bind(&self.agent)
            .bind(rows as i64)
            .bind(stats.first_timestamp)
            .bind(stats.last_timestamp)
            .bind(r.line)
            .bind(r.ts)
            .bind(r.sensor)
            .bind(r.temperature)
            .bind(r.humidity)
            .bind(r.pressure)
            .bind(r.temperature_k)
            .bind(r.temperature_norm)
            .bind(r.humidity_norm)
            .bind(r.pressure_norm)
            .bind(r.extra)
            .bind(metric_names)
            .bind(metric_counts)
            .bind(metric_nulls)
            .bind(min)
            .bind(max)
            .bind(mean)
            .bind(stddev)
            .execute(&self.pool)
            .await;
        match done {
            Ok(_) => Ok(LoadOutcome::Committed { rows }),
            Err(e) => self.claim_failed(attempt, e, "loading the file").await,
        }
    }

    /// Writes the metrics, completes the ledger row and commits.
    async fn complete(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        attempt: &FileAttempt,
        rows: u64,
        stats: &FileStats,
    ) -> Result<LoadOutcome, SinkError> {
        insert_metrics(&mut tx, attempt.id, stats).await?;
        sqlx::query(
            "UPDATE ingest_files SET row_count = $2, first_timestamp = $3, last_timestamp = $4, \
             finished_at = clock_timestamp() WHERE id = $1",
        )
        .bind(attempt.id)
        .bind(rows as i64)
        .bind(stats.first_timestamp)
        .bind(stats.last_timestamp)
        .execute(&mut *tx)
        .await
        .map_err(err("completing the ledger row"))?;
        tx.commit().await.map_err(err("committing"))?;
        Ok(LoadOutcome::Committed { rows })
    }
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

async fn insert_metrics(
    tx: &mut sqlx::PgConnection,
    file_id: Uuid,
    stats: &FileStats,
) -> Result<(), SinkError> {
    let columns: Vec<_> = stats.columns().collect();
    if columns.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
         max_value, mean_value, stddev_value) ",
    );
    q.push_values(columns, |mut b, (name, c)| {
        b.push_bind(file_id)
            .push_bind(name)
            .push_bind(c.count as i64)
            .push_bind(c.nulls as i64)
            .push_bind(c.min)
            .push_bind(c.max)
            .push_bind(c.mean())
            .push_bind(c.stddev());
    });
    q.build()
        .execute(tx)
        .await
        .map_err(err("writing file metrics"))?;
    Ok(())
}

/// One statement that loads a whole file: the ledger row (already complete), the
/// readings from one array per column, and the metrics. A single statement is atomic,
/// and the partial unique index on the hash still stops a second load of the content.
const LOAD_AT_ONCE: &str = "WITH ledger AS ( \
    INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, started_at, \
        agent, row_count, first_timestamp, last_timestamp, finished_at) \
    VALUES ($1, $2, $3, $4, 'loaded', $5, $6, $7, $8, $9, clock_timestamp()) \
    RETURNING id), \
readings AS ( \
    INSERT INTO sensor_readings (file_id, line, ts, sensor_id, temperature, humidity, \
        pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra) \
    SELECT (SELECT id FROM ledger), line, ts, sensor_id, t, h, p, tk, tn, hn, pn, e::jsonb \
    FROM unnest($10::int8[], $11::timestamptz[], $12::text[], $13::float8[], $14::float8[], \
        $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::float8[], \
        $20::text[]) AS r (line, ts, sensor_id, t, h, p, tk, tn, hn, pn, e)) \
INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
    max_value, mean_value, stddev_value) \
SELECT (SELECT id FROM ledger), name, n, nulls, lo, hi, mean, sd \
FROM unnest($21::text[], $22::int8[], $23::int8[], $24::float8[], $25::float8[], \
    $26::float8[], $27::float8[]) AS m (name, n, nulls, lo, hi, mean, sd)";

/// A batch of readings as one vector per column, for `unnest`.
struct Columns {
    line: Vec<i64>,
    ts: Vec<chrono::DateTime<chrono::Utc>>,
    sensor: Vec<String>,
    temperature: Vec<Option<f64>>,
    humidity: Vec<Option<f64>>,
    pressure: Vec<Option<f64>>,
    temperature_k: Vec<Option<f64>>,
    temperature_norm: Vec<Option<f64>>,
    humidity_norm: Vec<Option<f64>>,
    pressure_norm: Vec<Option<f64>>,
    extra: Vec<Option<String>>,
}

impl Columns {
    fn of(batch: Vec<EnrichedRow>) -> Self {
        let n = batch.len();
        let mut c = Self {
            line: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            sensor: Vec::with_capacity(n),
            temperature: Vec::with_capacity(n),
            humidity: Vec::with_capacity(n),
            pressure: Vec::with_capacity(n),
            temperature_k: Vec::with_capacity(n),
            temperature_norm: Vec::with_capacity(n),
            humidity_norm: Vec::with_capacity(n),
            pressure_norm: Vec::with_capacity(n),
            extra: Vec::with_capacity(n),
        };
        for row in batch {
            let r = row.reading;
            c.line.push(r.line as i64);
            c.ts.push(r.timestamp);
            c.sensor.push(r.sensor_id);
            c.temperature.push(r.temperature);
            c.humidity.push(r.humidity);
            c.pressure.push(r.pressure);
            c.temperature_k.push(row.temperature_k);
            c.temperature_norm.push(row.temperature_norm);
            c.humidity_norm.push(row.humidity_norm);
            c.pressure_norm.push(row.pressure_norm);
            c.extra.push(r.extra);
        }
        c
    }
}

/// COPY binary format: signature, flags, header extension length.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1 ends the stream.
const BINARY_TRAILER: i16 = -1;
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01T00:00:00Z.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Appends one row in COPY binary format: the field count, then each field as a length
/// and its bytes in the type's binary representation (-1 for NULL). Binary COPY spares
/// the server parsing text: 3.8 s instead of 5.0 s for the same million rows.
fn encode_row(buf: &mut Vec<u8>, file_id: &[u8; 16], row: &EnrichedRow) {
    let r = &row.reading;
    buf.extend_from_slice(&12i16.to_be_bytes());
    field(buf, file_id);
    field(buf, &(r.line as i64).to_be_bytes());
    field(
        buf,
        &(r.timestamp.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes(),
    );
    field(buf, r.sensor_id.as_bytes());
    for v in [
        r.temperature,
        r.humidity,
        r.pressure,
        row.temperature_k,
        row.temperature_norm,
        row.humidity_norm,
        row.pressure_norm,
    ] {
        match v {
            Some(v) => field(buf, &v.to_be_bytes()),
            None => null(buf),
        }
    }
    match &r.extra {
        Some(json) => {
            // jsonb's binary form: a version byte (1), then the JSON text.
            buf.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
            buf.push(1);
            buf.extend_from_slice(json.as_bytes());
        }
        None => null(buf),
    }
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Reading;

    #[test]
    fn rows_encode_in_copy_binary_format() {
        let row = EnrichedRow {
            reading: Reading {
                line: 42,
                timestamp: "2000-01-01T00:00:01.5Z".parse().unwrap(),
                sensor_id: "a\tb".into(),
                temperature: Some(21.5),
                humidity: None,
                pressure: None,
                extra: Some(r#"{"k":1}"#.into()),
            },
            temperature_k: Some(294.65),
            temperature_norm: None,
            humidity_norm: None,
            pressure_norm: None,
        };
        let mut buf = Vec::new();
        encode_row(&mut buf, &[7u8; 16], &row);
        let mut want: Vec<u8> = vec![0, 12];
        want.extend([0, 0, 0, 16]);
        want.extend([7u8; 16]);
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42]);
        want.extend([0, 0, 0, 8]);
        want.extend(1_500_000i64.to_be_bytes());
        want.extend([0, 0, 0, 3, b'a', b'\t', b'b']);
        want.extend([0, 0, 0, 8]);
        want.extend(21.5f64.to_be_bytes());
        want.extend([0xff; 8]); // humidity, pressure: NULL
        want.extend([0, 0, 0, 8]);
        want.extend(294.65f64.to_be_bytes());
        want.extend([0xff; 12]); // three *_norm NULLs
        want.extend([0, 0, 0, 8, 1]);
        want.extend(br#"{"k":1}"#);
        assert_eq!(buf, want);
        assert_eq!(BINARY_HEADER.len(), 19);
    }

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
