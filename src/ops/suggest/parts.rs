//! Time assembled from columns: a year, a month and a day or a day of the year, and an
//! hour (with minute and second) or an `HHMM` number. Each part needs both a name
//! saying what it is (`Year`, `DOY`, `Hour`, `HHMM`, or a zone word such as `MST` for an
//! `HHMM` clock) and values that fit it (months 1–12, hours 0–24, `HHMM` with minutes
//! under 60); an `HHMM` column whose values never reach 100 could also count minutes,
//! so it is marked as assumed.

use super::Ctx;

/// The columns of a time given in parts, and what the sample proves about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parts {
    pub(super) year: usize,
    pub(super) date: DateCols,
    pub(super) time: TimeCols,
    /// An hour of 24 or an `HHMM` of 2400 was seen: the end of that day.
    pub(super) end_of_day: bool,
    /// Evidence, with `ASSUMED` where the values do not prove a part.
    pub(super) why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DateCols {
    MonthDay(usize, usize),
    DayOfYear(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TimeCols {
    /// Only a date: the rows are daily.
    None,
    Hms(usize, Option<usize>, Option<usize>),
    Hhmm(usize),
}

impl Parts {
    /// The columns, in the order the profile reads them.
    pub(super) fn cols(&self) -> Vec<usize> {
        let mut c = vec![self.year];
        match self.date {
            DateCols::MonthDay(m, d) => c.extend([m, d]),
            DateCols::DayOfYear(d) => c.push(d),
        }
        match self.time {
            TimeCols::None => {}
            TimeCols::Hms(h, m, s) => c.extend([Some(h), m, s].into_iter().flatten()),
            TimeCols::Hhmm(t) => c.push(t),
        }
        c
    }

    /// The `[time]` keys: (key, column index).
    pub(super) fn keys(&self) -> Vec<(&'static str, usize)> {
        let mut k = vec![("year", self.year)];
        match self.date {
            DateCols::MonthDay(m, d) => k.extend([("month", m), ("day", d)]),
            DateCols::DayOfYear(d) => k.push(("day_of_year", d)),
        }
        match self.time {
            TimeCols::None => {}
            TimeCols::Hms(h, m, s) => {
                k.push(("hour", h));
                k.extend(m.map(|m| ("minute", m)));
                k.extend(s.map(|s| ("second", s)));
            }
            TimeCols::Hhmm(t) => k.push(("hhmm", t)),
        }
        k
    }
}

/// What a part is called, lowercase, without spaces, `_` or `-`.
const YEAR: [&str; 4] = ["year", "yr", "yyyy", "yy"];
const MONTH: [&str; 3] = ["month", "mon", "mo"];
const DAY: [&str; 4] = ["day", "dd", "dom", "dayofmonth"];
const DOY: [&str; 7] = [
    "doy",
    "dayofyear",
    "jday",
    "julianday",
    "yday",
    "julian",
    "jd",
];
const HOUR: [&str; 4] = ["hour", "hr", "hh", "hours"];
const MINUTE: [&str; 4] = ["minute", "min", "mi", "minutes"];
const SECOND: [&str; 4] = ["second", "sec", "ss", "seconds"];
/// An `HHMM` clock column: named for it, or for the zone its clock keeps.
const HHMM: [&str; 16] = [
    "hhmm",
    "hrmn",
    "hhmi",
    "hourminute",
    "time",
    "clock",
    "lst",
    "lt",
    "mst",
    "cst",
    "est",
    "pst",
    "utc",
    "gmt",
    "ut",
    "localtime",
];

/// The time in parts, if the header names a year and a date (month and day, or a day
/// of the year) whose values fit.
pub(super) fn find(cx: &Ctx) -> Option<Parts> {
    let named = |list: &[&str], lo: i64, hi: i64| -> Option<usize> {
        (0..cx.width).find(|&c| {
            let n: String = cx.header[c]
                .to_ascii_lowercase()
                .chars()
                .filter(|ch| ch.is_ascii_alphanumeric())
                .collect();
            list.contains(&n.as_str()) && ints(cx, c).is_some_and(|v| fits(&v, lo, hi))
        })
    };
    let year = named(&YEAR, 1800, 2200)?;
    let date = match (
        named(&MONTH, 1, 12),
        named(&DAY, 1, 31),
        named(&DOY, 1, 366),
    ) {
        (Some(m), Some(d), _) => DateCols::MonthDay(m, d),
        (_, _, Some(d)) => DateCols::DayOfYear(d),
        _ => return None,
    };
    let mut why = Vec::new();
    let mut end_of_day = false;
    let time = if let Some(h) = named(&HOUR, 0, 24) {
        end_of_day = ints(cx, h).is_some_and(|v| v.contains(&24));
        let m = named(&MINUTE, 0, 59);
        let s = m.and_then(|_| named(&SECOND, 0, 59));
        TimeCols::Hms(h, m, s)
    } else if let Some(t) = named(&HHMM, 0, 2400).filter(|&t| hhmm_fits(cx, t)) {
        let v = ints(cx, t).unwrap_or_default();
        end_of_day = v.contains(&2400);
        if !v.iter().any(|&x| x >= 100) {
            why.push(format!(
                "ASSUMED: {:?} read as HHMM; no sampled value reaches 100, so it could count minutes: confirm",
                cx.header[t]
            ));
        }
        TimeCols::Hhmm(t)
    } else {
        TimeCols::None
    };
    let mut parts = Parts {
        year,
        date,
        time,
        end_of_day,
        why: String::new(),
    };
    let names: Vec<String> = parts
        .keys()
        .iter()
        .map(|(k, c)| format!("{k} {:?}", cx.header[*c]))
        .collect();
    why.insert(
        0,
        format!(
            "the time in parts: {}; every sampled value fits",
            names.join(", ")
        ),
    );
    parts.why = why.join("; ");
    Some(parts)
}

/// The whole numbers of column `c` (missing codes and empty cells left out); `None`
/// when a value is not one, or there is none.
fn ints(cx: &Ctx, c: usize) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    for (_, v) in &cx.stats[c].values {
        let v = v.trim();
        if v.is_empty() || cx.is_missing(v) {
            continue;
        }
        let n = cx.number(v)?;
        if n.fract() != 0.0 || n.abs() > 1e6 {
            return None;
        }
        out.push(n as i64);
    }
    (!out.is_empty()).then_some(out)
}

fn fits(v: &[i64], lo: i64, hi: i64) -> bool {
    v.iter().all(|x| (lo..=hi).contains(x))
}

/// Every value is an `HHMM` time: minutes under 60, hours up to 24 (`2400` only).
fn hhmm_fits(cx: &Ctx, c: usize) -> bool {
    ints(cx, c).is_some_and(|v| v.iter().all(|&x| x % 100 < 60 && (x <= 2359 || x == 2400)))
}

/// Whether `v` is a date alone: three groups of digits split by one `/`, `-` or `.`,
/// one of them a year of four digits or all of one or two (`01/03/24`, `2024-01-03`).
pub(super) fn is_date(v: &str) -> bool {
    let v = v.trim();
    let Some(sep) = v.chars().find(|c| ['/', '-', '.'].contains(c)) else {
        return false;
    };
    let groups: Vec<&str> = v.split(sep).collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        && (groups.iter().all(|g| g.len() <= 2)
            || groups.iter().filter(|g| g.len() == 4).count() == 1
                && groups.iter().all(|g| g.len() == 4 || g.len() <= 2))
}

/// Whether `v` is a time of day alone: `7:00`, `13:45`, `24:00`, `13:45:10`, with an
/// optional `AM`/`PM`.
pub(super) fn is_clock(v: &str) -> bool {
    let v = v.trim();
    // `PM`, `pm`, or WeatherLink's one-letter `a`/`p`.
    let v = v.strip_suffix(['M', 'm']).unwrap_or(v);
    let v = v.strip_suffix(['A', 'a', 'P', 'p']).unwrap_or(v).trim_end();
    let mut it = v.split(':');
    let (Some(h), Some(m)) = (it.next(), it.next()) else {
        return false;
    };
    let num = |s: &str, max: u32| {
        (1..=2).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|x| x <= max)
    };
    let sec_ok = match it.next() {
        None => true,
        Some(s) => {
            let whole = s.split('.').next().unwrap_or("");
            whole.len() == 2 && num(whole, 59)
        }
    };
    it.next().is_none() && num(h, 24) && m.len() == 2 && num(m, 59) && sec_ok
}

#[cfg(test)]
mod tests {
    use super::super::{Sample, suggest};
    use super::is_clock;

    use crate::ops::suggest::suggested_text as run;

    #[test]
    fn clock_values_are_times_of_day_only() {
        for v in [
            "01:00", "24:00", "7:05", "13:45:10", "1:30 PM", "12:00am", "12:30a",
        ] {
            assert!(is_clock(v), "{v}");
        }
        for v in [
            "25:00",
            "1:5",
            "2024-01-01",
            "01/01/1997",
            "12",
            "a:bc",
            "10:00:00:00",
        ] {
            assert!(!is_clock(v), "{v}");
        }
    }

    #[test]
    fn date_values_are_dates_only() {
        for v in ["01/03/24", "2024-01-03", "3.1.2024", "1/1/1997"] {
            assert!(super::is_date(v), "{v}");
        }
        for v in [
            "2024-01-03 10:00",
            "1/2",
            "01/03/24/5",
            "12345/1/1",
            "a/b/c",
            "1.5",
        ] {
            assert!(!super::is_date(v), "{v}");
        }
    }

    #[test]
    fn year_day_of_year_and_hhmm_make_the_time() {
        let mut text = "Year,DOY,MST,GHI [W/m^2],Air Temperature [deg C]\n".to_owned();
        for (i, hhmm) in [2350, 2359, 0, 1, 59, 100, 101].iter().enumerate() {
            let doy = if i < 2 { 290 } else { 291 };
            text.push_str(&format!("2018,{doy},{hhmm},{i},1{i}.5\n"));
        }
        let t = run("midc_raw_20181018.txt", &text);
        assert!(t.contains("year = \"Year\""), "{t}");
        assert!(t.contains("day_of_year = \"DOY\""), "{t}");
        assert!(t.contains("hhmm = \"MST\""), "{t}");
        assert!(t.contains("zone = \"-07:00\""), "{t}");
        assert!(!t.contains("ASSUMED: \"MST\" read as HHMM"), "{t}");
    }

    #[test]
    fn hhmm_values_under_100_are_assumed() {
        let mut text = "Year,DOY,HHMM,Temp\n".to_owned();
        for m in 0..10 {
            text.push_str(&format!("2018,291,{m},1{m}.5\n"));
        }
        let t = run("x_1.csv", &text);
        assert!(t.contains("ASSUMED: \"HHMM\" read as HHMM"), "{t}");
    }

    #[test]
    fn year_month_day_hour_minute_make_the_time_and_an_empty_header_is_an_index() {
        let mut text = ",Year,Month,Day,Hour,Minute,Temperature,GHI\n".to_owned();
        for i in 0..12 {
            text.push_str(&format!(
                "{i},2017,1,1,{},{},-8.{i},0\n",
                i / 2,
                (i % 2) * 30
            ));
        }
        let t = run("psm3_2017.csv", &text);
        for key in [
            "year = \"Year\"",
            "month = \"Month\"",
            "day = \"Day\"",
            "hour = \"Hour\"",
            "minute = \"Minute\"",
            "[measures.temperature]",
        ] {
            assert!(t.contains(key), "{key}\n{t}");
        }
        // The unnamed counter is neither a sensor nor a measure.
        assert!(!t.contains("column_1"), "{t}");
    }

    #[test]
    fn a_day_of_year_without_a_year_is_declined() {
        let mut text = "DOY,HR,GHI\n".to_owned();
        for h in 1..12 {
            text.push_str(&format!("1,{h},{h}0\n"));
        }
        let sample = Sample::from_bytes(text.as_bytes(), false).unwrap();
        let e = suggest(&sample, "bird_1.csv", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no time column"), "{e}");
    }
}
