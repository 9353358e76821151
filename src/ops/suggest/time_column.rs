//! The time column(s): the first candidate (a date and a clock column, then columns
//! named like a time, then the others) whose values read as times; the `[time]` section.

use super::out::{Out, s};
use super::parts;
use super::shape::Columns;
use super::time::{TimeChoice, TimeKind, Zone, infer_time};
use super::{Ctx, SuggestError};

/// Whether a header names a time.
fn timey(h: &str) -> bool {
    let l = h.to_ascii_lowercase();
    l.contains("time")
        || l.contains("date")
        || l.contains("zeit")
        || l.contains("datum")
        || l == "ts"
        || l.ends_with("_at")
}

/// The time column(s) and how they read, strongest evidence first: one column of
/// dates with times of day (named like a time first); a date column with a column of
/// times of day beside it, read together; the time in parts (`Year`, `DOY`, `HHMM`…);
/// a date alone (daily rows). Fails naming what was tried, and refuses a date alone
/// when the sample repeats a date and nothing tells those rows apart (their time of
/// day is somewhere the suggestion cannot read).
pub(super) fn choose(cx: &Ctx, shape: &Columns) -> Result<TimeChoice, SuggestError> {
    let header = cx.header;
    let skip = |c: usize| Some(c) == shape.value || Some(c) == shape.entity;
    let clocks: Vec<usize> = (0..cx.width)
        .filter(|&c| !skip(c) && is_clock_column(cx, c))
        .collect();
    let order: Vec<usize> = (0..cx.width)
        .filter(|&c| timey(&header[c]))
        .chain((0..cx.width).filter(|&c| !timey(&header[c])))
        .filter(|&c| !skip(c) && !clocks.contains(&c))
        .collect();
    let mut tried = Vec::new();
    // Date columns, and how each reads alone (`01/03/24` may not).
    let mut dates: Vec<(usize, Option<TimeChoice>)> = Vec::new();
    for &c in &order {
        let values = joined(cx, &[c]);
        if values.is_empty() {
            continue;
        }
        match infer_time(&values, timey(&header[c])) {
            Some(t) if date_only(&t, &values) => dates.push((c, Some(t))),
            Some(t) => return Ok(TimeChoice { cols: vec![c], ..t }),
            None if values.iter().all(|(_, v)| parts::is_date(v)) => dates.push((c, None)),
            None if timey(&header[c]) => {
                tried.push(format!("{:?}: {:?}", header[c], values[0].1));
            }
            None => {}
        }
    }
    // A date with its time of day beside it (`Date`, `Time (HH:MM)`; `DATE`, `MST`).
    for (d, _) in &dates {
        let beside = clocks.iter().find(|&&t| t == d + 1).or(clocks.first());
        if let Some(&t) = beside {
            let values = joined(cx, &[*d, t]);
            if let Some(choice) = infer_time(&values, true) {
                return Ok(TimeChoice {
                    cols: vec![*d, t],
                    why: format!(
                        "the date in {:?} and the time of day in {:?}, read together: {}",
                        header[*d], header[t], choice.why
                    ),
                    ..choice
                });
            }
        }
    }
    if let Some(p) = parts::find(cx) {
        return Ok(TimeChoice {
            cols: p.cols(),
            order: None,
            end_of_day: p.end_of_day,
            why: p.why.clone(),
            offset_in_values: None,
            kind: TimeKind::Parts(p),
        });
    }
    if let Some((d, t)) = dates.into_iter().find_map(|(d, t)| Some((d, t?))) {
        if let Some(why) = stacked_dates(cx, d) {
            return Err(SuggestError::NoTime(why));
        }
        return Ok(TimeChoice {
            cols: vec![d],
            why: format!("{}; dates only: one reading per day", t.why),
            ..t
        });
    }
    Err(SuggestError::NoTime(if tried.is_empty() {
        "no value parses as a time".to_owned()
    } else {
        format!("tried {}", tried.join(", "))
    }))
}

/// The sampled values of `cols`, joined with a space, without empty or missing cells.
fn joined(cx: &Ctx, cols: &[usize]) -> Vec<(usize, String)> {
    cx.data
        .iter()
        .map(|l| {
            let v = cols
                .iter()
                .map(|&c| l.fields[c].trim())
                .collect::<Vec<_>>()
                .join(" ");
            (l.no, v)
        })
        .filter(|(_, v)| !v.trim().is_empty() && !cx.is_missing(v))
        .collect()
}

/// Every non-empty value of column `c` is a time of day alone (`01:00`, `24:00`).
fn is_clock_column(cx: &Ctx, c: usize) -> bool {
    let mut n = 0;
    for (_, v) in &cx.stats[c].values {
        if v.trim().is_empty() || cx.is_missing(v) {
            continue;
        }
        if !parts::is_clock(v) {
            return false;
        }
        n += 1;
    }
    n > 0
}

/// The built-in reader read `values` as dates without a time of day.
fn date_only(t: &TimeChoice, values: &[(usize, String)]) -> bool {
    matches!(t.kind, TimeKind::Builtin) && values.iter().all(|(_, v)| !v.contains(':'))
}

/// Why a date column alone cannot be the time: two consecutive sampled rows share a
/// date and no text column tells them apart.
fn stacked_dates(cx: &Ctx, d: usize) -> Option<String> {
    let rows: Vec<&str> = cx.data.iter().map(|l| l.fields[d].trim()).collect();
    let at = rows
        .windows(2)
        .position(|w| w[0] == w[1] && !w[0].is_empty())?;
    let apart = (0..cx.width).any(|c| {
        c != d && !cx.stats[c].mostly_numeric() && {
            let mut pairs: Vec<(&str, &str)> = cx
                .data
                .iter()
                .map(|l| (l.fields[d].trim(), l.fields[c].trim()))
                .collect();
            pairs.sort_unstable();
            pairs.windows(2).all(|w| w[0] != w[1])
        }
    });
    (!apart).then(|| {
        format!(
            "{:?} holds dates only, and lines {} and {} share the date {:?}: the time of \
             day of those rows is not in a column this can read; write [time] by hand",
            cx.header[d],
            cx.data[at].no,
            cx.data[at + 1].no,
            rows[at]
        )
    })
}

/// Writes the `[time]` section: the column(s), the format, the date order and the zone.
pub(super) fn write(out: &mut Out, header: &[String], time: &TimeChoice, zone: &Zone) {
    out.section("time");
    if let TimeKind::Parts(p) = &time.kind {
        out.line(&format!("# {}", time.why));
        for (k, c) in p.keys() {
            out.kv(k, &s(&header[c]), None);
        }
    } else if time.cols.len() == 1 {
        out.kv("column", &s(&header[time.cols[0]]), Some(&time.why));
    } else {
        out.kv(
            "columns",
            &format!(
                "[{}]",
                time.cols
                    .iter()
                    .map(|&c| s(&header[c]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(&time.why),
        );
    }
    match &time.kind {
        TimeKind::Builtin => out.line("# format: the built-in reader reads every sampled value"),
        TimeKind::Epoch(u) => out.kv("epoch", &s(u), Some("whole numbers of Unix time")),
        TimeKind::Format(f) => out.kv("format", &s(f), Some("every sampled value parses with it")),
        TimeKind::Parts(_) => {}
    }
    if let Some((order, why)) = &time.order {
        out.kv("order", &s(order.name()), Some(why));
    }
    if time.end_of_day {
        out.kv(
            "end_of_day",
            "true",
            Some("24:00 seen: the end of that day"),
        );
    }
    match zone {
        Zone::InValues(why) => out.line(&format!("# zone: {why}")),
        Zone::Header(why) => out.kv("zone_from_header", "true", Some(why)),
        Zone::Named(z, why) => out.kv("zone", &s(z), Some(why)),
        Zone::Metadata { field, why, .. } => out.kv("zone_from_metadata", &s(field), Some(why)),
        Zone::Unknown(hint) => out.kv(
            "zone",
            &s("UTC"),
            Some(&format!(
                "FILL IN: the zone of these local times (e.g. \"-07:00\" for standard time){}",
                hint.as_deref().unwrap_or("")
            )),
        ),
    }
}
