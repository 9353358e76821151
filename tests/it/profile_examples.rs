//! The worked profile examples of docs/examples.md (`examples/profiles/`), each profile
//! loaded with its sample file on both backends, the stored rows checked value by
//! value. `readme::the_readme_files_are_the_repository_files` checks the page shows
//! these very files.

use std::path::Path;

use crate::common::{Backend, TestEnv, env_or_skip};
use rstest::rstest;
use sensor_ingest::pipeline::Outcome;

fn example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/profiles")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads `sample` with the profile `profile` and returns the stored readings as
/// `(line, UTC time, sensor, temperature, humidity, pressure)`.
async fn load(
    backend: Backend,
    profile: &str,
    sample: &str,
    rows: u64,
) -> Option<(
    TestEnv,
    Vec<(i64, String, String, Option<f64>, Option<f64>, Option<f64>)>,
)> {
    let text = String::from_utf8(example(profile)).unwrap();
    let env = TestEnv::with_profiles(backend, &[(profile, &text)], &[]).await?;
    let pipeline = env.pipeline().await;
    env.drop_file(sample, example(sample));
    let outcome = env.process(&pipeline, sample).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: r, .. } if r == rows),
        "{outcome:?}"
    );
    let round = |v: Option<f64>| v.map(|v| (v * 1000.0).round() / 1000.0);
    let got = env
        .db
        .readings()
        .await
        .into_iter()
        .map(|r| {
            (
                r.line,
                r.ts.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                r.sensor_id,
                round(r.temperature),
                round(r.humidity),
                round(r.pressure),
            )
        })
        .collect();
    Some((env, got))
}

fn row(
    line: i64,
    ts: &str,
    sensor: &str,
    t: Option<f64>,
    h: Option<f64>,
    p: Option<f64>,
) -> (i64, String, String, Option<f64>, Option<f64>, Option<f64>) {
    (line, ts.to_owned(), sensor.to_owned(), t, h, p)
}

#[rstest]
#[tokio::test]
async fn the_logger_example_loads_with_its_metadata_and_codes(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((env, got)) = load(backend, "pond-logger.toml", "TOA5_pond.dat", 3).await else {
        return;
    };
    assert_eq!(
        got,
        vec![
            row(
                5,
                "2024-03-10T08:00:00Z",
                "Pond_North",
                Some(4.27),
                Some(81.0),
                None
            ),
            row(
                6,
                "2024-03-10T09:00:00Z",
                "Pond_North",
                None,
                Some(82.0),
                None
            ),
            row(
                7,
                "2024-03-10T10:00:00Z",
                "Pond_North",
                Some(3.98),
                None,
                None
            ),
        ]
    );
    let extra = env.db.readings().await[0].extra.clone().unwrap();
    assert_eq!(extra["battery"], serde_json::json!(12.61));
    assert_eq!(extra["meta_logger"], "CR1000X");
    assert_eq!(extra["meta_serial"], "4711");
}

#[rstest]
#[tokio::test]
async fn the_fahrenheit_example_loads_in_celsius_and_hectopascals(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((env, got)) = load(backend, "airport-hourly.toml", "KDEN_2024-01.csv", 3).await else {
        return;
    };
    assert_eq!(
        got,
        vec![
            row(
                2,
                "2024-01-05T06:00:00Z",
                "KDEN",
                Some(-5.0),
                Some(71.0),
                Some(1019.98)
            ),
            row(
                3,
                "2024-01-05T07:00:00Z",
                "KDEN",
                None,
                Some(70.0),
                Some(1020.658)
            ),
            row(
                4,
                "2024-01-05T08:00:00Z",
                "KDEN",
                Some(0.0),
                Some(65.0),
                Some(1020.996)
            ),
        ]
    );
    let readings = env.db.readings().await;
    assert_eq!(
        readings[0].extra.as_ref().unwrap()["Wind (mph)"],
        serde_json::json!(7)
    );
    assert_eq!(
        readings[2].extra.as_ref().unwrap()["Wind (mph)"],
        serde_json::Value::Null
    );
    assert_eq!(
        env.db
            .text("SELECT source_unit FROM file_metrics WHERE column_name = 'pressure'")
            .await
            .as_deref(),
        Some("inHg")
    );
}

#[rstest]
#[tokio::test]
async fn the_historian_example_loads_its_decimal_commas_and_latin_text(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((env, got)) = load(backend, "boiler-historian.toml", "boiler_2024-03-12.csv", 3).await
    else {
        return;
    };
    assert_eq!(
        got,
        vec![
            row(
                2,
                "2024-03-12T07:00:00Z",
                "boiler-house",
                Some(71.4),
                None,
                Some(1013.2)
            ),
            row(
                3,
                "2024-03-12T07:00:07Z",
                "boiler-house",
                Some(71.2),
                None,
                None
            ),
            row(
                4,
                "2024-03-12T07:01:31Z",
                "boiler-house",
                Some(70.9),
                None,
                Some(1012.8)
            ),
        ]
    );
    let readings = env.db.readings().await;
    assert_eq!(readings[2].extra.as_ref().unwrap()["Kommentar"], "Prüfung");
}

/// Without their profiles the same files are refused, never loaded wrong.
#[rstest]
#[tokio::test]
async fn without_their_profiles_the_examples_are_refused(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_vars(
        backend,
        &[("FILE_PATTERN", "*.csv,*.dat")]
    ));
    let pipeline = env.pipeline().await;
    for sample in ["TOA5_pond.dat", "KDEN_2024-01.csv", "boiler_2024-03-12.csv"] {
        env.drop_file(sample, example(sample));
        let outcome = env.process(&pipeline, sample).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Quarantined { .. }),
            "{sample}: {outcome:?}"
        );
    }
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        0
    );
}

#[rstest]
#[tokio::test]
async fn the_home_assistant_example_merges_entities_into_readings(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((env, mut got)) = load(backend, "home-assistant.toml", "history.csv", 3).await else {
        return;
    };
    got.sort_by_key(|r| r.0);
    assert_eq!(
        got,
        vec![
            row(
                2,
                "2024-10-27T00:00:00Z",
                "cellar",
                Some(11.4),
                Some(78.0),
                None
            ),
            row(
                3,
                "2024-10-27T01:00:00Z",
                "cellar",
                Some(11.38),
                Some(79.5),
                None
            ),
            row(7, "2024-10-27T00:00:00Z", "attic", Some(21.6), None, None),
        ]
    );
    let metrics = env.db.metrics().await;
    let names: Vec<&str> = metrics.iter().map(|m| m.column_name.as_str()).collect();
    assert_eq!(names, vec!["humidity", "temperature"]);
    assert!(env.db.readings().await.iter().all(|r| r.extra.is_none()));
}
