//! Followed files on MariaDB/MySQL (`sink/follow.rs`): the position an increment commits
//! with its ledger row, in the same InnoDB transaction, read back, and the stored
//! readings an increment is compared with.
//!
//! InnoDB has no `ON CONFLICT … DO UPDATE … WHERE`, so the compare-and-set is one of two
//! statements: the first increment of a file inserts its row (a concurrent first
//! increment waits on the primary key, then fails on it), a later one updates the row
//! only while it still names the increment it started from (a concurrent one waits on
//! the row lock, then reads the committed row at READ COMMITTED and matches nothing).

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use super::{MysqlStore, dt, err, is_unique_violation, parse_id};
use crate::sink::dashboard::FollowedSummary;
use crate::sink::follow::moved_meanwhile;
use crate::sink::{FollowMark, FollowedFile, ReadingKey, SinkError, StoredReading, ledger_status};

/// Keys per statement: a range search of the `(sensor_id, ts)` index each.
const KEYS_PER_STATEMENT: usize = 500;

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
    String,
);

/// A stored reading: sensor, time, the three measures and `extra`.
type StoredRow = (
    String,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

/// Writes `mark` on `conn`, inside the transaction of its ledger row: only while the
/// stored position is still the one the increment started from.
pub(super) async fn write_mark(
    conn: &mut MySqlConnection,
    mark: &FollowMark,
) -> Result<(), SinkError> {
    let p = &mark.position;
    let ledger_id = p.ledger_id.hyphenated().to_string();
    let written = match mark.previous {
        None => {
            let inserted = sqlx::query(
                "INSERT INTO followed_files (file_name, device, inode, committed_offset, \
                 committed_lines, header_hash, tail_hash, last_growth, committed_at, \
                 ledger_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&p.file_name)
            .bind(p.device as i64)
            .bind(p.inode as i64)
            .bind(p.offset as i64)
            .bind(p.lines as i64)
            .bind(&p.header_hash)
            .bind(&p.tail_hash)
            .bind(dt(p.grown_at))
            .bind(dt(Utc::now()))
            .bind(&ledger_id)
            .execute(conn)
            .await;
            match inserted {
                // Another attempt followed the file first.
                Err(e) if is_unique_violation(&e) => return Err(moved_meanwhile()),
                other => other,
            }
        }
        Some(previous) => {
            sqlx::query(
                "UPDATE followed_files SET device = ?, inode = ?, committed_offset = ?, \
                 committed_lines = ?, header_hash = ?, tail_hash = ?, last_growth = ?, \
                 committed_at = ?, ledger_id = ? WHERE file_name = ? AND ledger_id = ?",
            )
            .bind(p.device as i64)
            .bind(p.inode as i64)
            .bind(p.offset as i64)
            .bind(p.lines as i64)
            .bind(&p.header_hash)
            .bind(&p.tail_hash)
            .bind(dt(p.grown_at))
            .bind(dt(Utc::now()))
            .bind(&ledger_id)
            .bind(&p.file_name)
            .bind(previous.hyphenated().to_string())
            .execute(conn)
            .await
        }
    }
    .map_err(err("advancing a followed file's offset"))?;
    // The new ledger id differs from the previous one, so a matched row is a changed
    // row whether or not the server counts found rows.
    if written.rows_affected() != 1 {
        return Err(moved_meanwhile());
    }
    Ok(())
}

fn followed(row: Row) -> Result<FollowedFile, SinkError> {
    let (file_name, device, inode, offset, lines, header_hash, tail_hash, grown_at, id) = row;
    Ok(FollowedFile {
        file_name,
        device: device as u64,
        inode: inode as u64,
        offset: offset as u64,
        lines: lines as u64,
        header_hash,
        tail_hash,
        grown_at,
        ledger_id: parse_id(id)?,
    })
}

impl MysqlStore {
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

    /// Deletes the position of `file_name` while it is still increment `ledger_id`'s.
    pub(super) async fn forget(
        &self,
        file_name: &str,
        ledger_id: uuid::Uuid,
    ) -> Result<(), SinkError> {
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

    /// Whether a reading is stored for a sensor within its span: one statement of
    /// `EXISTS` range probes of the `(sensor_id, ts)` index, [`KEYS_PER_STATEMENT`]
    /// spans at a time.
    pub(super) async fn any_within(
        &self,
        spans: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<bool, SinkError> {
        for chunk in spans.chunks(KEYS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<MySql>::new("SELECT EXISTS (SELECT 1 FROM sensor_readings WHERE ");
            for (i, (sensor, first, last)) in chunk.iter().enumerate() {
                q.push(if i == 0 {
                    "(sensor_id = "
                } else {
                    " OR (sensor_id = "
                });
                q.push_bind(sensor.as_str());
                q.push(" AND ts >= ");
                q.push_bind(dt(*first));
                q.push(" AND ts <= ");
                q.push_bind(dt(*last));
                q.push(")");
            }
            q.push(")");
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

    /// One statement per [`KEYS_PER_STATEMENT`] keys: `(sensor_id = ? AND ts = ?) OR …`,
    /// which MariaDB and MySQL both turn into point ranges of the `(sensor_id, ts)` index.
    pub(super) async fn stored(
        &self,
        keys: &[ReadingKey],
    ) -> Result<Vec<StoredReading>, SinkError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut q = QueryBuilder::<MySql>::new(
                "SELECT sensor_id, ts, temperature, humidity, pressure, extra \
                 FROM sensor_readings WHERE ",
            );
            for (i, k) in chunk.iter().enumerate() {
                q.push(if i == 0 {
                    "(sensor_id = "
                } else {
                    " OR (sensor_id = "
                });
                q.push_bind(k.sensor_id.as_str());
                q.push(" AND ts = ");
                q.push_bind(dt(k.ts));
                q.push(")");
            }
            let rows: Vec<StoredRow> = q
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(err("reading stored readings"))?;
            out.extend(rows.into_iter().map(
                |(sensor_id, ts, temperature, humidity, pressure, extra)| StoredReading {
                    key: ReadingKey { sensor_id, ts },
                    temperature,
                    humidity,
                    pressure,
                    extra,
                },
            ));
        }
        Ok(out)
    }
}
