//! File-system hostility: entries that are not data files, files that vanish, grow or
//! cannot be read, and a processed/ folder that refuses the move. The agent never
//! blocks, never loses a file, and never loads one twice.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::binary::{command, deliver, entries, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, eventually};
use sensor_ingest::pipeline::Outcome;

fn csv(sensor: &str, rows: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature\n");
    for i in 0..rows {
        s.push_str(&format!("{},{sensor},{}.5\n", 1_700_000_000 + i, i % 40));
    }
    s
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

async fn stop(agent: &mut Child, log: &Path) {
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent died:\n{}",
        read_log(log)
    );
    signal(agent, libc::SIGTERM);
    assert_eq!(
        wait_exit(agent, Duration::from_secs(30)).await.code(),
        Some(0),
        "{}",
        read_log(log)
    );
}

async fn wait_processed(env: &TestEnv, name: &str, log: &Path) {
    let path = env.processed().join(name);
    let done = eventually(Duration::from_secs(30), async || path.exists()).await;
    assert!(done, "{name} was not loaded:\n{}", read_log(log));
}

#[tokio::test]
async fn directories_fifos_and_symlinks_never_block_or_leak_into_the_agent() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    let data = env.data();
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret.csv");
    std::fs::write(&secret, csv("secret", 3)).unwrap();
    let plant = |suffix: &str| {
        std::fs::create_dir(data.join(format!("dir{suffix}.csv"))).unwrap();
        mkfifo(&data.join(format!("fifo{suffix}.csv")));
        std::os::unix::fs::symlink(&secret, data.join(format!("link{suffix}.csv"))).unwrap();
        std::os::unix::fs::symlink(
            "/nonexistent/x.csv",
            data.join(format!("dangling{suffix}.csv")),
        )
        .unwrap();
    };
    plant("");
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");
    let mut agent = spawn_logged(command(&env, &["run"]), &log);

    assert!(deliver(
        &staging,
        &data,
        "good-1.csv",
        csv("g1", 5).as_bytes()
    ));
    wait_processed(&env, "good-1.csv", &log).await;
    plant("-2");
    assert!(deliver(
        &staging,
        &data,
        "good-2.csv",
        csv("g2", 5).as_bytes()
    ));
    wait_processed(&env, "good-2.csv", &log).await;
    // Let a few rescans (MONITOR_INTERVAL=1s) walk past them, then one more file.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(deliver(
        &staging,
        &data,
        "good-3.csv",
        csv("g3", 5).as_bytes()
    ));
    wait_processed(&env, "good-3.csv", &log).await;
    stop(&mut agent, &log).await;

    assert_eq!(
        entries(&data),
        vec![
            "dangling-2.csv",
            "dangling.csv",
            "dir-2.csv",
            "dir.csv",
            "fifo-2.csv",
            "fifo.csv",
            "link-2.csv",
            "link.csv"
        ],
        "special entries are left alone"
    );
    assert!(
        std::fs::symlink_metadata(data.join("link.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        csv("secret", 3),
        "the target outside is untouched"
    );
    assert_eq!(entries(&outside), vec!["secret.csv"]);
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'secret'")
            .await,
        0,
        "nothing read through a symlink"
    );
    assert_eq!(
        entries(&env.processed()),
        vec!["good-1.csv", "good-2.csv", "good-3.csv"]
    );
    assert!(entries(&env.quarantine()).is_empty());
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 3);
}

#[tokio::test]
async fn a_file_gone_before_it_is_opened_is_skipped_and_churn_loses_nothing() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    // One step at a time: detected, then deleted before the pipeline opens it.
    let pipeline = env.pipeline().await;
    let path = env.drop_file("gone.csv", csv("gone", 2));
    std::fs::remove_file(&path).unwrap();
    let outcome = env.process(&pipeline, "gone.csv").await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Skipped {
            reason: "file vanished"
        }
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 0);

    // The real agent under churn: files appear and are deleted again at once, racing
    // the watcher and the workers.
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");
    let mut agent = spawn_logged(command(&env, &["run"]), &log);
    let data = env.data();
    for i in 0..40 {
        let name = format!("churn-{i}.csv");
        assert!(deliver(
            &staging,
            &data,
            &name,
            csv(&format!("c{i}"), 3).as_bytes()
        ));
        if i % 3 != 0 {
            tokio::time::sleep(Duration::from_millis(i % 7)).await;
        }
        let _ = std::fs::remove_file(data.join(&name));
    }
    assert!(deliver(
        &staging,
        &data,
        "after.csv",
        csv("after", 4).as_bytes()
    ));
    wait_processed(&env, "after.csv", &log).await;
    stop(&mut agent, &log).await;

    // Whatever the agent got hold of is fully accounted for; the rest left no trace.
    assert!(entries(&data).is_empty());
    let processed = entries(&env.processed());
    let loaded: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT file_name, archived_as, row_count FROM ingest_files WHERE status = 'loaded'",
    )
    .fetch_all(&env.db.pg().pool)
    .await
    .unwrap();
    // A file deleted by its producer after the agent had read it is still loaded (the
    // agent read it through its open descriptor); the ledger then records no archive
    // name. Every other loaded file is in processed/ under its name.
    let archived: Vec<&String> = loaded.iter().filter_map(|l| l.1.as_ref()).collect();
    assert_eq!(
        archived.len(),
        processed.len(),
        "{loaded:?} vs {processed:?}"
    );
    for (name, archived_as, rows) in &loaded {
        match archived_as {
            Some(a) => assert!(a == name && processed.contains(name), "{name}"),
            None => assert!(!processed.contains(name) && name.starts_with("churn-")),
        }
        assert_eq!(*rows, if name == "after.csv" { 4 } else { 3 });
    }
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        loaded.iter().map(|l| l.2).sum::<i64>()
    );
    assert!(entries(&env.quarantine()).is_empty());
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status <> 'loaded'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_file_appended_while_it_loads_is_loaded_whole_and_once() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    let pipeline = env.pipeline().await;
    let rows = 200_000;
    let first = csv("grow", rows);
    let path = env.drop_file("grow.csv", &first);
    let task = env.spawn_process(&pipeline, "grow.csv");
    let copying = eventually(Duration::from_secs(30), async || {
        env.db
            .count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY sensor_readings%'")
            .await
            > 0
    })
    .await;
    assert!(copying, "the load started");
    // A producer that appends to a file already handed over.
    let tail: String = (0..10)
        .map(|i| format!("{},grow-tail,1.5\n", 1_800_000_000 + i))
        .collect();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(tail.as_bytes()).unwrap();
    }
    let outcome = tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("finishes")
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: r, .. } if r == rows as u64 + 10),
        "the whole file, appended rows included: {outcome:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        rows as i64 + 10
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 1);
    let archived = std::fs::read(env.processed().join("grow.csv")).unwrap();
    assert_eq!(archived, format!("{first}{tail}").as_bytes());
    let hash: String = sqlx::query_scalar("SELECT content_hash FROM ingest_files")
        .fetch_one(&env.db.pg().pool)
        .await
        .unwrap();
    assert_eq!(
        hash,
        sensor_ingest::read::ContentHash::of_reader(&archived[..])
            .unwrap()
            .0
            .to_string(),
        "the ledger describes the bytes that were archived"
    );
}

/// Runs `cmd` as an unprivileged user when the test runs as root, because root reads
/// a mode-000 file regardless. Returns false when neither way can make a file
/// unreadable (then the test says so and checks nothing it cannot).
fn unprivileged(env: &TestEnv, cmd: &mut std::process::Command) -> bool {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    const NOBODY: u32 = 65534;
    let chown = |p: &Path| {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    };
    let mut dirs = vec![env.dir.path().to_owned()];
    dirs.extend([env.data(), env.processed(), env.quarantine()]);
    for d in &dirs {
        chown(d);
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The binary must be reachable by that user.
    let exe = Path::new(env!("CARGO_BIN_EXE_sensor-ingest"));
    let reachable = exe
        .ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if !reachable {
        return false;
    }
    cmd.uid(NOBODY).gid(NOBODY);
    true
}

#[tokio::test]
async fn an_unreadable_file_waits_without_blocking_others_and_loads_once_readable() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    let log = env.dir.path().join("agent.log");
    let mut cmd = command(&env, &["run"]);
    if !unprivileged(&env, &mut cmd) {
        eprintln!("SKIPPED: running as root and the binary is not reachable by nobody");
        return;
    }
    let data = env.data();
    let locked = data.join("locked.csv");
    std::fs::write(&locked, csv("locked", 6)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&locked, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut agent = spawn_logged(cmd, &log);
    std::fs::write(env.dir.path().join("good.tmp"), csv("good", 2)).unwrap();
    // SAFETY: as above.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(env.dir.path().join("good.tmp"), Some(65534), Some(65534))
            .unwrap();
    }
    std::fs::rename(env.dir.path().join("good.tmp"), data.join("good.csv")).unwrap();
    wait_processed(&env, "good.csv", &log).await;
    // Several rescans try it and fail; it is neither quarantined nor lost.
    let tried = eventually(Duration::from_secs(20), async || {
        read_log(&log).matches("locked.csv").count() >= 2
    })
    .await;
    assert!(tried, "{}", read_log(&log));
    assert!(locked.exists());
    assert!(entries(&env.quarantine()).is_empty());
    assert!(
        read_log(&log).contains("Permission denied"),
        "{}",
        read_log(&log)
    );

    // Readable again: the next rescan loads it, once.
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
    wait_processed(&env, "locked.csv", &log).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop(&mut agent, &log).await;
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'locked'")
            .await,
        6
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 2);
}

#[tokio::test]
async fn an_unwritable_processed_folder_keeps_the_file_until_it_can_move_and_loads_once() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");
    let mut agent = spawn_logged(command(&env, &["run"]), &log);
    assert!(deliver(
        &staging,
        &env.data(),
        "first.csv",
        csv("first", 2).as_bytes()
    ));
    wait_processed(&env, "first.csv", &log).await;

    // Permissions do not stop root, so make processed/ impossible to move into for
    // anyone: a regular file where the folder was.
    let processed = env.processed();
    let aside = env.dir.path().join("processed-aside");
    std::fs::rename(&processed, &aside).unwrap();
    std::fs::write(&processed, "not a folder").unwrap();

    assert!(deliver(
        &staging,
        &env.data(),
        "stuck.csv",
        csv("stuck", 7).as_bytes()
    ));
    // Loaded (committed), but the move fails: the file stays in data/.
    let committed = eventually(Duration::from_secs(30), async || {
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE file_name = 'stuck.csv' AND status = 'loaded'")
            .await
            == 1
    })
    .await;
    assert!(committed, "{}", read_log(&log));
    // A few rescans retry the move and fail again.
    let retried = eventually(Duration::from_secs(20), async || {
        read_log(&log).matches("could not move stuck.csv").count() >= 2
    })
    .await;
    assert!(retried, "{}", read_log(&log));
    assert!(env.data().join("stuck.csv").exists());
    assert!(entries(&env.quarantine()).is_empty());

    // The folder is back: the next rescan finishes the move, without loading again.
    std::fs::remove_file(&processed).unwrap();
    std::fs::rename(&aside, &processed).unwrap();
    wait_processed(&env, "stuck.csv", &log).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop(&mut agent, &log).await;
    assert!(entries(&env.data()).is_empty());
    assert_eq!(entries(&processed), vec!["first.csv", "stuck.csv"]);
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'stuck'")
            .await,
        7
    );
    let ledger: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, archived_as FROM ingest_files WHERE file_name = 'stuck.csv'",
    )
    .fetch_all(&env.db.pg().pool)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        vec![("loaded".to_owned(), Some("stuck.csv".to_owned()))]
    );
}

#[tokio::test]
async fn a_file_appended_after_its_rows_were_committed_is_neither_hidden_nor_reloaded() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    env.pipeline().await;
    let first = csv("early", 5);
    let tail = "1800000000,late,1.5\n1800000001,late,2.5\n";
    let path = env.drop_file("late.csv", &first);
    // The moment the load commits, a producer appends rows to the file being loaded,
    // after the reader reached its end and before the move.
    let mut store = crate::common::HookedStore::new(env.store());
    let target = path.clone();
    store.after_load = Box::new(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&target)
            .unwrap();
        f.write_all(tail.as_bytes()).unwrap();
    });
    let store: std::sync::Arc<dyn sensor_ingest::sink::Store> = std::sync::Arc::new(store);
    let pipeline = sensor_ingest::pipeline::Pipeline::new(&env.settings, store);
    let outcome = env.process(&pipeline, "late.csv").await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Quarantined { reason, .. } if reason.contains("grew")),
        "{outcome:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        5,
        "the rows read are loaded, once"
    );
    assert!(entries(&env.data()).is_empty());
    assert!(
        entries(&env.processed()).is_empty(),
        "not archived as loaded"
    );
    assert_eq!(
        std::fs::read_to_string(env.quarantine().join("late.csv")).unwrap(),
        format!("{first}{tail}")
    );
    let report: sensor_ingest::report::QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("late.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.rule, "grew_after_load");
    assert!(
        report.reason.contains(&format!("first {}", first.len())),
        "{}",
        report.reason
    );
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM ingest_files ORDER BY started_at")
            .fetch_all(&env.db.pg().pool)
            .await
            .unwrap();
    assert_eq!(statuses, vec!["loaded", "quarantined"]);
}
