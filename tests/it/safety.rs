//! The safety rules hold under every profile, on both backends: a file that breaks one
//! (sensor ids that are clock times, two values for one sensor at one time in a wide
//! file, a date-only time stacking a day's readings on midnight, a repeated local hour
//! the file's order does not resolve, humidity as a fraction) is quarantined with the
//! rule in its report and nothing stored, even under a profile that names every
//! column; a profile that names the rule in `relax` loads the same file; the autumn
//! change is read from the file's own order where the order proves it.

use crate::common::binary::command;
use crate::common::{Backend, TestEnv, env_or_skip};
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::report::QuarantineReport;

/// A profile naming every column, so that no default guess is involved.
fn profile(relax: &str, time: &str) -> String {
    format!(
        "match = [\"safe_*.csv\"]\nrelax = [{relax}]\n[sensor]\ncolumn = \"Station\"\n\
         [time]\n{time}\n[measures.temperature]\ncolumn = \"T\"\nunit = \"degC\"\n\
         [measures.humidity]\ncolumn = \"RH\"\n"
    )
}

const ISO: &str = "column = \"Time\"";

/// 24 "sensors" named 01:00…24:00: a time-of-day column taken as the sensor.
fn clock_sensors() -> String {
    let mut s = String::from("Time,Station,T,RH\n");
    for h in 1..=24 {
        s.push_str(&format!("2024-05-01T00:00:00Z,{h:02}:00,{},50\n", 10 + h));
    }
    s
}

/// One station, one time, two temperatures, two rows apart.
fn duplicate() -> String {
    "Time,Station,T,RH\n2024-05-01T00:00:00Z,a,10,50\n2024-05-01T00:00:00Z,b,11,50\n\
     2024-05-01T00:01:00Z,a,10.5,50\n2024-05-01T00:00:00Z,a,12,50\n"
        .to_owned()
}

/// A date read as the time while the time of day beside it is left out.
fn stacked() -> String {
    let mut s = String::from("Time,Hour,Station,T,RH\n");
    for h in 0..24 {
        s.push_str(&format!("2024-05-01,{h:02}:00,a,{},50\n", 10 + h));
    }
    s
}

/// New York's autumn change, the times running through 01:00-01:59 once only.
fn unresolved_fold() -> String {
    "Time,Station,T,RH\n2024-11-03 00:30,a,10,50\n2024-11-03 01:00,a,11,50\n\
     2024-11-03 01:30,a,12,50\n2024-11-03 02:00,a,13,50\n"
        .to_owned()
}

/// New York's autumn change, the times going back once: both passes are proven.
fn resolved_fold() -> String {
    "Time,Station,T,RH\n2024-11-03 00:30,a,10,50\n2024-11-03 01:00,a,11,50\n\
     2024-11-03 01:30,a,12,50\n2024-11-03 01:00,a,13,50\n2024-11-03 01:30,a,14,50\n\
     2024-11-03 02:00,a,15,50\n"
        .to_owned()
}

/// Humidity written as a fraction.
fn fraction() -> String {
    "Time,Station,T,RH\n2024-05-01T00:00:00Z,a,10,0.55\n2024-05-01T00:01:00Z,a,10,0.84\n".to_owned()
}

const NY: &str = "column = \"Time\"\nzone = \"America/New_York\"";
const DATE_ONLY: &str = "column = \"Time\"";

/// (rule, the file, the `[time]` table's keys)
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("sensor_is_time", clock_sensors(), ISO),
        ("duplicate_time", duplicate(), ISO),
        ("stacked_times", stacked(), DATE_ONLY),
        ("ambiguous_local_time", unresolved_fold(), NY),
        ("humidity_fraction", fraction(), ISO),
    ]
}

#[rstest]
#[tokio::test]
async fn a_file_breaking_a_safety_rule_is_quarantined_and_nothing_stored(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    for (rule, content, time) in cases() {
        let text = profile("", time);
        let env = env_or_skip!(TestEnv::with_profiles(
            backend,
            &[("safe.toml", &text)],
            &[]
        ));
        let pipeline = env.pipeline().await;
        let name = "safe_1.csv";
        env.drop_file(name, &content);
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Quarantined { .. }),
            "{rule}: {outcome:?}"
        );
        let report: QuarantineReport = serde_json::from_slice(
            &std::fs::read(env.quarantine().join(format!("{name}.error.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(report.rule.name(), rule, "{}", report.reason);
        assert!(
            report.errors.iter().any(|e| e.rule.name() == rule),
            "{rule}: {:?}",
            report.errors
        );
        assert!(report.rule.advice().contains(match rule {
            "humidity_fraction" => "fraction",
            "ambiguous_local_time" => "UTC",
            _ => "profile",
        }));
        assert_eq!(
            env.db.count("SELECT count(*) FROM sensor_readings").await,
            0,
            "{rule}: nothing stored"
        );
    }
}

#[rstest]
#[tokio::test]
async fn a_profile_that_names_the_rule_in_relax_loads_the_file(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    for (rule, content, time) in cases() {
        let text = profile(&format!("\"{rule}\""), time);
        let env = env_or_skip!(TestEnv::with_profiles(
            backend,
            &[("safe.toml", &text)],
            &[]
        ));
        let pipeline = env.pipeline().await;
        env.drop_file("safe_1.csv", &content);
        let outcome = env.process(&pipeline, "safe_1.csv").await.unwrap();
        // Stacked times also give one instant two values: relaxing one is not enough.
        if rule == "stacked_times" {
            assert!(
                matches!(outcome, Outcome::Quarantined { .. }),
                "{outcome:?}"
            );
            continue;
        }
        let Outcome::Loaded { rows, .. } = outcome else {
            panic!("{rule}: {outcome:?}");
        };
        let stored = env.db.count("SELECT count(*) FROM sensor_readings").await;
        assert_eq!(stored, rows as i64, "{rule}");
        assert!(stored > 0, "{rule}");
    }
}

#[rstest]
#[tokio::test]
async fn the_autumn_change_is_read_from_the_order_of_the_file(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let text = profile("", NY);
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("safe.toml", &text)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file("safe_1.csv", resolved_fold());
    let outcome = env.process(&pipeline, "safe_1.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 6, .. }),
        "{outcome:?}"
    );
    let mut got: Vec<(String, f64)> = env
        .db
        .readings()
        .await
        .into_iter()
        .map(|r| (r.ts.format("%H:%M").to_string(), r.temperature.unwrap()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want = [
        ("04:30", 10.0),
        ("05:00", 11.0),
        ("05:30", 12.0),
        ("06:00", 13.0),
        ("06:30", 14.0),
        ("07:00", 15.0),
    ];
    let want: Vec<(String, f64)> = want.iter().map(|(t, v)| ((*t).to_owned(), *v)).collect();
    assert_eq!(
        got, want,
        "the real hour 06:00-07:00 UTC holds the second pass"
    );
}

#[rstest]
#[tokio::test]
async fn humidity_declared_as_a_fraction_is_converted(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let text = format!(
        "match = [\"safe_*.csv\"]\n[sensor]\ncolumn = \"Station\"\n[time]\n{ISO}\n\
         [measures.humidity]\ncolumn = \"RH\"\nunit = \"fraction\"\n\
         [measures.temperature]\ncolumn = \"T\"\n"
    );
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("safe.toml", &text)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    env.drop_file("safe_1.csv", fraction());
    let outcome = env.process(&pipeline, "safe_1.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 2, .. }),
        "{outcome:?}"
    );
    let mut rh: Vec<f64> = env
        .db
        .readings()
        .await
        .iter()
        .map(|r| r.humidity.unwrap())
        .collect();
    rh.sort_by(f64::total_cmp);
    assert!(
        (rh[0] - 55.0).abs() < 1e-9 && (rh[1] - 84.0).abs() < 1e-9,
        "{rh:?}"
    );
}

fn summary_fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/summary")
        .join(name)
        .display()
        .to_string()
}

fn stdout_of(env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let out = command(env, args).output().expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_ends_with_a_summary_of_what_would_be_stored() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let (code, text) = stdout_of(&env, &["check", &summary_fixture("rooms.csv")]);
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "  would store: 12 readings",
            "  3 sensors: \"room-1\", \"room-2\", \"room-3\"",
            "  UTC span: 2024-05-01T00:00:00Z to 2024-05-01T00:45:00Z (45 min)",
            "  readings per sensor: 4",
            "  temperature  °C   12 values, 0% missing, min 19 / mean 20.75 / max 22.5",
            "  humidity     %RH  11 values, 8% missing, min 40 / mean 51.455 / max 63",
            "  pressure     hPa  12 values, 0% missing, min 1011 / mean 1012 / max 1013",
        ],
        "{text}"
    );
    let (_, json) = stdout_of(&env, &["check", "--json", &summary_fixture("rooms.csv")]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let summary = &json[0]["summary"];
    assert_eq!(summary["sensors"], 3);
    assert_eq!(summary["first"], "2024-05-01T00:00:00Z");
    assert_eq!(summary["measures"][2]["unit"], "hPa");
    assert_eq!(summary["measures"][2]["max"], 1013.0);
}

#[tokio::test]
async fn clock_times_taken_as_sensors_show_in_the_summary_and_are_refused() {
    // The suggestion the issue saw: the time of day as the sensor, the date alone as
    // the time.
    let wrong = "match = [\"clock_*.csv\"]\n[sensor]\ncolumn = \"Time\"\n[time]\n\
                 column = \"Date\"\n[measures.temperature]\ncolumn = \"Temp\"\n\
                 [measures.humidity]\ncolumn = \"RH\"\n";
    let env = env_or_skip!(TestEnv::with_profiles(
        Backend::Sqlite,
        &[("clock.toml", wrong)],
        &[]
    ));
    let (code, text) = stdout_of(&env, &["check", &summary_fixture("clock_sensors.csv")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("INVALID"), "{text}");
    assert!(text.contains("reads as a clock time"), "{text}");
    assert!(
        text.contains(
            "  24 sensors: \"01:00\", \"02:00\", \"03:00\", \"04:00\", \"05:00\", …   \
             ← every id reads as a time or date"
        ),
        "{text}"
    );
    assert!(
        text.contains("min 0 / mean 0 / max 0   ← never changes"),
        "{text}"
    );
    let (_, json) = stdout_of(
        &env,
        &["check", "--json", &summary_fixture("clock_sensors.csv")],
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json[0]["rule"], "sensor_is_time");
    assert_eq!(json[0]["summary"]["sensor_ids_like_times"], 24);
}

#[tokio::test]
async fn profile_suggest_ends_its_profile_with_the_summary_of_its_sample() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let (code, text) = stdout_of(
        &env,
        &["profile", "suggest", &summary_fixture("clock_sensors.csv")],
    );
    assert_eq!(code, Some(0), "{text}");
    let parsed: Result<toml::Table, _> = toml::from_str(&text);
    assert!(parsed.is_ok(), "the output stays a profile: {text}");
    let summary: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("#   What this profile reads from the sample"))
        .collect();
    assert!(summary.len() > 4, "{text}");
    assert!(summary.iter().all(|l| l.starts_with("#   ")), "{text}");
    assert!(summary.iter().any(|l| l.contains("24 readings")), "{text}");
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("#   humidity") && l.ends_with("← never changes")),
        "{text}"
    );
}
