//! Readings into InnoDB: prepared multi-row `INSERT`s inside the caller's transaction.
//!
//! sqlx's MySQL driver has no `LOAD DATA LOCAL INFILE`, and one statement per row is
//! bound by round trips; a statement of [`ROWS_PER_INSERT`] tuples sends a batch in one
//! round trip. Statements are prepared once per shape and cached by the connection: a
//! batch is cut into full statements and a remainder in powers of two, so a connection
//! holds at most ten shapes whatever the batch sizes.
//!
//! Measured against text multi-row INSERTs of 1k-4k rows (slower) and LOAD DATA LOCAL
//! INFILE from a stream (faster, through a second driver): `bench/mariadb-load/`,
//! docs/mariadb.md.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use super::{dt, err};
use crate::enrich::EnrichedRow;
use crate::sink::SinkError;

/// Tuples per full statement (14 parameters each: 7,168 of MySQL's 65,535).
pub(super) const ROWS_PER_INSERT: usize = 512;

const INSERT: &str = "INSERT INTO sensor_readings (file_id, line, ts, sensor_id, temperature, \
     humidity, pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, \
     ingested_at, qc_flags) ";

/// Inserts `rows` of file `file_id` in the open transaction on `conn`.
pub(super) async fn insert_readings(
    conn: &mut MySqlConnection,
    file_id: &str,
    ingested_at: DateTime<Utc>,
    rows: &[EnrichedRow],
) -> Result<u64, SinkError> {
    insert_files_readings(conn, ingested_at, &[(file_id, rows)]).await
}

/// [`insert_readings`] for several files at once (a group commit): tuples of different
/// files share statements.
pub(super) async fn insert_files_readings(
    conn: &mut MySqlConnection,
    ingested_at: DateTime<Utc>,
    files: &[(&str, &[EnrichedRow])],
) -> Result<u64, SinkError> {
    let rows: Vec<(&str, &EnrichedRow)> = files
        .iter()
        .flat_map(|(id, rows)| rows.iter().map(move |r| (*id, r)))
        .collect();
    let mut rest = rows.as_slice();
    while !rest.is_empty() {
        let n = statement_rows(rest.len());
        let (chunk, tail) = rest.split_at(n);
        insert_chunk(conn, ingested_at, chunk).await?;
        rest = tail;
    }
    Ok(rows.len() as u64)
}

/// Tuples in the next statement for `left` rows: a full statement, or the largest power
/// of two that fits.
fn statement_rows(left: usize) -> usize {
    if left >= ROWS_PER_INSERT {
        ROWS_PER_INSERT
    } else {
        1 << left.ilog2()
    }
}

async fn insert_chunk(
    conn: &mut MySqlConnection,
    ingested_at: DateTime<Utc>,
    chunk: &[(&str, &EnrichedRow)],
) -> Result<(), SinkError> {
    let mut q = QueryBuilder::<MySql>::new(INSERT);
    q.push_values(chunk, |mut b, (file_id, row)| {
        let r = &row.reading;
        b.push_bind(*file_id)
            .push_bind(r.line as i64)
            .push_bind(dt(r.timestamp))
            .push_bind(r.sensor_id.as_str())
            .push_bind(r.temperature)
            .push_bind(r.humidity)
            .push_bind(r.pressure)
            .push_bind(row.temperature_k)
            .push_bind(row.temperature_norm)
            .push_bind(row.humidity_norm)
            .push_bind(row.pressure_norm)
            .push_bind(r.extra.as_deref())
            .push_bind(dt(ingested_at))
            .push_bind(i32::from(row.qc_flags));
    });
    q.build()
        .execute(conn)
        .await
        .map_err(err("inserting readings"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_few_statement_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for len in 1..5000 {
            let mut left = len;
            while left > 0 {
                let n = statement_rows(left);
                assert!(n <= left && n > 0);
                shapes.insert(n);
                left -= n;
            }
        }
        assert_eq!(shapes.len(), 10, "{shapes:?}");
    }
}
