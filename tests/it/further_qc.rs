//! Quality flags of further measures (`[qc.<measure>]`), end to end: battery voltage
//! at ten minutes with a spike, a flat run, a level shift and an outlier injected,
//! loaded as daily and as hourly files (faults across file boundaries): every fault
//! reading is flagged in `qc_measure_flags` (the whole flat run, amended across
//! files), clean readings almost never, `file_metrics` counts agree; a further
//! measure without thresholds gets no flags and no rows.
//!
//! SQLite only for now: the PostgreSQL and MariaDB stores do not store these flags yet.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use sensor_ingest::ops::simulate::{Rng, default_start};
use sensor_ingest::pipeline::Outcome;

use crate::common::{Backend, TestEnv, env_or_skip};

const SLOTS: usize = 2 * 144;
const SPIKE: i64 = 71;
const FLAT: std::ops::Range<i64> = 100..140;
const STEP: i64 = 180;
const OUTLIER: i64 = 240;

const PROFILE: &str = "match = [\"*.csv\"]\n\
    [sensor]\ncolumn = \"sensor_id\"\n[time]\ncolumn = \"timestamp\"\n\
    [measures.temperature]\ncolumn = \"temperature\"\nunit = \"degC\"\n\
    [measures.battery]\ncolumn = \"battery\"\n\
    [measures.wind_speed]\ncolumn = \"wind_speed\"\n\
    [qc.battery]\nstep_per_minute = 0.01\nstep_floor = 0.3\nstep_max = 1.0\nspike = 0.3\n\
    spike_tolerance = 0.2\nflat_readings = 30\nflat_minutes = 300\noutlier_z = 6\n\
    outlier_mad_floor = 0.005\n";

/// Two days at ten minutes, cut into files of `per_file` readings.
fn files(per_file: usize, tag: &str) -> Vec<(String, String)> {
    let mut rng = Rng::new(29);
    let mut battery: Vec<f64> = (0..SLOTS)
        .map(|i| {
            let day = (i as f64 / 144.0 * std::f64::consts::TAU).sin();
            ((12.6 + 0.03 * day + 0.01 * rng.normal()) * 1000.0).round() / 1000.0
        })
        .collect();
    battery[SPIKE as usize] += 1.0;
    for i in FLAT {
        battery[i as usize] = battery[FLAT.start as usize];
    }
    for b in &mut battery[STEP as usize..] {
        *b += 1.5;
    }
    battery[OUTLIER as usize] += 0.28;
    let rows: Vec<String> = battery
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let ts = default_start() + TimeDelta::minutes(10 * i as i64);
            // Wind stuck at one value all along: a flat line, were it checked.
            format!(
                "logger,{},{:.2},{b:.3},4.0,{i}\n",
                ts.to_rfc3339(),
                15.0 + (i % 3) as f64 * 0.1
            )
        })
        .collect();
    rows.chunks(per_file)
        .enumerate()
        .map(|(n, chunk)| {
            let header = "sensor_id,timestamp,temperature,battery,wind_speed,slot\n".to_owned();
            (format!("{tag}-{n:04}.csv"), header + &chunk.concat())
        })
        .collect()
}

/// Loads the files in order; the battery flags stored, by slot.
async fn load(env: &TestEnv, files: &[(String, String)]) -> BTreeMap<i64, u8> {
    let pipeline = env.pipeline().await;
    for (name, content) in files {
        env.drop_file(name, content);
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { .. }),
            "{name}: {outcome:?}"
        );
    }
    let slots: BTreeMap<(String, i64), i64> = env
        .db
        .readings()
        .await
        .into_iter()
        .map(|r| {
            let slot = r.extra.as_ref().and_then(|e| e["slot"].as_i64()).unwrap();
            ((r.file_id.hyphenated().to_string(), r.line), slot)
        })
        .collect();
    let listed = env
        .db
        .text(
            "SELECT group_concat(file_id || ' ' || line || ' ' || flags, ',') \
             FROM qc_measure_flags WHERE measure = 'battery'",
        )
        .await
        .unwrap_or_default();
    listed
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split(' ').collect();
            let slot = slots[&(parts[0].to_owned(), parts[1].parse().unwrap())];
            (slot, parts[2].parse().unwrap())
        })
        .collect()
}

async fn check(env: &TestEnv, flags: &BTreeMap<i64, u8>, what: &str) {
    let with = |bit: u8| -> Vec<i64> {
        flags
            .iter()
            .filter(|(_, f)| **f & bit != 0)
            .map(|(s, _)| *s)
            .collect()
    };
    assert!(with(2).contains(&SPIKE), "{what}: spike {flags:?}");
    let flat = with(4);
    assert!(
        FLAT.clone().all(|s| flat.contains(&s)),
        "{what}: flat {flat:?}"
    );
    assert!(with(1).contains(&STEP), "{what}: step {flags:?}");
    assert!(with(8).contains(&OUTLIER), "{what}: outlier {flags:?}");
    let clean = flags
        .keys()
        .filter(|s| ![SPIKE, STEP, OUTLIER].contains(s) && !FLAT.contains(s))
        .count();
    assert!(
        clean * 200 <= SLOTS,
        "{what}: {clean} clean readings flagged: {flags:?}"
    );
    for (test, bit) in [("step", 1u8), ("spike", 2), ("flat", 4), ("outlier", 8)] {
        let counted = env
            .db
            .count(&format!(
                "SELECT CAST(coalesce(sum(qc_{test}), 0) AS BIGINT) FROM file_metrics \
                 WHERE column_name = 'battery'"
            ))
            .await;
        assert_eq!(
            counted,
            with(bit).len() as i64,
            "{what}: file_metrics qc_{test}"
        );
    }
    let wind = env
        .db
        .count("SELECT count(*) FROM qc_measure_flags WHERE measure <> 'battery'")
        .await;
    assert_eq!(wind, 0, "{what}: a measure without [qc.*] gets no flags");
    let wind_metrics = env
        .db
        .count(
            "SELECT CAST(coalesce(sum(qc_flat), 0) AS BIGINT) FROM file_metrics \
             WHERE column_name = 'wind_speed'",
        )
        .await;
    assert_eq!(wind_metrics, 0, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_further_measure_is_flagged_in_daily_and_hourly_files() {
    for (per_file, tag) in [(144, "day"), (6, "hour")] {
        let env = env_or_skip!(TestEnv::with_profiles(
            Backend::Sqlite,
            &[("logger.toml", PROFILE)],
            &[]
        ));
        let flags = load(&env, &files(per_file, tag)).await;
        check(&env, &flags, tag).await;
    }
}
