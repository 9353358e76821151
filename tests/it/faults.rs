//! Quality flags a field scientist trusts, end to end on both backends: a week of
//! three sensors at one reading a minute, every ten minutes or every hour, with faults
//! of every kind injected by a seeded generator (spikes, stuck runs, level shifts,
//! gaps, a logger clock set back), some across file boundaries. Every reading of
//! every fault is flagged; clean readings are flagged at most 0.5 % of the time with
//! all faults present and 0.1 % with none; and the flags are the same whether the week
//! arrives as one file, seven daily files or 168 hourly files.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use rstest::rstest;
use sensor_ingest::ops::simulate::{Rng, default_start};
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::qc::{Flags, MEASURE_NAMES, QcConfig, Test};

use crate::common::{Backend, TestEnv, env_or_skip};

const SENSORS: usize = 3;
const DAYS: i64 = 7;

/// (sensor, nominal slot) → flags: a clock set back writes times twice, so the slot
/// (an extra column of the files, stored in `extra`) names a reading.
type ByReading = BTreeMap<(String, i64), u16>;

/// One reading of the generated week: its nominal slot (what the files are cut by)
/// and what the logger wrote.
#[derive(Debug, Clone)]
struct Reading {
    slot: i64,
    sensor: usize,
    ts: DateTime<Utc>,
    values: [f64; 3],
}

/// The week and, for each fault reading, the flag it must carry.
struct Week {
    cadence: i64,
    readings: Vec<Reading>,
    expected: ByReading,
}

impl Week {
    fn slots_per_day(&self) -> i64 {
        1440 / self.cadence
    }
}

fn sensor_name(k: usize) -> String {
    format!("field-{k}")
}

/// A clean week at `cadence` minutes (seeded): a daily temperature cycle with noise,
/// humidity following it, a pressure random walk; with `faults`, the faults of every
/// kind listed in [`inject`].
fn week(cadence: i64, seed: u64, faults: bool) -> Week {
    let mut rng = Rng::new(seed);
    let slots = DAYS * 1440 / cadence;
    let mut series: Vec<Vec<Reading>> = Vec::new();
    for k in 0..SENSORS {
        let base = 12.0 + 3.0 * k as f64;
        let mut pressure = 1005.0 + 5.0 * k as f64;
        let walk = 0.05 * (cadence as f64).sqrt();
        let mut s = Vec::new();
        for slot in 0..slots {
            let ts = default_start() + TimeDelta::minutes(slot * cadence);
            let hour = (slot * cadence % 1440) as f64 / 60.0;
            let cycle = (std::f64::consts::TAU * (hour - 15.0) / 24.0).cos();
            let t = base + 6.0 * cycle + 0.2 * rng.normal();
            let h = 65.0 - 2.5 * (t - base) + rng.normal();
            pressure = (pressure + walk * rng.normal()).clamp(980.0, 1040.0);
            s.push(Reading {
                slot,
                sensor: k,
                ts,
                values: [round(t, 2), round(h, 1), round(pressure, 2)],
            });
        }
        series.push(s);
    }
    let mut expected = ByReading::new();
    if faults {
        for (k, s) in series.iter_mut().enumerate() {
            inject(cadence, k, s, &mut expected);
        }
    }
    let mut readings: Vec<Reading> = series.into_iter().flatten().collect();
    readings.sort_by_key(|r| (r.slot, r.sensor));
    Week {
        cadence,
        readings,
        expected,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// The faults of one sensor (`k` shifts some by an hour or two, so the sensors
/// differ), each clear of the others at every cadence:
/// - stuck runs, each half again as long as a flat line needs at this cadence and
///   crossing midnight (file boundaries): humidity from day 0 12:00, temperature from
///   day 1 20:00, pressure from day 3 02:00;
/// - spikes: on temperature at the last reading of day 2 (a file's last reading), on
///   humidity at day 2 16:00, on pressure at day 2 03:20;
/// - a level shift of temperature at day 3 10:00 (the first reading of an hourly
///   file), and back a day later;
/// - a gap of ten intervals across midnight of day 4;
/// - a logger clock set back within an hour, at day 6 12:20 (half an hour at
///   one-minute and ten-minute readings, three hours at hourly ones).
fn inject(cadence: i64, k: usize, s: &mut Vec<Reading>, expected: &mut ByReading) {
    let per_day = 1440 / cadence;
    let at = |day: i64, minutes: i64| ((day * 1440 + minutes) / cadence) as usize;
    let hours = k as i64 * 60;
    let name = sensor_name(k);
    let mut flag = |r: &Reading, bits: u16| {
        *expected.entry((name.clone(), r.slot)).or_default() |= bits;
    };
    let cfg = QcConfig::default();

    for (m, day, minutes) in [(1, 0, 12 * 60), (0, 1, 20 * 60), (2, 3, 2 * 60 + hours)] {
        let c = cfg.measures[m];
        let by_time = needed_by_time(c.flat_minutes, cadence);
        let needed = (c.flat_readings as i64).min(by_time);
        let len = (needed * 3 / 2) as usize;
        let from = at(day, minutes);
        let value = s[from].values[m];
        for r in &mut s[from..from + len] {
            r.values[m] = value;
            flag(r, Flags::bit(m, Test::Flat));
        }
    }
    let last_of_day_2 = (3 * per_day - 1) as usize;
    for (m, i, by) in [
        (0, last_of_day_2, 15.0),
        (1, at(2, 16 * 60 + hours), -30.0),
        (2, at(2, 200 + hours), 8.0),
    ] {
        s[i].values[m] = round(s[i].values[m] + by, 2);
        flag(&s[i], Flags::bit(m, Test::Spike));
    }
    // Twice the step limit (widened 1.8 times for hourly readings), and more than
    // the daily cycle moves in one interval.
    let widen = (cadence as f64 / 10.0).max(1.0).cbrt();
    let jump = 2.0 * widen * cfg.measures[0].step_threshold(cadence as f64) + 2.0;
    let (up, down) = (at(3, 600), at(4, 600 + hours));
    for r in &mut s[up..down] {
        r.values[0] = round(r.values[0] + jump, 2);
    }
    flag(&s[up], Flags::bit(0, Test::Step));
    flag(&s[down], Flags::bit(0, Test::Step));
    let gap = at(5, 0) - 5;
    s.drain(gap..gap + 10);
    flag(&s[gap], Flags::GAP);
    // The clock set back: every later time is off; those before the latest reading
    // are flagged, and the one at its time (the ones after it has caught up look like
    // good ones).
    let back = if cadence >= 60 { 180 } else { 30 };
    let slot = at(6, 12 * 60 + 20) as i64;
    let from = s.iter().position(|r| r.slot == slot).expect("slot kept");
    let latest = s[from - 1].ts;
    for r in &mut s[from..] {
        r.ts -= TimeDelta::minutes(back);
    }
    for r in s[from..].iter().take_while(|r| r.ts <= latest) {
        flag(r, Flags::TIME_TRAVEL);
    }
}

/// Readings a run of equal values needs to last `flat_minutes` at `cadence`, with the
/// limits widened for coarse series as docs/quality.md says.
fn needed_by_time(flat_minutes: f64, cadence: i64) -> i64 {
    let c = cadence as f64;
    let longer = (c / 10.0).max(1.0).sqrt();
    let readings = (flat_minutes * longer / c).ceil() as i64 + 1;
    if cadence > 10 {
        readings.max(8)
    } else {
        readings.max(2)
    }
}

/// The week as files of `slots` nominal slots each (the whole week, a day, an hour).
fn files(week: &Week, slots: i64, tag: &str) -> Vec<(String, String)> {
    let mut out: BTreeMap<i64, String> = BTreeMap::new();
    for r in &week.readings {
        let text = out
            .entry(r.slot / slots)
            .or_insert_with(|| "timestamp,sensor_id,temperature,humidity,pressure,slot\n".into());
        text.push_str(&format!(
            "{},{},{:.2},{:.1},{:.2},{}\n",
            r.ts.format("%Y-%m-%dT%H:%M:%SZ"),
            sensor_name(r.sensor),
            r.values[0],
            r.values[1],
            r.values[2],
            r.slot
        ));
    }
    out.into_iter()
        .map(|(n, text)| (format!("{tag}-{n:04}.csv"), text))
        .collect()
}

/// The week's columns named, and `duplicate_time` relaxed by name: a logger clock set
/// back writes some times twice with other values, which that safety rule refuses
/// under any profile that does not name it; these tests are about flagging them.
const PROFILE: &str = "match = [\"*.csv\"]\nrelax = [\"duplicate_time\"]\n\
    [sensor]\ncolumn = \"sensor_id\"\n[time]\ncolumn = \"timestamp\"\n\
    [measures.temperature]\ncolumn = \"temperature\"\nunit = \"degC\"\n\
    [measures.humidity]\ncolumn = \"humidity\"\nunit = \"%\"\n\
    [measures.pressure]\ncolumn = \"pressure\"\nunit = \"hPa\"\n";

/// A fresh store whose one profile reads the week's files (see [`PROFILE`]).
async fn week_env(backend: Backend) -> Option<TestEnv> {
    TestEnv::with_profiles(backend, &[("week.toml", PROFILE)], &[]).await
}

async fn load(env: &TestEnv, files: &[(String, String)]) -> ByReading {
    let pipeline = env.pipeline().await;
    for (name, content) in files {
        env.drop_file(name, content);
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Loaded { .. }),
            "{name}: {outcome:?}"
        );
    }
    env.db
        .readings()
        .await
        .into_iter()
        .map(|r| ((r.sensor_id, slot_of(&r.extra)), r.qc_flags))
        .collect()
}

fn slot_of(extra: &Option<serde_json::Value>) -> i64 {
    extra
        .as_ref()
        .and_then(|e| e["slot"].as_i64())
        .expect("every reading has its slot")
}

/// Every fault reading carries its flag; the share of clean readings flagged.
fn check(week: &Week, stored: &ByReading) -> f64 {
    let mut missed = Vec::new();
    for ((sensor, ts), bits) in &week.expected {
        let got = stored.get(&(sensor.clone(), *ts)).copied().unwrap_or(0);
        if got & bits != *bits {
            missed.push(format!(
                "{sensor} {ts}: want {} got {}",
                Flags(*bits).describe(),
                Flags(got).describe()
            ));
        }
    }
    assert!(missed.is_empty(), "cadence {}: {missed:#?}", week.cadence);
    let clean: Vec<_> = stored
        .iter()
        .filter(|(k, _)| !week.expected.contains_key(*k))
        .collect();
    let flagged: Vec<String> = clean
        .iter()
        .filter(|(_, f)| **f != 0)
        .map(|((s, t), f)| format!("{s} {t}: {}", Flags(**f).describe()))
        .collect();
    let share = flagged.len() as f64 / clean.len() as f64;
    eprintln!(
        "cadence {} min: {} of {} clean readings flagged: {flagged:?}",
        week.cadence,
        flagged.len(),
        clean.len()
    );
    share
}

/// `file_metrics` counts each test and measure as the stored flags do.
async fn metrics_agree(env: &TestEnv, stored: &ByReading) {
    let readings = env.db.readings().await;
    for (m, name) in MEASURE_NAMES.iter().enumerate() {
        let holding = |bit: u16| {
            readings
                .iter()
                .filter(|r| r.qc_flags & bit != 0)
                .filter(|r| [r.temperature, r.humidity, r.pressure][m].is_some())
                .count() as i64
        };
        let tests = Test::ALL.map(|t| (t.name(), Flags::bit(m, t)));
        for (test, bit) in tests
            .into_iter()
            .chain([("gap", Flags::GAP), ("time_travel", Flags::TIME_TRAVEL)])
        {
            let counted = env
                .db
                .count(&format!(
                    "SELECT CAST(coalesce(sum(qc_{test}), 0) AS BIGINT) FROM file_metrics \
                     WHERE column_name = '{name}'"
                ))
                .await;
            assert_eq!(counted, holding(bit), "{name} {test}");
        }
    }
    assert_eq!(readings.len(), stored.len());
}

/// The differences between two loads' flags, but for the readings `skip` names.
fn differences(a: &ByReading, b: &ByReading, skip: &BTreeSet<(String, i64)>) -> Vec<String> {
    a.iter()
        .filter(|(k, f)| !skip.contains(*k) && b.get(*k) != Some(f))
        .map(|(k, f)| {
            let other = Flags(b.get(k).copied().unwrap_or(0)).describe();
            format!("{} {}: {} vs {other}", k.0, k.1, Flags(*f).describe())
        })
        .collect()
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_flagged_whole_and_the_same_in_one_daily_or_hourly_files(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
    #[values(1, 10, 60)] cadence: i64,
) {
    let week = week(cadence, 40 + cadence as u64, true);
    let per_day = week.slots_per_day();
    let whole = env_or_skip!(week_env(backend));
    let daily = env_or_skip!(week_env(backend));
    let hourly = env_or_skip!(week_env(backend));
    let a = load(&whole, &files(&week, DAYS * per_day, "week")).await;
    let share = check(&week, &a);
    assert!(
        share <= 0.005,
        "cadence {cadence}: {:.3} % of clean readings flagged",
        share * 100.0
    );
    metrics_agree(&whole, &a).await;
    let b = load(&daily, &files(&week, per_day, "day")).await;
    let c = load(&hourly, &files(&week, per_day / 24, "hour")).await;
    // Time travel is judged within a file: an hourly file of hourly readings holds
    // one, so a clock set back shows as late files, judged against the readings
    // before their time: the readings of those three hours, written twice, and the two
    // after the clock caught up see the old and the new times interleaved. They are
    // left out of the comparison.
    let travel: BTreeSet<_> = week
        .expected
        .iter()
        .filter(|(_, f)| **f & Flags::TIME_TRAVEL != 0 && cadence >= 60)
        .flat_map(|((sensor, slot), _)| (-3..3).map(move |k| (sensor.clone(), slot + k)))
        .collect();
    let none = BTreeSet::new();
    assert_eq!(
        differences(&a, &b, &none),
        Vec::<String>::new(),
        "daily files"
    );
    assert_eq!(
        differences(&a, &c, &travel),
        Vec::<String>::new(),
        "hourly files"
    );
    metrics_agree(&hourly, &c).await;
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_week_is_almost_never_flagged(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
    #[values(1, 10, 60)] cadence: i64,
) {
    let week = week(cadence, 70 + cadence as u64, false);
    let per_day = week.slots_per_day();
    let env = env_or_skip!(week_env(backend));
    let stored = load(&env, &files(&week, per_day, "day")).await;
    assert_eq!(stored.len(), week.readings.len());
    let share = check(&week, &stored);
    assert!(
        share <= 0.001,
        "cadence {cadence}: {:.3} % of clean readings flagged",
        share * 100.0
    );
}
