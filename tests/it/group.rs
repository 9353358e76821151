//! Group commit: small files ready together load in one transaction, each file still
//! all-or-nothing. Fifty files are started at once with a long `GROUP_WAIT_MS`, so they
//! meet in one group; on PostgreSQL, rows written by one transaction share its `xmin`,
//! which shows the group was one.

use std::time::Duration;

use rstest::rstest;
use sensor_ingest::pipeline::{Outcome, Pipeline};

use crate::common::{Backend, CutProxy, TestEnv, TestStore, env_or_skip, eventually, files_in};

/// Files in the group of each test.
const FILES: usize = 50;
/// Rows in each file.
const ROWS: usize = 10;

/// A wait long enough for every file of a test to join the first group.
const WAIT: &[(&str, &str)] = &[("GROUP_WAIT_MS", "400")];

/// The valid content of file `n`: its own sensor, so every file is a new content.
fn content(n: usize) -> String {
    let mut text = String::from("ts,id,t\n");
    for i in 0..ROWS {
        text.push_str(&format!("2024-01-01T00:{i:02}:00Z,s{n},{}.5\n", 10 + i));
    }
    text
}

fn name(n: usize) -> String {
    format!("f{n:03}.csv")
}

/// Drops `contents` under their names and processes them all at once on `pipeline`,
/// returning each file's outcome by name.
async fn process_all(
    env: &TestEnv,
    pipeline: &Pipeline,
    contents: &[(String, String)],
) -> Vec<(String, Outcome)> {
    for (name, text) in contents {
        env.drop_file(name, text);
    }
    let tasks: Vec<_> = contents
        .iter()
        .map(|(name, _)| (name.clone(), env.spawn_process(pipeline, name)))
        .collect();
    let mut outcomes = Vec::new();
    for (name, task) in tasks {
        outcomes.push((name, task.await.unwrap().unwrap()));
    }
    outcomes
}

/// Runs `sql` on the test database directly.
async fn execute(db: &TestStore, sql: &str) {
    match db {
        TestStore::Postgres(pg) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pg.pool)
                .await
                .unwrap();
        }
        TestStore::Sqlite(lite) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&lite.pool)
                .await
                .unwrap();
        }
        TestStore::Mysql(my) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&my.pool)
                .await
                .unwrap();
        }
    }
}

/// How many transactions wrote the readings: their `ingested_at` is the load
/// transaction's time (PostgreSQL's `now()`, the group's start on SQLite).
async fn loading_transactions(db: &TestStore) -> i64 {
    db.count("SELECT count(DISTINCT ingested_at) FROM sensor_readings")
        .await
}

fn count(outcomes: &[(String, Outcome)], what: fn(&Outcome) -> bool) -> usize {
    outcomes.iter().filter(|(_, o)| what(o)).count()
}

#[rstest]
#[tokio::test]
async fn a_file_the_database_refuses_rolls_back_alone_and_the_group_commits(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_vars(backend, WAIT));
    let pipeline = env.pipeline().await;
    // The database, not the reader, refuses one file's load: a constraint on its ledger
    // row, raised as a check violation.
    let refuse = match backend {
        Backend::Postgres => {
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; \
             END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON ingest_files FOR EACH ROW \
               WHEN (NEW.file_name = 'f017.csv' AND NEW.status = 'loaded') \
               EXECUTE FUNCTION refuse();"
        }
        Backend::Sqlite => {
            "CREATE TRIGGER refuse BEFORE INSERT ON ingest_files \
               WHEN NEW.file_name = 'f017.csv' AND NEW.status = 'loaded' \
               BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        }
        // 4025: MariaDB's "CONSTRAINT failed", as a CHECK constraint raises it.
        Backend::Mysql => {
            "CREATE TRIGGER refuse BEFORE INSERT ON ingest_files FOR EACH ROW BEGIN \
               IF NEW.file_name = 'f017.csv' AND NEW.status = 'loaded' THEN \
                 SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'refused by the test', \
                   MYSQL_ERRNO = 4025; \
               END IF; \
             END"
        }
    };
    execute(&env.db, refuse).await;
    let contents: Vec<_> = (0..FILES).map(|n| (name(n), content(n))).collect();
    let outcomes = process_all(&env, &pipeline, &contents).await;

    assert_eq!(
        count(&outcomes, |o| matches!(o, Outcome::Loaded { .. })),
        FILES - 1
    );
    let (refused, outcome) = outcomes
        .iter()
        .find(|(_, o)| matches!(o, Outcome::Quarantined { .. }))
        .expect("one file quarantined");
    assert_eq!(refused, "f017.csv");
    let Outcome::Quarantined { reason, .. } = outcome else {
        unreachable!()
    };
    assert!(reason.contains("refused by the test"), "{reason}");
    let quarantined = files_in(&env.quarantine());
    assert!(
        quarantined.contains(&"f017.csv".to_owned()),
        "{quarantined:?}"
    );
    assert!(
        quarantined
            .iter()
            .any(|f| f.starts_with("f017.csv") && f.ends_with(".json")),
        "the report beside it: {quarantined:?}"
    );
    assert_eq!(files_in(&env.processed()).len(), FILES - 1);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        ((FILES - 1) * ROWS) as i64
    );
    let ledger = env.db.ledger().await;
    assert_eq!(
        ledger.iter().filter(|r| r.status == "loaded").count(),
        FILES - 1
    );
    assert_eq!(
        ledger.iter().filter(|r| r.status == "quarantined").count(),
        1
    );
    assert_eq!(
        loading_transactions(&env.db).await,
        1,
        "the 49 files committed in one transaction"
    );
}

#[rstest]
#[tokio::test]
async fn a_file_the_reader_refuses_is_quarantined_and_the_group_commits(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_vars(backend, WAIT));
    let pipeline = env.pipeline().await;
    let mut contents: Vec<_> = (0..FILES).map(|n| (name(n), content(n))).collect();
    contents[23].1 = content(23).replace("15.5", "warm");
    let outcomes = process_all(&env, &pipeline, &contents).await;

    assert_eq!(
        count(&outcomes, |o| matches!(o, Outcome::Loaded { .. })),
        FILES - 1
    );
    let quarantined: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Quarantined { .. }))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(quarantined, ["f023.csv"]);
    let in_quarantine = files_in(&env.quarantine());
    assert!(
        in_quarantine
            .iter()
            .any(|f| f.starts_with("f023.csv") && f.ends_with(".json")),
        "its report: {in_quarantine:?}"
    );
    assert_eq!(files_in(&env.processed()).len(), FILES - 1);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        ((FILES - 1) * ROWS) as i64
    );
    assert_eq!(
        loading_transactions(&env.db).await,
        1,
        "the 49 files committed in one transaction"
    );
}

#[rstest]
#[tokio::test]
async fn the_same_content_twice_in_one_group_loads_once_and_is_a_duplicate_once(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_vars(backend, WAIT));
    let pipeline = env.pipeline().await;
    let mut contents: Vec<_> = (0..10).map(|n| (name(n), content(n))).collect();
    contents.push(("copy-of-f004.csv".to_owned(), content(4)));
    let outcomes = process_all(&env, &pipeline, &contents).await;

    assert_eq!(
        count(&outcomes, |o| matches!(o, Outcome::Loaded { .. })),
        10
    );
    assert_eq!(
        count(&outcomes, |o| matches!(o, Outcome::Duplicate { .. })),
        1
    );
    let loaded_of_4: Vec<_> = outcomes
        .iter()
        .filter(|(n, o)| n.contains("f004") && matches!(o, Outcome::Loaded { .. }))
        .collect();
    assert_eq!(loaded_of_4.len(), 1, "{outcomes:?}");
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        (10 * ROWS) as i64
    );
    let ledger = env.db.ledger().await;
    let duplicate = ledger.iter().find(|r| r.status == "duplicate").unwrap();
    let original = ledger
        .iter()
        .find(|r| r.status == "loaded" && r.content_hash == duplicate.content_hash)
        .unwrap();
    assert_eq!(duplicate.duplicate_of, Some(original.id));
    assert_eq!(files_in(&env.processed()).len(), 11);
    assert!(files_in(&env.quarantine()).is_empty());
    assert_eq!(
        loading_transactions(&env.db).await,
        1,
        "the ten files committed in one transaction"
    );
}

/// The connection is cut while a group gathers: the whole group fails, every file is
/// retried with backoff (none quarantined) and loads exactly once once the database is
/// back.
#[tokio::test]
async fn a_database_cut_during_a_group_retries_every_file_and_quarantines_none() {
    let env = env_or_skip!(TestEnv::with_vars(Backend::Postgres, WAIT));
    let proxy = CutProxy::start(true).await;
    let pipeline = env.pipeline_via(&proxy).await;
    let contents: Vec<_> = (0..FILES).map(|n| (name(n), content(n))).collect();
    for (name, text) in &contents {
        env.drop_file(name, text);
    }
    let tasks: Vec<_> = contents
        .iter()
        .map(|(name, _)| env.spawn_process(&pipeline, name))
        .collect();
    // Every file claimed (so read, and waiting in the group), none committed: cut.
    let db = env.db.pg();
    let claimed = eventually(Duration::from_secs(5), async || {
        db.count("SELECT count(*) FROM ingest_claims").await == FILES as i64
    })
    .await;
    assert!(claimed, "every file was claimed");
    assert_eq!(db.count("SELECT count(*) FROM ingest_files").await, 0);
    proxy.set_up(false);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_files").await,
        0,
        "nothing committed, nothing quarantined while cut"
    );
    assert_eq!(
        files_in(&env.data()).len(),
        FILES,
        "every file waits in data/"
    );
    proxy.set_up(true);
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(matches!(outcome, Outcome::Loaded { .. }), "{outcome:?}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        FILES as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_files").await,
        FILES as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM sensor_readings").await,
        (FILES * ROWS) as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM (SELECT file_id, line FROM sensor_readings GROUP BY 1, 2 HAVING count(*) > 1) d")
            .await,
        0,
        "no reading twice"
    );
    assert!(files_in(&env.quarantine()).is_empty());
    assert_eq!(files_in(&env.processed()).len(), FILES);
}

/// `GROUP_FILES=1` is the old behaviour: each file its own transaction.
#[tokio::test]
async fn group_files_one_commits_every_file_by_itself() {
    let env = env_or_skip!(TestEnv::with_vars(
        Backend::Postgres,
        &[("GROUP_FILES", "1"), ("GROUP_WAIT_MS", "400")]
    ));
    let pipeline = env.pipeline().await;
    let contents: Vec<_> = (0..5).map(|n| (name(n), content(n))).collect();
    let outcomes = process_all(&env, &pipeline, &contents).await;
    assert_eq!(count(&outcomes, |o| matches!(o, Outcome::Loaded { .. })), 5);
    assert_eq!(loading_transactions(&env.db).await, 5);
}

/// A file small in bytes but with more rows than a group holds, while quality control
/// is left to the committer: it is read again and streamed, judged by its reader, and
/// loads whole with its flags (a spike in its middle) beside a grouped file.
#[rstest]
#[tokio::test]
async fn a_small_file_with_too_many_rows_for_a_group_streams_with_its_flags(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    use sensor_ingest::qc::{Flags, Test};

    let env = env_or_skip!(TestEnv::with_vars(backend, WAIT));
    let rows = sensor_ingest::pipeline::GROUP_MAX_FILE_ROWS + 500;
    let spike_at = rows / 2;
    let mut text = String::from("ts,id,t\n");
    for i in 0..rows {
        let t = if i == spike_at {
            35.0
        } else {
            20.0 + (i % 7) as f64 * 0.1
        };
        let (h, m) = (i / 60, i % 60);
        text.push_str(&format!(
            "2024-02-{:02}T{:02}:{m:02}:00Z,long,{t:.1}\n",
            1 + h / 24,
            h % 24
        ));
    }
    assert!((text.len() as u64) < sensor_ingest::pipeline::GROUP_MAX_FILE_BYTES);
    let pipeline = env.pipeline().await;
    let contents = vec![("long.csv".to_owned(), text), (name(0), content(0))];
    let outcomes = process_all(&env, &pipeline, &contents).await;
    assert_eq!(count(&outcomes, |o| matches!(o, Outcome::Loaded { .. })), 2);
    let readings = env.db.readings().await;
    let long: Vec<_> = readings.iter().filter(|r| r.sensor_id == "long").collect();
    assert_eq!(long.len(), rows);
    let flagged: Vec<i64> = long
        .iter()
        .filter(|r| Flags(r.qc_flags).has(0, Test::Spike))
        .map(|r| r.line)
        .collect();
    // Line 1 is the header: row i is on line i + 2.
    assert_eq!(flagged, [spike_at as i64 + 2]);
}
