//! The pipeline against real databases: each test runs on both backends (SQLite and
//! PostgreSQL) unless it is about one of them, with a fresh database and temp folders.

use std::time::Duration;

use crate::common::{Backend, CutProxy, TestEnv, env_or_skip, files_in};
use rstest::rstest;
use sensor_ingest::pipeline::{Outcome, Pipeline, ProcessError};
use sensor_ingest::report::QuarantineReport;
use sensor_ingest::sink::{self, Store};

const VALID: &str = "\u{feff}Timestamp,Device,Temp,RH,Pressure,room\r\n\
2024-05-01T12:00:00Z,s-1,21.5,40,1013.25,kitchen\r\n\
2024-05-01 12:01:00,s-1,22.5,,1013.5,kitchen\r\n\
1714565000,s-2,-10,55.5,,\"hall, north\"\r\n\
2024-05-01T12:05:00+02:00,s-2,0,60,1000,";

#[rstest]
#[tokio::test]
async fn a_valid_file_lands_with_exact_rows_derived_values_and_stats(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    env.drop_file("valid.csv", VALID);

    let outcome = env.process(&pipeline, "valid.csv").await.unwrap();
    let Outcome::Loaded {
        id,
        rows,
        archived_as,
    } = outcome
    else {
        panic!("expected Loaded, got {outcome:?}")
    };
    assert_eq!(rows, 4);
    assert_eq!(archived_as.as_deref(), Some("valid.csv"));
    assert_eq!(files_in(&env.data()), Vec::<String>::new());
    assert_eq!(files_in(&env.processed()), vec!["valid.csv"]);
    assert_eq!(
        std::fs::read(env.processed().join("valid.csv")).unwrap(),
        VALID.as_bytes(),
        "archived bytes are untouched"
    );

    let db = &env.db;
    let r = db.readings().await;
    let lines: Vec<i64> = r.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5], "physical lines, header = 1");
    let first = &r[0];
    assert_eq!(first.sensor_id, "s-1");
    assert_eq!(first.temperature, Some(21.5));
    assert!((first.temperature_k.unwrap() - 294.65).abs() < 1e-9);
    assert!((first.temperature_norm.unwrap() - (21.5 + 50.0) / 110.0).abs() < 1e-12);
    assert!((first.humidity_norm.unwrap() - 0.4).abs() < 1e-12);
    assert!((first.pressure_norm.unwrap() - (1013.25 - 800.0) / 300.0).abs() < 1e-12);
    assert!(r.iter().all(|row| row.file_id == id));
    assert!(
        r.iter().all(|row| row.ingested_at == first.ingested_at),
        "one load, one ingest time"
    );
    assert_eq!(first.extra, Some(serde_json::json!({"room": "kitchen"})));
    assert_eq!(r[1].humidity, None, "empty cell is NULL");
    assert_eq!(
        r[0].ts.to_rfc3339(),
        "2024-05-01T12:00:00+00:00",
        "RFC 3339 with Z"
    );
    assert_eq!(
        r[1].ts.to_rfc3339(),
        "2024-05-01T12:01:00+00:00",
        "no offset: the source time zone (UTC)"
    );
    assert_eq!(
        r[2].ts.to_rfc3339(),
        "2024-05-01T12:03:20+00:00",
        "epoch seconds"
    );
    assert_eq!(
        r[3].ts.to_rfc3339(),
        "2024-05-01T10:05:00+00:00",
        "offset applied"
    );
    assert_eq!(r[2].extra, Some(serde_json::json!({"room": "hall, north"})));
    assert_eq!(r[3].extra, Some(serde_json::json!({"room": null})));

    let ledger = db.ledger().await;
    assert_eq!(ledger.len(), 1);
    let entry = &ledger[0];
    assert_eq!(entry.id, id);
    assert_eq!(entry.status, "loaded");
    assert_eq!(entry.row_count, 4);
    assert_eq!(entry.size_bytes, VALID.len() as i64);
    assert_eq!(
        entry.content_hash,
        blake3::hash(VALID.as_bytes()).to_hex().as_str()
    );
    assert_eq!(entry.archived_as.as_deref(), Some("valid.csv"));
    assert_eq!(
        entry.first_timestamp.unwrap().to_rfc3339(),
        "2024-05-01T10:05:00+00:00"
    );
    assert_eq!(
        entry.last_timestamp.unwrap().to_rfc3339(),
        "2024-05-01T12:03:20+00:00"
    );

    let metrics = db.metrics().await;
    let m = |name: &str| metrics.iter().find(|r| r.column_name == name).unwrap();
    let t = m("temperature");
    assert_eq!((t.value_count, t.null_count), (4, 0));
    assert_eq!((t.min_value, t.max_value), (Some(-10.0), Some(22.5)));
    assert!((t.mean_value.unwrap() - 8.5).abs() < 1e-12);
    // Sample std of 21.5, 22.5, -10, 0.
    let expected_sd = {
        let v = [21.5f64, 22.5, -10.0, 0.0];
        let mean = 8.5;
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt()
    };
    assert!((t.stddev_value.unwrap() - expected_sd).abs() < 1e-12);
    let h = m("humidity");
    assert_eq!((h.value_count, h.null_count), (3, 1));
    let p = m("pressure");
    assert_eq!((p.value_count, p.null_count), (3, 1));
    assert!(metrics.iter().all(|m| m.file_id == id));
    assert_eq!(metrics.len(), 3);
}

#[rstest]
#[tokio::test]
async fn an_invalid_file_is_quarantined_with_every_bad_line_and_loads_nothing(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let content = "ts,sensor_id,temperature,humidity\n\
        2024-05-01T00:00:00Z,a,20,50\n\
        2024-05-01T00:01:00Z,a,abc,50\n\
        2024-05-01T00:02:00Z,a,21,50\n\
        2024-02-30T00:03:00Z,,21,150\n\
        2024-05-01T00:04:00Z,a,,\n";
    env.drop_file("bad.csv", content);

    let outcome = env.process(&pipeline, "bad.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Quarantined { .. }),
        "{outcome:?}"
    );
    assert_eq!(files_in(&env.data()), Vec::<String>::new());
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["bad.csv", "bad.csv.error.json"]
    );
    assert_eq!(
        std::fs::read_to_string(env.quarantine().join("bad.csv")).unwrap(),
        content,
        "quarantined bytes are untouched"
    );

    let report: QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("bad.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.file, "bad.csv");
    assert_eq!(report.rows_read, 5);
    assert_eq!(report.invalid_rows, 3);
    assert_eq!(report.errors_total, 5);
    assert!(!report.errors_truncated);
    assert_eq!(report.rule, "invalid_rows");
    let got: Vec<(Option<u64>, &str, &str, &str)> = report
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str(), e.value.as_str(), e.rule.name()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(3), "temperature", "abc", "not_a_number"),
            (Some(5), "ts", "2024-02-30T00:03:00Z", "invalid_timestamp"),
            (Some(5), "sensor_id", "", "missing_value"),
            (Some(5), "humidity", "150", "out_of_range"),
            (Some(6), "", "", "no_measurement"),
        ]
    );
    assert!(
        report.reason.starts_with("3 invalid rows of 5"),
        "{}",
        report.reason
    );

    let db = &env.db;
    assert_eq!(db.count("SELECT count(*) FROM sensor_readings").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM file_metrics").await, 0);
    let ledger = db.ledger().await;
    assert_eq!(ledger.len(), 1);
    let row = &ledger[0];
    assert_eq!(row.status, "quarantined");
    assert_eq!(row.rejected_rows, 3);
    assert_eq!(row.row_count, 5);
    assert!(
        row.error_summary
            .as_deref()
            .is_some_and(|s| s.starts_with("3 invalid rows of 5")),
        "{:?}",
        row.error_summary
    );
    assert_eq!(row.archived_as.as_deref(), Some("bad.csv"));
}

#[rstest]
#[tokio::test]
async fn whole_file_errors_are_quarantined_with_their_line(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let cases = [
        (
            "ragged.csv",
            "ts,id,t\n1,a,1\n2,b,2,extra\n",
            "field_count",
            Some(3),
        ),
        ("empty.csv", "", "empty_file", None),
        ("header_only.csv", "ts,id,t\n", "header_only", Some(1)),
        ("no_sensor.csv", "ts,t\n1,1\n", "missing_column", Some(1)),
        (
            "no_measure.csv",
            "ts,id,room\n1,a,b\n",
            "no_measurement_column",
            Some(1),
        ),
    ];
    for (name, content, rule, line) in cases {
        env.drop_file(name, content);
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Quarantined { .. }),
            "{name}: {outcome:?}"
        );
        let report: QuarantineReport = serde_json::from_slice(
            &std::fs::read(env.quarantine().join(format!("{name}.error.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report.rule, rule, "{name}");
        assert_eq!(report.errors[0].line, line, "{name}");
        assert_eq!(
            std::fs::read(env.quarantine().join(name)).unwrap(),
            content.as_bytes()
        );
    }
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        0
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'quarantined'")
            .await,
        5
    );
}

/// A valid CSV of about `bytes` bytes, and its row count.
fn sized_csv(bytes: usize) -> (String, i64) {
    let mut csv = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    let mut rows = 0;
    while csv.len() < bytes {
        csv.push_str(&format!(
            "{},s-{},21.5,40,1013.25\n",
            1_700_000_000 + rows,
            rows % 7
        ));
        rows += 1;
    }
    (csv, rows)
}

/// Small files skip the lookup by hash and rely on the load refusing known content;
/// files over 1 MiB are looked up first. Both must end as duplicates.
#[rstest]
#[tokio::test]
async fn redropped_content_is_not_loaded_twice_whatever_its_name(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
    #[values(false, true)] large: bool,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let (content, rows) = if large {
        sized_csv(1_200_000)
    } else {
        (VALID.to_string(), 4)
    };
    env.drop_file("a.csv", &content);
    let first = env.process(&pipeline, "a.csv").await.unwrap();
    let Outcome::Loaded { id: first_id, .. } = first else {
        panic!("{first:?}")
    };

    env.drop_file("b.csv", &content);
    let second = env.process(&pipeline, "b.csv").await.unwrap();
    assert!(
        matches!(second, Outcome::Duplicate { of, .. } if of == first_id),
        "{second:?}"
    );
    env.drop_file("a.csv", &content);
    let third = env.process(&pipeline, "a.csv").await.unwrap();
    assert!(matches!(third, Outcome::Duplicate { .. }), "{third:?}");

    let db = &env.db;
    assert_eq!(db.count("SELECT count(*) FROM sensor_readings").await, rows);
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM ingest_files WHERE status = 'duplicate'")
            .await,
        2
    );
    let processed = files_in(&env.processed());
    assert_eq!(processed.len(), 3, "{processed:?}");
    assert!(files_in(&env.data()).is_empty());
}

/// Content loaded under the rules of its day is a duplicate when dropped again after
/// the rules changed to reject it: it is not quarantined, and nothing is loaded twice.
#[rstest]
#[tokio::test]
async fn loaded_content_stays_a_duplicate_after_the_rules_change(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    env.drop_file("a.csv", VALID);
    let Outcome::Loaded { id: first_id, .. } = env.process(&pipeline, "a.csv").await.unwrap()
    else {
        panic!("the file should load under the default ranges")
    };

    let mut strict = env.settings.clone();
    strict.ranges.temperature.max = 0.5;
    let strict = Pipeline::new(&strict, env.store());
    env.drop_file("b.csv", VALID);
    let again = env.process(&strict, "b.csv").await.unwrap();
    assert!(
        matches!(again, Outcome::Duplicate { of, .. } if of == first_id),
        "{again:?}"
    );
    // The same rules do reject new content of that kind.
    env.drop_file("c.csv", VALID.replace("s-2", "s-3"));
    let rejected = env.process(&strict, "c.csv").await.unwrap();
    assert!(
        matches!(rejected, Outcome::Quarantined { .. }),
        "{rejected:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );
    assert!(
        files_in(&env.quarantine())
            .iter()
            .all(|f| f.starts_with("c.csv"))
    );
}

#[rstest]
#[tokio::test]
async fn same_name_with_new_content_is_loaded_and_overwrites_nothing(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let one = "ts,id,t\n2024-01-01T00:00:00Z,a,1\n";
    let two = "ts,id,t\n2024-01-01T00:00:00Z,a,2\n2024-01-01T00:01:00Z,a,3\n";
    env.drop_file("same.csv", one);
    assert!(matches!(
        env.process(&pipeline, "same.csv").await.unwrap(),
        Outcome::Loaded { rows: 1, .. }
    ));
    env.drop_file("same.csv", two);
    let outcome = env.process(&pipeline, "same.csv").await.unwrap();
    let Outcome::Loaded {
        rows: 2,
        archived_as,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    let archived_as = archived_as.expect("archived");
    assert_ne!(archived_as, "same.csv");
    assert_eq!(
        std::fs::read_to_string(env.processed().join("same.csv")).unwrap(),
        one
    );
    assert_eq!(
        std::fs::read_to_string(env.processed().join(&archived_as)).unwrap(),
        two
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        3
    );

    // A quarantined name clash keeps both files and both reports.
    for _ in 0..2 {
        env.drop_file(
            "same.csv",
            format!("ts,id,t\n{},a,x\n", uuid::Uuid::now_v7()),
        );
        assert!(matches!(
            env.process(&pipeline, "same.csv").await.unwrap(),
            Outcome::Quarantined { .. }
        ));
    }
    assert_eq!(files_in(&env.quarantine()).len(), 4);
}

#[rstest]
#[tokio::test]
async fn a_commit_without_its_move_is_finished_on_the_next_attempt_not_reloaded(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    env.drop_file("late.csv", VALID);
    // Make the move fail after the commit: processed/ is replaced by a plain file.
    let processed = env.processed();
    std::fs::remove_dir(&processed).unwrap();
    std::fs::write(&processed, "not a folder").unwrap();
    let err = env.process(&pipeline, "late.csv").await.unwrap_err();
    assert!(
        !err.is_transient(),
        "archive failures wait for the next scan: {err}"
    );
    assert_eq!(
        files_in(&env.data()),
        vec!["late.csv"],
        "the file stays in data/"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );

    std::fs::remove_file(&processed).unwrap();
    std::fs::create_dir(&processed).unwrap();
    let outcome = env.process(&pipeline, "late.csv").await.unwrap();
    assert!(matches!(outcome, Outcome::Recovered { .. }), "{outcome:?}");
    assert_eq!(files_in(&env.processed()), vec!["late.csv"]);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 1);
}

#[rstest]
#[tokio::test]
async fn two_workers_racing_on_the_same_content_load_it_once(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
    // One batch (a single statement on PostgreSQL) and many (COPY).
    #[values(100, 20_000)] rows: usize,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let big: String = std::iter::once("ts,id,t\n".to_owned())
        .chain((0..rows).map(|i| format!("{},s{},{}\n", 1_700_000_000 + i, i % 7, i % 50)))
        .collect();
    env.drop_file("x.csv", &big);
    env.drop_file("y.csv", &big);
    let (a, b) = tokio::join!(
        env.process(&pipeline, "x.csv"),
        env.process(&pipeline, "y.csv")
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let loaded = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Loaded { .. }))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Duplicate { .. }))
        .count();
    assert_eq!((loaded, duplicates), (1, 1), "{outcomes:?}");
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        rows as i64
    );
}

#[tokio::test]
async fn an_unreachable_database_delays_the_file_but_never_quarantines_it() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let proxy = CutProxy::start(false).await;
    let pipeline = env.pipeline_via(&proxy).await;
    env.drop_file("wait.csv", VALID);
    let path = env.data().join("wait.csv");
    let task = env.spawn_process(&pipeline, "wait.csv");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !task.is_finished(),
        "still retrying while the database is down"
    );
    assert!(path.exists(), "the file waits in data/");
    assert!(files_in(&env.quarantine()).is_empty());

    proxy.set_up(true);
    loads_valid_once_soon(&env, task).await;
}

/// `task`, processing [`VALID`] and held up until now, finishes soon with it loaded
/// exactly once and nothing quarantined.
async fn loads_valid_once_soon(
    env: &TestEnv,
    task: tokio::task::JoinHandle<Result<Outcome, sensor_ingest::pipeline::ProcessError>>,
) {
    let outcome = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("loaded soon after the database is available again")
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 4, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 1);
    assert!(files_in(&env.quarantine()).is_empty());
}

#[tokio::test]
async fn a_connection_cut_mid_load_rolls_back_and_the_retry_loads_once() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let proxy = CutProxy::start(true).await;
    let pipeline = env.pipeline_via(&proxy).await;
    let big: String = std::iter::once("ts,id,t\n".to_owned())
        .chain((0..300_000).map(|i| format!("{},s{},{}\n", 1_700_000_000 + i, i % 7, i % 50)))
        .collect();
    env.drop_file("big.csv", &big);
    let task = env.spawn_process(&pipeline, "big.csv");
    // Cut as soon as the load has started, then restore.
    let started = crate::common::eventually(Duration::from_secs(20), async || {
        env.db
            .count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY sensor_readings%'")
            .await
            > 0
    })
    .await;
    assert!(started, "the COPY started");
    proxy.set_up(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_up(true);
    let outcome = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 300_000, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        300_000
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 1);
}

#[tokio::test]
async fn loads_over_tls_with_sslmode_require() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&env.db.pg().pool)
        .await
        .unwrap();
    if ssl != "on" {
        assert!(
            std::env::var("CI").is_err(),
            "CI's PostgreSQL must have ssl = on"
        );
        eprintln!("SKIPPED: this PostgreSQL server has ssl = off");
        return;
    }
    let options = env
        .db
        .pg()
        .options
        .clone()
        .ssl_mode(sqlx::postgres::PgSslMode::Require)
        .application_name("sensor-ingest-tls-test");
    let settings = sensor_ingest::config::DatabaseSettings::postgres(options);
    assert!(settings.to_string().ends_with("sslmode=require"));
    let store = sink::open(&settings, 1);
    store.prepare().await.unwrap();
    let pipeline = Pipeline::new(&env.settings, store);
    env.drop_file("tls.csv", VALID);
    let outcome = env.process(&pipeline, "tls.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 4, .. }),
        "{outcome:?}"
    );
    let encrypted = env
        .db
        .count(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'sensor-ingest-tls-test' AND ssl",
        )
        .await;
    // The pool's connection and the one that creates partitions.
    assert!(encrypted >= 1, "the agent's connections are encrypted");
    let plain = env
        .db
        .count(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'sensor-ingest-tls-test' AND NOT ssl",
        )
        .await;
    assert_eq!(plain, 0, "no connection of the agent is in plain text");
}

#[rstest]
#[tokio::test]
async fn a_file_renamed_over_one_being_loaded_is_not_archived_unread(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    env.pipeline().await;
    let newer = "ts,id,t\n2024-01-01T00:00:00Z,new,1\n2024-01-01T00:01:00Z,new,2\n";
    for (name, content) in [
        ("ok.csv", VALID),
        ("bad.csv", "ts,id,t\n2024-01-01T00:00:00Z,old,x\n"),
    ] {
        let path = env.drop_file(name, content);
        // Mid-load, a producer renames a new file over the one being loaded, the way
        // one re-delivering under the same name might.
        let mut store = crate::common::HookedStore::new(env.store());
        let (target, replacement) = (path.clone(), newer.replace("new", name));
        store.before_load = Box::new(move || {
            let incoming = target.with_extension("incoming");
            std::fs::write(&incoming, &replacement).unwrap();
            std::fs::rename(&incoming, &target).unwrap();
        });
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
        // Each file by itself (GROUP_FILES=1): the hook runs when the store is handed the
        // row stream, which a group commit skips for a file the reader refused.
        let mut settings = env.settings.clone();
        settings.group_files = 1;
        let pipeline = Pipeline::new(&settings, store);
        let outcome = env.process(&pipeline, name).await.unwrap();
        let archived = match &outcome {
            Outcome::Loaded { archived_as, .. } | Outcome::Quarantined { archived_as, .. } => {
                archived_as
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(archived, &None, "{name}: nothing was moved");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            newer.replace("new", name),
            "{name}: the newcomer waits in data/"
        );
    }
    assert!(files_in(&env.processed()).is_empty());
    assert!(files_in(&env.quarantine()).is_empty());
    // The content that was read is accounted for; the newcomers load on their own turn.
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        4
    );
    let pipeline = env.pipeline().await;
    for name in ["ok.csv", "bad.csv"] {
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { rows: 2, .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        8
    );
    assert_eq!(files_in(&env.processed()), vec!["bad.csv", "ok.csv"]);
}

/// Another process holding SQLite's write lock (the `sqlite3` shell in a transaction,
/// say) outlasts the busy timeout: the load fails with `SQLITE_BUSY`, which is
/// transient, so the file waits and loads once the lock is released.
#[tokio::test]
async fn a_locked_sqlite_database_delays_the_file_but_never_quarantines_it() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let pipeline = env.pipeline().await;
    let crate::common::TestStore::Sqlite(db) = &env.db else {
        unreachable!()
    };
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();

    env.drop_file("wait.csv", VALID);
    let task = env.spawn_process(&pipeline, "wait.csv");
    // Longer than the store's 5 s busy timeout, so at least one attempt fails.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(!task.is_finished(), "still waiting for the lock");
    assert!(
        env.data().join("wait.csv").exists(),
        "the file waits in data/"
    );
    assert!(files_in(&env.quarantine()).is_empty());

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    loads_valid_once_soon(&env, task).await;
}

/// A file larger than one row batch takes the streaming path (COPY on PostgreSQL,
/// chunked INSERTs on SQLite); a small one goes in as a single statement. Both must
/// store exactly what was read, including text that needs escaping and empty cells.
#[rstest]
#[tokio::test]
async fn every_row_of_a_multi_batch_file_is_stored_exactly(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    let notes = [
        "tab\there",
        "back\\slash",
        "quote \"q\"",
        "naïve ☃",
        "",
        "line\\nfeed",
    ];
    let rows = 5_000;
    let mut csv = String::from("ts,sensor_id,temperature,humidity,note\n");
    for i in 0..rows {
        let humidity = if i % 3 == 0 {
            String::new()
        } else {
            format!("{}", i % 100)
        };
        let note = notes[i % notes.len()].replace('"', "\"\"");
        csv.push_str(&format!(
            "{},s\\{}é,{}.25,{humidity},\"{note}\"\n",
            1_700_000_000 + i,
            i % 13,
            i % 40
        ));
    }
    env.drop_file("many.csv", &csv);
    let outcome = env.process(&pipeline, "many.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 5_000, .. }),
        "{outcome:?}"
    );
    let got = env.db.readings().await;
    assert_eq!(got.len(), rows);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.line, i as i64 + 2);
        assert_eq!(r.ts.timestamp(), 1_700_000_000 + i as i64);
        assert_eq!(r.sensor_id, format!("s\\{}é", i % 13), "line {}", r.line);
        assert_eq!(r.temperature, Some((i % 40) as f64 + 0.25));
        let humidity = (i % 3 != 0).then_some((i % 100) as f64);
        assert_eq!(r.humidity, humidity, "line {}", r.line);
        assert_eq!(r.pressure, None);
        let note = notes[i % notes.len()];
        assert_eq!(
            r.extra,
            Some(
                serde_json::json!({ "note": if note.is_empty() { serde_json::Value::Null } else { note.into() } })
            ),
            "line {}",
            r.line
        );
    }
}

/// A DBA owns the tables and grants the agent only what loading needs: the agent
/// cannot apply script.sql (indexes and migrations need ownership) but must still
/// start and load; without those grants it is refused at startup.
#[tokio::test]
async fn tables_owned_by_someone_else_are_used_as_they_are() {
    let role = crate::common::TempRole::new("loader");
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    env.pipeline().await; // The owner applies the schema.
    let db = env.db.pg();
    let role = &role.name;
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let as_loader =
        sensor_ingest::config::DatabaseSettings::postgres(db.options.clone().username(role));

    let refused = sink::open(&as_loader, 2).prepare().await.unwrap_err();
    assert_eq!(
        refused.class,
        sensor_ingest::sink::ErrorClass::Refused,
        "{refused}"
    );

    for sql in [
        format!("GRANT SELECT, INSERT, UPDATE ON ingest_files TO {role}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE ON sensor_readings, file_metrics, qc_measure_flags \
             TO {role}"
        ),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_claims TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let store = sink::open(&as_loader, 2);
    store.prepare().await.expect("usable tables are enough");
    let pipeline = Pipeline::new(&env.settings, store);
    env.drop_file("granted.csv", VALID);
    // Partitions are the owner's to create too: without May 2024 the file waits (it is
    // not quarantined), and the error says who must act.
    match env.process(&pipeline, "granted.csv").await {
        Err(ProcessError::Database(e)) => {
            assert_eq!(e.class, sensor_ingest::sink::ErrorClass::Refused, "{e}");
            assert!(e.to_string().contains("2024-05"), "{e}");
            assert!(e.to_string().contains("owner"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(crate::common::files_in(&env.data()), ["granted.csv"]);
    sqlx::raw_sql(
        "CREATE TABLE sensor_readings_p202405 (LIKE sensor_readings INCLUDING DEFAULTS); \
         ALTER TABLE sensor_readings ATTACH PARTITION sensor_readings_p202405 \
             FOR VALUES FROM ('2024-05-01 00:00:00+00') TO ('2024-06-01 00:00:00+00')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let outcome = env.process(&pipeline, "granted.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 4, .. }),
        "{outcome:?}"
    );
}
