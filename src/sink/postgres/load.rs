//! The PostgreSQL write path: a file that fits in one batch is loaded by one statement;
//! a larger one streams its readings through binary COPY inside the transaction that
//! claims its ledger row and writes its metrics. Also ledger rows for attempts that
//! loaded nothing, and archive names.

use async_trait::async_trait;
use sqlx::PgConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::copy::{BINARY_HEADER, BINARY_TRAILER, COPY_CHUNK, COPY_READINGS, encode_row};
use super::partitions::MonthSet;
use super::{PgStore, describe, err, follow, is_unique_violation, qc};
use crate::enrich::EnrichedRow;
use crate::read::ContentHash;
use crate::sink::{
    ArchiveName, Claims, EntryStatus, ErrorClass, FileAttempt, FollowedFile, GroupItem,
    LedgerEntry, LoadMsg, LoadOutcome, LoadedFile, ReadingKey, SinkError, Store, StoredReading,
};
use crate::stats::FileStats;

#[async_trait]
impl Store for PgStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn prepare(&self) -> Result<(), SinkError> {
        self.apply_schema().await
    }

    fn claims(&self) -> Option<&dyn Claims> {
        Some(self)
    }

    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError> {
        self.find_loaded_row(hash).await
    }

    async fn known_sources(&self, identities: &[String]) -> Result<Vec<String>, SinkError> {
        self.known_source_rows(identities).await
    }

    fn follows(&self) -> bool {
        true
    }

    async fn followed_file(&self, file_name: &str) -> Result<Option<FollowedFile>, SinkError> {
        self.followed_row(file_name).await
    }

    async fn followed_files(&self) -> Result<Vec<FollowedFile>, SinkError> {
        self.followed_rows().await
    }

    async fn forget_followed(&self, file_name: &str, ledger_id: Uuid) -> Result<(), SinkError> {
        self.forget(file_name, ledger_id).await
    }

    async fn any_stored_within(
        &self,
        spans: &[(
            String,
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
        )],
    ) -> Result<bool, SinkError> {
        self.any_within(spans).await
    }

    async fn stored_readings(&self, keys: &[ReadingKey]) -> Result<Vec<StoredReading>, SinkError> {
        self.stored(keys).await
    }

    async fn recent_readings(
        &self,
        queries: &[crate::qc::HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<crate::qc::HistoryReading>>, SinkError> {
        self.recent(queries, limit).await
    }

    async fn load(
        &self,
        attempt: &FileAttempt,
        rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        let loaded = self.load_file(attempt, rows).await;
        if loaded.is_err() {
            // Retention or a migration elsewhere may have changed the partitions (a row
            // no partition takes is one such failure): survey them again next time.
            self.forget_partitions();
        }
        loaded
    }

    async fn load_group(
        &self,
        items: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        let loaded = self.load_group_at_once(items).await;
        if loaded
            .as_ref()
            .map_or(true, |answers| answers.iter().any(Result::is_err))
        {
            // As for one file: a row no partition takes may mean the partitions changed.
            self.forget_partitions();
        }
        loaded
    }

    async fn maintain(&self, retention: Option<crate::sink::Retention>) -> Result<(), SinkError> {
        self.maintain_partitions(retention).await
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        let Some(mark) = &entry.attempt.follow else {
            return self
                .write_record(&self.pool, entry)
                .await
                .map_err(err("writing the ledger row"));
        };
        // An increment refused: its ledger row and the followed file's new position
        // commit together.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(err("starting the ledger row"))?;
        self.write_record(&mut *tx, entry)
            .await
            .map_err(err("writing the ledger row"))?;
        follow::write_mark(&mut tx, mark).await?;
        tx.commit().await.map_err(err("committing"))
    }

    async fn mark_archived_all(&self, names: &[ArchiveName]) -> Result<(), SinkError> {
        if names.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = names.iter().map(|n| n.id).collect();
        let archived: Vec<&str> = names.iter().map(|n| n.archived_as.as_str()).collect();
        // Committed without waiting for the WAL flush (`synchronous_commit = off` for this
        // transaction only): the names are for people, and waiting for a second fsync per
        // file cost small files 7% of their throughput. A server crash within ~0.6 s may
        // forget them; exactly-once does not rest on them (the rows and the `loaded`
        // rows were committed synchronously before the moves). Visible at once either way.
        sqlx::query(
            "WITH no_wait AS (SELECT set_config('synchronous_commit', 'off', true)) \
             UPDATE ingest_files AS f SET archived_as = n.archived_as, \
                    archived_at = clock_timestamp() \
             FROM unnest($1::uuid[], $2::text[]) AS n (id, archived_as), no_wait \
             WHERE f.id = n.id",
        )
        .bind(&ids)
        .bind(&archived)
        .execute(&self.pool)
        .await
        .map_err(err("recording archive names"))?;
        Ok(())
    }
}

impl PgStore {
    /// Writes the ledger row of an attempt that loaded nothing, on `on`: the pool (a
    /// transaction of its own) or a group's transaction.
    pub(super) async fn write_record<'e>(
        &self,
        on: impl sqlx::PgExecutor<'e>,
        entry: &LedgerEntry,
    ) -> Result<(), sqlx::Error> {
        let a = &entry.attempt;
        sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             row_count, rejected_rows, error_summary, duplicate_of, started_at, agent, \
             profile, profile_hash, source_identity) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        .bind(&a.profile.name)
        .bind(&a.profile.hash)
        .bind(&a.source_identity)
        .execute(on)
        .await?;
        Ok(())
    }

    /// [`Store::maintain`]: the months ahead, then retention.
    async fn maintain_partitions(
        &self,
        retention: Option<crate::sink::Retention>,
    ) -> Result<(), SinkError> {
        let now = chrono::Utc::now();
        self.create_ahead(now).await?;
        if let Some(retention) = retention {
            self.apply_retention(retention, now).await?;
        }
        Ok(())
    }

    /// [`Store::load`] itself: the first two messages decide between one statement and
    /// COPY; each batch's months get their partitions before its rows are sent.
    async fn load_file(
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
        // unique index, before either copies a row. The first two batches' months get
        // their partitions before the transaction starts.
        self.ensure_months(&months_of([&first, &second])).await?;
        let mut tx = self.pool.begin().await.map_err(err("starting the load"))?;
        if let Err(e) = self.claim_hash(&mut tx, attempt).await {
            drop(tx);
            return self
                .claim_failed(attempt, e, "claiming the content hash")
                .await;
        }
        match self
            .copy_rows(&mut tx, attempt, [first, second], &mut rows)
            .await?
        {
            Copied::All(stats, copied) => self.complete(tx, attempt, copied, &stats).await,
            Copied::Aborted => {
                // Rolling back is all that matters.
                let _ = tx.rollback().await;
                Ok(LoadOutcome::Aborted)
            }
        }
    }

    /// Inserts the ledger row of `attempt`, which claims its content hash: a
    /// concurrent load of the same content waits on the unique index.
    async fn claim_hash(
        &self,
        conn: &mut PgConnection,
        attempt: &FileAttempt,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
             started_at, agent, source_identity) VALUES ($1, $2, $3, $4, 'loaded', $5, $6, $7)",
        )
        .bind(attempt.id)
        .bind(&attempt.file_name)
        .bind(attempt.hash.as_str())
        .bind(attempt.size as i64)
        .bind(attempt.started_at)
        .bind(&self.agent)
        .bind(&attempt.source_identity)
        .execute(conn)
        .await
        .map(drop)
    }

    /// Streams `first`, then every batch `rows` brings, through binary COPY on `conn`
    /// until the reader commits or aborts. A batch with months that have no partition
    /// yet ends the running COPY, creates them and starts a new one.
    async fn copy_rows(
        &self,
        conn: &mut PgConnection,
        attempt: &FileAttempt,
        first: [Vec<EnrichedRow>; 2],
        rows: &mut mpsc::Receiver<LoadMsg>,
    ) -> Result<Copied, SinkError> {
        let mut copy = conn
            .copy_in_raw(COPY_READINGS)
            .await
            .map_err(err("starting COPY"))?;
        let file_id = *attempt.id.as_bytes();
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        buf.extend_from_slice(BINARY_HEADER);
        let mut copied = 0;
        let mut pending = first.into_iter();
        let stats = loop {
            let msg = match pending.next() {
                Some(batch) => Some(LoadMsg::Rows(batch)),
                None => rows.recv().await,
            };
            match msg {
                Some(LoadMsg::Rows(batch)) => {
                    let missing = self.missing_months(&months_of([&batch])).await?;
                    if !missing.is_empty() {
                        // A running COPY routes rows with the partitions it started
                        // with: end it, create the months beside the transaction (which
                        // keeps its locks), and go on with a new COPY that sees them.
                        buf.extend_from_slice(&BINARY_TRAILER.to_be_bytes());
                        copy.send(buf.as_slice())
                            .await
                            .map_err(err("copying readings"))?;
                        copied += copy.finish().await.map_err(err("copying readings"))?;
                        self.create_months(&missing).await?;
                        copy = conn
                            .copy_in_raw(COPY_READINGS)
                            .await
                            .map_err(err("starting COPY"))?;
                        buf.clear();
                        buf.extend_from_slice(BINARY_HEADER);
                    }
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
                    // The abort's own reply is noise: the caller rolls back.
                    let _ = copy.abort("file rejected by sensor-ingest").await;
                    return Ok(Copied::Aborted);
                }
            }
        };
        buf.extend_from_slice(&BINARY_TRAILER.to_be_bytes());
        copy.send(buf.as_slice())
            .await
            .map_err(err("copying readings"))?;
        copied += copy.finish().await.map_err(err("copying readings"))?;
        Ok(Copied::All(stats, copied))
    }

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
        if let Some(loaded) = self.find_loaded_row(&attempt.hash).await? {
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
        self.ensure_months(&months_of([&batch])).await?;
        if !stats.qc.amends() && stats.qc.further_flagged.is_empty() && attempt.follow.is_none() {
            return match self.write_at_once(&self.pool, attempt, batch, stats).await {
                Ok(()) => Ok(LoadOutcome::Committed { rows }),
                Err(e) => self.claim_failed(attempt, e, "loading the file").await,
            };
        }
        // Flags for an earlier file's reading, or a followed file's new position: with
        // the file, in one transaction.
        let mut tx = self.pool.begin().await.map_err(err("starting the load"))?;
        if let Err(e) = self.write_at_once(&mut *tx, attempt, batch, stats).await {
            drop(tx);
            return self.claim_failed(attempt, e, "loading the file").await;
        }
        qc::amend(&mut tx, &stats.qc).await?;
        qc::amend_further(&mut tx, attempt.id, &stats.qc).await?;
        if let Some(mark) = &attempt.follow {
            follow::write_mark(&mut tx, mark).await?;
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(LoadOutcome::Committed { rows })
    }

    /// Runs [`LOAD_AT_ONCE`] for one file on `on`: the pool (a transaction of its own)
    /// or a group's transaction. The months of `batch` must have their partitions.
    pub(super) async fn write_at_once<'e>(
        &self,
        on: impl sqlx::PgExecutor<'e>,
        attempt: &FileAttempt,
        batch: Vec<EnrichedRow>,
        stats: &FileStats,
    ) -> Result<(), sqlx::Error> {
        let rows = batch.len() as u64;
        let r = Columns::of(batch);
        let mut metric_names = Vec::new();
        let mut metric_counts = Vec::new();
        let mut metric_nulls = Vec::new();
        let mut metric_values: [Vec<Option<f64>>; 4] = Default::default();
        let mut metric_units = Vec::new();
        let mut metric_coded = Vec::new();
        let mut metric_qc: [Vec<i64>; 6] = Default::default();
        for col in &stats.columns {
            for (column, n) in metric_qc.iter_mut().zip(stats.qc.of(&col.name)) {
                column.push(n as i64);
            }
            let c = &col.stats;
            metric_names.push(col.name.as_str());
            metric_units.push(col.source_unit.as_deref());
            metric_coded.push(col.coded_missing as i64);
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
        let [qc_step, qc_spike, qc_flat, qc_outlier, qc_gap, qc_travel] = metric_qc;
        sqlx::query(LOAD_AT_ONCE)
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
            .bind(EntryStatus::of(stats).as_str())
            .bind(stats.rejected_rows as i64)
            .bind(&attempt.profile.name)
            .bind(&attempt.profile.hash)
            .bind(metric_units)
            .bind(metric_coded)
            .bind(r.qc_flags)
            .bind(qc_step)
            .bind(qc_spike)
            .bind(qc_flat)
            .bind(qc_outlier)
            .bind(qc_gap)
            .bind(qc_travel)
            .bind(&attempt.source_identity)
            .execute(on)
            .await?;
        Ok(())
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
        qc::amend(&mut tx, &stats.qc).await?;
        qc::amend_further(&mut tx, attempt.id, &stats.qc).await?;
        sqlx::query(
            "UPDATE ingest_files SET row_count = $2, first_timestamp = $3, last_timestamp = $4, \
             finished_at = clock_timestamp(), status = $5, rejected_rows = $6, profile = $7, \
             profile_hash = $8 WHERE id = $1",
        )
        .bind(attempt.id)
        .bind(rows as i64)
        .bind(stats.first_timestamp)
        .bind(stats.last_timestamp)
        .bind(EntryStatus::of(stats).as_str())
        .bind(stats.rejected_rows as i64)
        .bind(&attempt.profile.name)
        .bind(&attempt.profile.hash)
        .execute(&mut *tx)
        .await
        .map_err(err("completing the ledger row"))?;
        if let Some(mark) = &attempt.follow {
            follow::write_mark(&mut tx, mark).await?;
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(LoadOutcome::Committed { rows })
    }
}

async fn insert_metrics(
    tx: &mut sqlx::PgConnection,
    file_id: Uuid,
    stats: &FileStats,
) -> Result<(), SinkError> {
    if stats.columns.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
         max_value, mean_value, stddev_value, source_unit, missing_codes, qc_step, qc_spike, \
         qc_flat, qc_outlier, qc_gap, qc_time_travel) ",
    );
    q.push_values(&stats.columns, |mut b, col| {
        let c = &col.stats;
        b.push_bind(file_id)
            .push_bind(col.name.as_str())
            .push_bind(c.count as i64)
            .push_bind(c.nulls as i64)
            .push_bind(c.min)
            .push_bind(c.max)
            .push_bind(c.mean())
            .push_bind(c.stddev())
            .push_bind(col.source_unit.as_deref())
            .push_bind(col.coded_missing as i64);
        for n in stats.qc.of(&col.name) {
            b.push_bind(n as i64);
        }
    });
    q.build()
        .execute(tx)
        .await
        .map_err(err("writing file metrics"))?;
    Ok(())
}

/// How the COPY of a file's rows ended.
enum Copied {
    /// The reader committed: the file's statistics, and the rows copied.
    All(Box<FileStats>, u64),
    /// The reader aborted (or went away); the COPY is aborted, the transaction not yet.
    Aborted,
}

/// One statement that loads a whole file: the ledger row (already complete), the
/// readings from one array per column, and the metrics. A single statement is atomic,
/// and the partial unique index on the hash still stops a second load of the content.
const LOAD_AT_ONCE: &str = "WITH ledger AS ( \
    INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, started_at, \
        agent, row_count, first_timestamp, last_timestamp, finished_at, rejected_rows, \
        profile, profile_hash, source_identity) \
    VALUES ($1, $2, $3, $4, $28, $5, $6, $7, $8, $9, clock_timestamp(), $29, $30, $31, $41) \
    RETURNING id), \
readings AS ( \
    INSERT INTO sensor_readings (file_id, line, ts, sensor_id, temperature, humidity, \
        pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, \
        qc_flags) \
    SELECT (SELECT id FROM ledger), line, ts, sensor_id, t, h, p, tk, tn, hn, pn, e::jsonb, qc \
    FROM unnest($10::int8[], $11::timestamptz[], $12::text[], $13::float8[], $14::float8[], \
        $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::float8[], \
        $20::text[], $34::int2[]) AS r (line, ts, sensor_id, t, h, p, tk, tn, hn, pn, e, qc)) \
INSERT INTO file_metrics (file_id, column_name, value_count, null_count, min_value, \
    max_value, mean_value, stddev_value, source_unit, missing_codes, qc_step, qc_spike, \
    qc_flat, qc_outlier, qc_gap, qc_time_travel) \
SELECT (SELECT id FROM ledger), name, n, nulls, lo, hi, mean, sd, unit, coded, qs, qp, qf, qo, \
    qg, qt \
FROM unnest($21::text[], $22::int8[], $23::int8[], $24::float8[], $25::float8[], \
    $26::float8[], $27::float8[], $32::text[], $33::int8[], $35::int8[], $36::int8[], \
    $37::int8[], $38::int8[], $39::int8[], $40::int8[]) \
    AS m (name, n, nulls, lo, hi, mean, sd, unit, coded, qs, qp, qf, qo, qg, qt)";

/// The months the readings of `batches` fall in.
pub(super) fn months_of<'a>(batches: impl IntoIterator<Item = &'a Vec<EnrichedRow>>) -> MonthSet {
    let mut months = MonthSet::default();
    for row in batches.into_iter().flatten() {
        months.add(row.reading.timestamp);
    }
    months
}

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
    qc_flags: Vec<i16>,
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
            qc_flags: Vec::with_capacity(n),
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
            c.qc_flags.push(row.qc_flags as i16);
        }
        c
    }
}
