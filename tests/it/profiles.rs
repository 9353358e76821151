//! Source profiles end to end, on both backends: real exports load through a profile
//! with their units converted and their codes counted; bad rows go to a rejects file
//! under a skip-rows policy; a file its profile cannot read waits in the quarantine
//! until the profile is fixed; exactly once holds whatever the profile; an invalid
//! profile stops the agent; `run` picks up edits and ignores invalid ones.

use std::time::Duration;

use crate::common::binary::{command, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};
use rstest::rstest;
use sensor_ingest::ops::quarantine;
use sensor_ingest::pipeline::{Outcome, Pipeline};
use sensor_ingest::profile::{ProfileSet, Profiles};
use sensor_ingest::report::QuarantineReport;

/// A Campbell-style logger export: a metadata line (station, logger), the header, a
/// units row, °F, kPa, the code -7999, a further measure.
const LOGGER: &str = "\"TOA5\",\"Pond_North\",\"CR1000X\",\"4711\"\n\
\"TIMESTAMP\",\"RECORD\",\"AirT_F\",\"RH\",\"BP_kPa\",\"WS_ms\"\n\
\"TS\",\"RN\",\"Deg F\",\"%\",\"kPa\",\"m/s\"\n\
\"2024-03-31 01:00:00\",812,41,80,101.3,2.5\n\
\"2024-03-31 02:00:00\",813,-7999,81,101.2,3.0\n\
\"2024-03-31 03:00:00\",814,50,NAN,101.1,NAN\n";

const LOGGER_PROFILE: &str = r#"
description = "Pond logger (Campbell TOA5), local standard time"
match = ["pond_*.dat"]
missing = ["NAN", "-7999"]

[layout]
preamble = 1
skip_after_header = 1

[metadata]
line = 1
fields = { station = 2, logger = 3 }

[sensor]
metadata = "station"

[time]
column = "TIMESTAMP"
zone = "-07:00"

[measures.temperature]
column = "AirT_F"
unit = "degF"

[measures.humidity]
column = "RH"

[measures.pressure]
column = "BP_kPa"
unit = "kPa"

[measures.wind_speed]
column = "WS_ms"
unit = "m/s"
range = [0, 75]
"#;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[rstest]
#[tokio::test]
async fn a_logger_export_loads_through_its_profile_with_units_codes_and_metadata(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("pond.toml", LOGGER_PROFILE)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file("pond_2024.dat", LOGGER);
    let outcome = env.process(&pipeline, "pond_2024.dat").await.unwrap();
    let Outcome::Loaded { id, rows: 3, .. } = outcome else {
        panic!("expected 3 rows loaded, got {outcome:?}");
    };

    let readings = env.db.readings().await;
    assert_eq!(readings.len(), 3);
    let first = &readings[0];
    assert_eq!(
        first.line, 4,
        "lines stay physical: metadata and units rows count"
    );
    assert_eq!(first.sensor_id, "Pond_North");
    // Local standard time, UTC-7: 01:00 is 08:00 UTC.
    assert_eq!(first.ts.to_rfc3339(), "2024-03-31T08:00:00+00:00");
    assert!(close(first.temperature, 5.0), "41 °F is 5 °C: {first:?}");
    assert!(close(first.pressure, 1013.0), "101.3 kPa is 1013 hPa");
    assert!(close(first.temperature_k, 278.15));
    let extra = first.extra.as_ref().unwrap();
    assert_eq!(extra["wind_speed"], serde_json::json!(2.5));
    assert_eq!(extra["RECORD"], serde_json::json!(812));
    assert_eq!(extra["meta_logger"], "CR1000X");
    assert_eq!(
        readings[1].temperature, None,
        "-7999 is no value, never −7,999 °C"
    );
    assert_eq!(readings[2].humidity, None);
    assert_eq!(
        readings[2].extra.as_ref().unwrap()["wind_speed"],
        serde_json::Value::Null
    );

    let metrics = env.db.metrics().await;
    let names: Vec<&str> = metrics.iter().map(|m| m.column_name.as_str()).collect();
    assert_eq!(
        names,
        vec!["humidity", "pressure", "temperature", "wind_speed"]
    );
    let t = metrics
        .iter()
        .find(|m| m.column_name == "temperature")
        .unwrap();
    assert_eq!((t.value_count, t.null_count), (2, 1));
    assert_eq!(
        env.db
            .text("SELECT source_unit FROM file_metrics WHERE column_name = 'temperature'")
            .await
            .as_deref(),
        Some("degF")
    );
    assert_eq!(
        env.db
            .count("SELECT missing_codes FROM file_metrics WHERE column_name = 'temperature'")
            .await,
        1
    );
    assert_eq!(
        env.db
            .text("SELECT profile FROM ingest_files")
            .await
            .as_deref(),
        Some("pond")
    );
    let hash = env
        .db
        .text("SELECT profile_hash FROM ingest_files")
        .await
        .unwrap();
    assert_eq!(
        hash,
        blake3::hash(LOGGER_PROFILE.as_bytes()).to_hex().to_string()
    );
    assert!(env.db.ledger().await.iter().all(|l| l.id == id));
}

#[rstest]
#[tokio::test]
async fn a_file_no_profile_matches_is_read_with_the_default_and_says_so(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("pond.toml", LOGGER_PROFILE)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file(
        "plain.csv",
        "timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,s-1,21.5\n",
    );
    assert!(matches!(
        env.process(&pipeline, "plain.csv").await.unwrap(),
        Outcome::Loaded { rows: 1, .. }
    ));
    assert_eq!(
        env.db
            .text("SELECT profile FROM ingest_files")
            .await
            .as_deref(),
        Some("default")
    );
}

const SKIPPING: &str = r#"
match = ["skip_*.csv"]
[rows]
on_error = "skip_rows"
max_bad_rows = 2
skip_blank = true
"#;

#[rstest]
#[tokio::test]
async fn bad_rows_go_to_a_rejects_file_and_the_ledger_says_partial(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("skip.toml", SKIPPING)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    let text = "timestamp,sensor_id,temperature\n\
        2024-05-01T12:00:00Z,s-1,21.5\n\
        2024-05-01T12:01:00Z,s-1,hot\n\
        ,,\n\
        2024-05-01T12:02:00Z,s-1,22.5\n";
    env.drop_file("skip_a.csv", text);
    let outcome = env.process(&pipeline, "skip_a.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 2, .. }),
        "{outcome:?}"
    );
    let ledger = env.db.ledger().await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (
            ledger[0].status.as_str(),
            ledger[0].row_count,
            ledger[0].rejected_rows
        ),
        ("partial", 2, 1)
    );
    assert_eq!(files_in(&env.processed()), vec!["skip_a.csv"]);
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["skip_a.rejects.csv", "skip_a.rejects.csv.error.json"]
    );
    let rejects = std::fs::read_to_string(env.quarantine().join("skip_a.rejects.csv")).unwrap();
    assert_eq!(
        rejects,
        "timestamp,sensor_id,temperature\n2024-05-01T12:01:00Z,s-1,hot\n"
    );
    let report: QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("skip_a.rejects.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.rule, "not_a_number");
    assert_eq!(report.errors[0].line, Some(3));

    // The same content again is a duplicate of the partial load, not a second load.
    env.drop_file("skip_again.csv", text);
    assert!(matches!(
        env.process(&pipeline, "skip_again.csv").await.unwrap(),
        Outcome::Duplicate { .. }
    ));

    // Over the limit the whole file is held back, as with reject_file.
    env.drop_file(
        "skip_b.csv",
        "timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,s-1,a\n\
         2024-05-01T12:01:00Z,s-1,b\n2024-05-01T12:02:00Z,s-1,c\n2024-05-01T12:03:00Z,s-1,1\n",
    );
    let outcome = env.process(&pipeline, "skip_b.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Quarantined { .. }),
        "{outcome:?}"
    );
    let report: QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("skip_b.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.rule, "too_many_bad_rows");
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        2
    );
}

#[rstest]
#[tokio::test]
async fn a_file_its_profile_cannot_read_waits_until_the_profile_is_fixed(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let wrong = LOGGER_PROFILE.replace("\"AirT_F\"", "\"AirTemp_F\"");
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("pond.toml", &wrong)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file("pond_1.dat", LOGGER);
    let outcome = env.process(&pipeline, "pond_1.dat").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Quarantined { .. }),
        "{outcome:?}"
    );
    let report: QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("pond_1.dat.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.rule, "profile_mismatch");
    assert!(report.reason.contains("pond") && report.reason.contains("measures.temperature"));
    assert!(report.reason.contains("AirTemp_F"), "{}", report.reason);
    let quarantined = std::fs::read(env.quarantine().join("pond_1.dat")).unwrap();
    assert_eq!(quarantined, LOGGER.as_bytes(), "bytes untouched");

    // Fix the profile; the agent's profiles pick it up; retry the untouched file.
    std::fs::write(env.profiles().join("pond.toml"), LOGGER_PROFILE).unwrap();
    let profiles = Profiles::new(ProfileSet::load(&env.profiles()).unwrap());
    let fixed = Pipeline::new(
        &sensor_ingest::config::Settings {
            profiles: profiles.current().as_ref().clone(),
            ..env.settings.clone()
        },
        env.store(),
    );
    let area = sensor_ingest::source::FolderQuarantine::new(env.quarantine(), env.data());
    let entry = quarantine::find(&area, "pond_1.dat").unwrap();
    quarantine::retry(&area, &entry).unwrap();
    assert!(matches!(
        env.process(&fixed, "pond_1.dat").await.unwrap(),
        Outcome::Loaded { rows: 3, .. }
    ));
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        3
    );
}

#[rstest]
#[tokio::test]
async fn a_profile_change_does_not_load_content_already_loaded_again(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let first = "match = [\"room_*.csv\"]\n[sensor]\nconstant = \"first\"\n";
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("room.toml", first)],
        &[]
    ));
    let text = "timestamp,temperature\n2024-05-01T12:00:00Z,21.5\n";
    env.drop_file("room_a.csv", text);
    assert!(matches!(
        env.process(&env.pipeline().await, "room_a.csv")
            .await
            .unwrap(),
        Outcome::Loaded { rows: 1, .. }
    ));

    let second = first.replace("first", "second");
    std::fs::write(env.profiles().join("room.toml"), &second).unwrap();
    let reloaded = Pipeline::new(
        &sensor_ingest::config::Settings {
            profiles: ProfileSet::load(&env.profiles()).unwrap(),
            ..env.settings.clone()
        },
        env.store(),
    );
    env.drop_file("room_b.csv", text);
    assert!(matches!(
        env.process(&reloaded, "room_b.csv").await.unwrap(),
        Outcome::Duplicate { .. }
    ));
    let readings = env.db.readings().await;
    assert_eq!(readings.len(), 1);
    assert_eq!(
        readings[0].sensor_id, "first",
        "the content was loaded once, as first read"
    );
}

#[tokio::test]
async fn an_invalid_profile_stops_the_agent_with_exit_code_2_naming_file_and_key() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    std::fs::write(
        env.profiles().join("typo.toml"),
        "match = [\"*.dat\"]\n[layout]\ndelimter = \";\"\n",
    )
    .unwrap();
    std::fs::write(
        env.profiles().join("units.toml"),
        "match = [\"*.txt\"]\n[measures.temperature]\ncolumn = \"T\"\nunit = \"degR\"\n",
    )
    .unwrap();
    let out = command(&env, &["once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("typo.toml") && stderr.contains("delimter"),
        "{stderr}"
    );
    assert!(
        stderr.contains("units.toml") && stderr.contains("measures.temperature.unit"),
        "every bad profile is named: {stderr}"
    );
}

#[tokio::test]
async fn run_reloads_edited_profiles_and_keeps_the_previous_ones_when_an_edit_is_invalid() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let profile = |id: &str| format!("match = [\"room_*.csv\"]\n[sensor]\nconstant = \"{id}\"\n");
    std::fs::write(env.profiles().join("room.toml"), profile("first")).unwrap();
    let log = env.dir.path().join("agent.log");
    let mut agent = spawn_logged(command(&env, &["run"]), &log);
    let started = eventually(Duration::from_secs(30), async || {
        read_log(&log).contains("watching for files")
    })
    .await;
    assert!(started, "{}", read_log(&log));
    let file = |n: u32| format!("timestamp,temperature\n2024-05-01T12:0{n}:00Z,2{n}.5\n");
    let sensors = async |want: &[&str]| {
        eventually(Duration::from_secs(20), async || {
            let rows = env.db.readings().await;
            rows.iter()
                .map(|r| r.sensor_id.as_str())
                .collect::<Vec<_>>()
                == want
        })
        .await
    };
    env.drop_file("room_1.csv", file(1));
    assert!(sensors(&["first"]).await, "{}", read_log(&log));

    std::fs::write(
        env.profiles().join("room.toml"),
        "match = [\"room_*.csv\"]\n[sensr]\n",
    )
    .unwrap();
    let complained = eventually(Duration::from_secs(20), async || {
        read_log(&log).contains("an edited profile is invalid")
    })
    .await;
    assert!(complained, "{}", read_log(&log));
    env.drop_file("room_2.csv", file(2));
    assert!(
        sensors(&["first", "first"]).await,
        "the previous profile stays in force"
    );

    std::fs::write(env.profiles().join("room.toml"), profile("second")).unwrap();
    let reloaded = eventually(Duration::from_secs(20), async || {
        read_log(&log).contains("source profiles reloaded")
    })
    .await;
    assert!(reloaded, "{}", read_log(&log));
    env.drop_file("room_3.csv", file(3));
    assert!(
        sensors(&["first", "first", "second"]).await,
        "{}",
        read_log(&log)
    );

    signal(&agent, libc::SIGTERM);
    assert!(
        wait_exit(&mut agent, Duration::from_secs(20))
            .await
            .success()
    );
}

#[tokio::test]
async fn check_names_the_profile_and_every_whole_file_problem() {
    let env = env_or_skip!(TestEnv::with_profiles(
        Backend::Sqlite,
        &[("pond.toml", LOGGER_PROFILE)],
        &[]
    ));
    let good = env.dir.path().join("pond_ok.dat");
    std::fs::write(&good, LOGGER).unwrap();
    let bad = env.dir.path().join("export.csv");
    std::fs::write(&bad, "when,where,Temp (degR)\n1,2,3\n").unwrap();
    let out = command(
        &env,
        &[
            "check",
            "--json",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["profile"], "pond");
    assert_eq!(results[0]["valid"], true);
    assert!(
        results[0]["profile_reason"]
            .as_str()
            .unwrap()
            .contains("pond_*.dat")
    );
    assert_eq!(results[1]["profile"], "default");
    let rules: Vec<&str> = results[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        vec!["missing_column", "missing_column", "unknown_unit"]
    );

    // --profile reads a file with a profile its name does not match.
    let renamed = env.dir.path().join("north.dat");
    std::fs::write(&renamed, LOGGER).unwrap();
    let out = command(
        &env,
        &["check", "--profile", "pond", renamed.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("3 rows") && text.contains("--profile"),
        "{text}"
    );
}

/// A tidy long export: one value per row, the metric named in a column.
const TIDY_PROFILE: &str = r#"
match = ["tidy_*.csv"]

[shape]
kind = "long"
value = "value"
metric = "metric"
metrics = { temp_c = "temperature", rh_pct = "humidity", pressure_kpa = "pressure" }

[measures.pressure]
unit = "kPa"
"#;

const TIDY: &str = "time,sensor,metric,value\n\
2024-05-01T00:10:00Z,gh_a,temp_c,18.25\n\
2024-05-01T00:10:00Z,gh_a,rh_pct,71.5\n\
2024-05-01T00:10:00Z,gh_b,temp_c,17.9\n\
2024-05-01T00:10:00Z,gh_a,pressure_kpa,101.3\n\
2024-05-01T00:10:00Z,gh_a,co2_ppm,420\n\
2024-05-01T00:20:00Z,gh_a,temp_c,18.31\n\
2024-05-01T00:20:00Z,gh_a,rh_pct,\n\
2024-05-01T00:10:00Z,gh_a,temp_c,18.25\n";

#[rstest]
#[tokio::test]
async fn a_tidy_long_export_merges_rows_of_one_sensor_and_time(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("tidy.toml", TIDY_PROFILE)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file("tidy_gh.csv", TIDY);
    let outcome = env.process(&pipeline, "tidy_gh.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 3, .. }),
        "{outcome:?}"
    );
    let mut readings = env.db.readings().await;
    readings.sort_by_key(|r| r.line);
    let got: Vec<_> = readings
        .iter()
        .map(|r| (r.line, r.sensor_id.as_str(), r.ts.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "gh_a", "2024-05-01T00:10:00+00:00".to_owned()),
            (4, "gh_b", "2024-05-01T00:10:00+00:00".to_owned()),
            (7, "gh_a", "2024-05-01T00:20:00+00:00".to_owned()),
        ]
    );
    let a = &readings[0];
    assert!(close(a.temperature, 18.25) && close(a.humidity, 71.5));
    assert!(close(a.pressure, 1013.0), "101.3 kPa is 1013 hPa: {a:?}");
    assert!(a.extra.is_none(), "no per-row extra columns in a long file");
    assert!(close(readings[1].temperature, 17.9) && readings[1].humidity.is_none());
    assert!(close(readings[2].temperature, 18.31) && readings[2].humidity.is_none());
}

#[rstest]
#[tokio::test]
async fn conflicting_values_for_one_sensor_time_and_measure_are_a_row_error(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("tidy.toml", TIDY_PROFILE)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    let text = format!("{TIDY}2024-05-01T00:10:00Z,gh_a,rh_pct,70\n");
    env.drop_file("tidy_conflict.csv", text);
    let outcome = env.process(&pipeline, "tidy_conflict.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Quarantined { .. }),
        "{outcome:?}"
    );
    assert!(env.db.readings().await.is_empty());
    let report: QuarantineReport = serde_json::from_slice(
        &std::fs::read(env.quarantine().join("tidy_conflict.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report.rule, "conflicting_values");
    assert_eq!(report.errors[0].line, Some(10));
    assert_eq!(report.errors[0].column, "value");
}

#[test]
fn a_home_assistant_history_counts_skipped_entities_and_missing_states() {
    use sensor_ingest::config::{Ranges, SourceTimezone};
    use sensor_ingest::pipeline::{ReadContext, read_rows};
    use sensor_ingest::profile::Profile;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/profiles");
    let profile = Profile::from_file(&dir.join("home-assistant.toml")).unwrap();
    let cx = ReadContext {
        profile: std::sync::Arc::new(profile),
        file_name: "history.csv".to_owned(),
        ranges: Ranges::default(),
        tz: SourceTimezone::default(),
        order: None,
    };
    let bytes = std::fs::read(dir.join("history.csv")).unwrap();
    let mut readings = Vec::new();
    let report = read_rows(&bytes[..], &cx, |row| {
        readings.push(row.reading);
        true
    });
    assert!(report.is_valid(), "{:?}", report.reason());
    assert_eq!(
        (
            report.rows_read,
            report.unmapped_rows,
            report.missing_values
        ),
        (9, 2, 2)
    );
    assert_eq!(report.readings, 3);
    let sensors: Vec<_> = readings.iter().map(|r| r.sensor_id.as_str()).collect();
    assert_eq!(sensors, vec!["cellar", "cellar", "attic"]);
    let stats = report.stats.unwrap();
    let coded: Vec<_> = stats
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.coded_missing))
        .collect();
    assert_eq!(coded, vec![("temperature", 1), ("humidity", 1)]);
}

#[test]
fn long_profiles_are_checked_with_the_key_at_fault() {
    use sensor_ingest::profile::Profile;
    let keys = |body: &str| -> Vec<String> {
        let text = format!("match = [\"*.csv\"]\n{body}");
        Profile::from_text("p", std::path::Path::new("p.toml"), &text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    assert_eq!(
        keys("[shape]\nkind = \"long\"\nmetric = \"metric\"\n"),
        vec!["shape.value"]
    );
    assert_eq!(
        keys(
            "[shape]\nkind = \"long\"\nvalue = \"v\"\nmetric = \"m\"\nentity = \"e\"\n\
             entity_pattern = '(?P<sensor>.+)_(?P<measure>.+)'\n"
        ),
        vec!["shape"]
    );
    assert_eq!(
        keys(
            "[shape]\nkind = \"long\"\nvalue = \"v\"\nentity = \"e\"\n\
             entity_pattern = '^sensor\\.(?P<room>.+)_(?P<measure>.+)$'\n"
        ),
        vec!["shape.entity_pattern"]
    );
    assert_eq!(
        keys(
            "[shape]\nkind = \"long\"\nvalue = \"v\"\nmetric = \"m\"\n\
             [measures.temperature]\ncolumn = \"t\"\n"
        ),
        vec!["measures.temperature"]
    );
    assert_eq!(
        keys(
            "[shape]\nkind = \"long\"\nvalue = \"v\"\nentity = \"e\"\n\
             entity_pattern = '(?P<sensor>.+)_(?P<measure>.+)'\n[sensor]\nconstant = \"x\"\n"
        ),
        vec!["sensor"]
    );
    assert_eq!(keys("[shape]\nvalue = \"v\"\n"), vec!["shape"]);
}

#[test]
fn a_bad_value_in_a_long_file_is_a_row_error_at_its_line_in_the_value_column() {
    use sensor_ingest::config::{Ranges, SourceTimezone};
    use sensor_ingest::pipeline::{ReadContext, read_rows};
    use sensor_ingest::profile::Profile;
    use sensor_ingest::rule::Rule;

    let profile =
        Profile::from_text("tidy", std::path::Path::new("tidy.toml"), TIDY_PROFILE).unwrap();
    let cx = ReadContext {
        profile: std::sync::Arc::new(profile),
        file_name: "tidy_x.csv".to_owned(),
        ranges: Ranges::default(),
        tz: SourceTimezone::default(),
        order: None,
    };
    let text = "time,sensor,metric,value\n\
        2024-05-01T00:10:00Z,gh_a,temp_c,18.25\n\
        2024-05-01T00:10:00Z,gh_a,rh_pct,hot\n\
        2024-05-01T00:10:00Z,gh_a,pressure_kpa,-3\n";
    let report = read_rows(text.as_bytes(), &cx, |_| true);
    assert!(!report.is_valid());
    let got: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str(), e.rule))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "value", Rule::NotANumber),
            (4, "value", Rule::PhysicallyImpossible)
        ]
    );
}
