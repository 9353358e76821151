//! Followed files on SQLite (`sink/follow.rs`): the position an increment commits with
//! its ledger row, read back, and the stored readings an increment is compared with.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{SqliteStore, err, parse_id, parse_time};
use crate::sink::dashboard::FollowedSummary;
use crate::sink::follow::moved_meanwhile;
use crate::sink::ledger::ledger_status;
use crate::sink::{FollowMark, FollowedFile, ReadingKey, SinkError, StoredReading};
use crate::timestamp::format_utc;

/// Keys per statement: two parameters each, well under SQLite's limit.
const KEYS_PER_STATEMENT: usize = 500;

const COLUMNS: &str = "file_name, device, inode, committed_offset, committed_lines, \
     header_hash, tail_hash, last_growth, ledger_id";

type Row = (String, i64, i64, i64, i64, String, String, String, String);

/// A stored reading: sensor, time, the three measures and `extra`.
type StoredRow = (
    String,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

/// Writes `mark` on `conn`, inside the transaction of its ledger row: only while the
/// stored position is still the one the increment started from.
pub(super) async fn write_mark(
    conn: &mut SqliteConnection,
    mark: &FollowMark,
) -> Result<(), SinkError> {
    let p = &mark.position;
    let written = sqlx::query(
        "INSERT INTO followed_files (file_name, device, inode, committed_offset, \
         committed_lines, header_hash, tail_hash, last_growth, committed_at, ledger_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (file_name) DO UPDATE SET device = excluded.device, \
         inode = excluded.inode, committed_offset = excluded.committed_offset, \
         committed_lines = excluded.committed_lines, header_hash = excluded.header_hash, \
         tail_hash = excluded.tail_hash, last_growth = excluded.last_growth, \
         committed_at = excluded.committed_at, ledger_id = excluded.ledger_id \
         WHERE followed_files.ledger_id = ?",
    )
    .bind(&p.file_name)
    .bind(p.device as i64)
    .bind(p.inode as i64)
    .bind(p.offset as i64)
    .bind(p.lines as i64)
    .bind(&p.header_hash)
    .bind(&p.tail_hash)
    .bind(format_utc(p.grown_at))
    .bind(format_utc(chrono::Utc::now()))
    .bind(p.ledger_id.hyphenated().to_string())
    .bind(mark.previous.map(|id| id.hyphenated().to_string()))
    .execute(conn)
    .await
    .map_err(err("advancing a followed file's offset"))?;
    if written.rows_affected() != 1 {
        return Err(moved_meanwhile());
    }
    Ok(())
}

fn followed(row: Row) -> Result<FollowedFile, SinkError> {
    let (file_name, device, inode, offset, lines, header_hash, tail_hash, grown, id) = row;
    Ok(FollowedFile {
        file_name,
        device: device as u64,
        inode: inode as u64,
        offset: offset as u64,
        lines: lines as u64,
        header_hash,
        tail_hash,
        grown_at: parse_time(grown)?,
        ledger_id: parse_id(id)?,
    })
}

impl SqliteStore {
    pub(super) async fn followed_row(
        &self,
        file_name: &str,
    ) -> Result<Option<FollowedFile>, SinkError> {
        let sql = format!("SELECT {COLUMNS} FROM followed_files WHERE file_name = ?");
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(file_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a followed file's offset"))?;
        row.map(followed).transpose()
    }

    pub(super) async fn followed_rows(&self) -> Result<Vec<FollowedFile>, SinkError> {
        let sql = format!("SELECT {COLUMNS} FROM followed_files ORDER BY file_name");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing followed files"))?;
        rows.into_iter().map(followed).collect()
    }

    /// Deletes the position of `file_name` while it is still increment `ledger_id`'s.
    pub(super) async fn forget(
        &self,
        file_name: &str,
        ledger_id: uuid::Uuid,
    ) -> Result<(), SinkError> {
        let _writing = self.writer.lock().await;
        let done = sqlx::query("DELETE FROM followed_files WHERE file_name = ? AND ledger_id = ?")
            .bind(file_name)
            .bind(ledger_id.hyphenated().to_string())
            .execute(&self.pool)
            .await
            .map_err(err("forgetting a followed file"))?;
        if done.rows_affected() != 1 {
            return Err(moved_meanwhile());
        }
        Ok(())
    }

    /// Whether a reading is stored for a sensor within its span: one index range probe
    /// each, a statement per [`KEYS_PER_STATEMENT`] spans.
    pub(super) async fn any_within(
        &self,
        spans: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<bool, SinkError> {
        for chunk in spans.chunks(KEYS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT ");
            let mut probes = q.separated(" OR ");
            for (sensor, first, last) in chunk {
                probes.push("EXISTS (SELECT 1 FROM sensor_readings WHERE sensor_id = ");
                probes.push_bind_unseparated(sensor.clone());
                probes.push_unseparated(" AND ts >= ");
                probes.push_bind_unseparated(format_utc(*first));
                probes.push_unseparated(" AND ts <= ");
                probes.push_bind_unseparated(format_utc(*last));
                probes.push_unseparated(")");
            }
            let (found,): (bool,) = q
                .build_query_as()
                .fetch_one(&self.pool)
                .await
                .map_err(err("looking for stored readings"))?;
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every followed file with the ledger status of its last increment (the dashboard).
    pub(super) async fn followed_with_status(&self) -> Result<Vec<FollowedSummary>, SinkError> {
        let sql = format!(
            "SELECT f.*, (SELECT status FROM ingest_files i WHERE i.id = f.ledger_id) \
             FROM (SELECT {COLUMNS} FROM followed_files) AS f ORDER BY f.file_name"
        );
        type WithStatus = (
            String,
            i64,
            i64,
            i64,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<WithStatus> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing followed files"))?;
        rows.into_iter()
            .map(|(a, b, c, d, e, f, g, h, i, status)| {
                Ok(FollowedSummary {
                    position: followed((a, b, c, d, e, f, g, h, i))?,
                    last_status: status.as_deref().map(ledger_status).transpose()?,
                })
            })
            .collect()
    }

    pub(super) async fn stored(
        &self,
        keys: &[ReadingKey],
    ) -> Result<Vec<StoredReading>, SinkError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT sensor_id, ts, temperature, humidity, pressure, extra \
                 FROM sensor_readings WHERE (sensor_id, ts) IN (VALUES ",
            );
            let mut values = q.separated(", ");
            for k in chunk {
                values.push("(");
                values.push_bind_unseparated(k.sensor_id.clone());
                values.push_unseparated(", ");
                values.push_bind_unseparated(format_utc(k.ts));
                values.push_unseparated(")");
            }
            q.push(")");
            let rows: Vec<StoredRow> = q
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(err("reading stored readings"))?;
            for (sensor_id, ts, temperature, humidity, pressure, extra) in rows {
                out.push(StoredReading {
                    key: ReadingKey {
                        sensor_id,
                        ts: parse_time(ts)?,
                    },
                    temperature,
                    humidity,
                    pressure,
                    extra,
                });
            }
        }
        Ok(out)
    }
}
