//! Objects left in place (`S3_AFTER=keep`): loaded once, then left alone — across
//! `once` runs, a `run` restart and agents — by the source identity each ledger row
//! records (bucket, key, ETag, size). An overwritten key is a new delivery; a refused
//! object goes to the quarantine and comes back only through `quarantine retry`.

use std::net::TcpListener;
use std::process::Child;
use std::time::Duration;

use rstest::rstest;

use super::{S3Server, SECRET_KEY, count, csv, http, prepared};
use crate::common::binary::{read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually};

/// Runs `once` with `S3_AFTER=keep` and returns its log, checking it exits with success
/// (or 1, for a quarantine, when `quarantines`) and never shows the secret key.
async fn once_keep(s3: &S3Server, env: &TestEnv, quarantines: bool) -> String {
    let out = keep(s3.agent(env, &["once"]))
        .stdout(std::process::Stdio::null())
        .output()
        .expect("once runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let expected = if quarantines { 1 } else { 0 };
    assert_eq!(out.status.code(), Some(expected), "once:\n{log}");
    assert!(!log.contains(SECRET_KEY), "the secret key leaked:\n{log}");
    log
}

fn keep(mut cmd: std::process::Command) -> std::process::Command {
    cmd.env("S3_AFTER", "keep");
    cmd
}

async fn ledger_rows(env: &TestEnv) -> i64 {
    env.db.count("SELECT count(*) FROM ingest_files").await
}

/// The value of the metric line starting `name ` in an OpenMetrics text, if shown.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The agent's `/metrics` text once `ready` holds of it (within 30 s), or the last
/// text seen.
async fn metrics_when(port: u16, ready: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    eventually(Duration::from_secs(30), async || {
        last = http(port, "GET /metrics HTTP/1.0\r\n\r\n").await;
        ready(&last)
    })
    .await;
    last
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[case::mysql(Backend::Mysql)]
#[tokio::test]
async fn kept_objects_load_once_and_restarts_neither_read_nor_record_them_again(
    #[case] backend: Backend,
) {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    s3.put("incoming/a.csv", csv(1, 4)).await;
    s3.put("incoming/site-b/b.csv", csv(2, 5)).await;
    s3.put("incoming/copy-of-a.csv", csv(1, 4)).await;
    s3.put("incoming/bad.csv", "when,what\n1,2\n").await;

    once_keep(&s3, &env, true).await;
    assert_eq!(count(&env, "loaded").await, 2);
    assert_eq!(count(&env, "duplicate").await, 1);
    assert_eq!(count(&env, "quarantined").await, 1);
    assert_eq!(ledger_rows(&env).await, 4);
    let recorded = env
        .db
        .count("SELECT count(*) FROM ingest_files WHERE source_identity IS NOT NULL")
        .await;
    assert_eq!(recorded, 4, "every row records its object's identity");
    // Loaded and duplicate objects stay; the refused one went to the quarantine.
    assert_eq!(
        s3.keys().await,
        [
            "incoming/a.csv",
            "incoming/copy-of-a.csv",
            "incoming/site-b/b.csv",
            "quarantine/bad.csv",
            "quarantine/bad.csv.error.json",
        ]
    );

    // A second `once` (another agent: AGENT_ID is host:pid) takes nothing: not even a
    // HEAD, let alone a GET, and writes no ledger row.
    let log = once_keep(&s3, &env, false).await;
    assert!(log.contains("processing files present files=0"), "{log}");
    assert!(
        log.contains("left alone, unread") && log.contains("objects=3"),
        "{log}"
    );
    assert_eq!(ledger_rows(&env).await, 4, "{log}");

    // A `run` restart: listings for more than 2 s (about three list calls each
    // 300 ms), so full ones among them (S3_RECONCILE=2s), and not a byte read.
    prepared(&env).await;
    let port = free_port();
    let log_path = env.dir.path().join("agent.log");
    let mut cmd = keep(s3.agent(&env, &["run"]));
    cmd.env("HTTP_ADDR", format!("127.0.0.1:{port}"));
    let mut agent = spawn_logged(cmd, &log_path);
    let text = metrics_when(port, |m| {
        metric(m, "sensor_ingest_s3_list_calls_total").is_some_and(|n| n >= 25)
    })
    .await;
    assert_eq!(
        metric(&text, "sensor_ingest_s3_objects_known_total"),
        Some(3),
        "{text}\n{}",
        read_log(&log_path)
    );
    assert_eq!(
        metric(&text, "sensor_ingest_read_bytes_total"),
        Some(0),
        "{text}"
    );
    assert_eq!(ledger_rows(&env).await, 4);

    // The key overwritten with new content: a new delivery, loaded once, however many
    // listings follow.
    s3.put("incoming/a.csv", csv(3, 6)).await;
    let loaded = eventually(Duration::from_secs(30), async || {
        count(&env, "loaded").await == 3
    })
    .await;
    assert!(loaded, "{}", read_log(&log_path));
    let calls = metric(
        &http(port, "GET /metrics HTTP/1.0\r\n\r\n").await,
        "sensor_ingest_s3_list_calls_total",
    )
    .unwrap();
    let text = metrics_when(port, |m| {
        metric(m, "sensor_ingest_s3_list_calls_total").is_some_and(|n| n >= calls + 25)
    })
    .await;
    signal(&agent, libc::SIGTERM);
    wait_exit(&mut agent, Duration::from_secs(20)).await;
    assert_eq!(ledger_rows(&env).await, 5, "{}", read_log(&log_path));
    assert_eq!(
        metric(&text, "sensor_ingest_read_bytes_total"),
        Some(csv(3, 6).len() as u64),
        "only the new content was read: {text}"
    );

    // Restarted again: the new content is known too.
    let log = once_keep(&s3, &env, false).await;
    assert!(log.contains("processing files present files=0"), "{log}");
    assert_eq!(ledger_rows(&env).await, 5);
    let rows = env.db.count("SELECT count(*) FROM sensor_readings").await;
    assert_eq!(rows, 4 + 5 + 6);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[case::mysql(Backend::Mysql)]
#[tokio::test]
async fn a_refused_kept_object_is_not_retried_by_listings_but_by_quarantine_retry(
    #[case] backend: Backend,
) {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    let good = csv(1, 4);
    let bad = good.replacen(",1.5,", ",hot,", 1);
    s3.put("incoming/bad.csv", bad.clone()).await;
    once_keep(&s3, &env, true).await;
    assert_eq!(count(&env, "quarantined").await, 1);

    // The next listings leave it alone: it is in the quarantine, not under the prefix.
    let log = once_keep(&s3, &env, false).await;
    assert!(log.contains("processing files present files=0"), "{log}");
    assert_eq!(ledger_rows(&env).await, 1);

    // A person's retry comes seconds after the upload, not within its second of
    // Last-Modified: then the copy put back would have the identity the first attempt
    // still holds a claim on (kept objects' claims run out by themselves), and wait for
    // it on PostgreSQL and MariaDB.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A retry of the very same bytes puts back an object with the identity the
    // quarantined row records: it is taken (a quarantined row never makes an object
    // known), refused again, and back in the quarantine.
    let retry = keep(s3.agent(&env, &["quarantine", "retry", "bad.csv"]))
        .output()
        .unwrap();
    assert_eq!(retry.status.code(), Some(0), "{retry:?}");
    assert_eq!(s3.text("incoming/bad.csv").await, bad);
    once_keep(&s3, &env, true).await;
    assert_eq!(count(&env, "quarantined").await, 2);

    // Fixed and retried: loaded once, then left in place and alone.
    s3.put("quarantine/bad.csv", good.clone()).await;
    let retry = keep(s3.agent(&env, &["quarantine", "retry", "bad.csv"]))
        .output()
        .unwrap();
    assert_eq!(retry.status.code(), Some(0), "{retry:?}");
    once_keep(&s3, &env, false).await;
    assert_eq!(count(&env, "loaded").await, 1);
    let log = once_keep(&s3, &env, false).await;
    assert!(log.contains("processing files present files=0"), "{log}");
    assert_eq!(ledger_rows(&env).await, 3);
    assert!(s3.keys().await.contains(&"incoming/bad.csv".to_owned()));
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::mysql(Backend::Mysql)]
#[tokio::test]
async fn two_agents_on_a_kept_bucket_load_every_object_once_also_after_a_restart(
    #[case] backend: Backend,
) {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    let objects = 40;
    for i in 0..objects {
        s3.put(&format!("incoming/k{i:03}.csv"), csv(i, 3)).await;
    }
    prepared(&env).await;
    let log = env.dir.path().join("agents.log");
    let start = |n: usize| {
        let mut cmd = keep(s3.agent(&env, &["run"]));
        cmd.env("AGENT_ID", format!("agent-{n}"));
        spawn_logged(cmd, &log)
    };
    let stop = async |agents: &mut Vec<Child>| {
        for agent in agents.iter_mut() {
            signal(agent, libc::SIGTERM);
            wait_exit(agent, Duration::from_secs(30)).await;
        }
    };
    let mut agents: Vec<Child> = (0..2).map(start).collect();
    let done = eventually(Duration::from_secs(120), async || {
        count(&env, "loaded").await >= objects as i64
    })
    .await;
    stop(&mut agents).await;
    assert!(done, "{}", read_log(&log));
    assert_eq!(count(&env, "loaded").await, objects as i64);
    assert_eq!(count(&env, "duplicate").await, 0, "{}", read_log(&log));

    // Past the claims' lease (sink::claim::LEASE, 20 s), nothing but the ledger stands
    // between a restarted agent and a second read of every object.
    tokio::time::sleep(Duration::from_secs(22)).await;
    let mut agents: Vec<Child> = (0..2).map(start).collect();
    // Several full listings each (S3_RECONCILE=2s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop(&mut agents).await;
    assert_eq!(
        env.db.count("SELECT count(*) FROM ingest_files").await,
        objects as i64,
        "{}",
        read_log(&log)
    );
    let rows = env.db.count("SELECT count(*) FROM sensor_readings").await;
    assert_eq!(rows, 3 * objects as i64);
    assert_eq!(s3.keys().await.len(), objects);
}
