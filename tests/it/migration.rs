//! A database created before source profiles (the schema of `29b69de`, kept in
//! `tests/fixtures/schema/`) is migrated when the agent starts: its rows stay, the
//! ledger takes the `partial` status and the profile columns, `file_metrics` its unit
//! and code columns, and content loaded before is still loaded once.

use std::path::Path;

use crate::common::{Backend, TestEnv, TestStore, env_or_skip};
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::read::ContentHash;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

const OLD_FILE: &str = "timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,s-1,21.5\n";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Creates the old schema with one loaded file in it, as an older agent left it.
async fn old_database(env: &TestEnv) {
    let hash = ContentHash::of_reader(OLD_FILE.as_bytes()).unwrap().0;
    let rows = format!(
        "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
         row_count, started_at, agent) VALUES ('018f0000-0000-7000-8000-000000000001', \
         'old.csv', '{hash}', {}, 'loaded', 1, '2024-05-01T12:00:01.000000Z', 'old:1'); \
         INSERT INTO file_metrics (file_id, column_name, value_count, null_count) VALUES \
         ('018f0000-0000-7000-8000-000000000001', 'temperature', 1, 0);",
        OLD_FILE.len()
    );
    match &env.db {
        TestStore::Postgres(db) => {
            sqlx::raw_sql(AssertSqlSafe(fixture("before-profiles.sql")))
                .execute(&db.pool)
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(rows))
                .execute(&db.pool)
                .await
                .unwrap();
        }
        TestStore::Mysql(_) => unreachable!("no MariaDB schema predates source profiles"),
        TestStore::Sqlite(db) => {
            let mut conn = SqliteConnectOptions::new()
                .filename(&db.path)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(fixture("before-profiles.sqlite.sql")))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::raw_sql(AssertSqlSafe(rows))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    }
}

#[rstest]
#[tokio::test]
async fn a_database_from_before_profiles_is_migrated_and_keeps_its_rows(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let skipping = "match = [\"skip_*.csv\"]\n[rows]\non_error = \"skip_rows\"\n";
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("skip.toml", skipping)],
        &[]
    ));
    old_database(&env).await;

    // Starting twice: the migration runs once and is then a no-op.
    env.pipeline().await;
    let pipeline = env.pipeline().await;

    // The old row is intact, and its content is still loaded once.
    let ledger = env.db.ledger().await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].file_name.as_str(), ledger[0].status.as_str()),
        ("old.csv", "loaded")
    );
    env.drop_file("old-again.csv", OLD_FILE);
    assert!(matches!(
        env.process(&pipeline, "old-again.csv").await.unwrap(),
        Outcome::Duplicate { .. }
    ));

    // The new status and columns work.
    env.drop_file(
        "skip_new.csv",
        "timestamp,sensor_id,temperature\n2024-05-02T12:00:00Z,s-1,20\n2024-05-02T12:01:00Z,s-1,x\n",
    );
    assert!(matches!(
        env.process(&pipeline, "skip_new.csv").await.unwrap(),
        Outcome::Loaded { rows: 1, .. }
    ));
    assert_eq!(
        env.db
            .text("SELECT status FROM ingest_files WHERE file_name = 'skip_new.csv'")
            .await
            .as_deref(),
        Some("partial")
    );
    assert_eq!(
        env.db
            .text("SELECT profile FROM ingest_files WHERE file_name = 'skip_new.csv'")
            .await
            .as_deref(),
        Some("skip")
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM file_metrics WHERE source_unit = 'degC'")
            .await,
        1
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM file_metrics WHERE column_name = 'temperature'")
            .await,
        2,
        "the old metrics row is kept"
    );
}

/// Takes the source identity column (and its index) out of a ledger with one row in
/// it: the ledger as an agent before `S3_AFTER=keep` remembered objects left it.
async fn ledger_before_source_identities(env: &TestEnv) {
    env.store().prepare().await.expect("schema applies");
    let row = "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, \
         row_count, started_at, agent) VALUES ('018f0000-0000-7000-8000-000000000002', \
         'kept.csv', 'abc', 1, 'loaded', 1, '2024-05-01 12:00:01', 'old:1')";
    let statements: &[&str] = match &env.db {
        // An older agent's script had another fingerprint.
        TestStore::Postgres(_) => &[
            "DROP INDEX ingest_files_source",
            "ALTER TABLE ingest_files DROP COLUMN source_identity",
            "UPDATE sensor_ingest_schema SET fingerprint = 'older'",
            row,
        ],
        TestStore::Sqlite(_) => &[
            "DROP INDEX ingest_files_source",
            "ALTER TABLE ingest_files DROP COLUMN source_identity",
            row,
        ],
        TestStore::Mysql(_) => &[
            "ALTER TABLE ingest_files DROP KEY ingest_files_source",
            "ALTER TABLE ingest_files DROP COLUMN source_identity",
            row,
        ],
    };
    for &text in statements {
        let sql = AssertSqlSafe(text);
        match &env.db {
            TestStore::Postgres(db) => sqlx::raw_sql(sql).execute(&db.pool).await.map(drop),
            TestStore::Mysql(db) => sqlx::raw_sql(sql).execute(&db.pool).await.map(drop),
            TestStore::Sqlite(db) => sqlx::raw_sql(sql).execute(&db.pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[rstest]
#[tokio::test]
async fn a_ledger_from_before_source_identities_gains_the_column_and_keeps_its_rows(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    ledger_before_source_identities(&env).await;
    let without_identity = "SELECT count(*) FROM ingest_files WHERE source_identity IS NULL";
    // Starting twice: the upgrade runs once and is then a no-op.
    env.store().prepare().await.expect("the upgrade applies");
    env.store()
        .prepare()
        .await
        .expect("and is a no-op the second time");
    assert_eq!(
        env.db.count(without_identity).await,
        1,
        "the old row is kept, with no identity"
    );
    let known = env
        .store()
        .known_sources(&["0123456789abcdef0123456789abcdef".to_owned()])
        .await
        .expect("the look-up runs on the upgraded ledger");
    assert!(known.is_empty());
}
