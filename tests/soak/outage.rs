//! A database outage under the real binary: files keep arriving while the link to
//! PostgreSQL is cut (an in-test TCP proxy), then it comes back. Nothing is
//! quarantined for it, everything loads exactly once afterwards, the retries are
//! logged with growing delays, and the agent sleeps rather than spins while it waits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::binary::{
    PASSWORD, command, database_url, deliver, entries, read_log, signal, spawn_logged, wait_exit,
};
use crate::common::{Backend, CutProxy, TestEnv, env_or_skip, eventually};

fn rows_csv(file: usize, n: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},o{file}-s{},{}.5,{},{}\n",
            1_700_000_000 + file * 10_000 + i,
            i % 5,
            i % 40,
            i % 100,
            950 + i % 100
        ));
    }
    s
}

/// CPU time (user + system) the process has used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process is alive");
    // The command name (field 2) may contain spaces: count from the closing paren.
    let after = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are utime and stime; `after` starts at field 3.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// `(file, attempt, next_delay_ms)` of every retry warning in a JSON log.
fn retries(log: &str) -> Vec<(String, u64, u64)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["next_delay_ms"].is_u64() && v["fields"]["attempt"].is_u64())
        .map(|v| {
            (
                v["span"]["file"].as_str().unwrap_or("").to_owned(),
                v["fields"]["attempt"].as_u64().unwrap(),
                v["fields"]["next_delay_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_files_without_quarantine_spinning_or_double_loads() {
    let _alone = crate::one_at_a_time().await;
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let proxy = CutProxy::start(true).await;
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");
    let mut cmd = command(&env, &["run"]);
    cmd.env(
        "DATABASE_URL",
        database_url(env.db.pg(), Some(("127.0.0.1", proxy.port))),
    )
    .env("LOG_FORMAT", "json")
    .env("RETRY_MAX_DELAY", "4");
    let mut agent = spawn_logged(cmd, &log);
    let pid = agent.id();

    assert!(deliver(
        &staging,
        &env.data(),
        "before.csv",
        rows_csv(0, 20).as_bytes()
    ));
    let loaded = eventually(Duration::from_secs(30), async || {
        env.processed().join("before.csv").exists()
    })
    .await;
    assert!(loaded, "{}", read_log(&log));

    // The outage: files keep arriving for a while, then nothing happens but waiting.
    proxy.set_up(false);
    let (cpu_before, wall_before) = (cpu_time(pid), Instant::now());
    let during = 6;
    for i in 1..=during {
        let name = format!("during-{i}.csv");
        assert!(deliver(
            &staging,
            &env.data(),
            &name,
            rows_csv(i, 50 * i).as_bytes()
        ));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Long enough for a file to reach its fourth retry (waits of ~0.25, 0.5, 1, 2 s
    // plus jitter, each after an attempt that may take the pool's 3 s to give up).
    let retried = eventually(Duration::from_secs(60), async || {
        retries(&read_log(&log)).iter().any(|(_, a, _)| *a >= 4)
    })
    .await;
    // Measure CPU over a window long enough to mean something.
    tokio::time::sleep_until((wall_before + Duration::from_secs(6)).into()).await;
    let (cpu, wall) = (cpu_time(pid) - cpu_before, wall_before.elapsed());
    assert!(
        retried,
        "no file reached its 4th retry:\n{}",
        read_log(&log)
    );
    assert_eq!(
        entries(&env.data()).len(),
        during,
        "every file waits in data/ while the database is down"
    );
    assert!(
        entries(&env.quarantine()).is_empty(),
        "nothing is quarantined for an outage"
    );
    // Waiting costs next to nothing: a spinning retry loop would burn a whole core.
    assert!(
        cpu.as_secs_f64() < 0.10 * wall.as_secs_f64(),
        "the agent used {cpu:?} of CPU over {wall:?} of outage"
    );

    proxy.set_up(true);
    let drained = eventually(Duration::from_secs(60), async || {
        entries(&env.data()).is_empty()
    })
    .await;
    assert!(drained, "{}", read_log(&log));
    signal(&agent, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut agent, Duration::from_secs(30)).await.code(),
        Some(0)
    );

    // Every file loaded exactly once, none quarantined.
    let mut want = vec!["before.csv".to_owned()];
    want.extend((1..=during).map(|i| format!("during-{i}.csv")));
    want.sort();
    assert_eq!(entries(&env.processed()), want);
    assert!(entries(&env.quarantine()).is_empty());
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        during as i64 + 1
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status <> 'loaded'")
            .await,
        0
    );
    let rows: i64 = 20 + (1..=during as i64).map(|i| 50 * i).sum::<i64>();
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        rows
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM (SELECT DISTINCT sensor_id, ts FROM sensor_readings) d")
            .await,
        rows,
        "no row twice"
    );

    // Retries were logged per file with growing delays, capped by RETRY_MAX_DELAY.
    let text = read_log(&log);
    let mut by_file: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (file, attempt, delay) in retries(&text) {
        by_file.entry(file).or_default().push((attempt, delay));
    }
    assert!(!by_file.is_empty());
    let mut longest = 0;
    for (file, seq) in &by_file {
        assert!(file.starts_with("during-"), "{file} retried: {seq:?}");
        let attempts: Vec<u64> = seq.iter().map(|s| s.0).collect();
        assert_eq!(
            attempts,
            (1..=seq.len() as u64).collect::<Vec<_>>(),
            "{file}"
        );
        let delays: Vec<u64> = seq.iter().map(|s| s.1).collect();
        assert!(delays.iter().all(|d| *d <= 4000), "{file}: {delays:?}");
        // Jitter adds up to 100 %: waits 1–4 fall in [250,500), [500,1000),
        // [1000,2000) and [2000,4000] ms, so they grow strictly.
        let growing = &delays[..delays.len().min(4)];
        assert!(
            growing.windows(2).all(|w| w[0] < w[1]),
            "{file}: delays do not grow: {delays:?}"
        );
        longest = longest.max(delays.len());
    }
    assert!(longest >= 4);
    assert!(text.contains("\"level\":\"WARN\""), "retries are warnings");
    assert!(!text.contains(PASSWORD));
    eprintln!(
        "outage: {:.1}s, agent CPU {:?}, retries per file {:?}",
        wall.as_secs_f64(),
        cpu,
        by_file
            .iter()
            .map(|(f, s)| (f.as_str(), s.len()))
            .collect::<Vec<_>>()
    );
}
