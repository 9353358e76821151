//! PostgreSQL's monthly partitions of `sensor_readings`: created ahead at startup, on
//! demand for old data and across a month boundary (in the one-statement load and in
//! the middle of a COPY), by two agents at once, and dropped by retention with the
//! ledger keeping its rows.

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use sensor_ingest::config::Retention;
use sensor_ingest::pipeline::{Outcome, Pipeline};
use sensor_ingest::sink;

use crate::common::{Backend, TestEnv, env_or_skip};

/// A CSV of `rows` readings of sensor `sensor`, from `start`, `step` apart.
fn readings(start: DateTime<Utc>, step: Duration, rows: usize, sensor: &str) -> String {
    let mut csv = String::from("timestamp,sensor_id,temperature\n");
    for i in 0..rows {
        let ts = start + step * i as i32;
        csv.push_str(&format!(
            "{},{sensor},{}.5\n",
            ts.format("%Y-%m-%dT%H:%M:%SZ"),
            i % 30
        ));
    }
    csv
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// The partitions of `sensor_readings` and their rows, `name:rows`, by name.
async fn partitions(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT c.relname || ':' || (SELECT count(*) FROM sensor_readings r \
                                     WHERE r.tableoid = c.oid) \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'sensor_readings'::regclass ORDER BY c.relname",
    )
    .fetch_all(&env.db.pg().pool)
    .await
    .unwrap()
}

fn loaded_rows(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Loaded { rows, .. } => *rows,
        other => panic!("not loaded: {other:?}"),
    }
}

fn partition_name(ts: DateTime<Utc>) -> String {
    format!("sensor_readings_p{:04}{:02}", ts.year(), ts.month())
}

#[tokio::test]
async fn a_fresh_database_is_partitioned_with_the_coming_months_ready() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.pipeline().await;
    let kind = env
        .db
        .text("SELECT relkind::text FROM pg_class WHERE oid = 'sensor_readings'::regclass")
        .await;
    assert_eq!(kind.as_deref(), Some("p"));
    let now = Utc::now();
    let names: Vec<String> = partitions(&env)
        .await
        .into_iter()
        .map(|p| p.split(':').next().unwrap().to_owned())
        .collect();
    let mut want = Vec::new();
    for k in -1..=3 {
        let month = if k < 0 {
            now.checked_sub_months(Months::new(1)).unwrap()
        } else {
            now.checked_add_months(Months::new(k as u32)).unwrap()
        };
        want.push(partition_name(month));
    }
    assert_eq!(names, want);
    // No catch-all: a row of a month without a partition is refused, never filed away.
    let defaults = env
        .db
        .count("SELECT count(*) FROM pg_partitioned_table WHERE partdefid <> 0")
        .await;
    assert_eq!(defaults, 0);
    // The indexes are partitioned indexes, present on every partition.
    let indexes = env
        .db
        .count(
            "SELECT count(*) FROM pg_class WHERE relkind = 'I' AND relname IN \
             ('sensor_readings_pkey', 'sensor_readings_sensor_ts', 'sensor_readings_ts_brin')",
        )
        .await;
    assert_eq!(indexes, 3);
}

#[tokio::test]
async fn files_across_a_month_boundary_fill_both_months() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    // A small file (one statement) and a large one (COPY) whose first 5,000 rows are in
    // January 2021 and the rest in February: the COPY meets February mid-stream.
    env.drop_file(
        "small.csv",
        readings(at("2021-01-31T23:58:00Z"), Duration::minutes(1), 4, "s-1"),
    );
    let large_start = at("2021-01-31T23:59:59Z") - Duration::seconds(4_999);
    env.drop_file(
        "large.csv",
        readings(large_start, Duration::seconds(1), 12_000, "s-2"),
    );
    assert_eq!(
        loaded_rows(&env.process(&pipeline, "small.csv").await.unwrap()),
        4
    );
    assert_eq!(
        loaded_rows(&env.process(&pipeline, "large.csv").await.unwrap()),
        12_000
    );
    let parts = partitions(&env).await;
    assert!(
        parts.contains(&"sensor_readings_p202101:5002".to_owned()),
        "{parts:?}"
    );
    assert!(
        parts.contains(&"sensor_readings_p202102:7002".to_owned()),
        "{parts:?}"
    );
    // Each row is in the month of its own timestamp.
    let misfiled = env
        .db
        .count(
            "SELECT count(*) FROM sensor_readings WHERE tableoid::regclass::text <> \
             'sensor_readings_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMM')",
        )
        .await;
    assert_eq!(misfiled, 0);
}

#[tokio::test]
async fn data_five_years_old_gets_its_partitions() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    let start = Utc::now().checked_sub_months(Months::new(60)).unwrap();
    // Three months of hourly readings, five years ago.
    env.drop_file(
        "old.csv",
        readings(start, Duration::hours(1), 24 * 90, "s-old"),
    );
    assert_eq!(
        loaded_rows(&env.process(&pipeline, "old.csv").await.unwrap()),
        24 * 90
    );
    let parts = partitions(&env).await;
    let first = parts
        .iter()
        .find(|p| p.starts_with(&partition_name(start)))
        .unwrap_or_else(|| panic!("no partition for {start}: {parts:?}"));
    assert!(!first.ends_with(":0"), "{first}");
    let total = env.db.count("SELECT count(*) FROM sensor_readings").await;
    assert_eq!(total, 24 * 90);
    // The views read through the partitions.
    let days = env.db.count("SELECT count(*) FROM sensor_daily").await;
    assert!((90..=91).contains(&days), "{days}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_agents_needing_the_same_new_month_both_load() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.pipeline().await;
    // Two stores with their own pools and their own idea of the partitions, as two agent
    // processes have; each loads files of the same months of 2019, none created yet.
    let agents: Vec<Pipeline> = (0..2)
        .map(|_| Pipeline::new(&env.settings, sink::open(&env.settings.database, 3)))
        .collect();
    let mut names = Vec::new();
    for i in 0..6 {
        let name = format!("f{i}.csv");
        let rows = if i % 2 == 0 { 9_000 } else { 50 };
        // Every file spans March to May 2019.
        let start = at("2019-03-31T12:00:00Z") + Duration::seconds(i);
        let step = Duration::seconds(if rows > 1_000 { 600 } else { 86_400 });
        env.drop_file(&name, readings(start, step, rows, &format!("s-{i}")));
        names.push((name, rows));
    }
    let mut tasks = Vec::new();
    for (i, (name, _)) in names.iter().enumerate() {
        tasks.push(env.spawn_process(&agents[i % 2], name));
    }
    let loaded = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut total = 0;
        for t in tasks {
            total += loaded_rows(&t.await.unwrap().unwrap());
        }
        total
    })
    .await
    .expect("no deadlock: both agents finish");
    let want: usize = names.iter().map(|(_, rows)| rows).sum();
    assert_eq!(loaded, want as u64);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        want as i64
    );
    let parts = partitions(&env).await;
    for month in ["201903", "201904", "201905"] {
        let name = format!("sensor_readings_p{month}:");
        assert_eq!(
            parts.iter().filter(|p| p.starts_with(&name)).count(),
            1,
            "{parts:?}"
        );
    }
}

#[tokio::test]
async fn retention_drops_whole_old_months_and_the_ledger_keeps_its_rows() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    let now = Utc::now();
    let old = now.checked_sub_months(Months::new(30)).unwrap();
    let old = at(&old.format("%Y-%m-01T00:00:00Z").to_string());
    env.drop_file("old.csv", readings(old, Duration::hours(1), 48, "s-1"));
    env.drop_file(
        "recent.csv",
        readings(now - Duration::days(2), Duration::hours(1), 24, "s-1"),
    );
    env.process(&pipeline, "old.csv").await.unwrap();
    env.process(&pipeline, "recent.csv").await.unwrap();
    let store = pipeline.store();

    store.maintain(Some(Retention::Days(400))).await.unwrap();

    let parts = partitions(&env).await;
    assert!(
        !parts.iter().any(|p| p.starts_with(&partition_name(old))),
        "{parts:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        24
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        2
    );
    let logged = env
        .db
        .text(
            "SELECT partition || ' ' || readings || ' ' || retention FROM retention_log \
             WHERE readings > 0",
        )
        .await;
    assert_eq!(logged, Some(format!("{} 48 400 days", partition_name(old))));
    // A second pass finds nothing more to drop; the current months stay.
    store.maintain(Some(Retention::Days(400))).await.unwrap();
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM retention_log WHERE readings > 0")
            .await,
        1
    );
    assert!(parts.iter().any(|p| p.starts_with(&partition_name(now))));
    // Late data for a dropped month is still loaded (its partition comes back), and the
    // next pass drops it again: retention never refuses a file.
    env.drop_file("late.csv", readings(old, Duration::hours(2), 3, "s-2"));
    env.process(&pipeline, "late.csv").await.unwrap();
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        27
    );
    store.maintain(Some(Retention::Days(400))).await.unwrap();
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        24
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_load_elsewhere_does_not_hold_up_a_new_month() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    // Another agent's load in progress: readings written, transaction still open (the
    // ROW EXCLUSIVE lock a long COPY holds on sensor_readings).
    let mut other = env.db.pg().pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO sensor_readings (file_id, line, ts, sensor_id) \
         VALUES (gen_random_uuid(), 2, now(), 'elsewhere')",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    // Months no one created yet, by one statement and by COPY.
    env.drop_file(
        "small.csv",
        readings(at("2018-07-01T00:00:00Z"), Duration::minutes(1), 10, "s-1"),
    );
    env.drop_file(
        "large.csv",
        readings(
            at("2018-09-20T00:00:00Z"),
            Duration::minutes(10),
            9_000,
            "s-2",
        ),
    );
    for (name, rows) in [("small.csv", 10), ("large.csv", 9_000)] {
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            env.process(&pipeline, name),
        )
        .await
        .expect("creating a partition does not wait for the other load")
        .unwrap();
        assert_eq!(loaded_rows(&outcome), rows);
    }
    other.commit().await.unwrap();
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        9_011
    );
    let parts = partitions(&env).await;
    for month in ["201807", "201809", "201810", "201811"] {
        assert!(
            parts
                .iter()
                .any(|p| p.starts_with(&format!("sensor_readings_p{month}:"))),
            "{parts:?}"
        );
    }
}

#[tokio::test]
async fn two_agent_processes_create_the_same_new_months_and_both_load() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    // Two `once` processes, each with its own folders, on one database; every file of
    // both spans January to April 2016, months neither has seen.
    let mut children = Vec::new();
    let mut want = 0;
    for agent in 0..2 {
        let base = env.dir.path().join(format!("agent-{agent}"));
        let mut folders = Vec::new();
        for sub in ["data", "processed", "quarantine"] {
            let path = base.join(sub);
            std::fs::create_dir_all(&path).unwrap();
            folders.push(path);
        }
        for i in 0..6 {
            let rows = if i % 3 == 0 { 8_000 } else { 120 };
            let step = Duration::minutes(if rows > 1_000 { 20 } else { 24 * 60 });
            let start = at("2016-01-15T00:00:00Z") + Duration::seconds(agent * 100 + i);
            std::fs::write(
                folders[0].join(format!("a{agent}-{i}.csv")),
                readings(start, step, rows, &format!("s-{agent}-{i}")),
            )
            .unwrap();
            want += rows;
        }
        let mut cmd = crate::common::binary::command(&env, &["once"]);
        cmd.env("DATA_FOLDER", &folders[0])
            .env("PROCESSED_FOLDER", &folders[1])
            .env("QUARANTINE_FOLDER", &folders[2])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push(cmd.spawn().unwrap());
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        want as i64
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        12
    );
    let parts = partitions(&env).await;
    for month in ["201601", "201602", "201603", "201604"] {
        let name = format!("sensor_readings_p{month}:");
        assert_eq!(
            parts.iter().filter(|p| p.starts_with(&name)).count(),
            1,
            "{parts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_finishes_a_pass_that_was_interrupted() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    env.drop_file(
        "old.csv",
        readings(at("2019-03-01T00:00:00Z"), Duration::days(31), 3, "s-1"),
    );
    env.process(&pipeline, "old.csv").await.unwrap();
    let pool = &env.db.pg().pool;
    // Interrupted after the detach: May 2019 is detached but not dropped.
    sqlx::query("ALTER TABLE sensor_readings DETACH PARTITION sensor_readings_p201905")
        .execute(pool)
        .await
        .unwrap();
    // Interrupted during the detach: April 2019 is left "detach pending" (a reader
    // holds it up, and the detach is cancelled while it waits).
    let mut reader = pool.begin().await.unwrap();
    sqlx::query("SELECT count(*) FROM sensor_readings")
        .execute(&mut *reader)
        .await
        .unwrap();
    let detach = tokio::spawn({
        let pool = pool.clone();
        async move {
            sqlx::raw_sql(
                "ALTER TABLE sensor_readings DETACH PARTITION sensor_readings_p201904 CONCURRENTLY",
            )
            .execute(&pool)
            .await
        }
    });
    let waiting = crate::common::eventually(std::time::Duration::from_secs(10), async || {
        env.db
            .count(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE%CONCURRENTLY' \
                 AND wait_event_type = 'Lock'",
            )
            .await
            == 1
    })
    .await;
    assert!(waiting, "the detach waits for the reader");
    sqlx::query(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'ALTER TABLE%CONCURRENTLY' AND pid <> pg_backend_pid()",
    )
    .execute(pool)
    .await
    .unwrap();
    assert!(detach.await.unwrap().is_err());
    reader.commit().await.unwrap();
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM pg_inherits WHERE inhdetachpending")
            .await,
        1
    );

    pipeline
        .store()
        .maintain(Some(Retention::Months(12)))
        .await
        .unwrap();

    let logged: Vec<(String, i64)> =
        sqlx::query_as("SELECT partition, readings FROM retention_log ORDER BY partition")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        logged,
        [
            ("sensor_readings_p201903".to_owned(), 1),
            ("sensor_readings_p201904".to_owned(), 1),
            ("sensor_readings_p201905".to_owned(), 1),
        ]
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM pg_class WHERE relname LIKE 'sensor\\_readings\\_p2019%'")
            .await,
        0
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        0
    );
}
