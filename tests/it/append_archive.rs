//! Append mode: a followed file that stopped growing is archived (`FOLLOW_ARCHIVE_AFTER`)
//! only once no writer could still append — read to its end with no partial last line,
//! not grown for the time asked, open for writing by no process — as a copy (made once)
//! or a move (its position forgotten: the next file of the name is new, read from its
//! start); a move out of a read-only data folder is refused at startup. Both backends.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::binary::{command, read_log};
use crate::common::{Backend, TestEnv, env_or_skip, files_in};
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;

const HEADER: &str = "timestamp,sensor_id,temperature\n";

fn line(minute: u32, value: f64) -> String {
    format!("2024-05-01T00:{minute:02}:00Z,a,{value}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Makes the file look as if it last grew two hours ago.
fn age(path: &Path) {
    let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
}

async fn env(backend: Backend, how: &str) -> Option<TestEnv> {
    TestEnv::with_vars(
        backend,
        &[
            ("SOURCE_MODE", "append"),
            ("FOLLOW_ARCHIVE_AFTER", "1h"),
            ("FOLLOW_ARCHIVE", how),
        ],
    )
    .await
}

fn loaded(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Loaded { rows, .. } => rows,
        other => panic!("expected a load, got {other:?}"),
    }
}

#[rstest]
#[tokio::test]
async fn an_idle_followed_file_is_copied_once_and_never_while_a_writer_could_append(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend, "copy"));
    let pipeline = env.pipeline().await;
    let path = env.data().join("day.csv");
    std::fs::write(
        &path,
        format!("{HEADER}{}{}2024-05-01T00:02", line(0, 1.0), line(1, 2.0)),
    )
    .unwrap();
    assert_eq!(loaded(env.process(&pipeline, "day.csv").await.unwrap()), 2);
    // Idle for two hours, but a partial last line: a writer has more to write.
    age(&path);
    env.process(&pipeline, "day.csv").await.unwrap();
    assert!(files_in(&env.processed()).is_empty());
    append(&path, ":00Z,a,3\n");
    assert_eq!(loaded(env.process(&pipeline, "day.csv").await.unwrap()), 1);
    // Not grown for the time asked yet.
    env.process(&pipeline, "day.csv").await.unwrap();
    assert!(files_in(&env.processed()).is_empty());
    // Idle, read to its end, but a process holds it open for writing.
    age(&path);
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    env.process(&pipeline, "day.csv").await.unwrap();
    assert!(files_in(&env.processed()).is_empty(), "a writer holds it");
    drop(writer);
    // Now copied, the file left in place and still followed; and copied only once.
    env.process(&pipeline, "day.csv").await.unwrap();
    assert_eq!(files_in(&env.processed()), ["day.csv"]);
    assert_eq!(
        std::fs::read(env.processed().join("day.csv")).unwrap(),
        std::fs::read(&path).unwrap()
    );
    assert_eq!(files_in(&env.data()), ["day.csv"]);
    env.process(&pipeline, "day.csv").await.unwrap();
    assert_eq!(files_in(&env.processed()), ["day.csv"]);
    assert_eq!(env.db.count("SELECT count(*) FROM followed_files").await, 1);
    // It grows again: loaded as usual; idle again later, its new copy beside the first.
    append(&path, &line(4, 5.0));
    assert_eq!(loaded(env.process(&pipeline, "day.csv").await.unwrap()), 1);
    age(&path);
    env.process(&pipeline, "day.csv").await.unwrap();
    assert_eq!(files_in(&env.processed()).len(), 2);
    assert_eq!(env.db.readings().await.len(), 4);
}

#[rstest]
#[tokio::test]
async fn an_idle_followed_file_moved_is_forgotten_and_the_next_of_its_name_is_new(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend, "move"));
    let pipeline = env.pipeline().await;
    let path = env.data().join("day.csv");
    std::fs::write(&path, format!("{HEADER}{}{}", line(0, 1.0), line(1, 2.0))).unwrap();
    assert_eq!(loaded(env.process(&pipeline, "day.csv").await.unwrap()), 2);
    age(&path);
    env.process(&pipeline, "day.csv").await.unwrap();
    assert!(files_in(&env.data()).is_empty(), "moved");
    assert_eq!(files_in(&env.processed()), ["day.csv"]);
    assert_eq!(env.db.count("SELECT count(*) FROM followed_files").await, 0);
    // The next day's file under the same name, shorter than the offset the old one
    // reached: a new file read from its start, not a rewrite.
    std::fs::write(&path, format!("{HEADER}{}", line(30, 7.0))).unwrap();
    assert_eq!(loaded(env.process(&pipeline, "day.csv").await.unwrap()), 1);
    assert!(files_in(&env.quarantine()).is_empty());
    assert_eq!(env.db.readings().await.len(), 3);
    assert_eq!(
        env.db
            .count("SELECT committed_lines FROM followed_files WHERE file_name = 'day.csv'")
            .await,
        2
    );
}

#[rstest]
#[tokio::test]
async fn a_move_out_of_a_read_only_folder_is_refused_at_startup(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend, "move"));
    env.pipeline().await;
    let data = env.data();
    let mounted = std::process::Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&data)
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: no read-only bind mount here (needs root)");
        return;
    }
    let log = env.dir.path().join("agent.log");
    let mut cmd = command(&env, &["once"]);
    cmd.env("SOURCE_MODE", "append")
        .env("FOLLOW_ARCHIVE_AFTER", "1h")
        .env("FOLLOW_ARCHIVE", "move")
        .stderr(std::fs::File::create(&log).unwrap());
    let status = cmd.status().unwrap();
    let _ = std::process::Command::new("umount").arg(&data).status();
    let text = read_log(&log);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("archived by a move") && text.contains("FOLLOW_ARCHIVE=copy"),
        "{text}"
    );
}
