//! `sensor-ingest profile suggest` through the real binary: for eight export styles
//! (`tests/fixtures/suggest/`) the suggestion parses as a profile, states the key
//! inferences, and — saved with `--write`, unedited — loads the sample with `once`
//! into the rows a careful profile gives (times in UTC where the file leaves the zone
//! to fill in). Hostile input ends with a message and exit code 1; `--write` never
//! overwrites.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::binary::command;
use crate::common::{Backend, TestEnv};
use sensor_ingest::profile::check::Profile;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/suggest")
        .join(name)
}

fn run(env: &TestEnv, args: &[&str]) -> Output {
    command(env, args).output().expect("run the binary")
}

/// `profile suggest FILE`: exits 0 and prints a profile `Profile::from_text` accepts.
fn suggest(env: &TestEnv, file: &Path) -> String {
    let out = run(env, &["profile", "suggest", file.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Err(e) = Profile::from_text("s", Path::new("s.toml"), &text) {
        panic!("{e:?}\n{text}");
    }
    text
}

type Row = (String, String, Option<f64>, Option<f64>, Option<f64>);

/// Saves the suggestion for `name` with `--write`, copies the sample into the data
/// folder, runs `once` and returns the stored rows `(UTC time, sensor, t, rh, p)`.
async fn load(name: &str) -> (String, Vec<Row>) {
    let env = TestEnv::new(Backend::Sqlite).await.expect("sqlite env");
    let file = fixture(name);
    let text = suggest(&env, &file);
    let out = run(
        &env,
        &["profile", "suggest", file.to_str().unwrap(), "--write"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::copy(&file, env.data().join(name)).unwrap();
    let out = run(&env, &["once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let round = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
    let mut rows: Vec<Row> = env
        .db
        .readings()
        .await
        .into_iter()
        .map(|r| {
            (
                r.ts.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                r.sensor_id,
                round(r.temperature),
                round(r.humidity),
                round(r.pressure),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    (text, rows)
}

fn row(ts: &str, s: &str, t: Option<f64>, h: Option<f64>, p: Option<f64>) -> Row {
    (ts.to_owned(), s.to_owned(), t, h, p)
}

#[tokio::test]
async fn a_toa5_logger_export() {
    let (text, rows) = load("TOA5_pond.dat").await;
    for key in [
        "preamble = 1",
        "skip_after_header = 2",
        "missing = [\"-7999\", \"NAN\"]",
        "metadata = \"station\"",
        "column = \"TIMESTAMP\"",
        "# FILL IN",
        "column = \"AirT_C_Avg\"\nunit = \"degC\"",
        "match = [\"TOA5_*.dat\"]",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-03-10T01:00:00Z",
                "Pond_North",
                Some(4.27),
                Some(81.0),
                None
            ),
            row("2024-03-10T02:00:00Z", "Pond_North", None, Some(82.0), None),
            row("2024-03-10T03:00:00Z", "Pond_North", Some(3.98), None, None),
        ]
    );
}

#[tokio::test]
async fn a_hobo_export() {
    let (text, rows) = load("Creek_07.csv").await;
    for key in [
        "preamble = 1",
        "format = \"%m/%d/%y %I:%M:%S %p\"",
        "month-first: 14 in field 2",
        "zone_from_header = true",
        "unit = \"degF\"",
        "skip_unmeasured = true  # ASSUMED: 2 of 5 sampled rows have no measured value",
        r"file_name = '^(?P<sensor>Creek_\d+)'",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    // The two event rows (no temperature) are skipped.
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        row("2023-06-14T15:00:00Z", "Creek_07", Some(16.3), None, None)
    );
}

#[tokio::test]
async fn a_home_assistant_history() {
    let (text, rows) = load("history.csv").await;
    for key in [
        "kind = \"long\"",
        "entity = \"entity_id\"",
        r"entity_pattern = '^sensor\.(?P<sensor>.+)_(?P<measure>temperature|humidity)$'",
        "missing = [\"unavailable\", \"unknown\"]",
        "carry their offset",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row("2024-10-27T00:00:00Z", "attic", Some(21.6), None, None),
            row(
                "2024-10-27T00:00:00Z",
                "cellar",
                Some(11.4),
                Some(78.0),
                None
            ),
            row(
                "2024-10-27T01:00:00Z",
                "cellar",
                Some(11.38),
                Some(79.5),
                None
            ),
        ]
    );
}

#[tokio::test]
async fn a_tidy_long_file() {
    let (text, rows) = load("tidy_2024-05-01.csv").await;
    for key in [
        "metric = \"metric\"",
        "metrics = { rh_pct = \"humidity\", temp_c = \"temperature\" }",
        "column = \"sensor\"",
        "missing = [\"NA\"]",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-05-01T00:00:00Z",
                "gh-a",
                Some(18.25),
                Some(71.5),
                None
            ),
            row("2024-05-01T00:00:00Z", "gh-b", Some(17.5), None, None),
            row("2024-05-01T00:10:00Z", "gh-a", Some(18.31), None, None),
            row("2024-05-01T00:10:00Z", "gh-b", Some(17.6), None, None),
        ]
    );
}

#[tokio::test]
async fn a_netatmo_export() {
    let (text, rows) = load("Hillside_Garden_2024-10-27.csv").await;
    for key in [
        "delimiter = \";\"",
        "preamble = 2",
        "line = 2",
        "metadata = \"module_name\"",
        "fields = { station = 1, long = 2, lat = 3, module_name = 4, module_type = 5 }",
        "epoch = \"s\"",
        "a coordinate \"46.9481\"",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-10-27T00:00:00Z",
                "Garden",
                Some(6.8),
                Some(91.0),
                None
            ),
            row(
                "2024-10-27T01:00:00Z",
                "Garden",
                Some(6.5),
                Some(92.0),
                None
            ),
            row("2024-10-27T02:00:00Z", "Garden", Some(6.3), None, None),
        ]
    );
}

#[tokio::test]
async fn a_german_historian_export() {
    let (text, rows) = load("boiler_2024-03-12.csv").await;
    for key in [
        "delimiter = \";\"",
        "decimal = \",\"",
        "encoding = \"windows-1252\"  # byte 0xB0 on line 1 is not UTF-8",
        "order = \"dmy\"  # ASSUMED",
        "missing = [\"I/O Timeout\"]",
        "unit = \"mbar\"",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    // `Vorlauf °C` (the boiler's flow water): a unit alone names no canonical
    // temperature, so it is a further measure in degC, marked for a person to confirm.
    assert!(
        text.contains(
            "[measures.vorlauf]\n# a further numeric column \"Vorlauf °C\", in degC; ASSUMED"
        ),
        "{text}"
    );
    assert_eq!(
        rows,
        vec![
            row("2024-03-12T08:00:00Z", "boiler", None, None, Some(1013.2)),
            row("2024-03-12T08:00:07Z", "boiler", None, None, None),
            row("2024-03-12T08:01:31Z", "boiler", None, None, Some(1012.8)),
        ]
    );
}

#[tokio::test]
async fn an_hourly_fahrenheit_export() {
    let (text, rows) = load("KDEN_2024-01.csv").await;
    for key in [
        "columns = [\"Date\", \"Time\"]",
        "order = \"mdy\"  # ASSUMED",
        "missing = [\"M\"]",
        "unit = \"degF\"",
        "unit = \"inHg\"",
        "file_name = '^(?P<sensor>[^_]+)_'",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-01-05T06:00:00Z",
                "KDEN",
                Some(-5.0),
                Some(71.0),
                Some(1019.98)
            ),
            row(
                "2024-01-05T07:00:00Z",
                "KDEN",
                None,
                Some(70.0),
                Some(1020.66)
            ),
            row(
                "2024-01-05T08:00:00Z",
                "KDEN",
                Some(0.0),
                Some(65.0),
                Some(1021.0)
            ),
        ]
    );
}

#[tokio::test]
async fn a_plain_default_csv() {
    let (text, rows) = load("readings_001.csv").await;
    assert!(text.contains("column = \"timestamp\""), "{text}");
    assert!(!text.contains("[layout]\ndelimiter"), "{text}");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        row(
            "2024-05-01T10:00:00Z",
            "readings",
            Some(21.5),
            Some(48.0),
            Some(1013.2)
        )
    );
}

/// Runs `profile suggest` on `content` and returns (exit code, stderr).
async fn hostile(content: &[u8]) -> (Option<i32>, String) {
    let env = TestEnv::new(Backend::Sqlite).await.expect("sqlite env");
    let path = env.dir.path().join("x_1.csv");
    std::fs::write(&path, content).unwrap();
    let out = run(&env, &["profile", "suggest", path.to_str().unwrap()]);
    assert!(out.stdout.is_empty());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn hostile_input_ends_with_a_message_and_exit_code_1() {
    let mut binary = vec![0x89u8, b'P', b'N', b'G', 0, 0, 0, 13];
    binary.extend((0..4096u32).map(|i| (i * 7 % 256) as u8));
    let mut long = b"time,value\n".to_vec();
    long.extend(std::iter::repeat_n(b'1', 10 * 1024 * 1024));
    let cases: [(&[u8], &str); 6] = [
        (b"", "the file is empty"),
        (&binary, "a binary file"),
        (&[0u8; 100_000], "byte 0x00 on line 1"),
        (b"value\n1\n2\n3\n", "one column"),
        (&long, "line 2 is longer than"),
        (b"a,b\n1,2\n3,4\n", "no time column"),
    ];
    for (content, message) in cases {
        let (code, stderr) = hostile(content).await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn usage_errors_exit_2_and_a_missing_file_exits_1() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("sqlite env");
    assert_eq!(run(&env, &["profile", "suggest"]).status.code(), Some(2));
    let file = fixture("KDEN_2024-01.csv");
    let bad_name = run(
        &env,
        &[
            "profile",
            "suggest",
            file.to_str().unwrap(),
            "--name",
            "../x",
        ],
    );
    assert_eq!(bad_name.status.code(), Some(2));
    let missing = run(&env, &["profile", "suggest", "no-such-file.csv"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[tokio::test]
async fn write_saves_under_the_name_and_never_overwrites() {
    let env = TestEnv::new(Backend::Sqlite).await.expect("sqlite env");
    let file = fixture("KDEN_2024-01.csv");
    let args = [
        "profile",
        "suggest",
        file.to_str().unwrap(),
        "--name",
        "airport",
        "--write",
    ];
    let first = run(&env, &args);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let path = env.profiles().join("airport.toml");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("columns = [\"Date\", \"Time\"]"));
    let edited = format!("{saved}# edited by hand\n");
    std::fs::write(&path, &edited).unwrap();
    let second = run(&env, &args);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("not overwritten"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}

#[tokio::test]
async fn an_influxdb_annotated_csv() {
    let (text, rows) = load("influx_2024-05-01.csv").await;
    for key in [
        "comment = \"#\"",
        "metric = \"_field\"",
        "value = \"_value\"",
        "column = \"site\"",
        "column = \"_time\"",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-05-01T00:10:00Z",
                "gh_a",
                Some(18.25),
                Some(71.5),
                None
            ),
            row("2024-05-01T00:20:00Z", "gh_a", Some(18.31), None, None),
        ]
    );
}

#[tokio::test]
async fn a_thingspeak_feed_with_a_numeric_code() {
    let (text, rows) = load("feeds_40211.csv").await;
    for key in [
        "missing = [\"-9999\"]",
        "-9999 in 1 of 3 rows of column field3",
        "column = \"created_at\"",
        "constant = \"feeds\"  # FILL IN",
        "[measures.field1]",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert!(
        !text.contains("entry_id\""),
        "a counter is no measure: {text}"
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        row("2024-05-01T10:00:07Z", "feeds", None, None, None)
    );
}

#[tokio::test]
async fn month_first_dates_proven_and_2400() {
    let (text, rows) = load("KBOS_2024-01.csv").await;
    for key in [
        "order = \"mdy\"  # month-first: 13 in field 2 on line 2",
        "end_of_day = true",
        "unit = \"%\"",
    ] {
        assert!(text.contains(key), "{key}\n{text}");
    }
    assert_eq!(
        rows,
        vec![
            row(
                "2024-01-13T23:00:00Z",
                "KBOS",
                Some(-1.11),
                Some(80.0),
                None
            ),
            row(
                "2024-01-14T00:00:00Z",
                "KBOS",
                Some(-1.67),
                Some(81.0),
                None
            ),
            row(
                "2024-01-14T01:00:00Z",
                "KBOS",
                Some(-2.22),
                Some(82.0),
                None
            ),
        ]
    );
}
