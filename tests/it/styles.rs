//! Export styles people really meet (`tests/fixtures/styles/NAME/`), each loaded through
//! the profile a careful person would write and compared exactly with the readings
//! expected (on both backends); and `check --show N`, which prints the readings a file
//! would store beside their raw lines, on the real binary.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::common::binary::command;
use crate::common::{Backend, ReadingRow, TestEnv, env_or_skip};
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;

// ---------------------------------------------------------------------------------
// Export styles

/// The styles' folder: one folder per style with `sample.<ext>`, `profile.toml` and
/// `expect.json` (written by `generate.py` there, which computes the expected values
/// from the samples' by plain arithmetic, independently of the agent).
fn styles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/styles")
}

/// Every style in the folder, by name (the cases below must list them all).
const STYLES: &[&str] = &[
    "campbell-toa5",
    "davis-weatherlink",
    "fahrenheit-kpa",
    "grafana",
    "hobo",
    "home-assistant",
    "influxdb-annotated",
    "missing-codes",
    "netatmo",
    "thingspeak",
    "wincc",
];

#[test]
fn every_style_folder_is_tested_and_complete() {
    let mut found: Vec<String> = std::fs::read_dir(styles_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, STYLES, "add a #[case] for each style folder");
    for name in STYLES {
        let dir = styles_dir().join(name);
        assert!(dir.join("profile.toml").is_file(), "{name}: profile.toml");
        assert!(sample(&dir).is_some(), "{name}: sample.<ext>");
        let expect = expectation(&dir);
        let n = expect["readings"].as_array().unwrap().len();
        assert!(expect["file"].is_string(), "{name}: file");
        assert!((1..=20).contains(&n), "{name}: {n} readings");
    }
}

fn sample(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == "sample"))
}

fn expectation(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("expect.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Equal JSON values, numbers within 1e-9.
fn same(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    match (expected.as_f64(), actual.as_f64()) {
        (Some(e), Some(a)) => (e - a).abs() < 1e-9,
        _ => expected == actual,
    }
}

fn same_number(expected: &serde_json::Value, actual: Option<f64>) -> bool {
    match (expected.as_f64(), actual) {
        (Some(e), Some(a)) => (e - a).abs() < 1e-9,
        (None, None) => expected.is_null(),
        _ => false,
    }
}

/// The stored readings against the expected ones (by line): `Err` says the first
/// difference.
fn compare(expected: &[serde_json::Value], stored: &[ReadingRow]) -> Result<(), String> {
    let mut stored: Vec<&ReadingRow> = stored.iter().collect();
    stored.sort_by_key(|r| r.line);
    if expected.len() != stored.len() {
        let lines: Vec<i64> = stored.iter().map(|r| r.line).collect();
        return Err(format!(
            "{} readings expected, {} stored (lines {lines:?})",
            expected.len(),
            stored.len()
        ));
    }
    for (e, r) in expected.iter().zip(stored) {
        let at = format!("line {}", r.line);
        if e["line"].as_i64() != Some(r.line) {
            return Err(format!("{at}: expected line {}", e["line"]));
        }
        let ts: DateTime<Utc> = e["ts"].as_str().unwrap().parse().unwrap();
        if ts != r.ts {
            return Err(format!("{at}: ts {} stored, {ts} expected", r.ts));
        }
        if e["sensor"] != r.sensor_id.as_str() {
            return Err(format!(
                "{at}: sensor {:?} stored, {} expected",
                r.sensor_id, e["sensor"]
            ));
        }
        for (key, value) in [
            ("temperature", r.temperature),
            ("humidity", r.humidity),
            ("pressure", r.pressure),
        ] {
            if !same_number(&e[key], value) {
                return Err(format!("{at}: {key} {value:?} stored, {} expected", e[key]));
            }
        }
        match (&e["extra"], &r.extra) {
            (serde_json::Value::Null, None) => {}
            (serde_json::Value::Object(keys), Some(extra)) => {
                for (key, value) in keys {
                    let Some(got) = extra.get(key) else {
                        return Err(format!("{at}: extra has no {key:?}: {extra}"));
                    };
                    if !same(value, got) {
                        return Err(format!("{at}: extra {key:?} is {got}, {value} expected"));
                    }
                }
            }
            (want, got) => return Err(format!("{at}: extra {got:?} stored, {want} expected")),
        }
    }
    Ok(())
}

/// Each style's sample, dropped under its usual name with only its profile present,
/// stores exactly the readings of its `expect.json`. A style whose `expect.json` has a
/// `gap` shows something the agent cannot read yet: the test checks the gap is still
/// there (and fails once it is closed, so the marker is removed).
#[rstest]
#[case::campbell_toa5("campbell-toa5")]
#[case::davis_weatherlink("davis-weatherlink")]
#[case::fahrenheit_kpa("fahrenheit-kpa")]
#[case::grafana("grafana")]
#[case::hobo("hobo")]
#[case::home_assistant("home-assistant")]
#[case::influxdb_annotated("influxdb-annotated")]
#[case::missing_codes("missing-codes")]
#[case::netatmo("netatmo")]
#[case::thingspeak("thingspeak")]
#[case::wincc("wincc")]
#[tokio::test]
async fn an_export_style_stores_exactly_the_expected_readings(
    #[case] style: &str,
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let dir = styles_dir().join(style);
    let profile = std::fs::read_to_string(dir.join("profile.toml")).unwrap();
    let bytes = std::fs::read(sample(&dir).unwrap()).unwrap();
    let expect = expectation(&dir);
    let file = expect["file"].as_str().unwrap();
    let profile_file = format!("{style}.toml");
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[(profile_file.as_str(), profile.as_str())],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file(file, &bytes);
    let outcome = env.process(&pipeline, file).await.unwrap();
    let expected = expect["readings"].as_array().unwrap();
    let stored = env.db.readings().await;
    let result = match &outcome {
        Outcome::Loaded { rows, .. } if *rows == expected.len() as u64 => {
            compare(expected, &stored)
        }
        other => Err(format!("{other:?}")),
    };
    match (expect.get("gap").and_then(|g| g.as_str()), result) {
        (None, Ok(())) => {}
        (None, Err(e)) => panic!("{style}: {e}"),
        (Some(gap), Ok(())) => {
            panic!("{style}: the gap is closed, remove it from expect.json: {gap}")
        }
        (Some(gap), Err(e)) => eprintln!("{style}: known gap ({gap}); now: {e}"),
    }
    // The gap's own lines (at the end of the sample) left out, the rest is read exactly.
    if let Some(gap_lines) = expect.get("gap_lines").and_then(|g| g.as_array()) {
        let gap_lines: Vec<usize> = gap_lines
            .iter()
            .map(|l| l.as_u64().unwrap() as usize)
            .collect();
        let kept: Vec<&[u8]> = bytes
            .split_inclusive(|&b| b == b'\n')
            .enumerate()
            .filter(|(i, _)| !gap_lines.contains(&(i + 1)))
            .map(|(_, l)| l)
            .collect();
        assert!(
            gap_lines.iter().all(|&l| l > kept.len()),
            "{style}: gap_lines must be the sample's last lines (so no line number moves)"
        );
        env.drop_file(file, kept.concat());
        let outcome = env.process(&pipeline, file).await.unwrap();
        let Outcome::Loaded { rows, .. } = outcome else {
            panic!("{style} without lines {gap_lines:?}: {outcome:?}");
        };
        assert_eq!(
            rows,
            expected.len() as u64,
            "{style} without lines {gap_lines:?}"
        );
        if let Err(e) = compare(expected, &env.db.readings().await) {
            panic!("{style} without lines {gap_lines:?}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------
// check --show N

/// A Campbell-style export in °F and kPa, read through `pond.toml`.
const LOGGER: &str = "\"TOA5\",\"Pond_North\",\"CR1000X\",\"4711\"\n\
\"TIMESTAMP\",\"RECORD\",\"AirT_F\",\"RH\",\"BP_kPa\"\n\
\"TS\",\"RN\",\"Deg F\",\"%\",\"kPa\"\n\
\"2024-03-31 01:00:00\",812,41,80,101.3\n\
\"2024-03-31 02:00:00\",813,-7999,81,101.2\n\
\"2024-03-31 03:00:00\",814,50,NAN,101.1\n";

const LOGGER_PROFILE: &str = r#"
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
"#;

const HISTORY: &str = "entity_id,state,last_changed\n\
sensor.cellar_temperature,11.4,2024-10-27T00:00:00.000Z\n\
sensor.cellar_temperature,11.38,2024-10-27T01:00:00.000Z\n\
sensor.cellar_humidity,78,2024-10-27T00:00:00.000Z\n\
sensor.cellar_humidity,79.5,2024-10-27T01:00:00.000Z\n\
binary_sensor.cellar_door,off,2024-10-27T00:00:00.000Z\n";

const HISTORY_PROFILE: &str = r#"
match = ["history*.csv"]
missing = ["unavailable", "unknown"]

[shape]
kind = "long"
value = "state"
entity = "entity_id"
entity_pattern = '^sensor\.(?P<sensor>.+)_(?P<measure>temperature|humidity)$'

[time]
column = "last_changed"
"#;

async fn show_env() -> Option<TestEnv> {
    TestEnv::with_profiles(
        Backend::Sqlite,
        &[
            ("pond.toml", LOGGER_PROFILE),
            ("home.toml", HISTORY_PROFILE),
        ],
        &[],
    )
    .await
}

fn write(env: &TestEnv, name: &str, text: &str) -> String {
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn check(env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let out = command(env, args).output().expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn check_json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let (_, out) = check(env, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn close(v: &serde_json::Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[tokio::test]
async fn show_prints_a_wide_files_readings_converted_beside_their_raw_lines() {
    let env = env_or_skip!(show_env());
    let file = write(&env, "pond_2024.dat", LOGGER);
    let (code, text) = check(&env, &["check", "--show", "2", &file]);
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ok "), "{text}");
    assert_eq!(
        lines[1], "  line 4  \"2024-03-31 01:00:00\",812,41,80,101.3",
        "{text}"
    );
    assert!(
        lines[2]
            .contains("→ Pond_North  2024-03-31T08:00:00Z  t=5 °C (278.15 K)  rh=80 %  p=1013 hPa"),
        "41 °F is 5 °C, 101.3 kPa is 1013 hPa, 01:00 at UTC-7 is 08:00Z: {text}"
    );
    assert!(lines[3].contains("extra={\"RECORD\":812"), "{text}");
    assert!(lines[4].starts_with("  line 5  "), "{text}");
    assert!(lines[5].contains("t=— °C"), "-7999 is no value: {text}");
    assert_eq!(
        lines[7], "  would store: 3 readings",
        "two readings, three lines each: {text}"
    );
    assert_eq!(text.matches("  line ").count(), 2, "{text}");

    let json = check_json(&env, &["--show", "2", &file]);
    let rows = json[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    assert_eq!(first["line"], 4);
    assert_eq!(first["raw"], "\"2024-03-31 01:00:00\",812,41,80,101.3");
    assert_eq!(first["sensor_id"], "Pond_North");
    assert_eq!(first["ts"], "2024-03-31T08:00:00Z");
    assert!(close(&first["temperature"], 5.0), "{first}");
    assert!(close(&first["temperature_k"], 278.15), "{first}");
    assert!(close(&first["humidity"], 80.0), "{first}");
    assert!(close(&first["humidity_norm"], 0.8), "{first}");
    assert!(close(&first["pressure"], 1013.0), "{first}");
    assert!(first["pressure_norm"].is_number(), "{first}");
    assert_eq!(first["extra"]["RECORD"], 812);
    assert_eq!(first["extra"]["meta_logger"], "CR1000X");
    assert_eq!(rows[1]["temperature"], serde_json::Value::Null);
    assert_eq!(rows[1]["temperature_k"], serde_json::Value::Null);
}

#[tokio::test]
async fn show_gives_a_long_files_merged_readings_with_their_first_raw_line() {
    let env = env_or_skip!(show_env());
    let file = write(&env, "history.csv", HISTORY);
    let (code, text) = check(&env, &["check", "--show", "5", &file]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "  line 2  sensor.cellar_temperature,11.4,2024-10-27T00:00:00.000Z  (+1 row merged)"
        ),
        "{text}"
    );
    assert!(
        text.contains("→ cellar  2024-10-27T00:00:00Z  t=11.4 °C (284.55 K)  rh=78 %"),
        "{text}"
    );
    let json = check_json(&env, &["--show", "5", &file]);
    let rows = json[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "four values merge into two readings");
    assert_eq!(rows[1]["line"], 3);
    assert_eq!(rows[1]["merged_rows"], 1);
    assert!(close(&rows[1]["humidity"], 79.5));
    assert_eq!(rows[1]["extra"], serde_json::Value::Null);
}

#[tokio::test]
async fn show_reads_the_default_profile_and_caps_n_at_the_file() {
    let env = env_or_skip!(show_env());
    let file = write(
        &env,
        "plain.csv",
        "timestamp,sensor_id,temperature,humidity,pressure,note\n\
         2024-01-01T00:00:00Z,s1,21.5,40,1000,a\n\
         2024-01-01T01:00:00+01:00,s2,22,41,,b\n",
    );
    let (code, text) = check(&env, &["check", "--show", "1000000000000", &file]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("default profile"), "{text}");
    assert_eq!(text.matches("  line ").count(), 2, "{text}");
    assert!(
        text.contains("→ s2  2024-01-01T00:00:00Z  t=22 °C (295.15 K)  rh=41 %  p=— hPa"),
        "{text}"
    );
    let json = check_json(&env, &["--show", "50", &file]);
    let rows = json[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["raw"], "2024-01-01T00:00:00Z,s1,21.5,40,1000,a");
    assert_eq!(rows[1]["pressure"], serde_json::Value::Null);
    assert_eq!(rows[1]["extra"]["note"], "b");
}

#[tokio::test]
async fn show_zero_shows_nothing_and_an_invalid_file_shows_no_rows() {
    let env = env_or_skip!(show_env());
    let file = write(&env, "pond_2024.dat", LOGGER);
    let (code, text) = check(&env, &["check", "--show", "0", &file]);
    assert_eq!(code, Some(0));
    assert!(!text.contains("  line "), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("  would store: 3 readings"),
        "{text}"
    );
    let json = check_json(&env, &["--show", "0", &file]);
    assert_eq!(json[0]["rows"], serde_json::json!([]));
    // Without --show, no "rows" key at all: the JSON stays as it was.
    let json = check_json(&env, &[&file]);
    assert!(json[0].get("rows").is_none(), "{json}");

    // The second row is bad: under reject_file nothing loads, not even the first.
    let bad = write(
        &env,
        "bad.csv",
        "timestamp,sensor_id,temperature\n2024-01-01T00:00:00Z,x,1\n2024-13-01T00:00:00Z,x,1\n",
    );
    let (code, text) = check(&env, &["check", "--show", "5", &bad]);
    assert_eq!(code, Some(1));
    assert!(text.starts_with("INVALID"), "{text}");
    assert!(text.contains("  no rows would load"), "{text}");
    assert!(text.contains("  nothing stored"), "{text}");
    assert!(!text.contains("→"), "{text}");
    let json = check_json(&env, &["--show", "5", &bad]);
    assert_eq!(json[0]["rows"], serde_json::json!([]));

    let (code, _) = check(&env, &["check", "--show", "-1", &bad]);
    assert_eq!(code, Some(2), "a negative N is a usage error");
}

// ---------------------------------------------------------------------------------
// The suggestion against the careful profiles

/// `profile suggest` on each style's sample, unedited except for a zone the file does
/// not state (its `# FILL IN` line takes the careful profile's zone), compared with
/// the readings the careful profile stores. Prints each style's result (the count is
/// issue 13's measure of the suggester) and holds the styles that match today: a
/// change to the suggester may add to them, never lose one.
#[tokio::test]
async fn the_suggestion_against_the_careful_profiles() {
    use sensor_ingest::ops::suggest::{Sample, suggest};
    let mut matched = Vec::new();
    let mut missed = Vec::new();
    for style in STYLES {
        let dir = styles_dir().join(style);
        let bytes = std::fs::read(sample(&dir).unwrap()).unwrap();
        let expect = expectation(&dir);
        let file = expect["file"].as_str().unwrap();
        let careful: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("profile.toml")).unwrap()).unwrap();
        let suggested = match Sample::read(&bytes[..]).and_then(|s| suggest(&s, file, None)) {
            Ok(s) => s.text,
            Err(e) => {
                missed.push(format!("{style}: no suggestion ({e})"));
                continue;
            }
        };
        let zone = careful
            .get("time")
            .and_then(|t| t.get("zone"))
            .and_then(|z| z.as_str());
        let text: String = suggested
            .lines()
            .map(|l| match zone {
                Some(z) if l.contains("# FILL IN") && l.trim_start().starts_with("zone =") => {
                    format!("zone = \"{z}\"")
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let Some(env) =
            TestEnv::with_profiles(Backend::Sqlite, &[("suggested.toml", text.as_str())], &[])
                .await
        else {
            return;
        };
        let pipeline = env.pipeline().await;
        env.drop_file(file, &bytes);
        let outcome = env.process(&pipeline, file).await.unwrap();
        let expected = expect["readings"].as_array().unwrap();
        let result = match &outcome {
            Outcome::Loaded { .. } => compare(expected, &env.db.readings().await),
            other => Err(format!("{other:?}")),
        };
        match (result, expect.get("gap")) {
            (Ok(()), _) => matched.push(style.to_string()),
            (Err(e), Some(_)) => missed.push(format!("{style} (a known gap of profiles): {e}")),
            (Err(e), None) => missed.push(format!("{style}: {e}")),
        }
    }
    eprintln!(
        "suggestion = careful profile for {} of {} styles: {matched:?}",
        matched.len(),
        STYLES.len()
    );
    for m in &missed {
        eprintln!("  not the same: {m}");
    }
    for style in MATCHED_BY_THE_SUGGESTION {
        assert!(
            matched.iter().any(|m| m == style),
            "{style} no longer loads through its suggestion as through its careful profile: {missed:#?}"
        );
    }
}

/// The styles whose unedited suggestion stores exactly the careful profile's readings.
const MATCHED_BY_THE_SUGGESTION: &[&str] = &[
    "campbell-toa5",
    "fahrenheit-kpa",
    "grafana",
    "hobo",
    "home-assistant",
    "influxdb-annotated",
    "missing-codes",
    "netatmo",
];
