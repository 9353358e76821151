//! Further measures (`[qc.<name>]`): the four tests on a column kept in `extra`, with
//! their own flags, across file boundaries (history replayed, spikes and flat runs
//! amended on earlier files); none without thresholds.

use super::*;

/// Battery voltage thresholds for 10-minute readings.
fn battery() -> QcOverrides {
    toml::from_str(
        "[battery]\nstep_per_minute = 0.01\nstep_floor = 0.3\nstep_max = 1.0\nspike = 0.3\n\
         spike_tolerance = 0.2\nflat_readings = 36\nflat_minutes = 360\noutlier_z = 6\n\
         outlier_mad_floor = 0.005\n",
    )
    .unwrap()
}

const SPIKE: usize = 200;
const FLAT: std::ops::Range<usize> = 400..450;
const STEP: usize = 600;
const OUTLIER: usize = 800;

/// A week of battery voltage at 10 minutes (with temperature beside it), faults
/// injected: a spike, a 50-reading flat run, a level shift, an outlier.
fn week() -> Vec<Row> {
    let mut rng = Rng::new(29);
    let mut v: Vec<f64> = (0..1008)
        .map(|i| {
            let day = (i as f64 / 144.0 * std::f64::consts::TAU).sin();
            ((12.6 + 0.03 * day + 0.01 * rng.normal()) * 1000.0).round() / 1000.0
        })
        .collect();
    v[SPIKE] += 1.0;
    for i in FLAT {
        v[i] = v[FLAT.start];
    }
    for x in &mut v[STEP..] {
        *x += 1.5;
    }
    v[OUTLIER] += 0.28;
    v.into_iter()
        .enumerate()
        .map(|(i, b)| Row {
            line: i as i64 + 2,
            sensor: "s".into(),
            ts: start() + TimeDelta::minutes(10 * i as i64),
            values: [Some(20.0 + (i % 5) as f64 * 0.1), None, None],
            flags: 0,
            further: vec![("battery", b), ("wind_speed", 3.0)],
            further_flags: FurtherFlags::default(),
        })
        .collect()
}

/// Stored readings with their further flags, as the sinks keep them.
#[derive(Default)]
struct Db(Vec<(String, Row)>);

impl Db {
    fn history(
        &self,
        cfg: &QcConfig,
        sensor: &str,
        before: DateTime<Utc>,
        k: u32,
    ) -> Vec<HistoryReading> {
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
                further: r
                    .further(&cfg.further)
                    .into_iter()
                    .zip(r.further_flags.bits.iter().chain(std::iter::repeat(&None)))
                    .map(|(v, b)| (v, b.unwrap_or(0)))
                    .collect(),
            })
            .collect()
    }

    fn load(&mut self, cfg: &QcConfig, file: &str, rows: Vec<Row>) -> QcSummary {
        let mut j = Judge::new(cfg.clone());
        let mut out = Vec::new();
        for r in rows {
            out.extend(
                j.push(r, |s, t, k| Ok::<_, ()>(self.history(cfg, s, t, k)))
                    .unwrap(),
            );
        }
        let (rest, summary) = j.finish();
        out.extend(rest);
        self.0.extend(out.into_iter().map(|r| (file.to_owned(), r)));
        let k = |name: &str| cfg.further.iter().position(|f| f.name == name).unwrap();
        for run in &summary.further_runs {
            for (_, r) in self.0.iter_mut() {
                let value = r.further(&cfg.further)[k(&run.measure)];
                if r.sensor == run.sensor
                    && r.ts >= run.from
                    && r.ts < run.to
                    && value == Some(run.value)
                {
                    let bits = r.further_flags.bits[k(&run.measure)].get_or_insert(0);
                    *bits |= further_bit(Test::Flat);
                }
            }
        }
        for a in &summary.further_amendments {
            let (_, r) = self
                .0
                .iter_mut()
                .find(|(f, r)| *f == a.file_id && r.line == a.line)
                .expect("the amended reading is stored");
            *r.further_flags.bits[k(&a.measure)].get_or_insert(0) |= a.add;
        }
        summary
    }

    /// The battery's flags by reading (in time order).
    fn battery(&self) -> Vec<u8> {
        let mut rows: Vec<&Row> = self.0.iter().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| r.ts);
        rows.iter()
            .map(|r| r.further_flags.bits.first().copied().flatten().unwrap_or(0))
            .collect()
    }
}

fn with(test: Test, flags: &[u8]) -> Vec<usize> {
    (0..flags.len())
        .filter(|i| flags[*i] & further_bit(test) != 0)
        .collect()
}

/// Loads the week in files of `per_file` readings (the fault readings fall on file
/// boundaries for several sizes) and checks every fault reading and the clean ones.
fn check_faults(per_file: usize) {
    let cfg = QcConfig::default().with(&battery());
    assert_eq!(
        cfg.further.len(),
        1,
        "battery only: wind_speed has no thresholds"
    );
    let mut db = Db::default();
    for (n, file) in week().chunks(per_file).enumerate() {
        let rows = file.iter().enumerate().map(|(i, r)| Row {
            line: i as i64 + 2,
            ..r.clone()
        });
        db.load(&cfg, &format!("f{n}"), rows.collect());
    }
    let flags = db.battery();
    assert_eq!(with(Test::Spike, &flags), [SPIKE], "files of {per_file}");
    assert_eq!(
        with(Test::Flat, &flags),
        FLAT.collect::<Vec<_>>(),
        "files of {per_file}"
    );
    assert!(
        flags[STEP] & further_bit(Test::Step) != 0,
        "files of {per_file}"
    );
    assert!(
        flags[OUTLIER] & further_bit(Test::Outlier) != 0,
        "files of {per_file}"
    );
    let faults: Vec<usize> = [SPIKE, STEP, OUTLIER].into_iter().chain(FLAT).collect();
    let clean = (0..flags.len())
        .filter(|i| !faults.contains(i) && flags[*i] != 0)
        .count();
    assert!(
        clean * 200 <= flags.len(),
        "{clean} clean readings flagged, files of {per_file}"
    );
}

#[test]
fn every_fault_of_a_further_measure_is_flagged_whatever_the_files() {
    for per_file in [1008, 144, 50, 7] {
        check_faults(per_file);
    }
}

#[test]
fn a_further_measure_counts_and_amends_under_its_name() {
    let cfg = QcConfig::default().with(&battery());
    let mut db = Db::default();
    let rows = week();
    let first = db.load(&cfg, "a", rows[..SPIKE + 1].to_vec());
    let second = db.load(&cfg, "b", rows[SPIKE + 1..].to_vec());
    assert_eq!(
        first.of("battery")[Test::Spike as usize],
        0,
        "decided by the next file"
    );
    assert_eq!(second.further_amendments.len(), 1);
    assert_eq!(second.further_amendments[0].measure, "battery");
    assert_eq!(second.further_amendments[0].file_id, "a");
    // From the reading that made the run a flat line to its end; the earlier ones
    // by the run's amendment.
    let flat_here = second.of("battery")[Test::Flat as usize];
    assert!((1..FLAT.len() as u64).contains(&flat_here), "{flat_here}");
    assert_eq!(second.further_runs.len(), 1);
    assert_eq!(second.further_runs[0].measure, "battery");
    assert!(second.amends());
    assert_eq!(second.of("wind_speed"), [0; 6], "no thresholds, no counts");
}

#[test]
fn without_thresholds_a_further_measure_is_not_judged() {
    let cfg = QcConfig::default();
    let mut db = Db::default();
    let summary = db.load(&cfg, "a", week());
    assert!(summary.further_counts.is_empty() && summary.further_runs.is_empty());
    assert!(
        db.0.iter().all(|(_, r)| r.further_flags.bits.is_empty()),
        "nothing kept per row"
    );
}

#[test]
fn further_tables_are_read_checked_and_refused_when_incomplete() {
    let o = battery();
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    assert_eq!(o.further.keys().collect::<Vec<_>>(), ["battery"]);
    let part: QcOverrides = toml::from_str("window = 30\n[wind_speed]\nspike = 5\n").unwrap();
    assert_eq!(part.window, Some(30));
    let problems = part.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("qc.wind_speed: missing step_per_minute, step_floor"));
    assert!(
        QcConfig::default().with(&part).further.is_empty(),
        "never half-configured"
    );
    let typo = toml::from_str::<QcOverrides>("windw = 30\n")
        .unwrap_err()
        .to_string();
    assert!(
        typo.contains("qc.windw: expected one of enabled, window"),
        "{typo}"
    );
    let bad = toml::from_str::<QcOverrides>("[battery]\nspikes = 1\n")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("spikes"), "{bad}");
}

#[test]
fn a_profile_checks_only_further_measures_it_reads() {
    let read = |extra: &str| {
        let text = format!(
            "match = [\"*.csv\"]\n[sensor]\ncolumn = \"id\"\n[time]\ncolumn = \"t\"\n\
             [measures.temperature]\ncolumn = \"temp\"\nunit = \"degC\"\n\
             [measures.battery]\ncolumn = \"batt\"\n{extra}"
        );
        crate::profile::Profile::from_text("p", std::path::Path::new("p.toml"), &text)
    };
    let table = |name: &str| {
        format!(
            "[qc.{name}]\nstep_per_minute = 0.01\nstep_floor = 0.3\nstep_max = 1.0\n\
             spike = 0.3\nspike_tolerance = 0.2\nflat_readings = 36\nflat_minutes = 360\n\
             outlier_z = 6\noutlier_mad_floor = 0.005\n"
        )
    };
    let ok = read(&table("battery")).expect("battery is read");
    let cfg = QcConfig::default().with(&ok.qc);
    assert_eq!(cfg.further.len(), 1);
    assert_eq!(cfg.further[0].name, "battery");
    let errors = read(&table("wind_speed")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "qc");
    assert!(
        errors[0]
            .message
            .contains("[qc.wind_speed]: the profile reads no further measure named wind_speed"),
        "{}",
        errors[0].message
    );
    let partial = read("[qc.battery]\nspike = 1\n").unwrap_err();
    assert!(
        partial[0].message.contains("qc.battery: missing"),
        "{partial:?}"
    );
}
