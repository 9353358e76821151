//! Coarse series: a value that repeats for hours at the series' resolution is no stuck
//! sensor, and a change of one resolution step is no fault.

use chrono::TimeDelta;

use super::{Row, flagged, judge, start};
use crate::qc::{Flags, FurtherFlags, Test};

/// An hourly pressure series of `values`.
fn hourly(values: &[f64]) -> Vec<Row> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Row {
            line: i as i64 + 2,
            sensor: "s".into(),
            ts: start() + TimeDelta::hours(i as i64),
            values: [None, None, Some(*v)],
            flags: 0,
            further: Vec::new(),
            further_flags: FurtherFlags::default(),
        })
        .collect()
}

/// A coarse series that often repeats its value (pressure in whole hPa, hourly) is no
/// stuck sensor however long it stays on a value it has stayed on before: a flat line
/// must be unlikely at the rate the series repeats. A series that never repeated is
/// flagged as soon as its run is long enough.
#[test]
fn a_series_that_repeats_often_needs_a_longer_run() {
    // Runs of 12 to 30 equal hours, then one of 30: as long as the longest before.
    let mut coarse = Vec::new();
    for (k, n) in [12, 20, 30, 16, 25, 14, 30, 22, 18, 30]
        .into_iter()
        .enumerate()
    {
        coarse.extend(std::iter::repeat_n(1000.0 + (k % 3) as f64, n));
    }
    coarse.extend(std::iter::repeat_n(1003.0, 30));
    coarse.push(1002.0);
    let (flags, _) = judge(hourly(&coarse));
    let tail = coarse.len() - 31;
    assert!(
        (tail..coarse.len()).all(|i| !Flags(flags[i]).has(2, Test::Flat)),
        "a run like the others"
    );
    // The same run after a series that changes every hour is a flat line.
    let mut smooth: Vec<f64> = (0..60).map(|i| 1000.0 + (i % 7) as f64 * 0.3).collect();
    smooth.extend(std::iter::repeat_n(1003.0, 30));
    let (flags, _) = judge(hourly(&smooth));
    assert!((60..90).all(|i| Flags(flags[i]).has(2, Test::Flat)));
}

/// Pressure published in steps of 10 mbar (NSRDB PSM3 typical-year files): the series
/// hovers between two values for days, and its runs are heavy-tailed. A run of 456
/// hours after runs of up to 212 is no flat line, a change of 10 mbar is no step and
/// 780, 790, 780 is no spike; a run three times the longest before it is a flat line.
#[test]
fn a_series_in_steps_of_ten_is_judged_at_its_resolution() {
    let mut v: Vec<f64> = Vec::new();
    let runs = [
        5, 115, 46, 29, 2, 142, 2, 18, 16, 117, 6, 108, 4, 35, 212, 1, 456, 9,
    ];
    for (k, n) in runs.into_iter().enumerate() {
        v.extend(std::iter::repeat_n(
            if k % 2 == 0 { 780.0 } else { 790.0 },
            n,
        ));
    }
    let (flags, _) = judge(hourly(&v));
    let first_change = 5;
    let flagged_at: Vec<usize> = (0..v.len())
        .filter(|i| flags[*i] != 0 && *i != first_change)
        .collect();
    assert!(flagged_at.is_empty(), "flagged: {flagged_at:?}");
    assert!(flagged(&flags, Test::Spike).is_empty());
    // Three times the longest run (456) and one more is a stuck sensor.
    let stuck = v.len();
    v.push(800.0);
    v.extend(std::iter::repeat_n(790.0, 3 * 456 + 1));
    v.push(780.0);
    let (flags, _) = judge(hourly(&v));
    assert!((stuck + 1..stuck + 2 + 3 * 456).all(|i| Flags(flags[i]).has(2, Test::Flat)));
}
