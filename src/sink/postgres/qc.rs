//! Quality control's questions and corrections on PostgreSQL: a sensor's last
//! readings before a file (the history its tests continue from), and the flags a file
//! adds to readings stored before (a spike on an earlier file's last reading, every
//! reading of a flat run), with those files' metrics.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgStore, err};
use crate::qc::{
    FlaggedReading, HistoryQuery, HistoryReading, MEASURE_NAMES, QcSummary, RunAmendment,
    StoredValues, Test, attach_further, flagged_sql, further_bit, further_values,
};
use crate::sink::{ErrorClass, SinkError};

impl PgStore {
    /// See [`Store::recent_readings`](crate::sink::Store::recent_readings): a `LATERAL`
    /// index scan per sensor, one statement for each cluster of questions whose times
    /// lie within [`SPAN_PER_STATEMENT`] (usually all of them). Each statement is given
    /// its cluster's whole span as plain parameters too ($5, $6): the partitions
    /// outside it are pruned before the statement starts. Bounds known only per sensor
    /// prune too late — every monthly partition is opened first, which took seconds
    /// with some hundreds.
    pub(super) async fn recent(
        &self,
        queries: &[HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<HistoryReading>>, SinkError> {
        let mut out: Vec<Vec<HistoryReading>> = vec![Vec::new(); queries.len()];
        for cluster in clusters(queries) {
            let asked: Vec<&HistoryQuery> = cluster.iter().map(|&i| &queries[i]).collect();
            for (i, readings) in cluster.iter().zip(self.recent_within(&asked, limit).await?) {
                out[*i] = readings;
            }
        }
        Ok(out)
    }

    /// One statement of [`recent`](Self::recent).
    async fn recent_within(
        &self,
        queries: &[&HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<HistoryReading>>, SinkError> {
        type Row = (
            i32,
            Uuid,
            i64,
            DateTime<Utc>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            i16,
            Option<String>,
        );
        // `extra` is read only for the further measures judged.
        let wants_extra = queries.iter().any(|q| !q.further.is_empty());
        let names: Vec<&str> = queries.iter().map(|q| q.sensor.as_str()).collect();
        let froms: Vec<Option<DateTime<Utc>>> = queries.iter().map(|q| q.from).collect();
        let times: Vec<DateTime<Utc>> = queries.iter().map(|q| q.before).collect();
        let earliest = froms
            .iter()
            .try_fold(DateTime::<Utc>::MAX_UTC, |min, f| f.map(|f| min.min(f)));
        let latest = times.iter().copied().max();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT q.k::int4, r.file_id, r.line, r.ts, r.temperature, r.humidity, r.pressure, \
                    r.qc_flags, CASE WHEN $7 THEN r.extra::text END \
             FROM unnest($1::text[], $2::timestamptz[], $4::timestamptz[]) \
                 WITH ORDINALITY AS q (sensor, before, since, k) \
             CROSS JOIN LATERAL (SELECT * FROM sensor_readings s \
                 WHERE s.sensor_id = q.sensor AND s.ts < q.before \
                   AND s.ts >= coalesce(q.since, '-infinity') \
                   AND s.ts >= coalesce($5, '-infinity') AND s.ts < coalesce($6, 'infinity') \
                 ORDER BY s.ts DESC LIMIT $3) AS r \
             ORDER BY q.k, r.ts, r.line",
        )
        .bind(names)
        .bind(times)
        .bind(i64::from(limit))
        .bind(froms)
        .bind(earliest)
        .bind(latest)
        .bind(wants_extra)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading the sensors' last readings"))?;
        let mut out: Vec<Vec<HistoryReading>> = vec![Vec::new(); queries.len()];
        for (k, file_id, line, ts, t, h, p, flags, extra) in rows {
            let i = (k as usize).wrapping_sub(1);
            if let (Some(list), Some(query)) = (out.get_mut(i), queries.get(i)) {
                let further = further_values(extra.as_deref(), &query.further);
                list.push(HistoryReading {
                    file_id: file_id.hyphenated().to_string(),
                    line,
                    ts,
                    values: [t, h, p],
                    flags: flags as u16,
                    further: further.into_iter().map(|v| (v, 0)).collect(),
                });
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
        let rows: Vec<(Uuid, i64, String, i16)> = sqlx::query_as(
            "SELECT file_id, line, measure, flags FROM qc_measure_flags \
             WHERE sensor_id = $1 AND ts >= $2 AND ts < $3",
        )
        .bind(&query.sensor)
        .bind(first.ts)
        .bind(query.before)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading the sensors' last readings"))?;
        for (file_id, line, measure, flags) in rows {
            let Some(k) = query.further.iter().position(|m| m.name == measure) else {
                continue;
            };
            let file_id = file_id.hyphenated().to_string();
            if let Some(h) = list
                .iter_mut()
                .find(|h| h.line == line && h.file_id == file_id)
            {
                h.further[k].1 = flags as u8;
            }
        }
        Ok(())
    }
}

/// Stores the further measures' flags of file `file_id`'s readings (the flagged ones
/// only), then adds those `qc` finds on earlier readings (spikes, flat runs) and counts
/// them in their files' metrics: in the load's transaction, after its readings.
pub(super) async fn amend_further(
    conn: &mut sqlx::PgConnection,
    file_id: Uuid,
    qc: &QcSummary,
) -> Result<(), SinkError> {
    let mut files = Vec::new();
    let mut lines = Vec::new();
    let mut times = Vec::new();
    let mut sensors = Vec::new();
    let mut measures = Vec::new();
    let mut flags = Vec::new();
    for f in &qc.further_flagged {
        files.push(file_id);
        lines.push(f.line);
        times.push(f.ts);
        sensors.push(f.sensor.as_str());
        measures.push(f.measure.as_str());
        flags.push(i16::from(f.flags));
    }
    for a in &qc.further_amendments {
        files.push(parse_id(&a.file_id)?);
        lines.push(a.line);
        times.push(a.ts);
        sensors.push(a.sensor.as_str());
        measures.push(a.measure.as_str());
        flags.push(i16::from(a.add));
    }
    if !files.is_empty() {
        sqlx::query(
            "INSERT INTO qc_measure_flags (file_id, line, ts, sensor_id, measure, flags) \
             SELECT * FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[], $4::text[], \
                 $5::text[], $6::int2[]) \
             ON CONFLICT (file_id, line, measure) \
             DO UPDATE SET flags = qc_measure_flags.flags | excluded.flags",
        )
        .bind(files)
        .bind(lines)
        .bind(times)
        .bind(sensors)
        .bind(measures)
        .bind(flags)
        .execute(&mut *conn)
        .await
        .map_err(err("storing the quality flags of further measures"))?;
    }
    for a in &qc.further_amendments {
        add_count(conn, "qc_spike", parse_id(&a.file_id)?, &a.measure, 1).await?;
    }
    let flat = i16::from(further_bit(Test::Flat));
    for run in &qc.further_runs {
        let counts: Vec<(Uuid, i64)> = sqlx::query_as(
            "WITH u AS ( \
                INSERT INTO qc_measure_flags (file_id, line, ts, sensor_id, measure, flags) \
                SELECT file_id, line, ts, sensor_id, $5, $6 FROM sensor_readings \
                WHERE sensor_id = $1 AND ts >= $2 AND ts < $3 \
                  AND (extra ->> $5)::float8 = $4 \
                ON CONFLICT (file_id, line, measure) \
                DO UPDATE SET flags = qc_measure_flags.flags | $6 \
                WHERE qc_measure_flags.flags & $6 = 0 \
                RETURNING file_id) \
             SELECT file_id, count(*) FROM u GROUP BY file_id",
        )
        .bind(&run.sensor)
        .bind(run.from)
        .bind(run.to)
        .bind(run.value)
        .bind(&run.measure)
        .bind(flat)
        .fetch_all(&mut *conn)
        .await
        .map_err(err("flagging the readings of a flat line"))?;
        for (file, n) in counts {
            add_count(conn, "qc_flat", file, &run.measure, n as u64).await?;
        }
    }
    Ok(())
}

fn parse_id(text: &str) -> Result<Uuid, SinkError> {
    Uuid::parse_str(text).map_err(|e| SinkError {
        class: ErrorClass::Refused,
        context: "adding quality flags to earlier readings",
        detail: format!("file id {text:?}: {e}"),
    })
}

/// Adds `n` to count `counter` (a qc_* column, a constant) of a file's column.
async fn add_count(
    conn: &mut sqlx::PgConnection,
    counter: &'static str,
    file_id: Uuid,
    column: &str,
    n: u64,
) -> Result<(), SinkError> {
    let sql = format!(
        "UPDATE file_metrics SET {counter} = {counter} + $1 \
         WHERE file_id = $2 AND column_name = $3"
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

/// The widest span of time one history statement covers: two monthly partitions or
/// three, whatever the files' times.
const SPAN_PER_STATEMENT: chrono::TimeDelta = chrono::TimeDelta::days(40);

/// The questions (their indexes) in clusters by time, each within
/// [`SPAN_PER_STATEMENT`] from its earliest `from` to its latest `before`; a question
/// without `from` (no lower bound) goes alone.
fn clusters(queries: &[HistoryQuery]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..queries.len()).collect();
    order.sort_by_key(|&i| queries[i].before);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open: Option<(DateTime<Utc>, Vec<usize>)> = None;
    for i in order {
        let q = &queries[i];
        let Some(from) = q.from else {
            out.push(vec![i]);
            continue;
        };
        match &mut open {
            Some((earliest, members)) if q.before - (*earliest).min(from) <= SPAN_PER_STATEMENT => {
                *earliest = (*earliest).min(from);
                members.push(i);
            }
            _ => {
                if let Some((_, members)) = open.replace((from, vec![i])) {
                    out.push(members);
                }
            }
        }
    }
    out.extend(open.map(|(_, members)| members));
    out
}

/// One row of [`flagged_sql`]: the reading, then its predecessor's and successor's
/// time and values.
type FlaggedRow = (
    Uuid,
    i64,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i16,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<DateTime<Utc>>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

impl PgStore {
    /// See [`LedgerQueries::flagged_readings`](crate::sink::LedgerQueries::flagged_readings).
    pub(super) async fn flagged(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FlaggedReading>, SinkError> {
        let sql = flagged_sql("$1", "$2", "$3");
        let rows: Vec<FlaggedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sensor)
            .bind(since)
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
        let mut out: Vec<FlaggedReading> = rows
            .into_iter()
            .map(|r| {
                FlaggedReading::new(
                    r.0.hyphenated().to_string(),
                    r.1,
                    r.6 as u16,
                    StoredValues {
                        ts: r.2,
                        temperature: r.3,
                        humidity: r.4,
                        pressure: r.5,
                    },
                    values(r.7, r.8, r.9, r.10),
                    values(r.11, r.12, r.13, r.14),
                )
            })
            .collect();
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let rows: Vec<(Uuid, i64, String, i16)> = sqlx::query_as(
                "SELECT file_id, line, measure, flags FROM qc_measure_flags \
                 WHERE sensor_id = $1 AND ts >= $2 AND ts <= $3",
            )
            .bind(sensor)
            .bind(first.reading.ts)
            .bind(last.reading.ts)
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading flagged readings"))?;
            let rows = rows
                .into_iter()
                .map(|(f, l, m, b)| (f.hyphenated().to_string(), l, m, b as u8));
            attach_further(&mut out, rows.collect());
        }
        Ok(out)
    }
}

/// The amendments of `qc` as arrays for `unnest`: the readings (file, line, time,
/// flags to add) and the metrics (file, column, spikes to add).
pub(super) struct Amendments {
    pub files: Vec<Uuid>,
    pub lines: Vec<i64>,
    pub times: Vec<DateTime<Utc>>,
    pub add: Vec<i16>,
    pub metric_files: Vec<Uuid>,
    pub metric_columns: Vec<&'static str>,
    pub metric_spikes: Vec<i64>,
}

impl Amendments {
    pub(super) fn of(qc: &QcSummary) -> Result<Self, SinkError> {
        let id = |text: &str| {
            Uuid::parse_str(text).map_err(|e| SinkError {
                class: ErrorClass::Refused,
                context: "adding quality flags to earlier readings",
                detail: format!("file id {text:?}: {e}"),
            })
        };
        let mut a = Self {
            files: Vec::new(),
            lines: Vec::new(),
            times: Vec::new(),
            add: Vec::new(),
            metric_files: Vec::new(),
            metric_columns: Vec::new(),
            metric_spikes: Vec::new(),
        };
        for x in &qc.amendments {
            a.files.push(id(&x.file_id)?);
            a.lines.push(x.line);
            a.times.push(x.ts);
            a.add.push(x.add as i16);
        }
        for (file, column, n) in qc.amended_spikes() {
            a.metric_files.push(id(file)?);
            a.metric_columns.push(column);
            a.metric_spikes.push(n as i64);
        }
        Ok(a)
    }
}

/// Or-s the flags into the stored readings (the time lets a partitioned table prune).
pub(super) const AMEND_READINGS: &str = "UPDATE sensor_readings s SET qc_flags = s.qc_flags | a.add \
    FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[], $4::int2[]) AS a (f, l, t, add) \
    WHERE s.file_id = a.f AND s.line = a.l AND s.ts = a.t";

/// Adds the spikes to the earlier files' metrics.
pub(super) const AMEND_METRICS: &str = "UPDATE file_metrics m SET qc_spike = m.qc_spike + a.n \
    FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS a (f, c, n) \
    WHERE m.file_id = a.f AND m.column_name = a.c";

/// Flags the readings of the flat runs of one measure (`{column}`: one of the three
/// names, never input) and counts them in their files' metrics; `$6`, `$7` span every
/// run, so that the partitions outside are pruned.
const AMEND_RUNS: &str = "WITH u AS ( \
    UPDATE sensor_readings s SET qc_flags = s.qc_flags | a.add \
    FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::float8[], $5::int2[]) \
        AS a (sensor, f, t, v, add) \
    WHERE s.sensor_id = a.sensor AND s.ts >= a.f AND s.ts < a.t AND s.{column} = a.v \
      AND s.qc_flags & a.add = 0 AND s.ts >= $6 AND s.ts < $7 \
    RETURNING s.file_id) \
UPDATE file_metrics m SET qc_flat = m.qc_flat + c.n \
FROM (SELECT file_id, count(*) AS n FROM u GROUP BY file_id) AS c \
WHERE m.file_id = c.file_id AND m.column_name = '{column}'";

/// Flags the readings of `qc`'s flat runs (this file's too: its readings are written
/// first), one statement per measure.
async fn amend_runs(conn: &mut sqlx::PgConnection, qc: &QcSummary) -> Result<(), SinkError> {
    for (m, column) in MEASURE_NAMES.iter().enumerate() {
        let runs: Vec<&RunAmendment> = qc.runs.iter().filter(|r| r.measure == m).collect();
        let (Some(from), Some(to)) = (
            runs.iter().map(|r| r.from).min(),
            runs.iter().map(|r| r.to).max(),
        ) else {
            continue;
        };
        sqlx::query(sqlx::AssertSqlSafe(AMEND_RUNS.replace("{column}", column)))
            .bind(runs.iter().map(|r| r.sensor.as_str()).collect::<Vec<_>>())
            .bind(runs.iter().map(|r| r.from).collect::<Vec<_>>())
            .bind(runs.iter().map(|r| r.to).collect::<Vec<_>>())
            .bind(runs.iter().map(|r| r.value).collect::<Vec<_>>())
            .bind(runs.iter().map(|r| r.add() as i16).collect::<Vec<_>>())
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await
            .map_err(err("flagging the readings of a flat line"))?;
    }
    Ok(())
}

/// Applies `qc`'s amendments inside the load's transaction.
pub(super) async fn amend(conn: &mut sqlx::PgConnection, qc: &QcSummary) -> Result<(), SinkError> {
    amend_runs(conn, qc).await?;
    if qc.amendments.is_empty() {
        return Ok(());
    }
    let a = Amendments::of(qc)?;
    sqlx::query(AMEND_READINGS)
        .bind(a.files)
        .bind(a.lines)
        .bind(a.times)
        .bind(a.add)
        .execute(&mut *conn)
        .await
        .map_err(err("adding quality flags to earlier readings"))?;
    sqlx::query(AMEND_METRICS)
        .bind(a.metric_files)
        .bind(a.metric_columns)
        .bind(a.metric_spikes)
        .execute(&mut *conn)
        .await
        .map_err(err("adding quality flags to earlier readings"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(from_days: Option<i64>, before_days: i64) -> HistoryQuery {
        let day = |d| DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::days(d);
        HistoryQuery {
            sensor: "s".into(),
            from: from_days.map(day),
            before: day(before_days),
            further: Default::default(),
        }
    }

    /// Questions close in time share a statement; one years away, or one without a
    /// lower bound, gets its own, so that no statement spans many partitions.
    #[test]
    fn history_questions_cluster_by_time() {
        let queries = [
            ask(Some(100), 107),
            ask(Some(3_000), 3_007),
            ask(Some(101), 108),
            ask(None, 105),
            ask(Some(130), 137),
            ask(Some(139), 146),
        ];
        let mut got = clusters(&queries);
        got.sort();
        assert_eq!(got, vec![vec![0, 2, 4], vec![1], vec![3], vec![5]]);
        assert!(clusters(&[]).is_empty());
    }
}
