//! Claims on files in the `ingest_claims` table (see [`crate::sink::claim`]): one
//! statement per call, times on the server's clock.

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use super::{PgStore, err};
use crate::sink::claim::LEASE;
use crate::sink::{ClaimKey, Claims, SinkError};

/// Claims expired this long ago are deleted (they only guard against agents that stall
/// for longer than that between listing a file and claiming it).
const KEEP_EXPIRED: &str = "1 hour";

/// One claim call in this many also deletes long-expired claims.
const SWEEP_EVERY: u32 = 1024;

/// Takes each key that is free, expired, or this agent's already; returns the keys now
/// this agent's. `$6` is the agent, `$7` the lease in milliseconds.
///
/// Committed without waiting for the WAL flush (`synchronous_commit = off` for this
/// statement's transaction only), visible to every agent at once all the same: small
/// files committed in groups would otherwise pay one flush per file for their claims
/// alone. A server crash within ~0.6 s may forget a claim; then another agent may read
/// the file too, and the ledger's unique index on the content still lets one load it.
const CLAIM: &str = "\
    WITH no_wait AS (SELECT set_config('synchronous_commit', 'off', true)) \
    INSERT INTO ingest_claims AS c \
           (file_name, inode, size_bytes, mtime_ns, ctime_ns, agent, expires_at) \
    SELECT k.file_name, k.inode, k.size_bytes, k.mtime_ns, k.ctime_ns, $6, \
           clock_timestamp() + $7 * interval '1 millisecond' \
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         AS k (file_name, inode, size_bytes, mtime_ns, ctime_ns), no_wait \
    ON CONFLICT (file_name, inode, size_bytes, mtime_ns, ctime_ns) DO UPDATE \
       SET agent = excluded.agent, claimed_at = excluded.claimed_at, \
           expires_at = excluded.expires_at \
       WHERE c.agent = excluded.agent OR c.expires_at < clock_timestamp() \
    RETURNING file_name, inode, size_bytes, mtime_ns, ctime_ns";

/// The key's columns, as `$1`…`$5`.
const KEY_MATCH: &str = "file_name = $1 AND inode = $2 AND size_bytes = $3 AND mtime_ns = $4 \
     AND ctime_ns = $5";

#[async_trait]
impl Claims for PgStore {
    async fn claim(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self
            .claims_made
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.sweep_claims().await?;
        }
        let names: Vec<&str> = keys.iter().map(|k| k.file_name.as_str()).collect();
        let inodes: Vec<i64> = keys.iter().map(|k| k.inode as i64).collect();
        let sizes: Vec<i64> = keys.iter().map(|k| k.size as i64).collect();
        let mtimes: Vec<i64> = keys.iter().map(|k| k.mtime_ns).collect();
        let ctimes: Vec<i64> = keys.iter().map(|k| k.ctime_ns).collect();
        let won: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(CLAIM)
            .bind(&names)
            .bind(&inodes)
            .bind(&sizes)
            .bind(&mtimes)
            .bind(&ctimes)
            .bind(&self.agent)
            .bind(LEASE.as_millis() as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(err("claiming files"))?;
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
            "UPDATE ingest_claims SET expires_at = clock_timestamp() + $7 * interval '1 millisecond' \
             WHERE {KEY_MATCH} AND agent = $6"
        )))
        .bind(&key.file_name)
        .bind(key.inode as i64)
        .bind(key.size as i64)
        .bind(key.mtime_ns)
        .bind(key.ctime_ns)
        .bind(&self.agent)
        .bind(LEASE.as_millis() as i64)
        .execute(&self.pool)
        .await
        .map_err(err("renewing a claim"))?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release(&self, key: &ClaimKey) -> Result<(), SinkError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM ingest_claims WHERE {KEY_MATCH} AND agent = $6"
        )))
        .bind(&key.file_name)
        .bind(key.inode as i64)
        .bind(key.size as i64)
        .bind(key.mtime_ns)
        .bind(key.ctime_ns)
        .bind(&self.agent)
        .execute(&self.pool)
        .await
        .map_err(err("releasing a claim"))?;
        Ok(())
    }
}

impl PgStore {
    /// Deletes claims that expired more than [`KEEP_EXPIRED`] ago.
    pub(super) async fn sweep_claims(&self) -> Result<(), SinkError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM ingest_claims WHERE expires_at < clock_timestamp() - interval '{KEEP_EXPIRED}'"
        )))
        .execute(&self.pool)
        .await
        .map_err(err("deleting expired claims"))?;
        Ok(())
    }
}

/// Counts claim calls, for the occasional sweep.
#[derive(Debug, Default)]
pub(super) struct ClaimCounter(AtomicU32);

impl std::ops::Deref for ClaimCounter {
    type Target = AtomicU32;
    fn deref(&self) -> &AtomicU32 {
        &self.0
    }
}

impl Clone for ClaimCounter {
    /// A clone counts afresh: the count only spaces out sweeps.
    fn clone(&self) -> Self {
        Self::default()
    }
}
