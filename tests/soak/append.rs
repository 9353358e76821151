//! Append mode under SIGKILL, on both backends: writer threads append lines to several
//! followed files (three at about 100 lines/s, one rewritten now and then with its
//! numbers spelt differently, one rotated by rename and recreate, one leaving a partial
//! last line for two seconds) while the real binary (`SOURCE_MODE=append`) is killed
//! at seeded-random moments and restarted. At the end every complete line is stored
//! exactly once, no partial line was stored, nothing was quarantined, and nothing in the
//! data folder was moved.
//!
//! - `APPEND_SEED`: the RNG seed (printed; set it to replay a run);
//! - `APPEND_KILLS` (default 20): kills per backend.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::binary::{command, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};
use rstest::rstest;

const HEADER: &str = "timestamp,sensor_id,temperature\n";

/// Line `k` of the file of sensor `s`: its time, and its temperature spelt `plain` or
/// with a trailing zero (the same value).
fn line(s: &str, k: u64, plain: bool) -> String {
    let t = (k % 50) as f64 + 0.5;
    let t = if plain {
        format!("{t}")
    } else {
        format!("{t:.2}")
    };
    format!("{},{s},{t}\n", 1_700_000_000 + k)
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// What one writer does between lines.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Fast,
    Rewrites,
    Rotates,
    Partial,
}

/// Appends lines to `data/<name>.csv` until `stop`, in `style`; returns how many
/// complete lines it wrote.
fn write(data: PathBuf, name: &'static str, style: Style, stop: Arc<AtomicBool>) -> u64 {
    let path = data.join(format!("{name}.csv"));
    std::fs::write(&path, HEADER).unwrap();
    let mut k = 0u64;
    let mut rotations = 0;
    while !stop.load(Ordering::Acquire) {
        match style {
            Style::Partial if k % 50 == 49 => {
                // Half a line, left alone for two seconds, then its end.
                let l = line(name, k, true);
                let (a, b) = l.split_at(l.len() / 2);
                append(&path, a);
                std::thread::sleep(Duration::from_secs(2));
                append(&path, b);
            }
            Style::Rewrites if k % 150 == 149 => {
                // Rewritten in place: the same values, spelt differently.
                let mut text = String::from(HEADER);
                for j in 0..=k {
                    text.push_str(&line(name, j, k % 300 == 149));
                }
                std::fs::write(&path, text).unwrap();
            }
            Style::Rotates if k % 200 == 199 => {
                // Rotated: renamed under a name the pattern takes, a new file begun.
                rotations += 1;
                std::fs::rename(&path, data.join(format!("{name}-{rotations}.csv"))).unwrap();
                std::fs::write(&path, format!("{HEADER}{}", line(name, k, true))).unwrap();
            }
            _ => append(&path, &line(name, k, true)),
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    k
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_files_grow_loses_nothing_and_loads_nothing_twice(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let _alone = crate::one_at_a_time().await;
    let env = env_or_skip!(TestEnv::with_vars(backend, &[("SOURCE_MODE", "append")]));
    let seed = std::env::var("APPEND_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let kills: u64 = std::env::var("APPEND_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("append soak on {backend:?}: APPEND_SEED={seed}, {kills} kills");
    let mut rng = seed;
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [
        ("fast1", Style::Fast),
        ("fast2", Style::Fast),
        ("fast3", Style::Fast),
        ("rewrite", Style::Rewrites),
        ("rotate", Style::Rotates),
        ("partial", Style::Partial),
    ]
    .into_iter()
    .map(|(name, style)| {
        let (data, stop) = (env.data(), stop.clone());
        (
            name,
            std::thread::spawn(move || write(data, name, style, stop)),
        )
    })
    .collect();
    let log = env.dir.path().join("agent.log");
    let start = || {
        let mut cmd = command(&env, &["run"]);
        cmd.env("SOURCE_MODE", "append");
        spawn_logged(cmd, &log)
    };
    for _ in 0..kills {
        let mut agent = start();
        tokio::time::sleep(Duration::from_millis(150 + next() % 600)).await;
        signal(&agent, libc::SIGKILL);
        wait_exit(&mut agent, Duration::from_secs(10)).await;
    }
    let mut agent = start();
    stop.store(true, Ordering::Release);
    let written: HashMap<&str, u64> = writers
        .into_iter()
        .map(|(name, w)| (name, w.join().unwrap()))
        .collect();
    let expected: u64 = written.values().sum();
    let count = "SELECT count(*) FROM sensor_readings";
    let drained = eventually(Duration::from_secs(60), async || {
        env.db.count(count).await == expected as i64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&agent, libc::SIGTERM);
    wait_exit(&mut agent, Duration::from_secs(20)).await;
    let stored = env.db.count(count).await;
    for (name, lines) in &written {
        let n = env
            .db
            .count(&format!(
                "SELECT count(*) FROM sensor_readings WHERE sensor_id = '{name}'"
            ))
            .await;
        assert_eq!(n, *lines as i64, "APPEND_SEED={seed}: sensor {name}");
    }
    assert!(
        drained,
        "APPEND_SEED={seed}: {stored} readings for {expected} lines written\n{}",
        read_log(&log)
    );
    let distinct = env
        .db
        .count("SELECT count(*) FROM (SELECT DISTINCT sensor_id, ts FROM sensor_readings) AS d")
        .await;
    assert_eq!(
        distinct, stored,
        "APPEND_SEED={seed}: a line was loaded twice"
    );
    assert!(
        files_in(&env.quarantine()).is_empty(),
        "APPEND_SEED={seed}: quarantined {:?}",
        files_in(&env.quarantine())
    );
    assert!(files_in(&env.processed()).is_empty());
    assert!(files_in(&env.data()).iter().all(|n| n.ends_with(".csv")));
}
