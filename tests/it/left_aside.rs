//! `FILE_PATTERN` as a list of globs, and the files it leaves aside: named in `run`'s
//! log once each and counted by `status`, through the real binary on both backends.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::common::binary::{self, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};
use rstest::rstest;

const PATTERN: &str = "*.csv,*.txt";
const LEFT_ASIDE: &str = "file left aside: its name matches no FILE_PATTERN glob";

fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = binary::command(env, args);
    cmd.env("FILE_PATTERN", PATTERN);
    cmd
}

fn rows(sensor: &str) -> String {
    format!(
        "timestamp,sensor_id,temperature,humidity,pressure\n\
         2024-03-01T10:00:00Z,{sensor},20.5,40,1000\n\
         2024-03-01T10:01:00Z,{sensor},20.6,41,1001\n"
    )
}

/// The log lines naming `name` as left aside.
fn left_aside_lines(log: &str, name: &str) -> usize {
    let field = format!("file={name}");
    log.lines()
        .filter(|l| l.contains(LEFT_ASIDE) && l.split_whitespace().any(|w| w == field))
        .count()
}

async fn wait_for_line(log: &Path, name: &str) -> bool {
    eventually(Duration::from_secs(30), async || {
        left_aside_lines(&read_log(log), name) > 0
    })
    .await
}

#[rstest]
#[tokio::test]
async fn files_matching_no_glob_are_named_once_and_counted_by_status(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let log = env.dir.path().join("agent.log");
    let mut agent = spawn_logged(command(&env, &["run"]), &log);

    env.drop_file("a.csv", rows("a"));
    env.drop_file("b.txt", rows("b"));
    env.drop_file("c.dat", rows("c"));
    // Names that are normal while a producer writes: never reported.
    std::fs::write(env.data().join("d.dat.tmp"), "x").unwrap();
    std::fs::write(env.data().join(".e.dat"), "x").unwrap();

    let loaded = eventually(Duration::from_secs(30), async || {
        files_in(&env.processed()) == ["a.csv", "b.txt"]
    })
    .await;
    assert!(loaded, "{}", read_log(&log));
    assert!(wait_for_line(&log, "c.dat").await, "{}", read_log(&log));

    // Touched: a write event for the same name.
    std::fs::File::options()
        .write(true)
        .open(env.data().join("c.dat"))
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    // A hard link raises no close or rename event: only a rescan, which comes after the
    // touch, can find it. Its line proves that the rescan also saw c.dat.
    let staged = env.dir.path().join("f.dat");
    std::fs::write(&staged, "x").unwrap();
    std::fs::hard_link(&staged, env.data().join("f.dat")).unwrap();
    assert!(wait_for_line(&log, "f.dat").await, "{}", read_log(&log));

    signal(&agent, libc::SIGTERM);
    let status = wait_exit(&mut agent, Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    let text = read_log(&log);
    assert_eq!(left_aside_lines(&text, "c.dat"), 1, "{text}");
    assert_eq!(left_aside_lines(&text, "f.dat"), 1, "{text}");
    assert_eq!(text.matches(LEFT_ASIDE).count(), 2, "{text}");
    assert!(text.contains(&format!("pattern={PATTERN}")), "{text}");

    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        2
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );
    assert_eq!(
        files_in(&env.data()),
        [".e.dat", "c.dat", "d.dat.tmp", "f.dat"]
    );

    let out = command(&env, &["status", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["file_pattern"], PATTERN, "{s}");
    assert_eq!(s["left_aside"]["files"], 2, "{s}");
    let mut newest: Vec<&str> = s["left_aside"]["newest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    newest.sort_unstable();
    assert_eq!(newest, ["c.dat", "f.dat"], "{s}");
    assert_eq!(s["waiting"]["files"], 0, "{s}");

    let out = command(&env, &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("left aside    2 files whose names match no FILE_PATTERN ("),
        "{text}"
    );
    assert!(text.contains(&format!("file pattern  {PATTERN}")), "{text}");
}

#[tokio::test]
async fn an_empty_item_in_file_pattern_stops_the_agent_with_exit_code_2() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let out = binary::command(&env, &["run"])
        .env("FILE_PATTERN", "*.csv,,*.txt")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FILE_PATTERN"), "{stderr}");
    assert!(stderr.contains("item 2 of the list is empty"), "{stderr}");
}
