//! Quality control's questions and corrections on MariaDB/MySQL: a sensor's last
//! readings before a file (the history its tests continue from), the spike flags a
//! file adds to readings stored by earlier files, and the flat flags of a whole stuck
//! run, with those files' metrics.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::MySqlConnection;

use super::{MysqlStore, dt, err, parse_id};
use crate::qc::{
    FlaggedReading, HistoryQuery, HistoryReading, MEASURE_NAMES, QcSummary, RunAmendment,
    StoredValues, flagged_sql,
};
use crate::sink::SinkError;

/// Sensors per history statement: five parameters each.
const SENSORS_PER_STATEMENT: usize = 200;

/// The earliest time a DATETIME column holds: the lower bound of a question without one.
fn earliest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A stored reading with the position of the question it answers.
type KeyedRow = (
    i64,
    String,
    i64,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
);

/// One row of [`flagged_sql`]: the reading, then its predecessor's and successor's
/// time and values.
type FlaggedRow = (
    String,
    i64,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

impl MysqlStore {
    /// See [`Store::recent_readings`](crate::sink::Store::recent_readings): one
    /// statement per [`SENSORS_PER_STATEMENT`] sensors, a `UNION ALL` of one range
    /// search of the `(sensor_id, ts)` index each (MariaDB has no `LATERAL`).
    pub(super) async fn recent(
        &self,
        queries: &[HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<HistoryReading>>, SinkError> {
        let mut out: Vec<Vec<HistoryReading>> = vec![Vec::new(); queries.len()];
        for (chunk_no, chunk) in queries.chunks(SENSORS_PER_STATEMENT).enumerate() {
            let sql = (0..chunk.len())
                .map(|i| {
                    // The position is a number this code makes, never input.
                    format!(
                        "(SELECT {} AS k, file_id, line, ts, temperature, humidity, pressure, \
                         qc_flags FROM sensor_readings WHERE sensor_id = ? AND ts < ? \
                         AND ts >= ? ORDER BY ts DESC LIMIT ?)",
                        chunk_no * SENSORS_PER_STATEMENT + i
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
                + " ORDER BY 1, 4, 3";
            let mut q = sqlx::query_as::<_, KeyedRow>(sqlx::AssertSqlSafe(sql));
            for h in chunk {
                q = q
                    .bind(h.sensor.as_str())
                    .bind(dt(h.before))
                    .bind(dt(h.from.unwrap_or_else(earliest)))
                    .bind(i64::from(limit));
            }
            let rows = q
                .fetch_all(&self.pool)
                .await
                .map_err(err("reading the sensors' last readings"))?;
            for (k, file_id, line, ts, t, h, p, flags) in rows {
                if let Some(list) = out.get_mut(k as usize) {
                    list.push(HistoryReading {
                        file_id,
                        line,
                        ts,
                        values: [t, h, p],
                        flags: flags as u16,
                    });
                }
            }
        }
        Ok(out)
    }

    /// See [`LedgerQueries::flagged_readings`](crate::sink::LedgerQueries::flagged_readings).
    pub(super) async fn flagged(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FlaggedReading>, SinkError> {
        // Positional parameters, in the order the placeholders occur in the text.
        let sql = flagged_sql("?", "?", "?");
        let rows: Vec<FlaggedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sensor)
            .bind(sensor)
            .bind(dt(since))
            .bind(dt(since))
            .bind(dt(since))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading flagged readings"))?;
        let values = |ts: Option<DateTime<Utc>>, t, h, p| {
            ts.map(|ts| StoredValues {
                ts,
                temperature: t,
                humidity: h,
                pressure: p,
            })
        };
        rows.into_iter()
            .map(|r| {
                // Checked like every id read back from the ledger's tables.
                parse_id(r.0.clone())?;
                let reading = StoredValues {
                    ts: r.2,
                    temperature: r.3,
                    humidity: r.4,
                    pressure: r.5,
                };
                Ok(FlaggedReading::new(
                    r.0,
                    r.1,
                    r.6 as u16,
                    reading,
                    values(r.7, r.8, r.9, r.10),
                    values(r.11, r.12, r.13, r.14),
                ))
            })
            .collect()
    }
}

/// Adds the spike flags `qc` found on earlier files' readings, and the flat flags of
/// the runs it found on every reading of the run (this file's too: its readings are
/// written first), and counts them in those files' metrics, inside the load's
/// transaction.
pub(super) async fn amend(conn: &mut MySqlConnection, qc: &QcSummary) -> Result<(), SinkError> {
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
        sqlx::query(
            "UPDATE file_metrics SET qc_spike = qc_spike + ? WHERE file_id = ? AND column_name = ?",
        )
        .bind(n as i64)
        .bind(file_id)
        .bind(column)
        .execute(&mut *conn)
        .await
        .map_err(err("adding quality flags to earlier readings"))?;
    }
    Ok(())
}

/// Flags the readings of a flat run and counts them in their files' metrics. InnoDB's
/// UPDATE returns no rows: the run's unflagged readings are read with a lock first
/// (no other load can flag them in between), then flagged.
async fn amend_run(conn: &mut MySqlConnection, run: &RunAmendment) -> Result<(), SinkError> {
    let column = MEASURE_NAMES[run.measure];
    // The column name is one of three constants, never input.
    let filter =
        format!("sensor_id = ? AND ts >= ? AND ts < ? AND {column} = ? AND qc_flags & ? = 0");
    let mut files: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT file_id FROM sensor_readings WHERE {filter} FOR UPDATE"
    )))
    .bind(&run.sensor)
    .bind(dt(run.from))
    .bind(dt(run.to))
    .bind(run.value)
    .bind(i64::from(run.add()))
    .fetch_all(&mut *conn)
    .await
    .map_err(err("flagging the readings of a flat line"))?;
    if files.is_empty() {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE sensor_readings SET qc_flags = qc_flags | ? WHERE {filter}"
    )))
    .bind(i64::from(run.add()))
    .bind(&run.sensor)
    .bind(dt(run.from))
    .bind(dt(run.to))
    .bind(run.value)
    .bind(i64::from(run.add()))
    .execute(&mut *conn)
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
