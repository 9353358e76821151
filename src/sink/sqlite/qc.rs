//! Quality control's questions and corrections on SQLite: a sensor's last readings
//! before a file (the history its tests continue from), the spike flags a file adds
//! to readings stored by earlier files, the flat flags of a whole stuck run, and the
//! schema's QC columns on databases created before them.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{SqliteStore, err, parse_time};
use crate::qc::{
    FlaggedReading, FurtherRun, HistoryQuery, HistoryReading, MEASURE_NAMES, QcSummary,
    RunAmendment, StoredValues, Test, attach_further, flagged_sql, further_bit, further_values,
};
use crate::sink::SinkError;
use crate::timestamp::format_utc;

impl SqliteStore {
    /// See [`Store::recent_readings`](crate::sink::Store::recent_readings): one
    /// statement per [`SENSORS_PER_STATEMENT`] sensors, a `UNION ALL` of one indexed
    /// search each (each reads only the rows it returns).
    pub(super) async fn recent(
        &self,
        queries: &[HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<HistoryReading>>, SinkError> {
        let mut conn = self.pool.acquire().await.map_err(err("opening"))?;
        let mut out: Vec<Vec<HistoryReading>> = vec![Vec::new(); queries.len()];
        for (chunk_no, chunk) in queries.chunks(SENSORS_PER_STATEMENT).enumerate() {
            // `extra` is read only for the further measures judged.
            let extra = if chunk.iter().any(|h| !h.further.is_empty()) {
                "extra"
            } else {
                "NULL"
            };
            let one = format!(
                "SELECT * FROM (SELECT ? AS k, file_id, line, ts, temperature, humidity, \
                 pressure, qc_flags, {extra} FROM sensor_readings \
                 WHERE sensor_id = ? AND ts < ? AND ts >= ? ORDER BY ts DESC LIMIT ?)"
            );
            let sql = vec![one; chunk.len()].join(" UNION ALL ") + " ORDER BY 1, 4, 3";
            let mut q = sqlx::query_as::<_, KeyedRow>(sqlx::AssertSqlSafe(sql));
            for (i, h) in chunk.iter().enumerate() {
                // Without a lower bound, the empty text sorts before every time.
                q = q
                    .bind((chunk_no * SENSORS_PER_STATEMENT + i) as i64)
                    .bind(h.sensor.clone())
                    .bind(format_utc(h.before))
                    .bind(h.from.map(format_utc).unwrap_or_default())
                    .bind(i64::from(limit));
            }
            let rows = q
                .fetch_all(&mut *conn)
                .await
                .map_err(err("reading the sensors' last readings"))?;
            for (k, file_id, line, ts, t, h, p, flags, extra) in rows {
                if let (Some(list), Some(query)) =
                    (out.get_mut(k as usize), queries.get(k as usize))
                {
                    let further = further_values(extra.as_deref(), &query.further);
                    list.push(HistoryReading {
                        file_id,
                        line,
                        ts: parse_time(ts)?,
                        values: [t, h, p],
                        flags: flags as u16,
                        further: further.into_iter().map(|v| (v, 0)).collect(),
                    });
                }
            }
        }
        for (query, list) in queries.iter().zip(out.iter_mut()) {
            further_flags(&mut conn, query, list).await?;
        }
        Ok(out)
    }
}

/// Sets the stored flags of the further measures on a sensor's history (one indexed
/// read of the flagged ones; nothing when none are judged).
async fn further_flags(
    conn: &mut SqliteConnection,
    query: &HistoryQuery,
    list: &mut [HistoryReading],
) -> Result<(), SinkError> {
    let Some(first) = list.first() else {
        return Ok(());
    };
    if query.further.is_empty() {
        return Ok(());
    }
    let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT file_id, line, measure, flags FROM qc_measure_flags \
         WHERE sensor_id = ? AND ts >= ? AND ts < ?",
    )
    .bind(&query.sensor)
    .bind(format_utc(first.ts))
    .bind(format_utc(query.before))
    .fetch_all(&mut *conn)
    .await
    .map_err(err("reading the sensors' last readings"))?;
    for (file_id, line, measure, flags) in rows {
        let Some(k) = query.further.iter().position(|m| m.name == measure) else {
            continue;
        };
        if let Some(h) = list
            .iter_mut()
            .find(|h| h.line == line && h.file_id == file_id)
        {
            h.further[k].1 = flags as u8;
        }
    }
    Ok(())
}

/// Stores the further measures' flags of file `file_id`'s readings (the flagged ones
/// only), then adds those `qc` finds on earlier readings (spikes, flat runs) and counts
/// them in their files' metrics: in the load's transaction, after its readings.
pub(super) async fn amend_further(
    conn: &mut SqliteConnection,
    file_id: &str,
    qc: &QcSummary,
) -> Result<(), SinkError> {
    for f in &qc.further_flagged {
        upsert_further(conn, file_id, f.line, f.ts, &f.sensor, &f.measure, f.flags).await?;
    }
    for a in &qc.further_amendments {
        upsert_further(conn, &a.file_id, a.line, a.ts, &a.sensor, &a.measure, a.add).await?;
        add_count(conn, "qc_spike", &a.file_id, &a.measure, 1).await?;
    }
    for run in &qc.further_runs {
        amend_further_run(conn, run).await?;
    }
    Ok(())
}

/// Adds `flags` to a reading's row of `measure` in `qc_measure_flags`.
async fn upsert_further(
    conn: &mut SqliteConnection,
    file_id: &str,
    line: i64,
    ts: DateTime<Utc>,
    sensor: &str,
    measure: &str,
    flags: u8,
) -> Result<(), SinkError> {
    sqlx::query(
        "INSERT INTO qc_measure_flags (file_id, line, ts, sensor_id, measure, flags) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (file_id, line, measure) \
         DO UPDATE SET flags = flags | excluded.flags",
    )
    .bind(file_id)
    .bind(line)
    .bind(format_utc(ts))
    .bind(sensor)
    .bind(measure)
    .bind(i64::from(flags))
    .execute(&mut *conn)
    .await
    .map_err(err("storing the quality flags of further measures"))?;
    Ok(())
}

/// Sensors per history statement: five parameters each, well under SQLite's limit.
const SENSORS_PER_STATEMENT: usize = 200;

/// A stored reading with the position of the question it answers.
type KeyedRow = (
    i64,
    String,
    i64,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    Option<String>,
);

/// One row of [`flagged_sql`]: the reading, then its predecessor's and successor's
/// time and values.
type FlaggedRow = (
    String,
    i64,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

impl SqliteStore {
    /// See [`LedgerQueries::flagged_readings`](crate::sink::LedgerQueries::flagged_readings).
    pub(super) async fn flagged(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FlaggedReading>, SinkError> {
        let sql = flagged_sql("?1", "?2", "?3");
        let rows: Vec<FlaggedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sensor)
            .bind(format_utc(since))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading flagged readings"))?;
        let values = |ts: Option<String>, t, h, p| -> Result<Option<StoredValues>, SinkError> {
            ts.map(|ts| {
                Ok(StoredValues {
                    ts: parse_time(ts)?,
                    temperature: t,
                    humidity: h,
                    pressure: p,
                })
            })
            .transpose()
        };
        let mut out = rows
            .into_iter()
            .map(|r| {
                let reading = StoredValues {
                    ts: parse_time(r.2)?,
                    temperature: r.3,
                    humidity: r.4,
                    pressure: r.5,
                };
                Ok(FlaggedReading::new(
                    r.0,
                    r.1,
                    r.6 as u16,
                    reading,
                    values(r.7, r.8, r.9, r.10)?,
                    values(r.11, r.12, r.13, r.14)?,
                ))
            })
            .collect::<Result<Vec<_>, SinkError>>()?;
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
                "SELECT file_id, line, measure, flags FROM qc_measure_flags \
                 WHERE sensor_id = ? AND ts >= ? AND ts <= ?",
            )
            .bind(sensor)
            .bind(format_utc(first.reading.ts))
            .bind(format_utc(last.reading.ts))
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading flagged readings"))?;
            let rows = rows.into_iter().map(|(f, l, m, b)| (f, l, m, b as u8));
            attach_further(&mut out, rows.collect());
        }
        Ok(out)
    }
}

/// Adds the spike flags `qc` found on earlier files' readings, and the flat flags of
/// the runs it found on every reading of the run (this file's too: its readings are
/// written first), and counts them in those files' metrics, inside the load's
/// transaction.
pub(super) async fn amend(conn: &mut SqliteConnection, qc: &QcSummary) -> Result<(), SinkError> {
    for run in &qc.runs {
        amend_run(conn, run).await?;
    }
    for a in &qc.amendments {
        sqlx::query(
            "UPDATE sensor_readings SET qc_flags = qc_flags | ? WHERE file_id = ? AND line = ?",
        )
        .bind(i64::from(a.add))
        .bind(&a.file_id)
        .bind(a.line)
        .execute(&mut *conn)
        .await
        .map_err(err("adding quality flags to earlier readings"))?;
    }
    for (file_id, column, n) in qc.amended_spikes() {
        add_count(conn, "qc_spike", file_id, column, n).await?;
    }
    Ok(())
}

/// Adds `n` to count `counter` (a qc_* column, a constant) of a file's column.
async fn add_count(
    conn: &mut SqliteConnection,
    counter: &'static str,
    file_id: &str,
    column: &str,
    n: u64,
) -> Result<(), SinkError> {
    let sql = format!(
        "UPDATE file_metrics SET {counter} = {counter} + ? WHERE file_id = ? AND column_name = ?"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(n as i64)
        .bind(file_id)
        .bind(column)
        .execute(&mut *conn)
        .await
        .map_err(err("adding quality flags to earlier readings"))?;
    Ok(())
}

/// Flags the readings of a further measure's flat run (its value read from `extra`)
/// and counts them in their files' metrics.
async fn amend_further_run(conn: &mut SqliteConnection, run: &FurtherRun) -> Result<(), SinkError> {
    let flat = i64::from(further_bit(Test::Flat));
    let mut files: Vec<String> = sqlx::query_scalar(
        "INSERT INTO qc_measure_flags (file_id, line, ts, sensor_id, measure, flags) \
         SELECT file_id, line, ts, sensor_id, ?5, ?6 FROM sensor_readings \
         WHERE sensor_id = ?1 AND ts >= ?2 AND ts < ?3 \
           AND json_extract(extra, '$.\"' || ?5 || '\"') = ?4 \
         ON CONFLICT (file_id, line, measure) DO UPDATE SET flags = flags | ?6 \
         WHERE (flags & ?6) = 0 RETURNING file_id",
    )
    .bind(&run.sensor)
    .bind(format_utc(run.from))
    .bind(format_utc(run.to))
    .bind(run.value)
    .bind(&run.measure)
    .bind(flat)
    .fetch_all(&mut *conn)
    .await
    .map_err(err("flagging the readings of a flat line"))?;
    files.sort_unstable();
    for group in files.chunk_by(|a, b| a == b) {
        add_count(conn, "qc_flat", &group[0], &run.measure, group.len() as u64).await?;
    }
    Ok(())
}

/// Flags the readings of a flat run and counts them in their files' metrics.
async fn amend_run(conn: &mut SqliteConnection, run: &RunAmendment) -> Result<(), SinkError> {
    let column = MEASURE_NAMES[run.measure];
    // The column name is one of three constants, never input.
    let sql = format!(
        "UPDATE sensor_readings SET qc_flags = qc_flags | ?1 WHERE sensor_id = ?2 \
         AND ts >= ?3 AND ts < ?4 AND {column} = ?5 AND qc_flags & ?1 = 0 RETURNING file_id"
    );
    let mut files: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(i64::from(run.add()))
        .bind(&run.sensor)
        .bind(format_utc(run.from))
        .bind(format_utc(run.to))
        .bind(run.value)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("flagging the readings of a flat line"))?;
    files.sort_unstable();
    for group in files.chunk_by(|a, b| a == b) {
        sqlx::query(
            "UPDATE file_metrics SET qc_flat = qc_flat + ? WHERE file_id = ? AND column_name = ?",
        )
        .bind(group.len() as i64)
        .bind(&group[0])
        .bind(column)
        .execute(&mut *conn)
        .await
        .map_err(err("flagging the readings of a flat line"))?;
    }
    Ok(())
}

/// Adds the QC columns to a database created before them (SQLite has no `ADD COLUMN
/// IF NOT EXISTS`); nothing happens on a new or already migrated database. Runs before
/// the schema script, whose views read the columns.
pub(super) async fn migrate(conn: &mut SqliteConnection) -> Result<(), SinkError> {
    let columns = |table: &'static str| {
        sqlx::query_scalar::<_, String>("SELECT name FROM pragma_table_info(?)").bind(table)
    };
    let readings = columns("sensor_readings")
        .fetch_all(&mut *conn)
        .await
        .map_err(err("reading the schema"))?;
    let metrics = columns("file_metrics")
        .fetch_all(&mut *conn)
        .await
        .map_err(err("reading the schema"))?;
    let mut script = String::new();
    if !readings.is_empty() && !readings.iter().any(|c| c == "qc_flags") {
        script.push_str(
            "ALTER TABLE sensor_readings ADD COLUMN qc_flags INTEGER NOT NULL DEFAULT 0;\n",
        );
    }
    for column in [
        "qc_step",
        "qc_spike",
        "qc_flat",
        "qc_outlier",
        "qc_gap",
        "qc_time_travel",
    ] {
        if !metrics.is_empty() && !metrics.iter().any(|c| c == column) {
            script.push_str(&format!(
                "ALTER TABLE file_metrics ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0;\n"
            ));
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
        .await
        .map_err(err("migrating the schema"))?;
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sqlx::AssertSqlSafe(script)))
        .await
        .map_err(err("adding the quality-flag columns"))?;
    tx.commit().await.map_err(err("migrating the schema"))?;
    tracing::info!("database migrated for quality flags (qc_flags, file_metrics qc_* columns)");
    Ok(())
}
