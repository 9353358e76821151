//! Per-file statements in batches: the archive names of several files in one statement
//! on both backends.

use chrono::Utc;
use rstest::rstest;
use sensor_ingest::read::ContentHash;
use sensor_ingest::sink::{ArchiveName, EntryStatus, FileAttempt, LedgerEntry, ProfileRef, Store};
use uuid::Uuid;

use crate::common::{Backend, TestEnv, env_or_skip};

/// A ledger row for a file that loaded nothing, written directly; its id.
async fn record(store: &dyn Store, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    store
        .record(&LedgerEntry {
            attempt: FileAttempt {
                id,
                file_name: name.into(),
                hash: ContentHash::unread(name),
                size: 1,
                started_at: Utc::now(),
                profile: ProfileRef::default(),
            },
            status: EntryStatus::Quarantined,
            rows_read: 0,
            rejected_rows: 0,
            error_summary: Some("test".into()),
            duplicate_of: None,
        })
        .await
        .unwrap();
    id
}

#[rstest]
#[tokio::test]
async fn several_archive_names_are_written_in_one_call_each_to_its_own_row(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let store = env.store();
    store.prepare().await.unwrap();
    let a = record(store.as_ref(), "a.csv").await;
    let b = record(store.as_ref(), "b.csv").await;
    let untouched = record(store.as_ref(), "c.csv").await;
    let names = [
        ArchiveName {
            id: a,
            archived_as: "a.csv".into(),
        },
        // An id with no row changes nothing and fails nothing.
        ArchiveName {
            id: Uuid::now_v7(),
            archived_as: "ghost.csv".into(),
        },
        ArchiveName {
            id: b,
            archived_as: "b.1234.csv".into(),
        },
    ];
    store.mark_archived_all(&names).await.unwrap();
    store.mark_archived_all(&[]).await.unwrap();

    let ledger = env.db.ledger().await;
    let archived = |id: Uuid| {
        ledger
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.archived_as.clone())
    };
    assert_eq!(archived(a).as_deref(), Some("a.csv"));
    assert_eq!(archived(b).as_deref(), Some("b.1234.csv"));
    assert_eq!(archived(untouched), None);
    assert_eq!(ledger.len(), 3);
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE archived_at IS NOT NULL")
            .await,
        2
    );
}
