//! The Grafana dashboard (`deploy/grafana/sensor-ingest.json`) cannot rot silently:
//! every panel's SQL and the sensor variable's query run against this version's
//! PostgreSQL schema, with Grafana's macros replaced by concrete values, and the
//! per-sensor panels return the readings of a loaded file.

use std::path::PathBuf;

use regex::Regex;
use sqlx::{AssertSqlSafe, Row};

use crate::common::{Backend, TestEnv, env_or_skip};

const FROM: &str = "'2024-05-01T00:00:00Z'::timestamptz";
const TO: &str = "'2024-05-02T00:00:00Z'::timestamptz";

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/grafana")
        .join(path)
}

/// Replaces the macros Grafana's PostgreSQL data source expands, and the `sensor`
/// variable, as Grafana would for the day 2024-05-01 and sensor `s-1`.
fn expand(sql: &str) -> String {
    let group_alias = Regex::new(r"\$__timeGroupAlias\(\s*(\w+)\s*,[^)]*\)").unwrap();
    let group = Regex::new(r"\$__timeGroup\(\s*(\w+)\s*,[^)]*\)").unwrap();
    let filter = Regex::new(r"\$__timeFilter\(\s*(\w+)\s*\)").unwrap();
    let sql = group_alias.replace_all(
        sql,
        r#"to_timestamp(floor(extract(epoch FROM $1) / 300) * 300) AS "time""#,
    );
    let sql = group.replace_all(
        &sql,
        "to_timestamp(floor(extract(epoch FROM $1) / 300) * 300)",
    );
    let sql = filter.replace_all(&sql, format!("$1 BETWEEN {FROM} AND {TO}").as_str());
    sql.replace("$__timeFrom()", FROM)
        .replace("$__timeTo()", TO)
        .replace("$__interval", "'5m'")
        .replace("${sensor}", "'s-1'")
        .replace("$sensor", "'s-1'")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p.clone());
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested.iter().cloned());
        }
    }
    out
}

#[tokio::test]
async fn every_grafana_query_runs_against_the_schema() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    let pipeline = env.pipeline().await;
    let mut csv = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..60 {
        csv.push_str(&format!("2024-05-01T10:{i:02}:00Z,s-1,21.5,40,1012\n"));
        csv.push_str(&format!("2024-05-01T10:{i:02}:00Z,s-2,19.0,55,1011\n"));
    }
    env.drop_file("day.csv", csv);
    env.process(&pipeline, "day.csv").await.expect("loads");

    let text = std::fs::read_to_string(deploy("sensor-ingest.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let provisioning =
        std::fs::read_to_string(deploy("provisioning/datasources/sensor-ingest.yaml")).unwrap();
    let uid = "sensor-ingest-pg";
    assert!(provisioning.contains(&format!("uid: {uid}")));
    assert!(
        std::fs::read_to_string(deploy("provisioning/dashboards/sensor-ingest.yaml"))
            .unwrap()
            .contains("type: file")
    );

    let pool = &env.db.pg().pool;
    let mut queries = 0;
    for panel in panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or_default().to_owned();
        assert_eq!(panel["datasource"]["uid"], uid, "{title}");
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title} has targets"));
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            let raw = target["rawSql"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: rawSql"));
            if raw.contains("sensor_readings") && panel["type"] == "timeseries" {
                assert!(
                    raw.contains("$__timeFilter(ts)"),
                    "{title} prunes by ts: {raw}"
                );
            }
            let sql = expand(raw);
            assert!(!sql.contains('$'), "{title}: an unexpanded macro in {sql}");
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
            if title.starts_with("Temperature") {
                assert_eq!(
                    rows.len(),
                    12,
                    "{title}: 5-minute buckets of the hour of s-1"
                );
                let mean: f64 = rows[0].get("value");
                assert_eq!(mean, 21.5);
            }
            if title == "Last reading per sensor" {
                assert_eq!(rows.len(), 2, "{title}");
            }
            queries += 1;
        }
    }
    assert!(queries >= 12, "{queries} panel queries");

    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "sensor")
        .expect("a sensor variable");
    let sensors: Vec<String> =
        sqlx::query_scalar(AssertSqlSafe(expand(variable["query"].as_str().unwrap())))
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(sensors, ["s-1", "s-2"]);
}
