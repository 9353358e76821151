//! Claims on files in the `ingest_claims` table (see [`crate::sink::claim`]): one
//! statement per call, times on the server's clock.

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use sqlx::Arguments;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;

use super::{PgStore, err};
use crate::sink::claim::LEASE;
use crate::sink::{ClaimKey, Claims, SinkError};

/// Claims expired this long ago are deleted (they only guard against agents that stall
/// for longer than that between listing a file and claiming it).
const KEEP_EXPIRED: &str = "1 hour";

/// Once per this many keys claimed, a claim call also deletes long-expired claims.
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

/// Deletes this agent's claims on the keys `$1`…`$5` (arrays); `$6` is the agent.
const RELEASE: &str = "\
    DELETE FROM ingest_claims AS c \
    USING unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
          AS k (file_name, inode, size_bytes, mtime_ns, ctime_ns) \
    WHERE c.file_name = k.file_name AND c.inode = k.inode AND c.size_bytes = k.size_bytes \
      AND c.mtime_ns = k.mtime_ns AND c.ctime_ns = k.ctime_ns AND c.agent = $6";

/// The keys as the column arrays `$1`…`$5` and the agent as `$6`: the arguments
/// [`CLAIM`] and [`RELEASE`] share.
fn key_arguments(keys: &[ClaimKey], agent: &str) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    args.add(
        keys.iter()
            .map(|k| k.file_name.as_str())
            .collect::<Vec<_>>(),
    )?;
    args.add(keys.iter().map(|k| k.inode as i64).collect::<Vec<_>>())?;
    args.add(keys.iter().map(|k| k.size as i64).collect::<Vec<_>>())?;
    args.add(keys.iter().map(|k| k.mtime_ns).collect::<Vec<_>>())?;
    args.add(keys.iter().map(|k| k.ctime_ns).collect::<Vec<_>>())?;
    args.add(agent)?;
    Ok(args)
}

/// The key's columns, as `$1`…`$5`.
const KEY_MATCH: &str = "file_name = $1 AND inode = $2 AND size_bytes = $3 AND mtime_ns = $4 \
     AND ctime_ns = $5";

#[async_trait]
impl Claims for PgStore {
    async fn claim(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Counted in keys, not calls (a busy pipeline claims many keys per call): sweep
        // when this call's keys take the count over a multiple of SWEEP_EVERY.
        let n = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        let before = u64::from(self.claims_made.fetch_add(n, Ordering::Relaxed));
        if before.next_multiple_of(SWEEP_EVERY.into()) < before + u64::from(n) {
            self.sweep_claims().await?;
        }
        let args = key_arguments(keys, &self.agent)
            .and_then(|mut args| {
                args.add(LEASE.as_millis() as i64)?;
                Ok(args)
            })
            .map_err(sqlx::Error::Encode)
            .map_err(err("claiming files"))?;
        let won: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as_with(CLAIM, args)
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

    async fn release(&self, keys: &[ClaimKey]) -> Result<(), SinkError> {
        if keys.is_empty() {
            return Ok(());
        }
        let args = key_arguments(keys, &self.agent)
            .map_err(sqlx::Error::Encode)
            .map_err(err("releasing claims"))?;
        sqlx::query_with(RELEASE, args)
            .execute(&self.pool)
            .await
            .map_err(err("releasing claims"))?;
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
