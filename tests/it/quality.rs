//! Quality flags end to end: anomalies injected by the simulator are flagged once
//! loaded, a clean signal almost never is, a day gets the same flags as one file or as
//! 24 hourly files, and the counts in `file_metrics` and the views agree with the flags.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rstest::rstest;
use sensor_ingest::ops::simulate::{Anomaly, AnomalyKind, SimOptions, Simulator, default_start};
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::qc::{Flags, MEASURE_NAMES, Test};

use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};

fn simulator(seed: u64, sensors: u32, rows: u32, anomalies: f64, env: &TestEnv) -> Simulator {
    Simulator::new(SimOptions {
        sensors,
        files: 1,
        rows,
        bad_rate: 0.0,
        seed,
        start: default_start(),
        sample_every: Duration::from_secs(60),
        ranges: env.settings.ranges,
        anomalies,
    })
}

/// Loads the files in order, each by a pipeline of its own: nothing remembered
/// between files, every sensor's history is read from the database and replayed.
async fn load_each_fresh(env: &TestEnv, files: &[(String, String)]) {
    for file in files {
        load(env, std::slice::from_ref(file)).await;
    }
}

/// Loads the files in order, one at a time, each to the end.
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

/// The stored flags by (sensor, time).
async fn flags(env: &TestEnv) -> BTreeMap<(String, DateTime<Utc>), u16> {
    env.db
        .readings()
        .await
        .into_iter()
        .map(|r| ((r.sensor_id, r.ts), r.qc_flags))
        .collect()
}

/// `file_metrics`' counts of one test and measure, over every file.
async fn metric(env: &TestEnv, test: Test, measure: &str) -> i64 {
    env.db
        .count(&format!(
            "SELECT CAST(coalesce(sum(qc_{}), 0) AS BIGINT) FROM file_metrics \
             WHERE column_name = '{measure}'",
            test.name()
        ))
        .await
}

/// The counts in `file_metrics` and the views are those of the stored flags, and the
/// clean views leave exactly the flagged values out.
async fn counts_agree(env: &TestEnv, stored: &BTreeMap<(String, DateTime<Utc>), u16>) {
    for (m, name) in MEASURE_NAMES.iter().enumerate() {
        for test in Test::ALL {
            let flagged = stored.values().filter(|f| Flags(**f).has(m, test)).count() as i64;
            assert_eq!(
                metric(env, test, name).await,
                flagged,
                "{name} {}",
                test.name()
            );
        }
        let mask = 15 << (m * 4);
        let flagged = env
            .db
            .count(&format!(
                "SELECT CAST(coalesce(sum({name}_flagged), 0) AS BIGINT) FROM sensor_daily"
            ))
            .await;
        let expected = stored.values().filter(|f| **f & mask != 0).count() as i64;
        assert_eq!(flagged, expected, "{name}_flagged");
        let clean = env
            .db
            .count(&format!(
                "SELECT CAST(coalesce(sum({name}_count), 0) AS BIGINT) FROM sensor_hourly_clean"
            ))
            .await;
        let unflagged = env
            .db
            .count(&format!(
                "SELECT count(*) FROM sensor_readings WHERE {name} IS NOT NULL \
                 AND qc_flags & {mask} = 0"
            ))
            .await;
        assert_eq!(clean, unflagged, "{name} in sensor_hourly_clean");
    }
    let any = env
        .db
        .count("SELECT CAST(coalesce(sum(flagged), 0) AS BIGINT) FROM sensor_hourly")
        .await;
    assert_eq!(any, stored.values().filter(|f| **f != 0).count() as i64);
}

/// Every spike, step and flat line the simulator injected is flagged once loaded,
/// across file boundaries (a flat line spans files, and is flagged whole; a spike on a
/// file's last reading is decided by the next file).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_anomaly_is_flagged(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let mut sim = simulator(11, 3, 3 * 720, 0.004, &env);
    let mut files = Vec::new();
    let mut injected: Vec<Anomaly> = Vec::new();
    for _ in 0..4 {
        let (name, content, _) = sim.next_file();
        injected.extend(sim.anomalies().iter().cloned());
        files.push((name, content));
    }
    load(&env, &files).await;
    let stored = flags(&env).await;
    let last = stored.keys().map(|k| k.1).max().unwrap();
    let mut seen = [0; 3];
    for a in &injected {
        let m = MEASURE_NAMES.iter().position(|n| *n == a.measure).unwrap();
        let f = Flags(stored[&(a.sensor.clone(), a.at)]);
        let (test, i) = match a.kind {
            AnomalyKind::Spike if a.at == last => continue, // no next reading yet
            AnomalyKind::Spike => (Test::Spike, 0),
            AnomalyKind::Step => (Test::Step, 1),
            // A flat line is flagged whole, its first readings too, once it is long
            // enough (the last file may end before it is).
            AnomalyKind::Flat { qualifies: false } if !qualifies_later(&injected, a) => continue,
            AnomalyKind::Flat { .. } => (Test::Flat, 2),
        };
        assert!(
            f.has(m, test),
            "{} {} at {} ({}): flags {}",
            a.kind.name(),
            a.measure,
            a.at,
            a.sensor,
            f.describe()
        );
        seen[i] += 1;
    }
    assert!(
        seen.iter().all(|n| *n > 0),
        "spikes, steps, flat readings: {seen:?}"
    );
    counts_agree(&env, &stored).await;
}

/// Whether the flat run `a` is part of reaches its length in the data loaded: a
/// reading of the same sensor and measure, at most a run's length later, qualifies.
fn qualifies_later(injected: &[Anomaly], a: &Anomaly) -> bool {
    injected.iter().any(|b| {
        b.sensor == a.sensor
            && b.measure == a.measure
            && matches!(b.kind, AnomalyKind::Flat { qualifies: true })
            && b.at >= a.at
            && b.at - a.at <= chrono::TimeDelta::minutes(240)
    })
}

/// A clean signal (daily cycle, noise, a pressure random walk) is almost never
/// flagged: at most 0.5% of readings, for several seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_signal_is_almost_never_flagged() {
    for seed in [1, 2, 3, 4] {
        let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
        let mut sim = simulator(seed, 3, 3 * 1440, 0.0, &env);
        let files: Vec<(String, String)> = (0..2)
            .map(|_| {
                let (name, content, _) = sim.next_file();
                (name, content)
            })
            .collect();
        load(&env, &files).await;
        let stored = flags(&env).await;
        let flagged = stored.values().filter(|f| **f != 0).count();
        assert_eq!(stored.len(), 2 * 3 * 1440);
        assert!(
            flagged * 200 <= stored.len(),
            "seed {seed}: {flagged} of {} readings flagged",
            stored.len()
        );
    }
}

/// One day's readings (two sensors, one a minute, with anomalies), cut into its 24
/// hours; the first element is the whole day.
fn day_and_hours(env: &TestEnv) -> ((String, String), Vec<(String, String)>) {
    let mut sim = simulator(5, 2, 2 * 1440, 0.004, env);
    let (name, content, _) = sim.next_file();
    let mut lines = content.lines();
    let header = lines.next().unwrap();
    let mut hours: BTreeMap<String, String> = BTreeMap::new();
    for line in lines {
        let hour = line[..13].to_owned();
        hours
            .entry(hour)
            .or_insert_with(|| format!("{header}\n"))
            .push_str(&format!("{line}\n"));
    }
    assert_eq!(hours.len(), 24);
    let hourly = hours
        .into_iter()
        .map(|(hour, text)| (format!("hour-{}.csv", &hour[11..13]), text))
        .collect();
    ((name, content), hourly)
}

/// The promise: the same flags, reading by reading, whether a day arrives
/// as one file or as 24 hourly files in time order, and the same counts.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_as_one_file_or_24_hourly_files_gets_the_same_flags(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let whole = env_or_skip!(TestEnv::new(backend));
    let split = env_or_skip!(TestEnv::new(backend));
    let fresh = env_or_skip!(TestEnv::new(backend));
    let (day, hours) = day_and_hours(&whole);
    load(&whole, &[day]).await;
    // One pipeline remembers each sensor between files; pipelines of their own read
    // and replay the history every time: both must agree with the whole day.
    load(&split, &hours).await;
    load_each_fresh(&fresh, &hours).await;
    let a = flags(&whole).await;
    assert_eq!(a.len(), 2 * 1440);
    assert!(a.values().filter(|f| **f != 0).count() >= 5);
    counts_agree(&whole, &a).await;
    for (env, how) in [(&split, "remembered"), (&fresh, "replayed")] {
        let b = flags(env).await;
        let differ: Vec<String> = a
            .iter()
            .filter(|(k, f)| b.get(*k) != Some(f))
            .map(|(k, f)| {
                format!(
                    "{} {}: {} vs {}",
                    k.0,
                    k.1,
                    Flags(*f).describe(),
                    Flags(b.get(k).copied().unwrap_or(0)).describe()
                )
            })
            .collect();
        assert!(differ.is_empty(), "{how}: {differ:#?}");
        counts_agree(env, &b).await;
    }
}

/// Small files read side by side (a backlog landing at once) are judged by the group
/// committer in time order, each continuing from the one before it: the 24 hours,
/// dropped at once in shuffled order and read concurrently into one group, get the
/// whole day's flags. Their readers alone would not see each other (no hour is
/// stored while the others are read) and would flag every hour's start on its own.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_files_read_side_by_side_get_the_flags_of_the_whole_day(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let whole = env_or_skip!(TestEnv::new(backend));
    let vars = &[("GROUP_FILES", "24"), ("GROUP_WAIT_MS", "1000")];
    let split = env_or_skip!(TestEnv::with_vars(backend, vars));
    let (day, mut hours) = day_and_hours(&whole);
    load(&whole, &[day]).await;
    // Arrival order is not time order: the committer puts them right.
    hours.reverse();
    hours.swap(3, 17);
    let pipeline = split.pipeline().await;
    for (name, content) in &hours {
        split.drop_file(name, content);
    }
    let tasks: Vec<_> = hours
        .iter()
        .map(|(name, _)| (name.clone(), split.spawn_process(&pipeline, name)))
        .collect();
    for (name, task) in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { .. }),
            "{name}: {outcome:?}"
        );
    }
    let a = flags(&whole).await;
    let b = flags(&split).await;
    assert_eq!(b.len(), 2 * 1440);
    assert!(a.values().filter(|f| **f != 0).count() >= 5);
    let differ: Vec<String> = a
        .iter()
        .filter(|(k, f)| b.get(*k) != Some(f))
        .map(|(k, f)| {
            let other = Flags(b.get(k).copied().unwrap_or(0)).describe();
            format!("{} {}: {} vs {other}", k.0, k.1, Flags(*f).describe())
        })
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    counts_agree(&split, &b).await;
}

/// What `once` reports, not drawn.
struct Quiet;

impl sensor_ingest::agent::OnceProgress for Quiet {
    fn start(&self, _: usize, _: u64) {}
    fn file_done(&self, _: u64, _: &Result<Outcome, sensor_ingest::pipeline::ProcessError>) {}
    fn finish(&self) {}
}

/// A backlog read all at once by `once` (files read side by side, many groups of a few
/// files each) gets, reading by reading, the flags of the same files loaded one at a
/// time in order: the committer takes the files in the order they were taken from the
/// folder, so no file of a sensor is judged before the one before it (which would
/// flag a gap that the later file fills, and leave that file's readings unjudged).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_under_once_gets_the_flags_of_the_files_one_at_a_time(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    backlog_gets_the_flags_of_the_files_one_at_a_time(backend, Take::Once).await;
}

/// The same under `run`: half the backlog waits in the folder when the agent starts,
/// the other half is dropped in a burst while it runs.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_under_run_gets_the_flags_of_the_files_one_at_a_time(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    backlog_gets_the_flags_of_the_files_one_at_a_time(backend, Take::Run).await;
}

enum Take {
    Once,
    Run,
}

async fn backlog_gets_the_flags_of_the_files_one_at_a_time(backend: Backend, take: Take) {
    const FILES: usize = 160;
    let vars = &[
        ("WORKERS", "4"),
        ("GROUP_FILES", "8"),
        ("GROUP_WAIT_MS", "5"),
    ];
    let backlog = env_or_skip!(TestEnv::with_vars(backend, vars));
    let single = env_or_skip!(TestEnv::new(backend));
    // Four sensors, half an hour each per file: 80 hours in all, with anomalies.
    let mut sim = simulator(9, 4, 4 * 30, 0.003, &backlog);
    let files: Vec<(String, String)> = (0..FILES)
        .map(|_| {
            let (name, content, _) = sim.next_file();
            (name, content)
        })
        .collect();
    let agent = sensor_ingest::agent::Agent::build(&backlog.settings);
    match take {
        Take::Once => {
            for (name, content) in &files {
                backlog.drop_file(name, content);
            }
            let summary = agent
                .once(0, tokio_util::sync::CancellationToken::new(), &Quiet)
                .await
                .unwrap();
            assert_eq!(summary.loaded, FILES, "{summary:?}");
        }
        Take::Run => {
            let (waiting, burst) = files.split_at(FILES / 2);
            for (name, content) in waiting {
                backlog.drop_file(name, content);
            }
            let token = tokio_util::sync::CancellationToken::new();
            let running = tokio::spawn({
                let token = token.clone();
                async move { agent.run(token).await }
            });
            for (name, content) in burst {
                backlog.drop_file(name, content);
            }
            // A file is moved to processed/ only after its commit.
            let processed = backlog.processed();
            let all_moved = eventually(Duration::from_secs(120), async || {
                processed.is_dir() && files_in(&processed).len() == FILES
            })
            .await;
            token.cancel();
            running.await.unwrap().unwrap();
            assert!(all_moved, "not every file of the backlog was loaded");
            assert_eq!(
                backlog
                    .db
                    .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
                    .await,
                FILES as i64
            );
        }
    }
    load(&single, &files).await;

    let (got, expected) = (flags(&backlog).await, flags(&single).await);
    assert_eq!(got.len(), FILES * 4 * 30);
    assert!(expected.values().filter(|f| **f != 0).count() >= 5);
    let differ: Vec<String> = expected
        .iter()
        .filter(|(k, f)| got.get(*k) != Some(f))
        .map(|(k, f)| {
            let other = Flags(got.get(k).copied().unwrap_or(0)).describe();
            format!(
                "{} {}: {} in the backlog, {} one at a time",
                k.0,
                k.1,
                other,
                Flags(*f).describe()
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} readings flagged otherwise: {:#?}",
        differ.len(),
        expected.len(),
        &differ[..differ.len().min(20)]
    );
    counts_agree(&backlog, &got).await;
}

/// `QC=off` (the benchmark's baseline) stores no flags at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qc_off_flags_nothing() {
    let env = env_or_skip!(TestEnv::with_vars(Backend::Sqlite, &[("QC", "off")]));
    let mut sim = simulator(11, 3, 3 * 720, 0.01, &env);
    let (name, content, _) = sim.next_file();
    assert!(!sim.anomalies().is_empty());
    load(&env, &[(name, content)]).await;
    assert!(flags(&env).await.values().all(|f| *f == 0));
}

/// `qc SENSOR` lists every flagged reading of the sensor with its tests and the values
/// around it, on both backends; `--json` says the same for programs.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qc_command_lists_flagged_readings_with_their_neighbours(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let mut sim = simulator(11, 3, 3 * 720, 0.004, &env);
    let files: Vec<(String, String)> = (0..2)
        .map(|_| {
            let (name, content, _) = sim.next_file();
            (name, content)
        })
        .collect();
    load(&env, &files).await;
    let stored = flags(&env).await;
    let sensor = "sim-001";
    let expected: Vec<(DateTime<Utc>, u16)> = stored
        .iter()
        .filter(|((s, _), f)| s == sensor && **f != 0)
        .map(|((_, t), f)| (*t, *f))
        .collect();
    assert!(!expected.is_empty());

    let store = env.store();
    let report = sensor_ingest::ops::qc::collect(store.as_ref(), sensor, default_start(), 1000)
        .await
        .unwrap();
    let listed: Vec<(DateTime<Utc>, u16)> = report
        .readings
        .iter()
        .map(|r| (r.reading.ts, r.flags))
        .collect();
    assert_eq!(listed, expected);
    assert!(!report.truncated);
    let times: Vec<DateTime<Utc>> = stored
        .keys()
        .filter(|k| k.0 == sensor)
        .map(|k| k.1)
        .collect();
    for r in &report.readings {
        let i = times.iter().position(|t| *t == r.reading.ts).unwrap();
        assert_eq!(
            r.previous.as_ref().map(|p| p.ts),
            i.checked_sub(1).map(|j| times[j])
        );
        assert_eq!(r.next.as_ref().map(|n| n.ts), times.get(i + 1).copied());
    }
    let one = sensor_ingest::ops::qc::collect(store.as_ref(), sensor, default_start(), 1)
        .await
        .unwrap();
    assert!(one.readings.len() == 1 && one.truncated == (expected.len() > 1));

    let out = crate::common::binary::command(
        &env,
        &["qc", sensor, "--since", "2024-01-01T00:00:00Z", "--json"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["readings"].as_array().unwrap().len(), expected.len());
    let text =
        crate::common::binary::command(&env, &["qc", sensor, "--since", "2024-01-01T00:00:00Z"])
            .output()
            .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with(&format!("{sensor}: {} flagged", expected.len())),
        "{text}"
    );
    assert!(text.contains(" → "), "{text}");
}
