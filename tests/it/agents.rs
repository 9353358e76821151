//! Several agents on one folder: claims on PostgreSQL (a claimed file is left alone, an
//! expired claim is taken over, a lost claim gives the file up), each agent's name and
//! share in the ledger and `status`, and SQLite's one agent per store. The three-agent
//! run with real processes, a SIGKILL and a cut is in `tests/soak/agents.rs`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rstest::rstest;
use sensor_ingest::pipeline::{CLAIMED_ELSEWHERE, Outcome, Pipeline, TAKEN_OVER, claim_key};
use sensor_ingest::sink::{self, ClaimKey, Store};
use sensor_ingest::source::{Candidate, FileId, Identity};

use crate::common::binary::{self, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};

fn csv(file: usize, rows: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..rows {
        s.push_str(&format!(
            "{},a{file}-s{},{}.5,{},{}\n",
            1_700_000_000 + file * 1_000 + i,
            i % 3,
            i % 40,
            i % 100,
            950 + i % 100
        ));
    }
    s
}

/// A store on `env`'s database writing as `agent`, schema applied.
async fn store_as(env: &TestEnv, agent: &str) -> Arc<dyn Store> {
    let store = sink::open_as(&env.settings.database, 2, agent);
    store.prepare().await.expect("schema applies");
    store
}

fn key_of(env: &TestEnv, name: &str) -> ClaimKey {
    let path = env.data().join(name);
    let id = FileId::of(&std::fs::metadata(&path).unwrap());
    claim_key(&Candidate::in_folder(path), Identity::File(id))
}

#[tokio::test]
async fn a_file_claimed_by_another_agent_is_left_alone_without_a_ledger_row() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let other = store_as(&env, "other").await;
    let me = Pipeline::new(&env.settings, store_as(&env, "me").await);
    env.drop_file("a.csv", csv(1, 3));
    let key = key_of(&env, "a.csv");
    let claims = other.claims().expect("PostgreSQL has claims");
    assert_eq!(
        claims.claim(std::slice::from_ref(&key)).await.unwrap(),
        [true]
    );

    let outcome = env.process(&me, "a.csv").await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Skipped {
            reason: CLAIMED_ELSEWHERE
        }
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 0);
    assert_eq!(files_in(&env.data()), ["a.csv"]);

    // Released (the other agent gave up on it): now it is mine.
    claims.release(std::slice::from_ref(&key)).await.unwrap();
    let outcome = env.process(&me, "a.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 3, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        env.db
            .text("SELECT agent FROM ingest_files")
            .await
            .as_deref(),
        Some("me")
    );
    // The finished file's claim is left to run out, and stays mine meanwhile.
    assert_eq!(claims.claim(&[key]).await.unwrap(), [false]);
}

#[tokio::test]
async fn an_expired_claim_is_taken_over_and_its_old_holder_learns_it_lost_it() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let dead = store_as(&env, "dead").await;
    let me = Pipeline::new(&env.settings, store_as(&env, "me").await);
    env.drop_file("b.csv", csv(2, 4));
    let key = key_of(&env, "b.csv");
    let dead_claims = dead.claims().unwrap();
    assert_eq!(
        dead_claims.claim(std::slice::from_ref(&key)).await.unwrap(),
        [true]
    );
    // Its holder stopped renewing: the lease ran out (moved back rather than waited for).
    sqlx::query("UPDATE ingest_claims SET expires_at = clock_timestamp() - interval '1 second'")
        .execute(&env.db.pg().pool)
        .await
        .unwrap();

    let outcome = env.process(&me, "b.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 4, .. }),
        "{outcome:?}"
    );
    assert!(!dead_claims.renew(&key).await.unwrap(), "the claim is lost");
    assert_eq!(
        env.db
            .text("SELECT agent FROM ingest_claims")
            .await
            .as_deref(),
        Some("me")
    );
    // The holder renews its own claim and claims it again as long as it is its own.
    let my_claims = me.store().claims().unwrap();
    assert!(my_claims.renew(&key).await.unwrap());
    assert_eq!(my_claims.claim(&[key]).await.unwrap(), [true]);
}

#[tokio::test]
async fn several_files_are_claimed_in_one_call_each_by_one_agent() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let (a, b) = (store_as(&env, "a").await, store_as(&env, "b").await);
    let keys: Vec<ClaimKey> = (0..4)
        .map(|i| {
            let name = format!("m{i}.csv");
            env.drop_file(&name, csv(10 + i, 1));
            key_of(&env, &name)
        })
        .collect();
    let first = a.claims().unwrap().claim(&keys[..2]).await.unwrap();
    assert_eq!(first, [true, true]);
    let second = b.claims().unwrap().claim(&keys).await.unwrap();
    assert_eq!(second, [false, false, true, true]);
}

/// An attempt that fails (here the archive folder is unusable) leaves the file in the
/// folder and gives its claim up, so another agent may take it at once.
#[tokio::test]
async fn a_failed_attempt_releases_its_claim() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let mut settings = env.settings.clone();
    let not_a_folder = env.dir.path().join("processed-is-a-file");
    std::fs::write(&not_a_folder, "").unwrap();
    settings.processed_folder = not_a_folder;
    let me = Pipeline::new(&settings, store_as(&env, "me").await);
    env.drop_file("f.csv", csv(6, 2));
    let key = key_of(&env, "f.csv");
    let failed = env.process(&me, "f.csv").await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(files_in(&env.data()), ["f.csv"]);
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_claims").await, 0);
    let other = store_as(&env, "other").await;
    assert_eq!(other.claims().unwrap().claim(&[key]).await.unwrap(), [true]);
}

/// A file re-dropped under the name of a file another agent is working on is a new
/// file with its own claim, and loads (or is a duplicate) on its own turn.
#[tokio::test]
async fn a_redrop_under_a_claimed_name_is_a_new_claim() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let other = store_as(&env, "other").await;
    let me = Pipeline::new(&env.settings, store_as(&env, "me").await);
    env.drop_file("r.csv", csv(3, 2));
    let old = key_of(&env, "r.csv");
    assert_eq!(other.claims().unwrap().claim(&[old]).await.unwrap(), [true]);
    // The other agent archives it (a rename keeps its inode busy) and a producer drops
    // a new file under the same name, with the same size.
    std::fs::rename(env.data().join("r.csv"), env.processed().join("r.csv")).unwrap();
    env.drop_file("r.csv", csv(4, 2));
    let outcome = env.process(&me, "r.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 2, .. }),
        "{outcome:?}"
    );
}

/// `SQLite` has no claims: a pipeline on it never skips a file as claimed.
#[tokio::test]
async fn sqlite_stores_have_no_claims() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let pipeline = env.pipeline().await;
    assert!(pipeline.store().claims().is_none());
    env.drop_file("s.csv", csv(5, 2));
    let outcome = env.process(&pipeline, "s.csv").await.unwrap();
    assert!(matches!(outcome, Outcome::Loaded { .. }), "{outcome:?}");
    assert_ne!(TAKEN_OVER, CLAIMED_ELSEWHERE);
}

#[rstest]
#[tokio::test]
async fn each_agents_share_of_files_and_rows_is_in_the_ledger(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let a = Pipeline::new(&env.settings, store_as(&env, "host-a:1").await);
    let b = Pipeline::new(&env.settings, store_as(&env, "host-b:2").await);
    for (i, pipeline) in [&a, &a, &a, &b].into_iter().enumerate() {
        let name = format!("f{i}.csv");
        env.drop_file(&name, csv(20 + i, 10 + i));
        let outcome = env.process(pipeline, &name).await.unwrap();
        assert!(matches!(outcome, Outcome::Loaded { .. }), "{outcome:?}");
    }
    // A duplicate counts as a file of the agent that found it, with no rows.
    env.drop_file("again.csv", csv(23, 13));
    let outcome = env.process(&b, "again.csv").await.unwrap();
    assert!(matches!(outcome, Outcome::Duplicate { .. }), "{outcome:?}");

    let now = Utc::now();
    let shares = a
        .store()
        .agents_since(now - TimeDelta::hours(1))
        .await
        .unwrap();
    let summary: Vec<(&str, u64, u64)> = shares
        .iter()
        .map(|s| (s.agent.as_str(), s.files, s.rows))
        .collect();
    assert_eq!(summary, [("host-a:1", 3, 33), ("host-b:2", 2, 13)]);
    assert!(shares.iter().all(|s| s.last_finished_at <= Utc::now()));
    assert!(
        a.store()
            .agents_since(now + TimeDelta::seconds(5))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `status` names the agents of the last hour with their shares (the real binary).
#[rstest]
#[tokio::test]
async fn status_lists_the_agents_of_the_last_hour(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    env.drop_file("s.csv", csv(30, 5));
    let once = binary::command(&env, &["once"])
        .env("AGENT_ID", "ingest-east")
        .output()
        .unwrap();
    assert!(once.status.success(), "{once:?}");
    let out = binary::command(&env, &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("agents"))
        .unwrap_or_else(|| panic!("no agents line in\n{text}"));
    assert!(line.contains("ingest-east"), "{line}");
    assert!(line.contains("1 file (100%)"), "{line}");
    assert!(line.contains("5 rows (100%)"), "{line}");
    let json = binary::command(&env, &["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["agents_last_hour"][0]["agent"], "ingest-east");
    assert_eq!(v["agents_last_hour"][0]["rows"], 5);
}

/// A second agent on the same SQLite store (or the same data folder) refuses to start
/// with exit code 2, while the read-only commands still work beside the first.
#[tokio::test]
async fn a_second_agent_on_one_sqlite_store_is_refused_and_status_still_works() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let log = env.dir.path().join("first.log");
    let mut first = spawn_logged(binary::command(&env, &["run"]), &log);
    env.drop_file("x.csv", csv(40, 2));
    let loaded = eventually(Duration::from_secs(30), async || {
        files_in(&env.processed()) == ["x.csv"]
    })
    .await;
    assert!(loaded, "{}", read_log(&log));

    for args in [&["once"][..], &["run"][..]] {
        let second = binary::command(&env, args)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("another agent is already running on the SQLite database"),
            "{stderr}"
        );
    }
    // Another database, same data folder: refused for the folder.
    let other_db = env.dir.path().join("other.db");
    let second = binary::command(&env, &["once"])
        .env("DATABASE_URL", format!("sqlite://{}", other_db.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another agent is already running on the data folder"),
        "{stderr}"
    );
    let checked = env.processed().join("x.csv").display().to_string();
    for args in [
        &["status"][..],
        &["quarantine", "list"][..],
        &["check", checked.as_str()][..],
    ] {
        let out = binary::command(&env, args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} beside a running agent: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    signal(&first, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut first, Duration::from_secs(30)).await.code(),
        Some(0)
    );
    // The first one gone, a new agent starts.
    let after = binary::command(&env, &["once"]).output().unwrap();
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert!(files_in(&env.data()).is_empty());
}

/// An agent starting beside others that are loading does not apply the schema again
/// when the database already holds this version's (its ALTER TABLEs and views take
/// ACCESS EXCLUSIVE locks, which would stall the loads or deadlock with one); a
/// database whose recorded schema differs gets it applied, and recorded, again.
#[tokio::test]
async fn an_agent_starting_beside_a_load_takes_no_table_lock_when_the_schema_is_current() {
    use sqlx::Connection;
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    store_as(&env, "first").await;
    let db = env.db.pg();
    let fingerprint = || async {
        sqlx::query_scalar::<_, String>("SELECT fingerprint FROM sensor_ingest_schema")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let recorded = fingerprint().await;
    assert_eq!(recorded.len(), 64, "a BLAKE3 in hex: {recorded}");

    // A load in progress elsewhere: its transaction holds ROW EXCLUSIVE on the tables.
    let mut loading = sqlx::PgConnection::connect_with(&db.options).await.unwrap();
    let mut tx = loading.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE ingest_files, sensor_readings, file_metrics IN ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let second = sink::open_as(&env.settings.database, 2, "second");
    let started = tokio::time::timeout(Duration::from_secs(20), second.prepare()).await;
    assert!(
        matches!(started, Ok(Ok(()))),
        "the second agent waited for the load: {started:?}"
    );
    tx.rollback().await.unwrap();

    // A schema recorded by another version is applied again.
    sqlx::query("UPDATE sensor_ingest_schema SET fingerprint = 'an older version'")
        .execute(&db.pool)
        .await
        .unwrap();
    store_as(&env, "third").await;
    assert_eq!(fingerprint().await, recorded);
}
