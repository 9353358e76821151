//! Followed files on PostgreSQL (`sink/follow.rs`): the position an increment commits
//! with its ledger row, read back, and the stored readings an increment is compared
//! with.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{PgStore, err};
use crate::sink::dashboard::FollowedSummary;
use crate::sink::follow::moved_meanwhile;
use crate::sink::ledger::ledger_status;
use crate::sink::{FollowMark, FollowedFile, ReadingKey, SinkError, StoredReading};

const COLUMNS: &str = "file_name, device, inode, committed_offset, committed_lines, \
     header_hash, tail_hash, last_growth, ledger_id";

type Row = (
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    DateTime<Utc>,
    Uuid,
);

/// Writes `mark` on `conn`, inside the transaction of its ledger row: only while the
/// stored position is still the one the increment started from (a concurrent writer
/// waits on the row, then finds it moved).
pub(super) async fn write_mark(
    conn: &mut PgConnection,
    mark: &FollowMark,
) -> Result<(), SinkError> {
    let p = &mark.position;
    let written = sqlx::query(
        "INSERT INTO followed_files (file_name, device, inode, committed_offset, \
         committed_lines, header_hash, tail_hash, last_growth, ledger_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (file_name) DO UPDATE SET device = excluded.device, \
         inode = excluded.inode, committed_offset = excluded.committed_offset, \
         committed_lines = excluded.committed_lines, header_hash = excluded.header_hash, \
         tail_hash = excluded.tail_hash, last_growth = excluded.last_growth, \
         committed_at = clock_timestamp(), ledger_id = excluded.ledger_id \
         WHERE followed_files.ledger_id IS NOT DISTINCT FROM $10",
    )
    .bind(&p.file_name)
    .bind(p.device as i64)
    .bind(p.inode as i64)
    .bind(p.offset as i64)
    .bind(p.lines as i64)
    .bind(&p.header_hash)
    .bind(&p.tail_hash)
    .bind(p.grown_at)
    .bind(p.ledger_id)
    .bind(mark.previous)
    .execute(conn)
    .await
    .map_err(err("advancing a followed file's offset"))?;
    if written.rows_affected() != 1 {
        return Err(moved_meanwhile());
    }
    Ok(())
}

fn followed(row: Row) -> FollowedFile {
    let (file_name, device, inode, offset, lines, header_hash, tail_hash, grown_at, ledger_id) =
        row;
    FollowedFile {
        file_name,
        device: device as u64,
        inode: inode as u64,
        offset: offset as u64,
        lines: lines as u64,
        header_hash,
        tail_hash,
        grown_at,
        ledger_id,
    }
}

impl PgStore {
    pub(super) async fn followed_row(
        &self,
        file_name: &str,
    ) -> Result<Option<FollowedFile>, SinkError> {
        let sql = format!("SELECT {COLUMNS} FROM followed_files WHERE file_name = $1");
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(file_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a followed file's offset"))?;
        Ok(row.map(followed))
    }

    pub(super) async fn followed_rows(&self) -> Result<Vec<FollowedFile>, SinkError> {
        let sql = format!("SELECT {COLUMNS} FROM followed_files ORDER BY file_name");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing followed files"))?;
        Ok(rows.into_iter().map(followed).collect())
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
            DateTime<Utc>,
            Uuid,
            Option<String>,
        );
        let rows: Vec<WithStatus> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(err("listing followed files"))?;
        rows.into_iter()
            .map(|(a, b, c, d, e, f, g, h, i, status)| {
                Ok(FollowedSummary {
                    position: followed((a, b, c, d, e, f, g, h, i)),
                    last_status: status.as_deref().map(ledger_status).transpose()?,
                })
            })
            .collect()
    }

    /// Deletes the position of `file_name` while it is still increment `ledger_id`'s.
    pub(super) async fn forget(
        &self,
        file_name: &str,
        ledger_id: uuid::Uuid,
    ) -> Result<(), SinkError> {
        let done =
            sqlx::query("DELETE FROM followed_files WHERE file_name = $1 AND ledger_id = $2")
                .bind(file_name)
                .bind(ledger_id)
                .execute(&self.pool)
                .await
                .map_err(err("forgetting a followed file"))?;
        if done.rows_affected() != 1 {
            return Err(moved_meanwhile());
        }
        Ok(())
    }

    /// Whether a reading is stored for a sensor within its span: one statement, an
    /// index range probe per span.
    pub(super) async fn any_within(
        &self,
        spans: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<bool, SinkError> {
        let sensors: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
        let firsts: Vec<DateTime<Utc>> = spans.iter().map(|s| s.1).collect();
        let lasts: Vec<DateTime<Utc>> = spans.iter().map(|s| s.2).collect();
        let (found,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) \
             AS k (sensor_id, first_ts, last_ts) WHERE EXISTS (SELECT 1 FROM sensor_readings AS r \
             WHERE r.sensor_id = k.sensor_id AND r.ts >= k.first_ts AND r.ts <= k.last_ts))",
        )
        .bind(&sensors)
        .bind(&firsts)
        .bind(&lasts)
        .fetch_one(&self.pool)
        .await
        .map_err(err("looking for stored readings"))?;
        Ok(found)
    }

    /// One statement for all the keys: an index search on (sensor_id, ts) each.
    pub(super) async fn stored(
        &self,
        keys: &[ReadingKey],
    ) -> Result<Vec<StoredReading>, SinkError> {
        let sensors: Vec<&str> = keys.iter().map(|k| k.sensor_id.as_str()).collect();
        let times: Vec<DateTime<Utc>> = keys.iter().map(|k| k.ts).collect();
        type Stored = (
            String,
            DateTime<Utc>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<String>,
        );
        let rows: Vec<Stored> = sqlx::query_as(
            "SELECT r.sensor_id, r.ts, r.temperature, r.humidity, r.pressure, r.extra::text \
             FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::timestamptz[])) AS k (sensor_id, ts) \
             JOIN sensor_readings AS r ON r.sensor_id = k.sensor_id AND r.ts = k.ts",
        )
        .bind(&sensors)
        .bind(&times)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading stored readings"))?;
        Ok(rows
            .into_iter()
            .map(
                |(sensor_id, ts, temperature, humidity, pressure, extra)| StoredReading {
                    key: ReadingKey { sensor_id, ts },
                    temperature,
                    humidity,
                    pressure,
                    extra,
                },
            )
            .collect())
    }
}
