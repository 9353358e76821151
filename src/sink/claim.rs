//! Claims: how several agents sharing one data folder and one database split the files
//! between them.
//!
//! Before an agent reads a file it claims it; an agent that finds the file claimed by
//! another leaves it alone. A claim is a lease, not a lock: it carries an expiry time
//! (the database's clock, so the agents' clocks do not matter), the agent renews it
//! while it works on the file, and once it has expired any agent may take it over. A
//! claim of an agent that died — killed, powered off, cut from the network — therefore
//! frees itself within [`LEASE`], with no one to release it.
//!
//! Why a table with leases rather than PostgreSQL's advisory locks: an advisory lock
//! lives in a session, so it would pin one pooled connection per file in progress (a
//! worker's connection is in use by the load's transaction meanwhile), and a network
//! cut holds it for as long as the server takes to notice the dead connection (TCP
//! keepalive: minutes to hours by default), not a bounded time. A row also says who
//! holds what, which an operator can read.
//!
//! A claim is keyed by the file's identity in its source, [`ClaimKey`]: for the data
//! folder its name, inode, size, modification time and status-change time (ctime). A file dropped again under
//! the same name later is a new inode (or a new size or time), so it gets its own
//! claim; a file moved back into the folder (`quarantine retry`, or by hand) keeps its
//! inode and mtime but a rename sets its ctime, so it is a new claim too. Two files of
//! one name in two sub-folders are not a case (the data folder is not recursive). Claims are only a
//! division of labour: exactly once rests on the ledger's unique index on the content
//! hash, whatever the claims say.
//!
//! A finished file's claim is not released: it runs out by itself. That way an agent
//! that listed the file just before it was archived cannot claim it right after and
//! record a spurious duplicate. Claims expired for an hour are deleted now and then.

use std::time::Duration;

use async_trait::async_trait;

use super::SinkError;

/// How long a claim lasts without renewal: the bound on how long a dead agent's files
/// wait before another agent takes them (plus one rescan, `MONITOR_INTERVAL`).
pub const LEASE: Duration = Duration::from_secs(20);

/// How often an agent renews the claim on a file it is still working on.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// A file's identity in the data folder, as claims store it: its name and the
/// source's identity of the item (`source::FileId`; the pipeline makes one from the
/// other).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    pub file_name: String,
    pub inode: u64,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
    /// Status-change time, likewise: a rename into the folder sets it.
    pub ctime_ns: i64,
}

/// Claims on files, for a store that several agents can share. A store only one agent
/// may use at a time (SQLite: see `crate::lock`) has none, and the pipeline then claims
/// nothing.
///
/// Every call is one statement, in one round trip.
#[async_trait]
pub trait Claims: Send + Sync + std::fmt::Debug {
    /// Claims each of `keys` for this agent for [`LEASE`], unless another agent holds an
    /// unexpired claim on it; returns, in the order of `keys`, whether each is now this
    /// agent's. A claim this agent holds already is renewed, so an attempt retried after
    /// a failure takes its file again. Taking several keys at once lets a caller claim a
    /// batch of files in one round trip.
    async fn claim(&self, keys: &[ClaimKey]) -> Result<Vec<bool>, SinkError>;

    /// Extends this agent's claim on `key` by [`LEASE`]; `false` when it is no longer
    /// this agent's (it expired and another agent took it over).
    async fn renew(&self, key: &ClaimKey) -> Result<bool, SinkError>;

    /// Gives up this agent's claims on `keys`, so another agent may take the files at
    /// once: for files this agent leaves in the folder after a failed attempt (a retry
    /// claims them again). Keys this agent does not hold are left as they are.
    async fn release(&self, keys: &[ClaimKey]) -> Result<(), SinkError>;
}
