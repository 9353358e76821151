use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use super::*;
use crate::ops::simulate::Rng;

mod coarse;
mod further;

#[derive(Debug, Clone, PartialEq)]
struct Row {
    line: i64,
    sensor: String,
    ts: DateTime<Utc>,
    values: [Option<f64>; 3],
    flags: u16,
    /// Further measures, by name (none in most tests), and their flags once judged.
    further: Vec<(&'static str, f64)>,
    further_flags: FurtherFlags,
}

impl Judged for Row {
    fn sensor(&self) -> &str {
        &self.sensor
    }
    fn line(&self) -> i64 {
        self.line
    }
    fn timestamp(&self) -> DateTime<Utc> {
        self.ts
    }
    fn value(&self, m: usize) -> Option<f64> {
        self.values[m]
    }
    fn flags_mut(&mut self) -> &mut u16 {
        &mut self.flags
    }
    fn further(&self, measures: &[FurtherMeasure]) -> Vec<Option<f64>> {
        measures
            .iter()
            .map(|m| self.further.iter().find(|(n, _)| *n == m.name).map(|v| v.1))
            .collect()
    }
    fn further_flags_mut(&mut self) -> &mut FurtherFlags {
        &mut self.further_flags
    }
}

fn start() -> DateTime<Utc> {
    "2024-05-01T00:00:00Z".parse().unwrap()
}

/// Temperature only, one reading a minute.
fn rows(values: &[f64]) -> Vec<Row> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Row {
            line: i as i64 + 2,
            sensor: "s".into(),
            ts: start() + TimeDelta::minutes(i as i64),
            values: [Some(*v), None, None],
            flags: 0,
            further: Vec::new(),
            further_flags: FurtherFlags::default(),
        })
        .collect()
}

/// Judges `rows` as one file with no history; flags by line, in input order, with
/// the flat runs found flagged back as the sinks do.
fn judge(rows: Vec<Row>) -> (Vec<u16>, QcSummary) {
    judge_with(QcConfig::default(), rows)
}

fn judge_with(cfg: QcConfig, rows: Vec<Row>) -> (Vec<u16>, QcSummary) {
    let n = rows.len();
    let mut j = Judge::new(cfg);
    let mut out = Vec::new();
    for r in rows {
        out.extend(j.push(r, |_, _, _| Ok::<_, ()>(Vec::new())).unwrap());
    }
    let (rest, summary) = j.finish();
    out.extend(rest);
    out.sort_by_key(|r| r.line);
    assert_eq!(out.len(), n, "every reading comes out once");
    for run in &summary.runs {
        for r in out.iter_mut() {
            if in_run(run, r) {
                r.flags |= run.add();
            }
        }
    }
    (out.into_iter().map(|r| r.flags).collect(), summary)
}

/// Whether `run` flags `r` (the sinks' `UPDATE … WHERE`).
fn in_run(run: &RunAmendment, r: &Row) -> bool {
    r.sensor == run.sensor
        && r.ts >= run.from
        && r.ts < run.to
        && r.values[run.measure] == Some(run.value)
}

const T: usize = 0;

fn flagged(flags: &[u16], test: Test) -> Vec<usize> {
    (0..flags.len())
        .filter(|i| Flags(flags[*i]).has(T, test))
        .collect()
}

fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let day = i as f64 / 1440.0 * std::f64::consts::TAU;
            let v = 15.0 + 6.0 * day.sin() + 0.2 * rng.normal();
            (v * 100.0).round() / 100.0
        })
        .collect()
}

#[test]
fn a_spike_is_flagged_once_and_its_return_is_no_step() {
    let mut v = noise(200, 1);
    v[100] += 9.0;
    let (flags, summary) = judge(rows(&v));
    assert_eq!(flagged(&flags, Test::Spike), vec![100]);
    assert_eq!(flagged(&flags, Test::Step), vec![100], "the jump up only");
    assert_eq!(summary.counts[T][Test::Spike as usize], 1);
}

#[test]
fn a_level_shift_is_a_step_and_no_spike() {
    let mut v = noise(200, 2);
    for x in &mut v[120..] {
        *x += 7.0;
    }
    let (flags, _) = judge(rows(&v));
    assert_eq!(flagged(&flags, Test::Step), vec![120]);
    assert!(flagged(&flags, Test::Spike).is_empty());
}

/// A sensor back after a silence longer than the history span starts afresh: its
/// first value is no step from a reading weeks old, however far it moved; within the
/// span (here set to 30 days) the same jump is a step.
#[test]
fn a_reading_after_more_than_the_history_span_starts_the_tests_afresh() {
    let mut v = rows(&noise(100, 4));
    let mut back = rows(&noise(100, 5));
    for (i, r) in back.iter_mut().enumerate() {
        r.line = 200 + i as i64;
        r.ts = start() + TimeDelta::days(10) + TimeDelta::minutes(i as i64);
        r.values[T] = r.values[T].map(|x| x - 12.0);
    }
    v.extend(back);
    let (flags, _) = judge(v.clone());
    assert!(
        flagged(&flags, Test::Step).is_empty(),
        "{:?}",
        flagged(&flags, Test::Step)
    );
    let month = QcConfig {
        history_hours: 30 * 24,
        ..QcConfig::default()
    };
    let (flags, _) = judge_with(month, v);
    assert_eq!(flagged(&flags, Test::Step), vec![100]);
}

#[test]
fn history_spans_read_as_hours_or_days_within_a_year() {
    use super::config::parse_history;
    assert_eq!(parse_history("7d"), Ok(168));
    assert_eq!(parse_history("30 days"), Ok(720));
    assert_eq!(parse_history("48h"), Ok(48));
    assert_eq!(parse_history("1 hour"), Ok(1));
    for bad in ["0h", "367d", "7", "7w", "d", "-1d", "1.5d"] {
        assert!(parse_history(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_step_threshold_grows_with_the_gap_between_floor_and_cap() {
    let c = QcConfig::default().measures[T];
    assert_eq!(c.step_threshold(1.0), c.step_floor);
    assert_eq!(c.step_threshold(20.0), 5.0);
    assert_eq!(c.step_threshold(600.0), c.step_max);
}

#[test]
fn a_flat_line_is_flagged_whole_from_its_first_reading() {
    let mut v = noise(400, 3);
    let n = QcConfig::default().measures[T].flat_readings as usize;
    for x in &mut v[100..100 + n + 5] {
        *x = 21.3;
    }
    let (flags, summary) = judge(rows(&v));
    let flat = flagged(&flags, Test::Flat);
    assert_eq!(flat, (100..100 + n + 5).collect::<Vec<_>>());
    assert_eq!(summary.runs.len(), 1, "one run flagged back");
    assert_eq!(
        summary.counts[T][Test::Flat as usize],
        6,
        "the readings flagged as they load; the database counts the run's earlier ones"
    );
}

/// A stuck run does not leave its value in the outlier window, nor the level before a
/// step: the readings after either fault are judged against normal readings.
#[test]
fn no_false_outliers_after_a_stuck_run_or_a_level_shift() {
    let mut v = noise(2000, 8);
    for x in &mut v[300..420] {
        *x = 20.0;
    }
    for x in &mut v[1000..] {
        *x += 8.0;
    }
    let (flags, _) = judge(rows(&v));
    let flat = flagged(&flags, Test::Flat);
    assert_eq!(flat, (300..420).collect::<Vec<_>>());
    let clean: Vec<usize> = (0..v.len())
        .filter(|i| flags[*i] != 0 && !(300..420).contains(i) && *i != 1000)
        .collect();
    assert!(clean.len() <= 2, "clean readings flagged: {clean:?}");
    assert!(Flags(flags[1000]).has(T, Test::Step));
}

#[test]
fn a_flat_line_of_an_hourly_series_needs_more_than_a_few_equal_readings() {
    let hourly = |values: &dyn Fn(i64) -> f64| -> Vec<Row> {
        (0..60)
            .map(|i| Row {
                line: i + 2,
                sensor: "s".into(),
                ts: start() + TimeDelta::hours(i),
                values: [Some(values(i)), None, None],
                flags: 0,
                further: Vec::new(),
                further_flags: FurtherFlags::default(),
            })
            .collect()
    };
    // Six equal hours (the one-minute limit of 360 minutes) are no flat line …
    let varied = |i: i64| 10.0 + (i % 5) as f64;
    let (flags, _) = judge(hourly(&|i| {
        if (20..27).contains(&i) {
            9.9
        } else {
            varied(i)
        }
    }));
    assert!(flagged(&flags, Test::Flat).is_empty());
    // … thirty are, every one of them.
    let (flags, _) = judge(hourly(&|i| {
        if (20..50).contains(&i) {
            9.9
        } else {
            varied(i)
        }
    }));
    assert_eq!(flagged(&flags, Test::Flat), (20..50).collect::<Vec<_>>());
}

#[test]
fn an_outlier_is_flagged_against_the_window_and_a_flat_window_has_a_floor() {
    let mut rng = Rng::new(4);
    let mut v: Vec<f64> = (0..300).map(|_| 10.0 + 0.05 * rng.normal()).collect();
    v[200] += 1.5; // below the spike and step thresholds, far from the window
    v[201] += 1.5;
    let (flags, _) = judge(rows(&v));
    assert!(
        flagged(&flags, Test::Outlier).contains(&200),
        "{:?}",
        flagged(&flags, Test::Outlier)
    );
    assert!(flagged(&flags, Test::Step).is_empty());

    // A constant window (MAD 0): a change of 0.4 is no outlier, one of 2 is (it also
    // moved from the value before by more than half the step limit).
    let mut flat = vec![10.0; 70];
    flat.push(10.4);
    flat.push(12.0);
    let (flags, _) = judge(rows(&flat));
    assert_eq!(flagged(&flags, Test::Outlier), vec![71]);
}

/// A logger clock set back within a file: the readings older than the latest one are
/// flagged time travel (and judged by no other test) until the clock has caught up;
/// a file written newest first is no time travel.
#[test]
fn a_clock_set_back_is_time_travel_and_a_reversed_file_is_not() {
    let mut r = rows(&noise(120, 5));
    for (i, row) in r.iter_mut().enumerate().skip(60) {
        row.ts -= TimeDelta::minutes(30);
        if i == 70 {
            row.values[T] = Some(99.0);
        }
    }
    let (flags, summary) = judge(r);
    let travel: Vec<usize> = (0..flags.len())
        .filter(|i| flags[*i] & Flags::TIME_TRAVEL != 0)
        .collect();
    assert_eq!(travel, (60..90).collect::<Vec<_>>());
    assert_eq!(flags[70], Flags::TIME_TRAVEL, "no other test");
    assert_eq!(summary.counts[T][5], 30);
    // A clock (or a typical-year file) going back further than the history span:
    // that reading is flagged, and the series starts afresh from it.
    let mut years = rows(&noise(120, 7));
    for row in years.iter_mut().skip(60) {
        row.ts -= TimeDelta::days(365);
    }
    let (flags, _) = judge(years);
    let travel: Vec<usize> = (0..flags.len())
        .filter(|i| flags[*i] & Flags::TIME_TRAVEL != 0)
        .collect();
    assert_eq!(travel, vec![60]);
    assert!(flags.iter().skip(61).all(|f| *f == 0), "judged afresh");
    let mut reversed = rows(&noise(120, 6));
    reversed.reverse();
    let (flags, _) = judge(reversed);
    assert!(flags.iter().all(|f| f & Flags::TIME_TRAVEL == 0));
}

/// A reading more than five usual intervals after the previous one is flagged gap;
/// an irregular series with the odd longer interval is not.
#[test]
fn a_gap_is_flagged_on_the_reading_after_it() {
    let mut r = rows(&noise(200, 7));
    for row in r.iter_mut().skip(100) {
        row.ts += TimeDelta::minutes(10);
    }
    for row in r.iter_mut().skip(150) {
        row.ts += TimeDelta::minutes(3);
    }
    let (flags, summary) = judge(r);
    let gaps: Vec<usize> = (0..flags.len())
        .filter(|i| flags[*i] & Flags::GAP != 0)
        .collect();
    assert_eq!(gaps, vec![100]);
    assert_eq!(summary.counts[T][4], 1);
}

#[test]
fn a_clean_daily_cycle_is_almost_never_flagged() {
    for seed in 1..6 {
        let (flags, _) = judge(rows(&noise(3 * 1440, seed)));
        let n = flags.iter().filter(|f| **f != 0).count();
        assert!(
            n * 200 <= flags.len(),
            "seed {seed}: {n} of {}",
            flags.len()
        );
    }
}

#[test]
fn flags_list_and_describe_the_bits() {
    let mut f = Flags::default();
    f.set(0, Test::Spike);
    f.set(2, Test::Flat);
    assert_eq!(f.0, 0b0100_0000_0010);
    assert_eq!(f.describe(), "temperature:spike pressure:flat");
    assert_eq!(Flags(0).describe(), "-");
}

#[test]
fn profile_overrides_replace_only_what_they_name() {
    let o: QcOverrides =
        toml::from_str("window = 30\n[temperature]\nstep_per_minute = 1.5\nflat_readings = 10\n")
            .unwrap();
    assert!(o.problems().is_empty());
    let c = QcConfig::default().with(&o);
    assert_eq!(c.window, 30);
    assert_eq!(c.measures[0].step_per_minute, 1.5);
    assert_eq!(c.measures[0].flat_readings, 10);
    assert_eq!(c.measures[1], QcConfig::default().measures[1]);
    let bad: QcOverrides = toml::from_str("[humidity]\nspike = -1\nflat_readings = 1\n").unwrap();
    assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    let time: QcOverrides = toml::from_str("gap_factor = 0\ntime_travel = false\n").unwrap();
    let c = QcConfig::default().with(&time);
    assert!(c.gap_factor == 0.0 && !c.time_travel);
    let bad: QcOverrides = toml::from_str("gap_factor = 0.5\n").unwrap();
    assert_eq!(
        bad.problems(),
        ["qc.gap_factor = 0.5: expected 0 (off) or a number above 1"]
    );
}

/// The "database": stored rows with their flags, and the history query over them.
#[derive(Default)]
struct Stored(Vec<(String, Row)>);

impl Stored {
    fn history(&self, sensor: &str, before: DateTime<Utc>, k: u32) -> Vec<HistoryReading> {
        let mut h: Vec<&(String, Row)> = self
            .0
            .iter()
            .filter(|(_, r)| r.sensor == sensor && r.ts < before)
            .collect();
        h.sort_by_key(|(_, r)| r.ts);
        let from = h.len().saturating_sub(k as usize);
        h[from..]
            .iter()
            .map(|(f, r)| HistoryReading {
                file_id: f.clone(),
                line: r.line,
                ts: r.ts,
                values: r.values,
                flags: r.flags,
                further: Vec::new(),
            })
            .collect()
    }

    /// Loads one file: judges it against what is stored, stores it, applies its
    /// amendments.
    fn load(&mut self, file: &str, rows: Vec<Row>) {
        let mut j = Judge::new(QcConfig::default());
        let mut out = Vec::new();
        for r in rows {
            out.extend(
                j.push(r, |s, t, k| Ok::<_, ()>(self.history(s, t, k)))
                    .unwrap(),
            );
        }
        let (rest, summary) = j.finish();
        out.extend(rest);
        self.0.extend(out.into_iter().map(|r| (file.to_owned(), r)));
        self.amend(summary);
    }

    /// Adds a file's amendments to the stored readings (its own are stored first).
    fn amend(&mut self, summary: QcSummary) {
        for run in &summary.runs {
            for (_, r) in self.0.iter_mut() {
                if in_run(run, r) {
                    r.flags |= run.add();
                }
            }
        }
        for a in summary.amendments {
            let (_, r) = self
                .0
                .iter_mut()
                .find(|(f, r)| *f == a.file_id && r.line == a.line)
                .expect("the amended reading is stored");
            r.flags |= a.add;
        }
    }

    /// [`load`](Self::load) as the pipeline does with a memory of the sensors: a
    /// remembered sensor resumes from its memory and the readings stored since.
    fn load_remembering(
        &mut self,
        file: &str,
        rows: Vec<Row>,
        memory: &mut std::collections::HashMap<String, SensorMemory>,
    ) -> usize {
        let mut resumes = 0;
        let cfg = QcConfig::default();
        let mut j = Judge::new(cfg);
        let mut out = Vec::new();
        for r in rows {
            if !j.knows(&r.sensor) {
                let k = j.history_len();
                let resumed = memory.get(&r.sensor).cloned().is_some_and(|m| {
                    let since: Vec<HistoryReading> = self
                        .history(&r.sensor, r.ts, k)
                        .into_iter()
                        .filter(|h| h.ts >= m.ts)
                        .collect();
                    j.resume(&r.sensor, m, since)
                });
                if resumed {
                    resumes += 1;
                } else {
                    j.start(&r.sensor, self.history(&r.sensor, r.ts, k));
                }
            }
            out.extend(j.push(r, |_, _, _| Ok::<_, ()>(Vec::new())).unwrap());
        }
        let (rest, summary, memories) = j.finish_remembering(file);
        out.extend(rest);
        self.0.extend(out.into_iter().map(|r| (file.to_owned(), r)));
        self.amend(summary);
        memory.extend(memories);
        resumes
    }

    fn flags(&self) -> Vec<(DateTime<Utc>, String, u16)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|(_, r)| (r.ts, r.sensor.clone(), r.flags))
            .collect();
        v.sort();
        v
    }
}

/// Two sensors interleaved, one reading a minute each, with spikes, steps and a flat
/// line placed by `seed`.
fn day(seed: u64, minutes: usize) -> Vec<Row> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (k, sensor) in ["a", "b"].into_iter().enumerate() {
        let mut v = noise(minutes, seed * 10 + k as u64);
        let mut h: Vec<f64> = noise(minutes, seed * 20 + k as u64)
            .iter()
            .map(|x| 50.0 + x)
            .collect();
        for _ in 0..minutes / 60 {
            let at = rng.below(minutes as u64 - 1) as usize;
            match rng.below(3) {
                0 => v[at] += 8.0,
                1 => v[at..].iter_mut().for_each(|x| *x -= 9.0),
                _ => h[at] -= 30.0,
            }
        }
        let at = rng.below(minutes as u64 / 2) as usize;
        let end = (at + 150).min(minutes);
        let level = v[at];
        v[at..end].iter_mut().for_each(|x| *x = level);
        for i in 0..minutes {
            out.push((
                i,
                k,
                Row {
                    line: 0,
                    sensor: sensor.into(),
                    ts: start() + TimeDelta::minutes(i as i64),
                    values: [
                        Some(v[i]),
                        Some(h[i]),
                        (i % 7 != 3).then_some(1000.0 + i as f64 * 0.01),
                    ],
                    flags: 0,
                    further: Vec::new(),
                    further_flags: FurtherFlags::default(),
                },
            ));
        }
    }
    out.sort_by_key(|(i, k, _)| (*i, *k));
    out.into_iter().map(|(_, _, r)| r).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The promise: a day as one file or cut into files (in time order) gets
    /// the same flags on every reading.
    #[test]
    fn one_file_or_many_give_the_same_flags(
        seed in 1u64..1000,
        cuts in prop::collection::btree_set(1usize..1439, 0..30),
    ) {
        let rows = day(seed, 720);
        let number = |rows: &[Row]| -> Vec<Row> {
            rows.iter().enumerate().map(|(i, r)| Row { line: i as i64 + 2, ..r.clone() }).collect()
        };
        let mut whole = Stored::default();
        whole.load("whole", number(&rows));
        let mut parts = Stored::default();
        let mut remembered = Stored::default();
        let mut memory = std::collections::HashMap::new();
        let (mut from, mut files, mut resumes) = (0, 0, 0);
        let cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < rows.len()).chain([rows.len()]).collect();
        for (k, to) in cuts.into_iter().enumerate() {
            if to > from {
                parts.load(&format!("part{k}"), number(&rows[from..to]));
                resumes += remembered.load_remembering(&format!("part{k}"), number(&rows[from..to]), &mut memory);
                from = to;
                files += 1;
            }
        }
        prop_assert!(files == 1 || resumes > 0, "the memory was used");
        let a = whole.flags();
        prop_assert!(a.iter().any(|x| x.2 != 0));
        for b in [parts.flags(), remembered.flags()] {
            prop_assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                prop_assert_eq!(x, y, "{} {}: {} vs {}", x.0, x.1, Flags(x.2).describe(), Flags(y.2).describe());
            }
        }
    }
}

#[test]
fn a_profile_with_bad_qc_values_is_refused_naming_them() {
    use crate::profile::Profile;
    let path = std::path::Path::new("p.toml");
    let good = "match = [\"*.csv\"]\n[qc.pressure]\nspike = 2.5\n";
    let p = Profile::from_text("p", path, good).unwrap();
    assert_eq!(QcConfig::default().with(&p.qc).measures[2].spike, 2.5);
    let bad = "match = [\"*.csv\"]\n[qc]\nwindow = 1\n[qc.temperature]\nstep_floor = -1\n";
    let errors = Profile::from_text("p", path, bad).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(text.iter().any(|e| e.contains("qc.window = 1")), "{text:?}");
    assert!(
        text.iter()
            .any(|e| e.contains("qc.temperature.step_floor = -1")),
        "{text:?}"
    );
    let typo = "match = [\"*.csv\"]\n[qc.temperature]\nstep_per_min = 1\n";
    assert!(
        Profile::from_text("p", path, typo).is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn settings_read_qc_from_the_environment_and_name_a_bad_value() {
    use crate::config::Settings;
    let vars = |v: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(move |k| map.get(k).cloned())
    };
    let s = vars(&[
        ("QC", "off"),
        ("QC_HUMIDITY_STEP_FLOOR", "5"),
        ("QC_WINDOW", "30"),
        ("QC_HISTORY", "2d"),
        ("QC_GAP_FACTOR", "12"),
        ("QC_TIME_TRAVEL", "off"),
    ])
    .unwrap();
    assert_eq!(s.qc.gap_factor, 12.0);
    assert!(!s.qc.time_travel);
    assert!(!s.qc.enabled);
    assert_eq!(s.qc.window, 30);
    assert_eq!(s.qc.history_hours, 48);
    assert_eq!(s.qc.measures[1].step_floor, 5.0);
    assert_eq!(s.qc.measures[1].flat_readings, 240);
    let errors = vars(&[
        ("QC", "maybe"),
        ("QC_HISTORY", "forever"),
        ("QC_PRESSURE_FLAT_READINGS", "1"),
        ("QC_GAP_FACTOR", "1"),
    ])
    .unwrap_err();
    let vars: Vec<&str> = errors.iter().map(|e| e.var).collect();
    assert_eq!(
        vars,
        [
            "QC",
            "QC_HISTORY",
            "QC_GAP_FACTOR",
            "QC_PRESSURE_FLAT_READINGS"
        ]
    );
}

#[test]
fn sensors_past_the_limit_go_through_unjudged() {
    let mut j = Judge::new(QcConfig::default());
    let none = |_: &str, _, _| Ok::<_, ()>(Vec::new());
    for k in 0..MAX_SENSORS + 5 {
        let row = Row {
            line: k as i64,
            sensor: format!("s{k}"),
            ts: start(),
            values: [Some(1.0), None, None],
            flags: 0,
            further: Vec::new(),
            further_flags: FurtherFlags::default(),
        };
        let out = j.push(row, none).unwrap();
        assert_eq!(out.is_some(), k >= MAX_SENSORS, "sensor {k}");
    }
    assert_eq!(j.room(), 0);
    let (held, _) = j.finish();
    assert_eq!(held.len(), MAX_SENSORS);
}

/// A sunny morning after a still night moves far from the window's median, steadily:
/// no outlier. The same distance in one jump is one.
#[test]
fn a_steady_rise_is_no_outlier_and_a_jump_is() {
    let mut v = vec![-16.0; 80];
    for (i, x) in v.iter_mut().enumerate() {
        *x += 0.02 * (i % 3) as f64;
    }
    v.extend((1..40).map(|i| -16.0 + 0.15 * i as f64));
    let (flags, _) = judge(rows(&v));
    assert!(
        flagged(&flags, Test::Outlier).is_empty(),
        "{:?}",
        flagged(&flags, Test::Outlier)
    );
    let mut jump = vec![-16.0; 80];
    for (i, x) in jump.iter_mut().enumerate() {
        *x += 0.02 * (i % 3) as f64;
    }
    jump.push(-14.5);
    jump.push(-14.5);
    let (flags, _) = judge(rows(&jump));
    assert_eq!(flagged(&flags, Test::Outlier), vec![80]);
}
