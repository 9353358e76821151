//! Export styles people really meet (`tests/fixtures/styles/NAME/`), each loaded through
//! the profile a careful person would write and compared exactly with the readings
//! expected (on both backends); and `check --show N`, which prints the readings a file
//! would store beside their raw lines, on the real binary.

use crate::common::binary::command;
use crate::common::{Backend, TestEnv, env_or_skip};

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
    assert_eq!(lines.len(), 7, "two readings, three lines each: {text}");

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
    assert_eq!(text.lines().count(), 1, "{text}");
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
    assert!(!text.contains("→"), "{text}");
    let json = check_json(&env, &["--show", "5", &bad]);
    assert_eq!(json[0]["rows"], serde_json::json!([]));

    let (code, _) = check(&env, &["check", "--show", "-1", &bad]);
    assert_eq!(code, Some(2), "a negative N is a usage error");
}
