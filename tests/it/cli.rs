//! The real binary, as an operator runs it: `run` with signals, `once`, `check`,
//! configuration errors, the embedded default, and secrets kept out of every output.
//! Tests about the agent's behaviour run on both backends; tests about PostgreSQL's
//! connection (outage, refusal, password) run on it alone.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::binary::{self, PASSWORD, signal, wait_exit};
use crate::common::{Backend, TestEnv, TestStore, env_or_skip, eventually, files_in};
use rstest::rstest;

/// The binary for `env`, with its log files in the temp folder (read by [`log_text`]).
fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = binary::command(env, args);
    cmd.env("LOG_DIR", env.dir.path().join("logs"));
    cmd
}

fn run_to_end(mut cmd: Command) -> Output {
    cmd.output().expect("the binary runs")
}

/// Starts `run` with stderr captured to a file (read with [`log_text`]).
fn spawn_run(env: &TestEnv) -> Child {
    let log = std::fs::File::create(env.dir.path().join("stderr.log")).unwrap();
    command(env, &["run"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the agent starts")
}

/// Everything the agent wrote: its stderr and its log files.
fn log_text(env: &TestEnv) -> String {
    let mut text = std::fs::read_to_string(env.dir.path().join("stderr.log")).unwrap_or_default();
    if let Ok(dir) = std::fs::read_dir(env.dir.path().join("logs")) {
        for entry in dir {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
    }
    text
}

fn rows_csv(n: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},s{},{}.5,{},{}\n",
            1_700_000_000 + i,
            i % 50,
            i % 40,
            i % 100,
            950 + i % 100
        ));
    }
    s
}

/// Whether a load is writing readings right now: a COPY in PostgreSQL, or SQLite's
/// write-ahead log past the size the schema alone gives it.
async fn load_in_progress(env: &TestEnv) -> bool {
    match &env.db {
        TestStore::Postgres(db) => {
            db.count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query LIKE 'COPY sensor_readings%'",
            )
            .await
                > 0
        }
        TestStore::Mysql(db) => {
            db.count(
                "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() \
                 AND info LIKE 'INSERT INTO sensor_readings%'",
            )
            .await
                > 0
        }
        TestStore::Sqlite(db) => {
            let wal = db.path.with_extension("db-wal");
            std::fs::metadata(wal).is_ok_and(|m| m.len() > 2 << 20)
        }
    }
}

async fn wait_for_file(dir: &Path, name: &str) -> bool {
    let path = dir.join(name);
    eventually(Duration::from_secs(30), async || path.exists()).await
}

#[rstest]
#[tokio::test]
async fn run_loads_dropped_files_and_exits_0_on_sigterm(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let mut agent = spawn_run(&env);
    env.drop_file("first.csv", rows_csv(10));
    assert!(
        wait_for_file(&env.processed(), "first.csv").await,
        "{}",
        log_text(&env)
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        10
    );

    signal(&agent, libc::SIGTERM);
    let status = wait_exit(&mut agent, Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    let log = log_text(&env);
    assert!(log.contains("file loaded"), "{log}");
    assert!(log.contains("rows_per_s"), "{log}");
    assert!(!log.contains(PASSWORD));
}

#[tokio::test]
async fn a_file_written_slowly_is_not_read_before_it_is_complete() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let mut agent = spawn_run(&env);
    let content = rows_csv(500);
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    {
        // Written in place, in pieces, with pauses longer than SETTLE_MS and than a
        // rescan interval: only the close may release it.
        let mut f = std::fs::File::create(env.data().join("slow.csv")).unwrap();
        for chunk in lines.chunks(100) {
            f.write_all(chunk.concat().as_bytes()).unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert!(
                env.data().join("slow.csv").exists(),
                "taken before it was complete"
            );
        }
    }
    assert!(
        wait_for_file(&env.processed(), "slow.csv").await,
        "{}",
        log_text(&env)
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        500
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 1);
    assert!(files_in(&env.quarantine()).is_empty());
    signal(&agent, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut agent, Duration::from_secs(20)).await.code(),
        Some(0)
    );
}

/// SIGTERM while a large file is being copied: the agent lets it finish (all rows,
/// file archived) and exits 0. A second signal stops at once and the transaction
/// rolls back (no row, file still waiting). Either way: all or nothing.
#[rstest]
#[tokio::test]
async fn sigterm_during_a_load_leaves_all_or_nothing(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    for signals in [1, 2] {
        let env = env_or_skip!(TestEnv::new(backend));
        let mut agent = spawn_run(&env);
        let rows = 300_000;
        env.drop_file("big.csv", rows_csv(rows));
        let copying = eventually(Duration::from_secs(30), async || {
            load_in_progress(&env).await
        })
        .await;
        assert!(copying, "the load started: {}", log_text(&env));
        signal(&agent, libc::SIGTERM);
        if signals == 2 {
            // As an operator would: signal again after the agent acknowledged the
            // first (tokio merges signals that arrive before the first is handled).
            let acknowledged = eventually(Duration::from_secs(10), async || {
                log_text(&env).contains("shutdown requested")
            })
            .await;
            assert!(acknowledged, "{}", log_text(&env));
            signal(&agent, libc::SIGTERM);
        }
        let status = wait_exit(&mut agent, Duration::from_secs(60)).await;
        // PostgreSQL notices the closed connection and rolls back; give it a moment.
        // (SQLite ignores the uncommitted WAL frames when the file is next opened.)
        if let TestStore::Postgres(db) = &env.db {
            let settled = eventually(Duration::from_secs(10), async || {
                db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY sensor_readings%' AND state = 'active'")
                    .await
                    == 0
            })
            .await;
            assert!(settled);
        }
        let loaded = env.db.count("SELECT count(*) FROM sensor_readings").await;
        let ledger = env.db.count("SELECT count(*) FROM ingest_files").await;
        let in_data = env.data().join("big.csv").exists();
        let in_processed = env.processed().join("big.csv").exists();
        if signals == 1 {
            assert_eq!(status.code(), Some(0), "{}", log_text(&env));
            assert_eq!(
                (loaded, ledger),
                (rows as i64, 1),
                "the file in progress finished"
            );
            assert!(in_processed && !in_data);
        } else {
            assert_eq!(status.code(), Some(130), "{}", log_text(&env));
            assert!(
                (loaded == 0 && ledger == 0 && in_data) || (loaded == rows as i64 && ledger == 1),
                "all or nothing: rows={loaded} ledger={ledger} in_data={in_data}"
            );
        }
    }
}

#[rstest]
#[tokio::test]
async fn once_exits_0_when_all_load_and_1_when_one_is_quarantined(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    env.drop_file("a.csv", rows_csv(5));
    env.drop_file("b.csv", rows_csv(7));
    let out = run_to_end(command(&env, &["once"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_in(&env.processed()), vec!["a.csv", "b.csv"]);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        12
    );

    env.drop_file(
        "c.csv",
        "timestamp,sensor_id,temperature\n2024-01-01T00:00:00Z,x,hot\n",
    );
    env.drop_file("d.csv", rows_csv(3));
    let out = run_to_end(command(&env, &["once"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["c.csv", "c.csv.error.json"]
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        15
    );
}

#[tokio::test]
async fn once_with_the_database_down_exits_1_and_keeps_the_file_waiting() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.drop_file("a.csv", rows_csv(5));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run_to_end({
        let mut cmd = command(&env, &["once", "--retries", "1"]);
        cmd.env(
            "DATABASE_URL",
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/nowhere"),
        );
        cmd
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_eq!(files_in(&env.data()), vec!["a.csv"]);
    assert!(files_in(&env.quarantine()).is_empty());
}

#[tokio::test]
async fn check_reports_every_problem_without_loading() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let good = env.dir.path().join("good.csv");
    let bad = env.dir.path().join("bad.csv");
    std::fs::write(&good, rows_csv(3)).unwrap();
    std::fs::write(
        &bad,
        "timestamp,sensor_id,temperature\n2024-01-01T00:00:00Z,x,1\n2024-13-01T00:00:00Z,x,1\n2024-01-01T00:00:00Z,,99\n",
    )
    .unwrap();
    let out = run_to_end(command(&env, &["check", good.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok"));

    let out = run_to_end(command(
        &env,
        &[
            "check",
            "--json",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["valid"], true);
    assert_eq!(json[1]["valid"], false);
    assert_eq!(json[1]["invalid_rows"], 2);
    let errors: Vec<(u64, String)> = json[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "invalid_timestamp".to_owned()),
            (4, "missing_value".to_owned()),
            (4, "out_of_range".to_owned())
        ]
    );
    // Nothing was loaded, nothing moved, no database even.
    let TestStore::Sqlite(db) = &env.db else {
        unreachable!()
    };
    assert!(!db.path.exists(), "check opened no database");
    assert!(bad.exists() && good.exists());
}

#[tokio::test]
async fn a_bad_setting_stops_with_exit_code_2_naming_it() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let bad_url = format!("postgres://me:{PASSWORD}@host:notaport/db");
    let cases = [
        ("SOURCE_TIMEZONE", "Mars/Olympus"),
        ("WORKERS", "0"),
        ("MONITOR_INTERVAL", "soon"),
        ("LOG_FORMAT", "xml"),
        ("TEMPERATURE_MAX", "-100"),
        ("DATABASE_URL", bad_url.as_str()),
    ];
    for (var, value) in cases {
        let mut cmd = command(&env, &["once"]);
        cmd.env(var, value);
        let out = run_to_end(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(stderr.contains("expected"), "{var}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{var}: {stderr}");
    }
}

#[tokio::test]
async fn the_password_never_appears_in_output_logs_reports_or_help() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.drop_file("good.csv", rows_csv(5));
    env.drop_file("bad.csv", "timestamp,sensor_id,temperature\nnope,x,1\n");
    let mut cmd = command(&env, &["once"]);
    cmd.env("LOG_LEVEL", "trace");
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    let mut everything = String::from_utf8_lossy(&out.stderr).into_owned();
    everything.push_str(&String::from_utf8_lossy(&out.stdout));
    everything.push_str(&log_text(&env));
    everything
        .push_str(&std::fs::read_to_string(env.quarantine().join("bad.csv.error.json")).unwrap());
    let help = run_to_end(command(&env, &["--help"]));
    assert_eq!(help.status.code(), Some(0));
    everything.push_str(&String::from_utf8_lossy(&help.stdout));
    assert!(everything.contains("good.csv"), "the outputs were captured");
    assert!(!everything.contains(PASSWORD));
}

#[tokio::test]
async fn a_database_that_refuses_the_agent_stops_it_at_once() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.drop_file("a.csv", rows_csv(5));
    let url = binary::agent_database_url(&env).replace(&env.db.pg().name, "no_such_database_here");
    let started = std::time::Instant::now();
    let out = run_to_end({
        // With unlimited retries: only the refusal can end it quickly.
        let mut cmd = command(&env, &["run"]);
        cmd.env("DATABASE_URL", url);
        cmd
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("no_such_database_here"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(files_in(&env.data()), vec!["a.csv"]);
}

#[tokio::test]
async fn with_no_database_configured_it_runs_on_sqlite_in_the_working_folder() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("a.csv", rows_csv(5));
    let mut cmd = command(&env, &["once"]);
    cmd.env_remove("DATABASE_URL");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("embedded SQLite store").count(),
        1,
        "one startup line says where the data goes: {stderr}"
    );
    assert!(stderr.contains("sqlite://./sensor-ingest.db"), "{stderr}");
    assert!(env.dir.path().join("sensor-ingest.db").exists());
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        5
    );
    assert_eq!(files_in(&env.processed()), vec!["a.csv"]);

    // Any DB_* variable selects PostgreSQL instead, as the seed projects' settings did.
    let mut cmd = command(&env, &["once", "--retries", "0"]);
    cmd.env_remove("DATABASE_URL").env("DB_PORT", "1");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("postgres://postgres@localhost:1/"),
        "{stderr}"
    );
    assert!(!stderr.contains("embedded SQLite"), "{stderr}");
}

#[tokio::test]
async fn an_sqlite_file_that_is_not_a_database_stops_the_agent_at_once() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("a.csv", rows_csv(5));
    let path = env.dir.path().join("notes.db");
    std::fs::write(&path, "these are notes, not a database\n".repeat(200)).unwrap();
    let started = std::time::Instant::now();
    let out = run_to_end({
        let mut cmd = command(&env, &["run"]);
        cmd.env("DATABASE_URL", format!("sqlite://{}", path.display()));
        cmd
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("notes.db"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(files_in(&env.data()), vec!["a.csv"]);
}

#[tokio::test]
async fn sigterm_while_waiting_for_the_database_stops_cleanly() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("a.csv", rows_csv(5));
    // A port nothing listens on: the agent keeps retrying its startup.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(env.dir.path().join("stderr.log")).unwrap();
    let mut agent = command(&env, &["run"])
        .env(
            "DATABASE_URL",
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/nowhere"),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the agent starts");
    let waiting = eventually(Duration::from_secs(30), async || {
        log_text(&env).contains("database not reachable yet")
    })
    .await;
    assert!(waiting, "{}", log_text(&env));
    signal(&agent, libc::SIGTERM);
    let status = wait_exit(&mut agent, Duration::from_secs(10)).await;
    let log = log_text(&env);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(files_in(&env.data()), vec!["a.csv"], "nothing was taken");
}

/// `docs reference` needs no settings (a bad one does not stop it): it writes the pages,
/// `--check` passes on what it wrote and on the committed pages, and fails naming each
/// page that is missing or edited.
#[test]
fn docs_reference_writes_and_checks_the_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reference");
    let docs = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sensor-ingest"))
            .current_dir(tmp.path())
            .env_clear()
            .env("WORKERS", "many")
            .args(["docs", "reference"])
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let dir_arg = dir.to_str().unwrap();
    let out = docs(&["--check", "--dir", dir_arg]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("settings.md: differs"), "{text}");

    let out = docs(&["--dir", dir_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "settings.md",
        "rules.md",
        "units.md",
        "profile.md",
        "metrics.md",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with("<!-- generated by `sensor-ingest docs reference`"));
    }
    assert!(docs(&["--check", "--dir", dir_arg]).status.success());

    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference");
    let out = docs(&["--check", "--dir", committed.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "docs/reference is out of date: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let rules = dir.join("rules.md");
    let edited = std::fs::read_to_string(&rules).unwrap() + "\nan edit by hand\n";
    std::fs::write(&rules, edited).unwrap();
    let out = docs(&["--check", "--dir", dir_arg]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rules.md: differs") && !text.contains("units.md"),
        "{text}"
    );
}
