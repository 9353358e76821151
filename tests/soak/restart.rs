//! A MariaDB server restart while the agent loads: `mysqladmin shutdown` with loads in
//! flight, files arriving while the server is down, then the server started again.
//! Every file must end loaded exactly once: the loads cut off roll back and are
//! retried (a lost connection is transient), nothing is quarantined, no row is stored
//! twice. The server is brought back up even when the test fails
//! ([`ServerRestarter`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::common::binary::{command, deliver, entries, read_log, signal, spawn_logged, wait_exit};
use crate::common::mysql::admin_options;
use crate::common::{Backend, TestEnv, env_or_skip, eventually};
use sqlx::{Connection, MySqlConnection};

/// A file of `n` readings whose sensor ids and times are its own.
fn rows_csv(file: usize, n: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},r{file}-s{},{}.5,{},{}\n",
            1_700_000_000 + file * 100_000 + i,
            i % 5,
            i % 40,
            i % 100,
            950 + i % 100
        ));
    }
    s
}

/// Rows of file `i`: every fifth file large enough to be mid-load at the shutdown.
fn rows_of(i: usize) -> usize {
    if i.is_multiple_of(5) { 20_000 } else { 500 + i }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restart_during_loads_loses_nothing_and_loads_nothing_twice() {
    let _alone = crate::one_at_a_time().await;
    let env = env_or_skip!(TestEnv::new(Backend::Mysql));
    // Declared after `env`: dropped first, so the server is up when the database goes.
    let _restarter = ServerRestarter;
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");
    let mut cmd = command(&env, &["run"]);
    cmd.env("LOG_FORMAT", "json");
    let mut agent = spawn_logged(cmd, &log);
    let files = 40;
    for i in 0..files / 2 {
        assert!(deliver(
            &staging,
            &env.data(),
            &format!("f{i:03}.csv"),
            rows_csv(i, rows_of(i)).as_bytes()
        ));
    }
    let started = eventually(Duration::from_secs(60), async || {
        entries(&env.processed()).len() >= 3
    })
    .await;
    assert!(
        started,
        "no file loaded before the restart:\n{}",
        read_log(&log)
    );

    stop_server().await;
    for i in files / 2..files {
        assert!(deliver(
            &staging,
            &env.data(),
            &format!("f{i:03}.csv"),
            rows_csv(i, rows_of(i)).as_bytes()
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        entries(&env.quarantine()).is_empty(),
        "a file was quarantined while the server was down:\n{}",
        read_log(&log)
    );
    tokio::task::spawn_blocking(start_server_blocking)
        .await
        .unwrap();

    let drained = eventually(Duration::from_secs(240), async || {
        entries(&env.processed()).len() == files
    })
    .await;
    signal(&agent, libc::SIGTERM);
    let status = wait_exit(&mut agent, Duration::from_secs(30)).await;
    let text = read_log(&log);
    assert!(drained, "not every file loaded after the restart:\n{text}");
    assert!(status.success(), "{status}\n{text}");
    assert!(entries(&env.quarantine()).is_empty(), "{text}");
    assert!(entries(&env.data()).is_empty(), "{text}");

    // Every file once in the ledger, with its rows once in the readings.
    let ledger = env.db.ledger().await;
    let loaded: Vec<_> = ledger.iter().filter(|r| r.status == "loaded").collect();
    assert_eq!(loaded.len(), files, "{ledger:?}");
    let hashes: HashSet<&str> = loaded.iter().map(|r| r.content_hash.as_str()).collect();
    assert_eq!(hashes.len(), files);
    assert!(ledger.iter().all(|r| r.status == "loaded"), "{ledger:?}");
    let readings = env.db.readings().await;
    let expected: usize = (0..files).map(rows_of).sum();
    assert_eq!(readings.len(), expected);
    let mut per_file: HashMap<uuid::Uuid, i64> = HashMap::new();
    for r in &readings {
        *per_file.entry(r.file_id).or_default() += 1;
    }
    for row in &loaded {
        assert_eq!(
            per_file.get(&row.id),
            Some(&row.row_count),
            "{}",
            row.file_name
        );
    }
    let distinct: HashSet<(&str, chrono::DateTime<chrono::Utc>)> = readings
        .iter()
        .map(|r| (r.sensor_id.as_str(), r.ts))
        .collect();
    assert_eq!(distinct.len(), readings.len(), "a row was stored twice");
    // The outage was felt: attempts failed and were retried, not quarantined.
    let retries = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["next_delay_ms"].is_u64())
        .count();
    assert!(
        retries > 0,
        "no attempt failed while the server was down:\n{text}"
    );
    println!(
        "mariadb restart: files={files} rows={} retries_logged={retries}",
        readings.len()
    );
}

/// Whether the test server accepts connections.
pub async fn server_up() -> bool {
    MySqlConnection::connect_with(&admin_options())
        .await
        .is_ok()
}

/// Stops the test server (`mysqladmin shutdown`) and waits until it refuses
/// connections. Take a [`ServerRestarter`] first: it brings the server back whatever
/// the test does next.
pub async fn stop_server() {
    let o = admin_options();
    let status = std::process::Command::new("mysqladmin")
        .args(["-u", o.get_username(), "-h", o.get_host()])
        .arg(format!("--port={}", o.get_port()))
        .arg("shutdown")
        .status()
        .expect("mysqladmin runs");
    assert!(status.success(), "mysqladmin shutdown failed: {status}");
    for _ in 0..600 {
        if !server_up().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("MariaDB still answers a minute after its shutdown");
}

/// Starts the server the way Debian's init script does (`mysqld_safe` in the
/// background, in a session of its own so that it outlives the test), and waits until
/// it accepts connections. Blocking: also called from `Drop`.
pub fn start_server_blocking() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if rt.block_on(server_up()) {
        return;
    }
    // `--fork`: setsid returns at once, and mysqld_safe is nobody's child here.
    let started = std::process::Command::new("setsid")
        .args(["--fork", "/usr/bin/mysqld_safe"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("setsid runs");
    assert!(started.success(), "setsid mysqld_safe: {started}");
    for _ in 0..1200 {
        if rt.block_on(server_up()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("MariaDB did not come back within two minutes of mysqld_safe");
}

/// Brings the test server back up when dropped, on success and on failure alike
/// (`Drop` runs while a failed test unwinds). Declare it after the test's
/// `TestEnv`, so that the server is up again before the test database is dropped.
pub struct ServerRestarter;

impl Drop for ServerRestarter {
    fn drop(&mut self) {
        // A thread of its own: the test's runtime may be the one dropping this.
        let _ = std::thread::spawn(start_server_blocking).join();
    }
}
