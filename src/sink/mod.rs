//! Sink stage: the one boundary between the pipeline and a database.
//!
//! A backend implements [`Store`], the write path, and [`LedgerQueries`], the read-only
//! questions of the operator tools. The pipeline streams a file's rows to
//! [`Store::load`] and ends the stream with [`LoadMsg::Commit`] or [`LoadMsg::Abort`];
//! the backend guarantees that the ledger row, every reading and the metrics commit in
//! one transaction, or none of them does. Errors are [`SinkError`]s that already know
//! whether trying again later can succeed.
//!
//! Here, `store.rs` holds the write path ([`Store`] and what it is handed),
//! `ledger.rs` the ledger row as it is read back ([`LedgerRecord`], one type for the
//! operator tools and the dashboard) and [`LedgerQueries`], `error.rs` the classified
//! [`SinkError`], `settings.rs` and `retention.rs` the values the configuration builds.
//!
//! Each backend is a folder: `mod.rs` connects, applies the schema and classifies
//! errors; `load.rs` implements [`Store`]; `ledger.rs` implements [`LedgerQueries`];
//! one more module holds its low-level writer (binary COPY encoding for PostgreSQL,
//! the C-API writer for SQLite). A new database is a new folder beside them.

pub mod batched;
pub mod claim;
pub mod coalesce;
pub mod dashboard;
mod error;
pub mod follow;
mod ledger;
pub mod mysql;
pub mod postgres;
mod retention;
mod settings;
pub mod sqlite;
mod store;

use std::sync::Arc;

pub use self::claim::{ClaimKey, Claims};
pub use self::error::{ErrorClass, SinkError};
pub(crate) use self::error::{describe_sqlx, sink_error};
pub use self::follow::{FollowMark, FollowedFile, ReadingKey, StoredReading};
pub use self::ledger::{
    Activity, AgentShare, EntryStatus, LedgerQueries, LedgerRecord, RetentionDone, StatusTotals,
    Storage, UnknownStatus,
};
pub(crate) use self::ledger::{ActivityRow, AgentRow, KNOWN_CHUNK, KNOWN_STATUSES, ledger_status};
pub use self::retention::{RETENTION_EXPECTED, Retention};
pub use self::settings::{DatabaseSettings, MysqlSettings, PostgresSettings, SqliteSettings};
pub use self::store::{
    ArchiveName, FileAttempt, GroupFile, GroupItem, LedgerEntry, LoadMsg, LoadOutcome, LoadedFile,
    ProfileRef, Store,
};

/// The store for `settings`, with up to `connections` connections, writing as this
/// process's default agent name ([`crate::sys::agent_name`]). Nothing is opened until first use;
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
        DatabaseSettings::Mysql(my) => Arc::new(mysql::MysqlStore::new(my, connections, agent)),
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
        DatabaseSettings::Mysql(my) => Arc::new(mysql::MysqlStore::read_only(my, connections)),
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
