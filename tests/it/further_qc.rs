//! Quality flags of further measures (`[qc.<measure>]`), end to end: battery voltage
//! at ten minutes and at one minute with a spike, a flat run, a level shift and an outlier injected,
//! loaded as daily and as hourly files (faults across file boundaries): every fault
//! reading is flagged in `qc_measure_flags` (the whole flat run, amended across
//! files), clean readings almost never, `file_metrics` counts agree; a further
//! measure without thresholds gets no flags and no rows.

use chrono::TimeDelta;
use rstest::rstest;
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

/// Two days' worth of readings every `cadence` minutes, cut into files of `per_file`.
fn files(cadence: i64, per_file: usize, tag: &str) -> Vec<(String, String)> {
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
            let ts = default_start() + TimeDelta::minutes(cadence * i as i64);
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

/// Loads the files in order, each to the end.
async fn load(env: &TestEnv, files: &[(String, String)]) {
    let pipeline = env.pipeline().await;
    for (name, content) in files {
        env.drop_file(name, content);
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { .. }),
            "{name}: {outcome:?}"
        );
    }
}

/// The stored battery readings with flag `bit` whose slot is in `slots`.
async fn flagged(env: &TestEnv, backend: Backend, bit: u8, slots: std::ops::Range<i64>) -> i64 {
    let slot = match backend {
        Backend::Sqlite => "json_extract(r.extra, '$.slot')",
        Backend::Postgres => "(r.extra ->> 'slot')::int8",
        Backend::Mysql => "CAST(JSON_VALUE(r.extra, '$.slot') AS SIGNED)",
    };
    env.db
        .count(&format!(
            "SELECT count(*) FROM qc_measure_flags f JOIN sensor_readings r \
             ON r.file_id = f.file_id AND r.line = f.line \
             WHERE f.measure = 'battery' AND f.flags & {bit} <> 0 \
               AND {slot} >= {} AND {slot} < {}",
            slots.start, slots.end
        ))
        .await
}

async fn check(env: &TestEnv, backend: Backend, what: &str) {
    let one = |s: i64| s..s + 1;
    assert_eq!(
        flagged(env, backend, 2, one(SPIKE)).await,
        1,
        "{what}: spike"
    );
    let flat = flagged(env, backend, 4, FLAT).await;
    assert_eq!(flat, FLAT.end - FLAT.start, "{what}: the whole flat run");
    assert_eq!(flagged(env, backend, 1, one(STEP)).await, 1, "{what}: step");
    assert_eq!(
        flagged(env, backend, 8, one(OUTLIER)).await,
        1,
        "{what}: outlier"
    );
    let all = 0..SLOTS as i64;
    let faults = flagged(env, backend, 15, one(SPIKE)).await
        + flagged(env, backend, 15, FLAT).await
        + flagged(env, backend, 15, one(STEP)).await
        + flagged(env, backend, 15, one(OUTLIER)).await;
    let clean = flagged(env, backend, 15, all.clone()).await - faults;
    assert!(
        clean * 200 <= SLOTS as i64,
        "{what}: {clean} clean readings flagged"
    );
    for (test, bit) in [("step", 1u8), ("spike", 2), ("flat", 4), ("outlier", 8)] {
        let counted = env
            .db
            .count(&format!(
                "SELECT CAST(coalesce(sum(qc_{test}), 0) AS BIGINT) FROM file_metrics \
                 WHERE column_name = 'battery'"
            ))
            .await;
        let stored = flagged(env, backend, bit, all.clone()).await;
        assert_eq!(counted, stored, "{what}: file_metrics qc_{test}");
    }
    let wind = env
        .db
        .count("SELECT count(*) FROM qc_measure_flags WHERE measure <> 'battery'")
        .await;
    assert_eq!(wind, 0, "{what}: a measure without [qc.*] gets no flags");
    let wind_metrics = env
        .db
        .count(
            "SELECT CAST(coalesce(sum(qc_flat + qc_spike + qc_step + qc_outlier), 0) AS BIGINT) \
             FROM file_metrics WHERE column_name = 'wind_speed'",
        )
        .await;
    assert_eq!(wind_metrics, 0, "{what}");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_further_measure_is_flagged_in_daily_and_hourly_files(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
    #[values(144, 6)] per_file: usize,
    #[values(10, 1)] cadence: i64,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("logger.toml", PROFILE)],
        &[]
    ));
    load(&env, &files(cadence, per_file, "logger")).await;
    let what = format!("{backend:?}, every {cadence} min, files of {per_file}");
    check(&env, backend, &what).await;
    // The qc command lists them beside the canonical flags.
    let store = env.store();
    let report = sensor_ingest::ops::qc::collect(store.as_ref(), "logger", default_start(), 1000)
        .await
        .unwrap();
    let spikes = report
        .readings
        .iter()
        .filter(|r| r.tests.iter().any(|t| t == "battery:spike"))
        .count();
    assert_eq!(spikes, 1, "{what}: {:?}", report.readings);
    let flat = report
        .readings
        .iter()
        .filter(|r| r.further.iter().any(|(m, f)| m == "battery" && f & 4 != 0))
        .count() as i64;
    assert_eq!(flat, FLAT.end - FLAT.start, "{what}");
}
