//! The statements the pipeline makes once per file outside a load — a file's claim,
//! the release of a claim after a failed attempt, the archive name after the move —
//! coalesced ([`super::coalesce`]): the files that ask at the same time share one
//! statement, and each learns its own answer.
//!
//! What each statement means is unchanged. A claim is still granted or refused key by
//! key (the statement takes arrays already, [`Claims::claim`](super::Claims::claim)),
//! and its answer still comes before the file is read. An archive name is still
//! informational and best effort: exactly-once rests on the ledger's unique index on
//! the content hash and on committing before moving, neither of which goes through
//! here.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::coalesce::{Batch, Coalescer};
use super::{ArchiveName, ClaimKey, ErrorClass, SinkError, Store};

/// The most requests one statement carries: 256 keys make five arrays of 256 on
/// PostgreSQL, and 256 archive names 513 bound parameters on SQLite (its limit is
/// 32,766).
pub const BATCH_MAX: usize = 256;

/// A store's per-file statements, coalesced. Cheap to share (behind an `Arc`) between
/// every attempt of a pipeline; each kind of statement has its own task, started on
/// first use.
#[derive(Debug)]
pub struct PerFile {
    /// `None` for a store without claims (one agent only).
    claims: Option<ClaimStatements>,
    archived: Coalescer<ArchiveNames>,
}

#[derive(Debug)]
struct ClaimStatements {
    claim: Coalescer<ClaimAll>,
    release: Coalescer<ReleaseAll>,
}

impl PerFile {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let claims = store.claims().is_some().then(|| ClaimStatements {
            claim: Coalescer::new(ClaimAll(store.clone()), BATCH_MAX),
            release: Coalescer::new(ReleaseAll(store.clone()), BATCH_MAX),
        });
        Self {
            claims,
            archived: Coalescer::new(ArchiveNames(store), BATCH_MAX),
        }
    }

    /// Claims `key` for this agent ([`Claims::claim`](super::Claims::claim)): whether
    /// it is now this agent's. Always `true` on a store without claims.
    pub async fn claim(&self, key: ClaimKey) -> Result<bool, SinkError> {
        match &self.claims {
            Some(c) => c.claim.call(key).await,
            None => Ok(true),
        }
    }

    /// Gives up this agent's claim on `key`
    /// ([`Claims::release`](super::Claims::release)).
    pub async fn release(&self, key: ClaimKey) -> Result<(), SinkError> {
        match &self.claims {
            Some(c) => c.release.call(key).await,
            None => Ok(()),
        }
    }

    /// Notes where the file of ledger row `id` was archived ([`Store::mark_archived`]).
    pub async fn mark_archived(&self, id: Uuid, archived_as: String) -> Result<(), SinkError> {
        self.archived.call(ArchiveName { id, archived_as }).await
    }
}

/// The claims of all the keys waiting, in one statement.
struct ClaimAll(Arc<dyn Store>);

#[async_trait]
impl Batch for ClaimAll {
    type Request = ClaimKey;
    type Answer = bool;

    async fn run(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError> {
        let Some(claims) = self.0.claims() else {
            return Ok(vec![true; keys.len()]);
        };
        // One key twice in a statement would make `ON CONFLICT DO UPDATE` touch its row
        // twice, which PostgreSQL refuses: each key is asked once, and every caller of
        // it gets that answer (as two calls in a row by this agent both would).
        let (unique, index) = dedup(keys);
        let granted = claims.claim(&unique).await?;
        index
            .into_iter()
            .map(|i| granted.get(i).copied())
            .collect::<Option<Vec<bool>>>()
            .ok_or_else(|| SinkError {
                class: ErrorClass::Transient,
                context: "claiming files",
                detail: format!("{} answers to {} keys", granted.len(), unique.len()),
            })
    }
}

/// The releases of all the keys waiting, in one statement.
struct ReleaseAll(Arc<dyn Store>);

#[async_trait]
impl Batch for ReleaseAll {
    type Request = ClaimKey;
    type Answer = ();

    async fn run(&self, keys: &[ClaimKey]) -> Result<Vec<()>, SinkError> {
        if let Some(claims) = self.0.claims() {
            claims.release(&dedup(keys).0).await?;
        }
        Ok(vec![(); keys.len()])
    }
}

/// The archive names of all the files waiting, in one statement.
struct ArchiveNames(Arc<dyn Store>);

#[async_trait]
impl Batch for ArchiveNames {
    type Request = ArchiveName;
    type Answer = ();

    async fn run(&self, names: &[ArchiveName]) -> Result<Vec<()>, SinkError> {
        self.0.mark_archived_all(names).await?;
        Ok(vec![(); names.len()])
    }
}

/// `keys` without repeats (first occurrences, in order), and for each key its place
/// in that list.
fn dedup(keys: &[ClaimKey]) -> (Vec<ClaimKey>, Vec<usize>) {
    let mut places: HashMap<&ClaimKey, usize> = HashMap::with_capacity(keys.len());
    let mut unique = Vec::with_capacity(keys.len());
    let index = keys
        .iter()
        .map(|k| {
            *places.entry(k).or_insert_with(|| {
                unique.push(k.clone());
                unique.len() - 1
            })
        })
        .collect();
    (unique, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ClaimKey {
        ClaimKey {
            file_name: name.into(),
            inode: 1,
            size: 2,
            mtime_ns: 3,
            ctime_ns: 4,
        }
    }

    #[test]
    fn a_key_asked_twice_is_claimed_once_and_both_askers_get_its_answer() {
        let keys = [key("a"), key("b"), key("a"), key("c"), key("b")];
        let (unique, index) = dedup(&keys);
        assert_eq!(unique, [key("a"), key("b"), key("c")]);
        assert_eq!(index, [0, 1, 0, 2, 1]);
    }
}
