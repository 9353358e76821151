//! Per-file statements in batches: the archive names of several files in one statement
//! on both backends, and files processed at once sharing their claims' and archive
//! names' statements on PostgreSQL (rows written by one statement share its `xmin`),
//! each file still with its own claim and its own name.

use chrono::Utc;
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::read::ContentHash;
use sensor_ingest::sink::{ArchiveName, EntryStatus, FileAttempt, LedgerEntry, ProfileRef, Store};
use uuid::Uuid;

use crate::common::{Backend, TestEnv, env_or_skip, files_in};

/// Files processed at once.
const FILES: usize = 40;

fn content(n: usize) -> String {
    let mut text = String::from("ts,id,t\n");
    for i in 0..10 {
        text.push_str(&format!("2024-01-01T00:{i:02}:00Z,s{n},{}.5\n", 10 + i));
    }
    text
}

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
                follow: None,
                source_identity: None,
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
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
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

/// Forty files started at once: each is claimed, loaded and archived under its own
/// name, and the claims and the archive names took fewer statements than files.
#[tokio::test]
async fn files_processed_at_once_share_their_claim_and_archive_statements() {
    let env = env_or_skip!(TestEnv::with_vars(
        Backend::Postgres,
        &[("GROUP_WAIT_MS", "400")]
    ));
    let pipeline = env.pipeline().await;
    let names: Vec<String> = (0..FILES).map(|n| format!("f{n:03}.csv")).collect();
    for (n, name) in names.iter().enumerate() {
        env.drop_file(name, content(n));
    }
    let tasks: Vec<_> = names
        .iter()
        .map(|name| env.spawn_process(&pipeline, name))
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { rows: 10, .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(files_in(&env.processed()), names);
    // Every ledger row names its own file; every file has its own claim, this agent's.
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE archived_as = file_name")
            .await,
        FILES as i64
    );
    assert_eq!(
        env.db
            .count("SELECT count(DISTINCT file_name) FROM ingest_claims")
            .await,
        FILES as i64
    );
    // Rows one statement wrote share its transaction id.
    let claims = env
        .db
        .count("SELECT count(DISTINCT xmin::text) FROM ingest_claims")
        .await;
    let archives = env
        .db
        .count("SELECT count(DISTINCT xmin::text) FROM ingest_files")
        .await;
    assert!(
        claims < FILES as i64 && archives < FILES as i64,
        "{claims} claim statements, {archives} archive-name statements for {FILES} files"
    );
}
