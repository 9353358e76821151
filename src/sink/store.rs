//! The write path: what the pipeline hands a [`Store`] (a file's attempt, its rows, the
//! group of small files committed together) and what the store answers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::follow::{FollowMark, FollowedFile, ReadingKey, StoredReading, unsupported};
use super::{Claims, EntryStatus, LedgerQueries, Retention, SinkError};
use crate::enrich::EnrichedRow;
use crate::qc::{HistoryQuery, HistoryReading};
use crate::read::ContentHash;
use crate::stats::FileStats;

/// The identity of one attempt at one file.
#[derive(Debug, Clone)]
pub struct FileAttempt {
    /// New for every attempt; becomes the ledger id (and the readings' `file_id`).
    pub id: Uuid,
    pub file_name: String,
    pub hash: ContentHash,
    pub size: u64,
    pub started_at: DateTime<Utc>,
    /// The profile that read it (name and hash of its text), recorded in the ledger.
    pub profile: ProfileRef,
    /// An increment of a followed file: the position its ledger row commits with (in
    /// [`Store::load`] and [`Store::record`] alike). `None` for a whole file.
    pub follow: Option<Box<FollowMark>>,
    /// What the source knows the item by beyond its name (an object's bucket, key, ETag
    /// and size, as a digest: `source::SourceIdentity`), recorded with the ledger row
    /// whatever its status, so that an object left in place (`S3_AFTER=keep`) is known
    /// across restarts and agents. `None` for a file.
    pub source_identity: Option<String>,
}

/// Which profile read a file: its name and the hash of its text (`builtin` for the
/// built-in default), so a ledger row says exactly which rules loaded it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileRef {
    pub name: String,
    pub hash: String,
}

/// What the pipeline sends to [`Store::load`], in order: row batches, then one end.
#[derive(Debug)]
pub enum LoadMsg {
    Rows(Vec<EnrichedRow>),
    /// Every row was valid and sent: write metrics and the ledger row, then commit.
    Commit(Box<FileStats>),
    /// Nothing may be kept: roll back.
    Abort,
}

/// One file of a group commit ([`Store::load_group`]): read in full, every row valid.
#[derive(Debug, Clone)]
pub struct GroupFile {
    pub attempt: FileAttempt,
    pub rows: Vec<EnrichedRow>,
    pub stats: Box<FileStats>,
}

/// What a group commit ([`Store::load_group`]) writes for one file.
#[derive(Debug, Clone)]
pub enum GroupItem {
    /// Load the file: answered [`LoadOutcome::Committed`] or
    /// [`LoadOutcome::AlreadyLoaded`], or refused.
    Load(GroupFile),
    /// Write the ledger row of a file that loaded nothing (quarantined, duplicate):
    /// answered [`LoadOutcome::Recorded`], or refused.
    Record(Box<LedgerEntry>),
}

impl GroupItem {
    /// Rows of this item, as a group counts them against its bound.
    pub fn row_count(&self) -> usize {
        match self {
            GroupItem::Load(file) => file.rows.len(),
            GroupItem::Record(_) => 0,
        }
    }
}

/// How a call to [`Store::load`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// Committed with this many readings.
    Committed { rows: u64 },
    /// Rolled back on the pipeline's request (or because the row stream ended early).
    Aborted,
    /// The same content has a `loaded` ledger row already (another worker or agent won
    /// the race); nothing was written.
    AlreadyLoaded(LoadedFile),
    /// A group's [`GroupItem::Record`]: the ledger row committed with the group.
    Recorded,
}

/// A ledger row with status `loaded`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedFile {
    pub id: Uuid,
    pub file_name: String,
    pub archived_as: Option<String>,
    /// When the attempt that loaded it started (the loading agent's clock).
    pub started_at: DateTime<Utc>,
}

/// Where the file of a ledger row was archived ([`Store::mark_archived_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// The ledger row.
    pub id: Uuid,
    /// The file's name in `processed/` or `quarantine/`.
    pub archived_as: String,
}

/// A ledger row for an attempt that loaded nothing.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub attempt: FileAttempt,
    /// [`EntryStatus::Quarantined`] or [`EntryStatus::Duplicate`], never `Loaded`.
    pub status: EntryStatus,
    /// Rows read before the verdict (quarantined files).
    pub rows_read: u64,
    pub rejected_rows: u64,
    pub error_summary: Option<String>,
    pub duplicate_of: Option<Uuid>,
}

/// A database the pipeline can load files into: the write path (and the one lookup it
/// needs before writing). Every store also answers [`LedgerQueries`], so one
/// `Arc<dyn Store>` serves the pipeline and the operator tools alike; a new backend
/// implements both traits.
#[async_trait]
pub trait Store: LedgerQueries {
    /// Where the data goes, safe to log (no password).
    fn describe(&self) -> String;

    /// Creates the schema if needed. Safe to call from several agents at once.
    async fn prepare(&self) -> Result<(), SinkError>;

    /// The claims on files, when several agents can share this store; `None` (the
    /// default) when only one agent may use it, and files need no claim.
    fn claims(&self) -> Option<&dyn Claims> {
        None
    }

    /// Whether this store keeps followed files (append mode): it writes an attempt's
    /// [`FileAttempt::follow`] with its ledger row and answers the three questions
    /// below. The agent refuses append mode on a store that does not.
    fn follows(&self) -> bool {
        false
    }

    /// Where the followed file called `file_name` stands, if it was ever followed.
    async fn followed_file(&self, file_name: &str) -> Result<Option<FollowedFile>, SinkError> {
        let _ = file_name;
        Err(unsupported("reading a followed file's offset"))
    }

    /// Every followed file, by name (for `status` and the metrics).
    async fn followed_files(&self) -> Result<Vec<FollowedFile>, SinkError> {
        Ok(Vec::new())
    }

    /// Forgets the followed file `file_name` (its file was archived by a move): only
    /// while its stored position is still the one of increment `ledger_id`, else the
    /// error of a position that moved meanwhile. The next file of the name is new.
    async fn forget_followed(
        &self,
        file_name: &str,
        ledger_id: uuid::Uuid,
    ) -> Result<(), SinkError> {
        let _ = (file_name, ledger_id);
        Err(unsupported("forgetting a followed file"))
    }

    /// The stored readings at these sensors and times (any order; several per key when
    /// several were stored): what an increment's readings are compared with.
    async fn stored_readings(&self, keys: &[ReadingKey]) -> Result<Vec<StoredReading>, SinkError> {
        let _ = keys;
        Err(unsupported("reading stored readings"))
    }

    /// Whether any reading is stored for one of these sensors within its time span
    /// (`(sensor, first, last)`, both ends included): one index range probe per
    /// sensor. `false` tells an increment that none of its readings can be stored
    /// already, so they need not be looked up one by one. A store without the probe
    /// answers `true`: every reading is then looked up with
    /// [`stored_readings`](Self::stored_readings), as before the probe existed.
    async fn any_stored_within(
        &self,
        spans: &[(String, DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<bool, SinkError> {
        let _ = spans;
        Ok(true)
    }

    /// The `loaded` ledger row for this content, if any.
    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError>;

    /// Those of `identities` (source identities, [`FileAttempt::source_identity`]) that a
    /// `loaded`, `partial` or `duplicate` ledger row records: items left in place that
    /// need not be read again. A `quarantined` row does not count: its object was moved
    /// to the quarantine, and one seen again under the same identity is a `quarantine
    /// retry` putting it back. One statement for the lot.
    async fn known_sources(&self, identities: &[String]) -> Result<Vec<String>, SinkError>;

    /// For each query, the sensor's last `limit` stored readings before its time (and
    /// from its `from`, when given), oldest first, with their quality flags, in the
    /// order asked: what quality control continues from when a file loads. One round
    /// trip for all of them.
    async fn recent_readings(
        &self,
        queries: &[HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<HistoryReading>>, SinkError>;

    /// Loads one file in one transaction: claims its content hash in the ledger, takes
    /// every row from `rows`, and commits only on [`LoadMsg::Commit`]. If `rows` closes
    /// without an end message, rolls back.
    async fn load(
        &self,
        attempt: &FileAttempt,
        rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError>;

    /// Loads several small files, each read in full, and writes the ledger rows of
    /// files that loaded nothing, in one transaction (a group commit): each item is
    /// all-or-nothing on its own — one the database refuses (a refused value, a
    /// constraint, its content loaded already, inside the group or before) is rolled
    /// back alone and answered in its place, the others commit together. The answers
    /// come in the order of `items`, and only once the transaction holding them has
    /// committed.
    ///
    /// `Err` means nothing was committed (the database was unreachable, the commit
    /// failed): every item is to be retried. The default writes each item by itself
    /// ([`Store::load`], [`Store::record`]), one transaction each, for stores with no
    /// group path.
    async fn load_group(
        &self,
        items: &[GroupItem],
    ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
        let mut answers = Vec::with_capacity(items.len());
        for item in items {
            answers.push(match item {
                GroupItem::Load(file) => {
                    let (tx, rx) = mpsc::channel(2);
                    let sent = async {
                        let _ = tx.send(LoadMsg::Rows(file.rows.clone())).await;
                        let _ = tx.send(LoadMsg::Commit(file.stats.clone())).await;
                    };
                    let (loaded, ()) = tokio::join!(self.load(&file.attempt, rx), sent);
                    loaded
                }
                GroupItem::Record(entry) => {
                    self.record(entry).await.map(|()| LoadOutcome::Recorded)
                }
            });
        }
        Ok(answers)
    }

    /// Writes a ledger row for an attempt that loaded nothing.
    async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError>;

    /// Notes where the file of ledger row `id` was archived.
    async fn mark_archived(&self, id: Uuid, archived_as: &str) -> Result<(), SinkError> {
        self.mark_archived_all(&[ArchiveName {
            id,
            archived_as: archived_as.to_owned(),
        }])
        .await
    }

    /// Notes where each of several files was archived, in one statement: the pipeline
    /// coalesces the archive names of files finishing together ([`batched`]).
    async fn mark_archived_all(&self, names: &[ArchiveName]) -> Result<(), SinkError>;

    /// Housekeeping the agent runs at startup and then hourly: the readings partitions
    /// of the coming months, and with `retention` the dropping of whole months older
    /// than it (each logged, the ledger rows kept). Stores without partitions (SQLite,
    /// or PostgreSQL before `migrate`) have nothing to do.
    async fn maintain(&self, retention: Option<Retention>) -> Result<(), SinkError> {
        let _ = retention;
        Ok(())
    }
}
