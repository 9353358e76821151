//! The time column(s): the first candidate (a date and a clock column, then columns
//! named like a time, then the others) whose values read as times; the `[time]` section.

use super::out::{Out, s};
use super::shape::Columns;
use super::time::{TimeChoice, TimeKind, Zone, infer_time};
use super::{Ctx, SuggestError};

/// The time column(s) and how they read; fails naming the time-like columns tried.
pub(super) fn choose(cx: &Ctx, shape: &Columns) -> Result<TimeChoice, SuggestError> {
    let header = cx.header;
    let (value_col, entity_col) = (shape.value, shape.entity);
    // Time column(s).
    let timey = |h: &str| {
        let l = h.to_ascii_lowercase();
        l.contains("time")
            || l.contains("date")
            || l.contains("zeit")
            || l.contains("datum")
            || l == "ts"
            || l.ends_with("_at")
    };
    let date_col = header
        .iter()
        .position(|h| ["date", "datum"].contains(&h.trim().to_ascii_lowercase().as_str()));
    let clock_col = header.iter().position(|h| {
        ["time", "zeit", "uhrzeit"].contains(&h.trim().to_ascii_lowercase().as_str())
    });
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    if let (Some(d), Some(t)) = (date_col, clock_col) {
        candidates.push(vec![d, t]);
    }
    for (c, h) in header.iter().enumerate() {
        if timey(h) {
            candidates.push(vec![c]);
        }
    }
    for (c, h) in header.iter().enumerate() {
        if !timey(h) {
            candidates.push(vec![c]);
        }
    }
    let mut time: Option<TimeChoice> = None;
    let mut tried = Vec::new();
    for cols in candidates {
        if Some(cols[0]) == value_col || Some(cols[0]) == entity_col {
            continue;
        }
        let values: Vec<(usize, String)> = cx
            .data
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
            .collect();
        if values.is_empty() {
            continue;
        }
        let named = cols.iter().any(|&c| timey(&header[c]));
        if let Some(t) = infer_time(&values, named) {
            time = Some(TimeChoice { cols, ..t });
            break;
        }
        if named {
            tried.push(format!("{:?}: {:?}", header[cols[0]], values[0].1));
        }
    }
    time.ok_or_else(|| {
        SuggestError::NoTime(if tried.is_empty() {
            "no value parses as a time".to_owned()
        } else {
            format!("tried {}", tried.join(", "))
        })
    })
}

/// Writes the `[time]` section: the column(s), the format, the date order and the zone.
pub(super) fn write(out: &mut Out, header: &[String], time: &TimeChoice, zone: &Zone) {
    out.section("time");
    if time.cols.len() == 1 {
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
