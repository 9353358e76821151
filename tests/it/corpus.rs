//! The hostile and broken input corpus: `tests/fixtures/corpus/NAME.csv`, each with its
//! expected outcome beside it in `NAME.expect.json`, run one after the other through the
//! real pipeline on PostgreSQL. A loaded case must hold exactly the expected values; a
//! quarantined one must have its bytes untouched and a report naming the expected
//! lines, columns and rules. Cases too big to commit (a 10 MB field) are generated here.
//!
//! Expectation format:
//! ```json
//! { "note": "why", "outcome": "loaded", "rows": 2, "timezone": "Europe/Berlin",
//!   "values": [ { "line": 2, "ts": "2024-05-01T12:00:00Z", "temperature": 21.5,
//!                 "extra": { "note": "x" } } ] }
//! { "note": "why", "outcome": "quarantined", "rule": "field_count",
//!   "errors": [ { "line": 3, "column": "", "rule": "field_count" } ] }
//! ```
//! `values` lists only the fields a case is about; `timezone` is SOURCE_TIMEZONE.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{Backend, TestEnv, files_in};
use chrono::SecondsFormat;
use rstest::rstest;
use sensor_ingest::config::SourceTimezone;
use sensor_ingest::pipeline::{Outcome, Pipeline};
use sensor_ingest::report::QuarantineReport;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// Every `(name, bytes, expectation)` of the corpus, by name.
fn fixtures() -> Vec<(String, Vec<u8>, Value)> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".expect.json")
        else {
            continue;
        };
        let expect: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let csv = corpus_dir().join(format!("{name}.csv"));
        let bytes = std::fs::read(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
        cases.push((format!("{name}.csv"), bytes, expect));
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// Cases generated at test time: too big to commit.
fn generated() -> Vec<(String, Vec<u8>, Value)> {
    let big = |quoted: bool| {
        let mut b = b"timestamp,sensor_id,temperature,note\n".to_vec();
        b.extend_from_slice(b"2024-05-01T12:00:00Z,s-1,21.5,");
        if quoted {
            b.push(b'"');
        }
        b.extend(std::iter::repeat_n(b'z', 10_000_000));
        if quoted {
            b.push(b'"');
        }
        b.extend_from_slice(b"\n2024-05-01T12:01:00Z,s-1,21.5,x\n");
        b
    };
    let too_large = serde_json::json!({
        "outcome": "quarantined", "rule": "record_too_large",
        "errors": [ { "line": 2, "column": "", "rule": "record_too_large" } ]
    });
    vec![
        ("field_10mb.csv".to_owned(), big(false), too_large.clone()),
        ("field_10mb_quoted.csv".to_owned(), big(true), too_large),
    ]
}

fn timezone(expect: &Value) -> SourceTimezone {
    expect["timezone"]
        .as_str()
        .map_or_else(SourceTimezone::default, |tz| tz.parse().unwrap())
}

/// Runs one case; returns what did not match.
async fn run_case(
    env: &TestEnv,
    pipeline: &Pipeline,
    name: &str,
    bytes: &[u8],
    expect: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    env.drop_file(name, bytes);
    let outcome = env.process(pipeline, name).await;
    match (expect["outcome"].as_str().unwrap(), outcome) {
        ("loaded", Ok(Outcome::Loaded { id, rows, .. })) => {
            if Some(rows) != expect["rows"].as_u64() {
                problems.push(format!("loaded {rows} rows, expected {}", expect["rows"]));
            }
            for want in expect["values"].as_array().unwrap() {
                problems.extend(check_row(env, id, want).await);
            }
            if !env.processed().join(name).exists() {
                problems.push("not in processed/".into());
            }
        }
        ("quarantined", Ok(Outcome::Quarantined { .. })) => {
            problems.extend(check_quarantine(env, name, bytes, expect));
        }
        (want, got) => problems.push(format!("expected {want}, got {got:?}")),
    }
    if env.data().join(name).exists() {
        problems.push("still in data/".into());
    }
    problems
}

async fn check_row(env: &TestEnv, id: uuid::Uuid, want: &Value) -> Vec<String> {
    let line = want["line"].as_i64().unwrap();
    let readings = env.db.readings().await;
    let Some(row) = readings.iter().find(|r| r.file_id == id && r.line == line) else {
        return vec![format!("no row at line {line}")];
    };
    let mut problems = Vec::new();
    for (key, value) in want.as_object().unwrap() {
        let number = |v: Option<f64>| v;
        let got: Value = match key.as_str() {
            "line" => continue,
            "ts" => Value::from(row.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            "sensor_id" => Value::from(row.sensor_id.clone()),
            "extra" => row.extra.clone().unwrap_or(Value::Null),
            column => {
                let v = match column {
                    "temperature" => number(row.temperature),
                    "humidity" => number(row.humidity),
                    "pressure" => number(row.pressure),
                    "temperature_k" => number(row.temperature_k),
                    other => panic!("the corpus checks no column {other:?}"),
                };
                match v {
                    Some(v) => {
                        // Compare numbers as numbers: 273.15 may come back as 273.15000000000003.
                        let close = value.as_f64().is_some_and(|w| (w - v).abs() < 1e-9);
                        if close {
                            continue;
                        }
                        Value::from(v)
                    }
                    None => Value::Null,
                }
            }
        };
        if &got != value {
            problems.push(format!("line {line} {key}: got {got}, expected {value}"));
        }
    }
    problems
}

fn check_quarantine(env: &TestEnv, name: &str, bytes: &[u8], expect: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let q = env.quarantine();
    match std::fs::read(q.join(name)) {
        Ok(kept) if kept == bytes => {}
        Ok(_) => problems.push("quarantined bytes differ from the original".into()),
        Err(e) => return vec![format!("not in quarantine/: {e}")],
    }
    let report: QuarantineReport = match std::fs::read(q.join(format!("{name}.error.json")))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => return vec![format!("report: {e}")],
    };
    if report.file != name || report.quarantined_as != name {
        problems.push(format!(
            "report names {:?} / {:?}",
            report.file, report.quarantined_as
        ));
    }
    if report.rule != expect["rule"].as_str().unwrap() {
        problems.push(format!(
            "rule {:?}, expected {} ({})",
            report.rule, expect["rule"], report.reason
        ));
    }
    let got: Vec<(Option<u64>, String, String)> = report
        .errors
        .iter()
        .map(|e| (e.line, e.column.clone(), e.rule.name().to_owned()))
        .collect();
    let want: Vec<(Option<u64>, String, String)> = expect["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64(),
                e["column"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    if got != want {
        problems.push(format!("errors {got:?}, expected {want:?}"));
    }
    problems
}

#[rstest]
#[tokio::test]
async fn every_corpus_case_ends_as_expected_and_the_next_file_still_loads(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some(env) = TestEnv::new(backend).await else {
        return;
    };
    let mut cases = fixtures();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    cases.extend(generated());
    let base = env.pipeline().await;
    let mut pipelines: BTreeMap<String, Pipeline> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut counts = (0, 0);
    for (name, bytes, expect) in &cases {
        let tz = timezone(expect);
        let pipeline = match expect["timezone"].as_str() {
            None => base.clone(),
            Some(key) => pipelines
                .entry(key.to_owned())
                .or_insert_with(|| {
                    let mut settings = env.settings.clone();
                    settings.source_timezone = tz;
                    Pipeline::new(&settings, base.store().clone())
                })
                .clone(),
        };
        let problems = run_case(&env, &pipeline, name, bytes, expect).await;
        if expect["outcome"] == "loaded" {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
        // Whatever came before, a good file right after it still loads.
        let next = format!("next-after-{name}");
        let good = format!("timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,{name},1\n");
        env.drop_file(&next, &good);
        match env.process(&base, &next).await {
            Ok(Outcome::Loaded { rows: 1, .. }) => {}
            other => failures.push(format!("{next}: {other:?}")),
        }
    }
    eprintln!(
        "corpus: {} cases ({} loaded, {} quarantined), {} failed",
        cases.len(),
        counts.0,
        counts.1,
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // The SQL-looking ids did nothing: the tables are all there, rows intact.
    assert!(env.db.count("SELECT count(*) FROM sensor_readings").await > 0);
    assert!(files_in(&env.data()).is_empty());
}
