//! Claims on files in the `ingest_claims` table (see [`crate::sink::claim`]): leases on
//! the server's clock, as on PostgreSQL.
//!
//! A claim is one transaction of two statements: an `INSERT … ON DUPLICATE KEY UPDATE`
//! that takes each key that is free, expired or this agent's already (InnoDB locks the
//! rows it inserts or updates until the commit), then a read of which keys are now
//! this agent's. MySQL's `UPDATE` and `INSERT` return no rows, so the answer cannot come
//! from the first statement. Keys are written in sorted order, so two agents claiming
//! overlapping batches lock them in the same order.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use sqlx::{Connection, MySql, QueryBuilder};

use super::{MysqlStore, err};
use crate::sink::claim::LEASE;
use crate::sink::{ClaimKey, Claims, SinkError};

/// Once per this many keys claimed, a claim call also deletes claims expired for an hour.
const SWEEP_EVERY: u32 = 1024;

/// `(file_name, inode, size_bytes, mtime_ns, ctime_ns) IN ((…), …)` for `keys`.
fn push_keys(q: &mut QueryBuilder<MySql>, keys: &[&ClaimKey]) {
    q.push("(file_name, inode, size_bytes, mtime_ns, ctime_ns) IN (");
    for (i, k) in keys.iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        let mut t = q.separated(", ");
        t.push_bind(k.file_name.clone())
            .push_bind(k.inode as i64)
            .push_bind(k.size as i64)
            .push_bind(k.mtime_ns)
            .push_bind(k.ctime_ns);
        q.push(")");
    }
    q.push(")");
}

/// The lease as the microseconds of an SQL `INTERVAL` (a constant, never input).
fn lease_micros() -> u128 {
    LEASE.as_micros()
}

#[async_trait]
impl Claims for MysqlStore {
    async fn claim(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let n = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        let before = u64::from(self.claims_made.fetch_add(n, Ordering::Relaxed));
        if before.next_multiple_of(SWEEP_EVERY.into()) < before + u64::from(n) {
            self.sweep_claims().await?;
        }
        let mut sorted: Vec<&ClaimKey> = keys.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.file_name, a.inode, a.size, a.mtime_ns, a.ctime_ns).cmp(&(
                &b.file_name,
                b.inode,
                b.size,
                b.mtime_ns,
                b.ctime_ns,
            ))
        });
        sorted.dedup();
        let lease = lease_micros();
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO ingest_claims (file_name, inode, size_bytes, mtime_ns, ctime_ns, agent, \
             claimed_at, expires_at) ",
        );
        insert.push_values(&sorted, |mut b, k| {
            b.push_bind(k.file_name.clone())
                .push_bind(k.inode as i64)
                .push_bind(k.size as i64)
                .push_bind(k.mtime_ns)
                .push_bind(k.ctime_ns)
                .push_bind(self.agent.clone())
                .push_unseparated(", NOW(6)")
                .push_unseparated(format!(", NOW(6) + INTERVAL {lease} MICROSECOND"));
        });
        // Assignments apply left to right: `agent` first, so the times follow it only
        // where this agent now holds the claim.
        insert.push(
            " ON DUPLICATE KEY UPDATE \
             agent = IF(expires_at < NOW(6), VALUES(agent), agent), \
             claimed_at = IF(agent = VALUES(agent), VALUES(claimed_at), claimed_at), \
             expires_at = IF(agent = VALUES(agent), VALUES(expires_at), expires_at)",
        );
        let mut mine = QueryBuilder::<MySql>::new(
            "SELECT file_name, inode, size_bytes, mtime_ns, ctime_ns \
             FROM ingest_claims WHERE agent = ",
        );
        mine.push_bind(self.agent.clone());
        mine.push(" AND ");
        push_keys(&mut mine, &sorted);

        let mut conn = self.pool.acquire().await.map_err(err("claiming files"))?;
        let mut tx = conn.begin().await.map_err(err("claiming files"))?;
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(err("claiming files"))?;
        let won: Vec<(String, i64, i64, i64, i64)> = mine
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(err("claiming files"))?;
        tx.commit().await.map_err(err("claiming files"))?;
        Ok(keys
            .iter()
            .map(|k| {
                won.iter().any(|(name, inode, size, mtime, ctime)| {
                    *name == k.file_name
                        && *inode == k.inode as i64
                        && *size == k.size as i64
                        && *mtime == k.mtime_ns
                        && *ctime == k.ctime_ns
                })
            })
            .collect())
    }

    async fn renew(&self, key: &ClaimKey) -> Result<bool, SinkError> {
        let renewed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ingest_claims SET expires_at = NOW(6) + INTERVAL {} MICROSECOND \
             WHERE file_name = ? AND inode = ? AND size_bytes = ? AND mtime_ns = ? \
             AND ctime_ns = ? AND agent = ?",
            lease_micros()
        )))
        .bind(&key.file_name)
        .bind(key.inode as i64)
        .bind(key.size as i64)
        .bind(key.mtime_ns)
        .bind(key.ctime_ns)
        .bind(&self.agent)
        .execute(&self.pool)
        .await
        .map_err(err("renewing a claim"))?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release(&self, keys: &[ClaimKey]) -> Result<(), SinkError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&ClaimKey> = keys.iter().collect();
        let mut delete = QueryBuilder::<MySql>::new("DELETE FROM ingest_claims WHERE agent = ");
        delete.push_bind(self.agent.clone());
        delete.push(" AND ");
        push_keys(&mut delete, &keys);
        delete
            .build()
            .execute(&self.pool)
            .await
            .map_err(err("releasing claims"))?;
        Ok(())
    }
}

impl MysqlStore {
    /// Deletes claims that expired more than an hour ago.
    async fn sweep_claims(&self) -> Result<(), SinkError> {
        sqlx::query("DELETE FROM ingest_claims WHERE expires_at < NOW(6) - INTERVAL 1 HOUR")
            .execute(&self.pool)
            .await
            .map_err(err("deleting expired claims"))?;
        Ok(())
    }
}
