//! Ledger queries: the ledger row as it is read back ([`LedgerRecord`]), its status,
//! and the read-only questions the operator tools and the readiness check ask
//! ([`LedgerQueries`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{ErrorClass, SinkError};
use crate::stats::FileStats;

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

/// The statuses of ledger rows whose source identity marks an item left in place as
/// done ([`Store::known_sources`](super::Store::known_sources)), as an SQL list: not
/// `quarantined`, whose object was moved to the quarantine (seen again under the same
/// identity, it is a `quarantine retry` putting it back).
pub(crate) const KNOWN_STATUSES: &str = "('loaded', 'partial', 'duplicate')";

/// Source identities per lookup statement, where each is a bound parameter.
pub(crate) const KNOWN_CHUNK: usize = 500;

/// One ledger row as the operator tools (`status`, `quarantine`) and the dashboard
/// read it back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRecord {
    pub id: Uuid,
    pub file_name: String,
    pub content_hash: String,
    /// The file's size when it was read. (This and `agent` and `profile` are left out
    /// of the operator tools' JSON, which was written before they were read back.)
    #[serde(skip)]
    pub size_bytes: u64,
    pub status: EntryStatus,
    /// Rows loaded (`loaded`) or read before the verdict (`quarantined`).
    pub row_count: u64,
    pub rejected_rows: u64,
    pub error_summary: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub archived_as: Option<String>,
    /// The agent that wrote the row.
    #[serde(skip)]
    pub agent: String,
    /// The profile that read the file (`name@hash`), if any.
    #[serde(skip)]
    pub profile: Option<String>,
}

impl LedgerRecord {
    /// Start-to-finish time of the attempt, in seconds.
    pub fn duration_seconds(&self) -> f64 {
        (self.finished_at - self.started_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6
    }
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
