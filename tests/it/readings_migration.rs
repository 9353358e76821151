//! A database from before monthly partitions (the schema of `b7b6fbc`, kept in
//! `tests/fixtures/schema/before-partitions.sql`): the agent keeps loading into its plain
//! table and says a migration is pending; `sensor-ingest migrate` moves it in batches,
//! stops and resumes, copies what was loaded in between, and swaps the tables.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use sensor_ingest::config::DatabaseSettings;
use sensor_ingest::pipeline::{Outcome, RetryLimit};
use sensor_ingest::sink::postgres::PgStore;
use sensor_ingest::sink::postgres::migrate::{self, MigrateOptions, Migrated};
use sensor_ingest::sink::{LedgerQueries, Store};
use sensor_ingest::source::Candidate;
use sqlx::AssertSqlSafe;
use tokio_util::sync::CancellationToken;

use crate::common::binary::command;
use crate::common::{Backend, TestEnv, env_or_skip};

fn readings(start: DateTime<Utc>, step: Duration, rows: usize, sensor: &str) -> String {
    let mut csv = String::from("timestamp,sensor_id,temperature\n");
    for i in 0..rows {
        let ts = start + step * i as i32;
        csv.push_str(&format!(
            "{},{sensor},{}.25\n",
            ts.format("%Y-%m-%dT%H:%M:%SZ"),
            i % 40
        ));
    }
    csv
}

/// The old schema, applied as an agent of `b7b6fbc` did.
async fn old_database(env: &TestEnv) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema/before-partitions.sql");
    let sql = std::fs::read_to_string(path).unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&env.db.pg().pool)
        .await
        .unwrap();
}

/// Per file: readings, and a checksum of their lines, timestamps and values.
async fn fingerprint(env: &TestEnv) -> Vec<(String, i64, f64)> {
    sqlx::query_as(
        "SELECT file_id::text, count(*), \
                sum(line * 7 + extract(epoch FROM ts) + coalesce(temperature, 0))::float8 \
         FROM sensor_readings GROUP BY file_id ORDER BY file_id",
    )
    .fetch_all(&env.db.pg().pool)
    .await
    .unwrap()
}

async fn relkind(env: &TestEnv) -> Option<String> {
    env.db
        .text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('sensor_readings')")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_plain_table_in_resumable_batches_and_swaps() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    old_database(&env).await;
    // The agent starts on the old table: it stays plain, and loading goes on.
    let pipeline = env.pipeline().await;
    assert_eq!(relkind(&env).await.as_deref(), Some("r"));
    let start: DateTime<Utc> = "2022-11-20T00:00:00Z".parse().unwrap();
    for i in 0..8 {
        let name = format!("f{i}.csv");
        // Files of 3,000 rows ten minutes apart: each spans three weeks, some a month
        // boundary; one of them is large enough for COPY.
        let rows = if i == 3 { 9_000 } else { 3_000 };
        env.drop_file(
            &name,
            readings(
                start + Duration::days(10 * i),
                Duration::minutes(10),
                rows,
                &format!("s-{i}"),
            ),
        );
        assert!(matches!(
            env.process(&pipeline, &name).await.unwrap(),
            Outcome::Loaded { .. }
        ));
    }
    let storage = pipeline.store().storage().await.unwrap().unwrap();
    assert!(storage.migration_pending);
    let before = fingerprint(&env).await;
    assert_eq!(before.len(), 8);

    // Interrupted: the binary stops after one batch of about 6,000 readings.
    let out = command(&env, &["migrate", "--batch-rows", "6000", "--batches", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("copied 6000 of 30000 readings (20.0%) from 2 files in 1 batches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("run `sensor-ingest migrate` again to continue"),
        "{stdout}"
    );
    assert_eq!(relkind(&env).await.as_deref(), Some("r"));
    let status = command(&env, &["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("a migration is pending"), "{status}");
    assert!(
        status.contains("started, 6000 of 30000 readings copied"),
        "{status}"
    );

    // Between the two runs the agent loads more files into the old table, one of them
    // into a month no other file has.
    env.drop_file(
        "between.csv",
        readings(start, Duration::minutes(1), 100, "s-between"),
    );
    env.drop_file(
        "far.csv",
        readings(
            "2015-06-01T00:00:00Z".parse().unwrap(),
            Duration::hours(1),
            10,
            "s-far",
        ),
    );
    for name in ["between.csv", "far.csv"] {
        assert!(matches!(
            env.process(&pipeline, name).await.unwrap(),
            Outcome::Loaded { .. }
        ));
    }
    let before = fingerprint(&env).await;

    // The rest, by the library, reporting each batch.
    let DatabaseSettings::Postgres(settings) = &env.db.pg().settings else {
        unreachable!("a PostgreSQL test database")
    };
    let store = PgStore::new(settings, 2, "test-agent");
    store.prepare().await.unwrap();
    let mut batches = Vec::new();
    let options = MigrateOptions {
        batch_rows: 6_000,
        ..MigrateOptions::default()
    };
    let done = migrate::migrate(&store, options, |p| batches.push(p.rows))
        .await
        .unwrap();
    assert!(
        matches!(done, Migrated::Done { rows: 30_110, .. }),
        "{done:?}"
    );
    assert!(batches.len() >= 4, "{batches:?}");
    assert!(batches.windows(2).all(|w| w[0] < w[1]), "{batches:?}");

    assert_eq!(relkind(&env).await.as_deref(), Some("p"));
    assert_eq!(fingerprint(&env).await, before);
    let misfiled = env
        .db
        .count(
            "SELECT count(*) FROM sensor_readings WHERE tableoid::regclass::text <> \
             'sensor_readings_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMM')",
        )
        .await;
    assert_eq!(misfiled, 0);
    for gone in [
        "sensor_readings_unpartitioned",
        "sensor_readings_migrating",
        "readings_migration",
    ] {
        assert_eq!(
            env.db
                .text(&format!("SELECT to_regclass('{gone}')::text"))
                .await,
            None,
            "{gone}"
        );
    }
    // The views and indexes are the partitioned table's now.
    assert_eq!(
        env.db
            .count("SELECT sum(readings)::int8 FROM sensor_daily")
            .await,
        30_110
    );
    assert_eq!(
        env.db
            .count(
                "SELECT count(*) FROM pg_class WHERE relkind = 'I' AND relname IN \
                 ('sensor_readings_pkey', 'sensor_readings_sensor_ts', 'sensor_readings_ts_brin')",
            )
            .await,
        3
    );
    assert!(!store.storage().await.unwrap().unwrap().migration_pending);
    // Nothing left to do.
    let again = migrate::migrate(&store, MigrateOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(again, Migrated::AlreadyPartitioned);

    // The agent that started on the plain table loads into the partitioned one, even a
    // month without a partition (its first try fails, transiently, and it looks again).
    env.drop_file(
        "after.csv",
        readings(
            "2012-02-03T00:00:00Z".parse().unwrap(),
            Duration::hours(1),
            5,
            "s-after",
        ),
    );
    let outcome = pipeline
        .process(
            &Candidate::in_folder(env.data().join("after.csv")),
            RetryLimit::Times(3),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 5, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM sensor_readings_p201202")
            .await,
        5
    );
}

#[tokio::test]
async fn an_agent_on_a_plain_table_says_a_migration_is_pending() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    old_database(&env).await;
    env.drop_file(
        "a.csv",
        readings(
            "2024-05-01T00:00:00Z".parse().unwrap(),
            Duration::minutes(1),
            3,
            "s-1",
        ),
    );
    let out = command(&env, &["once"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("a migration is pending"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        3
    );
    assert_eq!(relkind(&env).await.as_deref(), Some("r"));
}

#[tokio::test]
async fn migrate_on_a_partitioned_or_sqlite_store_has_nothing_to_do() {
    for backend in [Backend::Postgres, Backend::Sqlite, Backend::Mysql] {
        let env = env_or_skip!(TestEnv::new(backend));
        let out = command(&env, &["migrate"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.starts_with("nothing to migrate"), "{stdout}");
    }
}

#[tokio::test]
async fn migrate_killed_mid_copy_resumes_from_its_last_batch() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    old_database(&env).await;
    // 2,000 loaded files of 100 readings each, as an older agent left them.
    sqlx::raw_sql(
        "INSERT INTO ingest_files (id, file_name, content_hash, size_bytes, status, row_count, \
             first_timestamp, last_timestamp, started_at, agent) \
         SELECT md5('f' || i)::uuid, 'f' || i || '.csv', md5('f' || i), 4000, 'loaded', 100, \
                timestamptz '2023-01-01Z' + i * interval '1 hour', \
                timestamptz '2023-01-01Z' + i * interval '1 hour' + interval '99 seconds', \
                now(), 'old:1' \
         FROM generate_series(1, 2000) i; \
         INSERT INTO sensor_readings (file_id, line, ts, sensor_id, temperature) \
         SELECT f.id, 2 + k, f.first_timestamp + k * interval '1 second', 's-' || (k % 7), k \
         FROM ingest_files f, generate_series(0, 99) k;",
    )
    .execute(&env.db.pg().pool)
    .await
    .unwrap();
    let before = fingerprint(&env).await;

    let mut child = command(&env, &["migrate", "--batch-rows", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    use std::io::BufRead;
    let seen: Vec<String> = stdout.lines().take(5).map(Result::unwrap).collect();
    crate::common::binary::signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    assert!(seen[4].contains("in 5 batches"), "{seen:?}");

    // What committed is consistent: the cursor's count is what the new table holds.
    let recorded = env
        .db
        .count("SELECT rows_copied FROM readings_migration")
        .await;
    let copied = env
        .db
        .count("SELECT count(*) FROM sensor_readings_migrating")
        .await;
    assert_eq!(recorded, copied);
    assert!((500..200_000).contains(&copied), "{copied}");
    assert_eq!(relkind(&env).await.as_deref(), Some("r"));

    let out = command(&env, &["migrate", "--batch-rows", "20000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("migrated: 200000 readings"), "{stdout}");
    assert_eq!(relkind(&env).await.as_deref(), Some("p"));
    assert_eq!(fingerprint(&env).await, before);
}
