//! Quality control's questions and corrections on MariaDB/MySQL: a sensor's last
//! readings before a file (the history its tests continue from), the spike flags a
//! file adds to readings stored by earlier files, and the flat flags of a whole stuck
//! run, with those files' metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use super::{MysqlStore, dt, err, parse_id};
use crate::qc::{
    FlaggedReading, FurtherRun, HistoryQuery, HistoryReading, MEASURE_NAMES, QcSummary,
    RunAmendment, StoredValues, Test, attach_further, flagged_sql, further_bit, further_values,
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
    Option<String>,
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
            // `extra` is read only for the further measures judged.
            let extra = if chunk.iter().any(|h| !h.further.is_empty()) {
                "CAST(extra AS CHAR)"
            } else {
                "CAST(NULL AS CHAR)"
            };
            let sql = (0..chunk.len())
                .map(|i| {
                    // The position is a number this code makes, never input.
                    format!(
                        "(SELECT {} AS k, file_id, line, ts, temperature, humidity, pressure, \
                         qc_flags, {extra} FROM sensor_readings WHERE sensor_id = ? AND ts < ? \
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
            for (k, file_id, line, ts, t, h, p, flags, extra) in rows {
                if let (Some(list), Some(query)) =
                    (out.get_mut(k as usize), queries.get(k as usize))
                {
                    let further = further_values(extra.as_deref(), &query.further);
                    list.push(HistoryReading {
                        file_id,
                        line,
                        ts,
                        values: [t, h, p],
                        flags: flags as u16,
                        further: further.into_iter().map(|v| (v, 0)).collect(),
                    });
                }
            }
        }
        for (query, list) in queries.iter().zip(out.iter_mut()) {
            self.further_flags(query, list).await?;
        }
        Ok(out)
    }

    /// Sets the stored flags of the further measures on a sensor's history (one indexed
    /// read of the flagged ones; nothing when none are judged).
    async fn further_flags(
        &self,
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
            "SELECT file_id, line, measure, CAST(flags AS SIGNED) FROM qc_measure_flags \
             WHERE sensor_id = ? AND ts >= ? AND ts < ?",
        )
        .bind(&query.sensor)
        .bind(dt(first.ts))
        .bind(dt(query.before))
        .fetch_all(&self.pool)
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
        let mut out = rows
            .into_iter()
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
            .collect::<Result<Vec<_>, SinkError>>()?;
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
                "SELECT file_id, line, measure, CAST(flags AS SIGNED) FROM qc_measure_flags \
                 WHERE sensor_id = ? AND ts >= ? AND ts <= ?",
            )
            .bind(sensor)
            .bind(dt(first.reading.ts))
            .bind(dt(last.reading.ts))
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
pub(super) async fn amend(conn: &mut MySqlConnection, qc: &QcSummary) -> Result<(), SinkError> {
    amend_all(conn, &[qc]).await
}

/// Keys (two parameters each) per statement of [`amend_all`].
const KEYS_PER_STATEMENT: usize = 1000;

/// [`amend`] for the files of a group, in few statements: the flat runs file after file,
/// then the spike flags with one `UPDATE` per distinct set of flags added (a reading
/// amended twice gets the union), then the earlier files' metrics with one `UPDATE` per
/// distinct count. One statement per amended reading made these the most frequent round
/// trips of small files (a group of 33 bench files sent ~90).
pub(super) async fn amend_all(
    conn: &mut MySqlConnection,
    summaries: &[&QcSummary],
) -> Result<(), SinkError> {
    for qc in summaries {
        for run in &qc.runs {
            amend_run(conn, run).await?;
        }
    }
    let mut flags: BTreeMap<(&str, i64), u16> = BTreeMap::new();
    for a in summaries.iter().flat_map(|qc| &qc.amendments) {
        *flags.entry((a.file_id.as_str(), a.line)).or_default() |= a.add;
    }
    let mut by_flags: BTreeMap<u16, Vec<(&str, i64)>> = BTreeMap::new();
    for (key, add) in flags {
        by_flags.entry(add).or_default().push(key);
    }
    for (add, keys) in &by_flags {
        update_where_any(
            conn,
            "UPDATE sensor_readings SET qc_flags = qc_flags | ",
            i64::from(*add),
            "(file_id = ",
            " AND line = ",
            keys,
        )
        .await?;
    }
    let mut spikes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for qc in summaries {
        for (file_id, column, n) in qc.amended_spikes() {
            *spikes.entry((file_id, column)).or_default() += n;
        }
    }
    let mut by_count: BTreeMap<u64, Vec<(&str, &str)>> = BTreeMap::new();
    for (key, n) in spikes {
        by_count.entry(n).or_default().push(key);
    }
    for (n, keys) in &by_count {
        update_where_any(
            conn,
            "UPDATE file_metrics SET qc_spike = qc_spike + ",
            *n as i64,
            "(file_id = ",
            " AND column_name = ",
            keys,
        )
        .await?;
    }
    Ok(())
}

/// `{update}? WHERE (a = ? AND b = ?) OR …` for `keys`, in statements of
/// [`KEYS_PER_STATEMENT`]: point ranges of the primary key, the values compared as
/// constants (in the column's own character set and collation).
async fn update_where_any<'k, A, B>(
    conn: &mut MySqlConnection,
    update: &'static str,
    value: i64,
    first: &'static str,
    second: &'static str,
    keys: &[(A, B)],
) -> Result<(), SinkError>
where
    A: sqlx::Encode<'k, MySql> + sqlx::Type<MySql> + Copy + Send + 'k,
    B: sqlx::Encode<'k, MySql> + sqlx::Type<MySql> + Copy + Send + 'k,
{
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let mut q = QueryBuilder::<MySql>::new(update);
        q.push_bind(value);
        q.push(" WHERE ");
        for (i, (a, b)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(first);
            q.push_bind(*a);
            q.push(second);
            q.push_bind(*b);
            q.push(")");
        }
        q.build()
            .execute(&mut *conn)
            .await
            .map_err(err("adding quality flags to earlier readings"))?;
    }
    Ok(())
}

/// Stores the further measures' flags of file `file_id`'s readings (the flagged ones
/// only), then adds those `qc` finds on earlier readings (spikes, flat runs) and counts
/// them in their files' metrics: in the load's transaction, after its readings.
pub(super) async fn amend_further(
    conn: &mut MySqlConnection,
    file_id: &str,
    qc: &QcSummary,
) -> Result<(), SinkError> {
    let mut rows: Vec<FlagRow<'_>> = Vec::new();
    for f in &qc.further_flagged {
        rows.push((file_id, f.line, f.ts, &f.sensor, &f.measure, f.flags));
    }
    for a in &qc.further_amendments {
        rows.push((&a.file_id, a.line, a.ts, &a.sensor, &a.measure, a.add));
    }
    upsert_further(conn, &rows).await?;
    for a in &qc.further_amendments {
        add_count(conn, "qc_spike", &a.file_id, &a.measure, 1).await?;
    }
    for run in &qc.further_runs {
        amend_further_run(conn, run).await?;
    }
    Ok(())
}

/// A row of `qc_measure_flags`: file, line, time, sensor, measure, flags.
type FlagRow<'a> = (&'a str, i64, DateTime<Utc>, &'a str, &'a str, u8);

/// Or-s flags into readings' rows of `qc_measure_flags` (file, line, time, sensor,
/// measure, flags), in statements of [`KEYS_PER_STATEMENT`].
async fn upsert_further(conn: &mut MySqlConnection, rows: &[FlagRow<'_>]) -> Result<(), SinkError> {
    for chunk in rows.chunks(KEYS_PER_STATEMENT) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO qc_measure_flags (file_id, line, ts, sensor_id, measure, flags) ",
        );
        q.push_values(chunk, |mut b, (file, line, ts, sensor, measure, flags)| {
            b.push_bind(*file)
                .push_bind(*line)
                .push_bind(dt(*ts))
                .push_bind(*sensor)
                .push_bind(*measure)
                .push_bind(i64::from(*flags));
        });
        q.push(" ON DUPLICATE KEY UPDATE flags = flags | VALUES(flags)");
        q.build()
            .execute(&mut *conn)
            .await
            .map_err(err("storing the quality flags of further measures"))?;
    }
    Ok(())
}

/// Adds `n` to count `counter` (a qc_* column, a constant) of a file's column.
async fn add_count(
    conn: &mut MySqlConnection,
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
/// not flagged flat yet, read with a lock first, and counts them in their files'
/// metrics.
async fn amend_further_run(conn: &mut MySqlConnection, run: &FurtherRun) -> Result<(), SinkError> {
    let flat = further_bit(Test::Flat);
    let found: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT r.file_id, r.line, r.ts FROM sensor_readings r \
         LEFT JOIN qc_measure_flags f \
           ON f.file_id = r.file_id AND f.line = r.line AND f.measure = ? \
         WHERE r.sensor_id = ? AND r.ts >= ? AND r.ts < ? \
           AND CAST(JSON_VALUE(r.extra, CONCAT('$.\"', ?, '\"')) AS DOUBLE) = ? \
           AND coalesce(f.flags, 0) & ? = 0 FOR UPDATE",
    )
    .bind(&run.measure)
    .bind(&run.sensor)
    .bind(dt(run.from))
    .bind(dt(run.to))
    .bind(&run.measure)
    .bind(run.value)
    .bind(i64::from(flat))
    .fetch_all(&mut *conn)
    .await
    .map_err(err("flagging the readings of a flat line"))?;
    let rows: Vec<FlagRow<'_>> = found
        .iter()
        .map(|(f, line, ts)| {
            (
                f.as_str(),
                *line,
                *ts,
                run.sensor.as_str(),
                run.measure.as_str(),
                flat,
            )
        })
        .collect();
    upsert_further(conn, &rows).await?;
    let mut files: Vec<&str> = found.iter().map(|(f, _, _)| f.as_str()).collect();
    files.sort_unstable();
    for group in files.chunk_by(|a, b| a == b) {
        add_count(conn, "qc_flat", group[0], &run.measure, group.len() as u64).await?;
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
