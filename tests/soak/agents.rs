//! Three real agents on one folder and one PostgreSQL: over a thousand small files in
//! sub-batches (re-drops of the same content under new names, and old names dropped
//! again with the same or new content), one agent SIGKILLed mid-run, one cut off from
//! the database by the test proxy for longer than a claim's lease, then restored.
//! Every file is archived, every content loaded once, the ledger holds exactly one row
//! per delivered file (duplicates only for true re-drops), and no agent warns about
//! another one's work.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::binary::{
    command, database_url, deliver, entries, read_log, signal, spawn_logged, wait_exit,
};
use crate::common::{Backend, CutProxy, TestEnv, env_or_skip, eventually};

/// A unique small file: `2 + i % 5` rows, its sensors named after `i`.
fn content(i: usize) -> Vec<u8> {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for r in 0..2 + i % 5 {
        s.push_str(&format!(
            "{},m{i}-s{r},{}.5,{},{}\n",
            1_700_000_000 + i * 100 + r,
            r % 40,
            (i + r) % 100,
            950 + r
        ));
    }
    s.into_bytes()
}

fn rows_of(i: usize) -> i64 {
    (2 + i % 5) as i64
}

/// Delivers `content(index)` as `name`, waiting while an earlier file of that name is
/// still in the data folder (a careful producer never replaces an undelivered file).
async fn deliver_when_free(staging: &Path, data: &Path, name: &str, index: usize) {
    let bytes = content(index);
    let delivered = eventually(Duration::from_secs(90), async || {
        deliver(staging, data, name, &bytes)
    })
    .await;
    assert!(delivered, "{name} stayed taken in data/");
}

/// Data files still waiting (the agents' folder lock is on the directory itself).
fn waiting(data: &Path) -> Vec<String> {
    entries(data)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// The agent's log lines at WARN or ERROR, as (level, message, error) from a JSON log.
fn complaints(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("WARN" | "ERROR")))
        // The agent's own lines: the driver's (a slow statement on a busy machine) are
        // not about other agents.
        .filter(|v| {
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("sensor_ingest"))
        })
        .map(|v| {
            let field = |k: &str| v["fields"][k].as_str().unwrap_or("").to_owned();
            (
                v["level"].as_str().unwrap_or("").to_owned(),
                field("message"),
                field("error"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_split_a_folder_and_survive_a_kill_and_a_cut() {
    let _alone = crate::one_at_a_time().await;
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let proxy = CutProxy::start(true).await;
    let staging = env.dir.path().join("staging");
    let started = Instant::now();
    let logs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| env.dir.path().join(format!("agent-{id}.log")))
        .collect();
    let spawn = |id: &str, log: &Path, via_proxy: bool| -> Child {
        let mut cmd = command(&env, &["run"]);
        cmd.env("AGENT_ID", id)
            .env("LOG_FORMAT", "json")
            .env("RETRY_MAX_DELAY", "2");
        if via_proxy {
            cmd.env(
                "DATABASE_URL",
                database_url(env.db.pg(), Some(("127.0.0.1", proxy.port))),
            );
        }
        spawn_logged(cmd, log)
    };
    let mut a = spawn("a", &logs[0], false);
    let mut b = spawn("b", &logs[1], false);
    let mut c = spawn("c", &logs[2], true);
    for log in &logs {
        let ready = eventually(Duration::from_secs(60), async || {
            read_log(log).contains("watching for files")
        })
        .await;
        assert!(ready, "{}", read_log(log));
    }

    // (name, content index) of every delivery, in order.
    let mut deliveries: Vec<(String, usize)> = Vec::new();
    let loaded_count = async || {
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await
    };

    // Batch 1: 350 new files. Agent a is killed once a hundred are loaded.
    for i in 0..350 {
        let name = format!("f{i:04}.csv");
        deliver_when_free(&staging, &env.data(), &name, i).await;
        deliveries.push((name, i));
    }
    let some_loaded = eventually(Duration::from_secs(60), async || {
        loaded_count().await >= 100
    })
    .await;
    assert!(some_loaded, "{}", read_log(&logs[0]));
    signal(&a, libc::SIGKILL);
    wait_exit(&mut a, Duration::from_secs(10)).await;

    // Batch 2: 350 new files, 50 copies of batch 1's contents under new names, and
    // batch 1's first 50 names dropped again with their own content. Agent c is cut off
    // from the database meanwhile, for longer than a claim's 20 s lease.
    proxy.set_up(false);
    let cut_at = Instant::now();
    for i in 350..700 {
        let name = format!("f{i:04}.csv");
        deliver_when_free(&staging, &env.data(), &name, i).await;
        deliveries.push((name, i));
    }
    for i in 0..50 {
        let name = format!("copy-{i:04}.csv");
        deliver_when_free(&staging, &env.data(), &name, 50 + i).await;
        deliveries.push((name, 50 + i));
        let name = format!("f{i:04}.csv");
        deliver_when_free(&staging, &env.data(), &name, i).await;
        deliveries.push((name, i));
    }
    tokio::time::sleep_until((cut_at + Duration::from_secs(24)).into()).await;
    proxy.set_up(true);

    // Batch 3: 300 new files, and 50 of batch 1's names with new content.
    for i in 700..1000 {
        let name = format!("f{i:04}.csv");
        deliver_when_free(&staging, &env.data(), &name, i).await;
        deliveries.push((name, i));
    }
    for i in 0..50 {
        let name = format!("f{:04}.csv", 100 + i);
        deliver_when_free(&staging, &env.data(), &name, 1000 + i).await;
        deliveries.push((name, 1000 + i));
    }

    let unique: HashSet<usize> = deliveries.iter().map(|(_, i)| *i).collect();
    let expected_rows: i64 = unique.iter().map(|i| rows_of(*i)).sum();
    let drained = eventually(Duration::from_secs(120), async || {
        waiting(&env.data()).is_empty()
            && env.db.count("SELECT count(*) FROM ingest_files").await >= deliveries.len() as i64
    })
    .await;
    let all_logs = || {
        logs.iter()
            .map(|l| read_log(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        drained,
        "still waiting: {:?}\n{}",
        waiting(&env.data()),
        all_logs()
    );
    eprintln!(
        "{} files ({} contents) through 3 agents, one killed, one cut for 24 s, in {:.1} s",
        deliveries.len(),
        unique.len(),
        started.elapsed().as_secs_f64()
    );

    for agent in [&mut b, &mut c] {
        signal(agent, libc::SIGTERM);
        assert_eq!(
            wait_exit(agent, Duration::from_secs(30)).await.code(),
            Some(0)
        );
    }

    // Every file archived, every content loaded once, one ledger row per delivery.
    assert_eq!(entries(&env.processed()).len(), deliveries.len());
    assert!(entries(&env.quarantine()).is_empty());
    let count = async |sql: &str| env.db.count(sql).await;
    let mut delivered_per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in &deliveries {
        *delivered_per_name.entry(name.as_str()).or_default() += 1;
    }
    let ledger = env.db.ledger().await;
    for (name, delivered) in &delivered_per_name {
        let rows: Vec<_> = ledger.iter().filter(|r| r.file_name == *name).collect();
        if rows.len() != *delivered {
            let agents: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                "SELECT agent, status, started_at::text || ' .. ' || finished_at::text, \
                 archived_as FROM ingest_files WHERE file_name = $1 ORDER BY started_at",
            )
            .bind(name)
            .fetch_all(&env.db.pg().pool)
            .await
            .unwrap();
            eprintln!("{name}: delivered {delivered}, ledger rows: {agents:#?}");
        }
    }
    assert_eq!(
        count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'").await,
        unique.len() as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM ingest_files WHERE status = 'duplicate'").await,
        (deliveries.len() - unique.len()) as i64,
        "duplicates only for true re-drops"
    );
    assert_eq!(
        count("SELECT count(*) FROM ingest_files").await,
        deliveries.len() as i64,
        "no spurious ledger rows"
    );
    assert_eq!(
        count("SELECT count(*) FROM sensor_readings").await,
        expected_rows,
        "every reading loaded once"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT ts, sensor_id FROM sensor_readings \
             GROUP BY ts, sensor_id HAVING count(*) > 1) d"
        )
        .await,
        0
    );

    // The share of each agent, and no agent stepping on another's work.
    let mut shares: BTreeMap<String, i64> = BTreeMap::new();
    for agent in ["a", "b", "c"] {
        let files = count(&format!(
            "SELECT count(*) FROM ingest_files WHERE agent = '{agent}'"
        ))
        .await;
        shares.insert(agent.to_owned(), files);
    }
    eprintln!("files per agent: {shares:?}");
    assert!(shares.values().all(|n| *n > 0), "{shares:?}");
    for (log, cut) in [(&logs[0], false), (&logs[1], false), (&logs[2], true)] {
        let text = read_log(log);
        assert!(
            !text.contains("no longer points at the file"),
            "{}",
            log.display()
        );
        assert!(
            !text.contains("\"file skipped\""),
            "skips are DEBUG: {}",
            log.display()
        );
        for (level, message, error) in complaints(&text) {
            // Only the agent cut off may complain about its outage (retries, an archive
            // name it could not record). Any agent may retry a load the database asked
            // to retry (a deadlock between concurrent loads: SQLSTATE 40P01).
            let retried_by_request =
                message.starts_with("attempt failed") && error.contains("SQLSTATE 40");
            assert!(
                level == "WARN" && (cut || retried_by_request),
                "{}: {level} {message} {error}",
                log.display()
            );
        }
    }
}
