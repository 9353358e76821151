//! Sink stage: the one boundary between the pipeline and a database.
//!
//! A backend implements [`Store`], the write path, and [`LedgerQueries`], the read-only
//! questions of the operator tools. The pipeline streams a file's rows to
//! [`Store::load`] and ends the stream with [`LoadMsg::Commit`] or [`LoadMsg::Abort`];
//! the backend guarantees that the ledger row, every reading and the metrics commit in
//! one transaction, or none of them does. Errors are [`SinkError`]s that already know
//! whether trying again later can succeed.
//!
//! Each backend is a folder: `mod.rs` connects, applies the schema and classifies
//! errors; `load.rs` implements [`Store`]; `ledger.rs` implements [`LedgerQueries`];
//! one more module holds its low-level writer (binary COPY encoding for PostgreSQL,
//! the C-API writer for SQLite). A new database is a new folder beside them.

pub mod batched;
pub mod claim;
pub mod coalesce;
pub mod dashboard;
pub mod postgres;
mod retention;
mod settings;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::enrich::EnrichedRow;
use crate::qc::{HistoryQuery, HistoryReading};
use crate::read::ContentHash;
use crate::stats::FileStats;

pub use self::claim::{ClaimKey, Claims};
pub use self::retention::{RETENTION_EXPECTED, Retention};
pub use self::settings::{DatabaseSettings, PostgresSettings, SqliteSettings};

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

/// Status of a ledger row, stored as its [`as_str`](Self::as_str) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// The file's readings and metrics committed with the row; written only by
    /// [`Store::load`].
    Loaded,
    /// Loaded without its bad rows (a profile's `rows.on_error = "skip_rows"`): the row
    /// counts both; the bad rows went to the quarantine as a rejects file.
    Partial,
    /// The file was refused; the row carries no readings.
    Quarantined,
    /// The content was loaded already under another row; the row carries no readings.
    Duplicate,
}

impl EntryStatus {
    /// The status a commit of a file with these statistics gets: partial when rows
    /// were rejected.
    pub fn of(stats: &FileStats) -> Self {
        if stats.rejected_rows > 0 {
            EntryStatus::Partial
        } else {
            EntryStatus::Loaded
        }
    }

    /// The text the ledger stores: `loaded`, `partial`, `quarantined` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Loaded => "loaded",
            EntryStatus::Partial => "partial",
            EntryStatus::Quarantined => "quarantined",
            EntryStatus::Duplicate => "duplicate",
        }
    }
}

impl std::fmt::Display for EntryStatus {
    /// The stored text; width and alignment apply (`{:<11}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A ledger status text this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ledger status {0:?}")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for EntryStatus {
    type Err = UnknownStatus;

    /// Reads the text [`EntryStatus::as_str`] writes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "loaded" => Ok(EntryStatus::Loaded),
            "partial" => Ok(EntryStatus::Partial),
            "quarantined" => Ok(EntryStatus::Quarantined),
            "duplicate" => Ok(EntryStatus::Duplicate),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A ledger row's status text as an [`EntryStatus`]; an unknown one is an error reading
/// the ledger (the agent cannot work with that database), like a malformed id or time.
pub(crate) fn ledger_status(text: &str) -> Result<EntryStatus, SinkError> {
    text.parse().map_err(|e: UnknownStatus| SinkError {
        class: ErrorClass::Refused,
        context: "reading the ledger",
        detail: e.to_string(),
    })
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

/// One ledger row as the operator tools (`status`, `quarantine`) read it back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRecord {
    pub id: Uuid,
    pub file_name: String,
    pub content_hash: String,
    pub status: EntryStatus,
    /// Rows loaded (`loaded`) or read before the verdict (`quarantined`).
    pub row_count: u64,
    pub rejected_rows: u64,
    pub error_summary: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub archived_as: Option<String>,
}

/// Files and rows of one ledger status over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StatusTotals {
    pub files: u64,
    /// Rows loaded (`loaded`) or read (`quarantined`); 0 for duplicates.
    pub rows: u64,
    pub rejected_rows: u64,
}

/// What the ledger recorded as finished since some moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Activity {
    pub loaded: StatusTotals,
    /// Files loaded without their bad rows (`rejected_rows` counts those).
    pub partial: StatusTotals,
    pub quarantined: StatusTotals,
    pub duplicate: StatusTotals,
    /// Time spent loading the `loaded` files (sum of each file's start-to-commit time),
    /// in seconds: rows / this is the agent's throughput while it was busy.
    pub load_seconds: f64,
}

/// One `GROUP BY status` row of the ledger: status, files, rows, rejected rows, and
/// the seconds spent on them.
pub(crate) type ActivityRow = (String, i64, i64, i64, f64);

impl Activity {
    /// Folds the `GROUP BY status` rows both backends return; unknown statuses (a
    /// newer agent's) are ignored.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = ActivityRow>) -> Self {
        let mut activity = Self::default();
        for (status, files, rows, rejected, seconds) in rows {
            let totals = StatusTotals {
                files: files.max(0) as u64,
                rows: rows.max(0) as u64,
                rejected_rows: rejected.max(0) as u64,
            };
            match status.parse() {
                Ok(EntryStatus::Loaded) => {
                    activity.loaded = totals;
                    activity.load_seconds += seconds.max(0.0);
                }
                Ok(EntryStatus::Partial) => {
                    activity.partial = totals;
                    activity.load_seconds += seconds.max(0.0);
                }
                Ok(EntryStatus::Quarantined) => activity.quarantined = totals,
                Ok(EntryStatus::Duplicate) => activity.duplicate = totals,
                Err(UnknownStatus(_)) => {}
            }
        }
        activity
    }
}

/// What one agent did over a period, from the ledger rows it wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentShare {
    /// Its `AGENT_ID` (`host:pid` by default).
    pub agent: String,
    /// Ledger rows it wrote: files it loaded, quarantined or found to be duplicates.
    pub files: u64,
    /// Rows it loaded (`loaded` and `partial` files).
    pub rows: u64,
    /// When it last finished a file.
    pub last_finished_at: DateTime<Utc>,
}

/// One `GROUP BY agent` row of the ledger: agent, files, rows loaded, last finish.
pub(crate) type AgentRow = (String, i64, i64, DateTime<Utc>);

impl AgentShare {
    /// The rows both backends return, most files first.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = AgentRow>) -> Vec<Self> {
        let mut shares: Vec<Self> = rows
            .into_iter()
            .map(|(agent, files, rows, last_finished_at)| AgentShare {
                agent,
                files: files.max(0) as u64,
                rows: rows.max(0) as u64,
                last_finished_at,
            })
            .collect();
        shares.sort_by(|a, b| b.files.cmp(&a.files).then_with(|| a.agent.cmp(&b.agent)));
        shares
    }
}

/// A driver error as a [`SinkError`] of `class`: the database's own message with its
/// code (`code_name` says which kind: "SQLSTATE", "SQLite code"), the driver's message
/// otherwise. sqlx's display adds wrapper text and the server's C source line.
pub(crate) fn sink_error(
    e: &sqlx::Error,
    class: ErrorClass,
    context: &'static str,
    code_name: &str,
) -> SinkError {
    SinkError {
        class,
        context,
        detail: describe_sqlx(e, code_name),
    }
}

/// See [`sink_error`].
pub(crate) fn describe_sqlx(e: &sqlx::Error, code_name: &str) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} ({code_name} {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}

/// How the readings are stored, as `status` shows it (PostgreSQL; `None` on SQLite).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Storage {
    /// Monthly partitions of `sensor_readings`, and the first and last month
    /// (`2024-03`); 0 and `None` while a migration is pending.
    pub partitions: usize,
    pub first_month: Option<String>,
    pub last_month: Option<String>,
    /// The readings are still in one plain table: `sensor-ingest migrate` is pending.
    pub migration_pending: bool,
    /// A started migration: readings copied so far, of the ledger's total.
    pub migration_copied: Option<(i64, i64)>,
    /// What retention dropped, all told (none: nothing yet).
    pub retention: Option<RetentionDone>,
}

/// What retention has dropped so far (`retention_log`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionDone {
    /// Readings before this moment are gone (the end of the latest month dropped).
    pub before: DateTime<Utc>,
    pub months: i64,
    pub readings: i64,
    pub last_dropped_at: DateTime<Utc>,
}

/// Whether a failed database call may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The database is unreachable, overloaded, restarting, or the transaction lost a
    /// race (serialization failure, deadlock): retry with backoff; never quarantine.
    Transient,
    /// The database refused the agent itself (authentication, missing database, no
    /// privilege): fatal at startup; while running, retried like `Transient` because
    /// the file is not at fault.
    Refused,
    /// The database refused the file's data (bad value, constraint): quarantine.
    Data,
}

/// A database failure, classified. Cloned when one failed statement answers several
/// callers (a group, a batch of claims).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {detail}")]
pub struct SinkError {
    pub class: ErrorClass,
    /// What the sink was doing, e.g. "copying readings".
    pub context: &'static str,
    /// The driver's or the server's message (with its SQLSTATE when there is one).
    pub detail: String,
}

impl SinkError {
    pub fn is_transient(&self) -> bool {
        self.class != ErrorClass::Data
    }
}

/// Read-only questions to the ledger, as the operator tools (`status`, `quarantine`)
/// and the readiness check (`/readyz`) ask them. None of them writes.
#[async_trait]
pub trait LedgerQueries: Send + Sync + std::fmt::Debug {
    /// Succeeds when the database answers a trivial query (readiness checks).
    async fn ping(&self) -> Result<(), SinkError>;

    /// Files and rows per status among ledger rows finished at or after `since`.
    async fn activity_since(&self, since: DateTime<Utc>) -> Result<Activity, SinkError>;

    /// The agents that finished files at or after `since`, each with its share, most
    /// files first.
    async fn agents_since(&self, since: DateTime<Utc>) -> Result<Vec<AgentShare>, SinkError>;

    /// The most recently finished `loaded` ledger row.
    async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError>;

    /// Every ledger row with this content hash or this file name, oldest first: all
    /// attempts at one piece of content, and what else was dropped under its name.
    async fn history(
        &self,
        content_hash: &str,
        file_name: &str,
    ) -> Result<Vec<LedgerRecord>, SinkError>;

    /// Partitions, a pending migration and what retention dropped; `None` for a store
    /// without partitions.
    async fn storage(&self) -> Result<Option<Storage>, SinkError> {
        Ok(None)
    }

    /// The first `limit` readings of `sensor` at or after `since` that carry quality
    /// flags, oldest first, each with the sensor's readings just before and after it.
    async fn flagged_readings(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<crate::qc::FlaggedReading>, SinkError>;
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

    /// The `loaded` ledger row for this content, if any.
    async fn find_loaded(&self, hash: &ContentHash) -> Result<Option<LoadedFile>, SinkError>;

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

/// The store for `settings`, with up to `connections` connections, writing as this
/// process's default agent name ([`agent_name`]). Nothing is opened until first use;
/// [`Store::prepare`] is the first use.
pub fn open(settings: &DatabaseSettings, connections: u32) -> Arc<dyn Store> {
    open_as(settings, connections, &crate::sys::agent_name())
}

/// [`open`], writing ledger rows and claims as `agent` (`AGENT_ID`).
pub fn open_as(settings: &DatabaseSettings, connections: u32, agent: &str) -> Arc<dyn Store> {
    match settings {
        DatabaseSettings::Postgres(pg) => Arc::new(postgres::PgStore::new(pg, connections, agent)),
        DatabaseSettings::Sqlite(file) => {
            Arc::new(sqlite::SqliteStore::new(file, connections, agent))
        }
    }
}

/// A read-only connection to the database of `settings` for the dashboard, with up to
/// `connections` connections, opened on first use; separate from the pipeline's pool
/// so that pages never take a connection a load is waiting for.
pub fn open_read_only(
    settings: &DatabaseSettings,
    connections: u32,
) -> Arc<dyn dashboard::DashboardQueries> {
    match settings {
        DatabaseSettings::Postgres(pg) => Arc::new(postgres::PgStore::read_only(pg, connections)),
        DatabaseSettings::Sqlite(file) => {
            Arc::new(sqlite::SqliteStore::read_only(file, connections))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_status_reads_back_the_text_it_stores() {
        for status in [
            EntryStatus::Loaded,
            EntryStatus::Quarantined,
            EntryStatus::Duplicate,
        ] {
            assert_eq!(status.as_str().parse::<EntryStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(format!("[{:<11}]", EntryStatus::Loaded), "[loaded     ]");
        assert_eq!(
            "archived".parse::<EntryStatus>(),
            Err(UnknownStatus("archived".into()))
        );
        let e = ledger_status("Loaded").unwrap_err();
        assert_eq!(e.class, ErrorClass::Refused);
        assert!(e.to_string().contains("\"Loaded\""), "{e}");
    }

    #[test]
    fn activity_folds_known_statuses_and_skips_unknown_ones() {
        let activity = Activity::from_rows([
            ("loaded".to_owned(), 2, 30, 0, 1.5),
            ("quarantined".to_owned(), 1, 5, 3, 0.1),
            ("archived".to_owned(), 9, 9, 9, 9.0),
        ]);
        assert_eq!(activity.loaded.files, 2);
        assert_eq!(activity.loaded.rows, 30);
        assert_eq!(activity.load_seconds, 1.5);
        assert_eq!(activity.quarantined.rejected_rows, 3);
        assert_eq!(activity.duplicate, StatusTotals::default());
    }
}
