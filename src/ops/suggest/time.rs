//! The time column's format, date order and zone, from the sampled values and names.

use crate::config::SourceTimezone;
use crate::timestamp::{
    DateOrder, FormatProbe, OrderTally, OrderVerdict, parse_offset, parse_timestamp_ordered,
};

use super::Meta;

/// Chrono formats tried when the built-in reader does not read a time column.
pub(super) const FORMATS: [&str; 19] = [
    "%m/%d/%y %I:%M:%S %p",
    "%m/%d/%y %I:%M%p",
    "%m/%d/%Y %I:%M%p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%y %I:%M %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%y %H:%M:%S",
    "%d.%m.%y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%y %H:%M",
    "%d/%m/%y %H:%M",
    // PVGIS: `20180101:0000`.
    "%Y%m%d:%H%M",
];

pub(super) enum TimeKind {
    Builtin,
    Epoch(&'static str),
    Format(&'static str),
    Parts(super::parts::Parts),
}

pub(super) struct TimeChoice {
    pub(super) cols: Vec<usize>,
    pub(super) kind: TimeKind,
    pub(super) order: Option<(DateOrder, String)>,
    pub(super) end_of_day: bool,
    pub(super) why: String,
    /// Some value carries its own offset (`Z`, `+01:00`).
    pub(super) offset_in_values: Option<String>,
}

pub(super) enum Zone {
    InValues(String),
    Header(String),
    Named(String, String),
    Metadata {
        field: String,
        index: usize,
        why: String,
    },
    /// Not stated; a hint from the header (`LST`) when there is one.
    Unknown(Option<String>),
}

/// Whether `bad` unreadable values of `total` still let a column be the time: at most
/// one in five, and at least two that read.
fn tolerable(bad: usize, total: usize) -> bool {
    bad * 5 <= total && total - bad >= 2.min(total)
}

/// The built-in reader, an epoch, or one of [`FORMATS`], whichever reads every value.
pub(super) fn infer_time(values: &[(usize, String)], named: bool) -> Option<TimeChoice> {
    let all_int = values
        .iter()
        .all(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    if all_int {
        return epoch(values, named);
    }
    if values.iter().any(|(_, v)| v.parse::<f64>().is_ok()) {
        return None;
    }
    if let Some(decided) = builtin(values) {
        return decided;
    }
    chrono_format(values)
}

/// Whole numbers of one length as Unix time in s, ms or us.
fn epoch(values: &[(usize, String)], named: bool) -> Option<TimeChoice> {
    let len = values[0].1.len();
    if !values.iter().all(|(_, v)| v.len() == len) {
        return None;
    }
    let unit = match len {
        9 | 10 => "s",
        12 | 13 => "ms",
        15 | 16 => "us",
        _ => return None,
    };
    if !named && unit == "s" && len == 9 {
        return None;
    }
    Some(TimeChoice {
        cols: Vec::new(),
        kind: TimeKind::Epoch(unit),
        order: None,
        end_of_day: false,
        why: format!(
            "Unix time in {unit}: {} on line {}",
            values[0].1, values[0].0
        ),
        offset_in_values: Some("Unix times are UTC".to_owned()),
    })
}

/// The built-in reader: `Some(choice)` when it decides (`Some(None)`: the date order
/// conflicts), `None` when the chrono formats are to be tried.
fn builtin(values: &[(usize, String)]) -> Option<Option<TimeChoice>> {
    let Some(zero) = chrono::FixedOffset::east_opt(0) else {
        return Some(None);
    };
    let utc = SourceTimezone::Fixed(zero);
    let offset = values.iter().find_map(|(l, v)| {
        let t = v.trim();
        // An offset follows a time of day: `2012-01-01` ends in `-01-01`, no offset.
        let has = t.contains(':')
            && (t.ends_with('Z')
                || t.ends_with(" UTC")
                || t.len() > 6 && t.is_char_boundary(t.len() - 6) && {
                    let tail = &t[t.len() - 6..];
                    (tail.starts_with('+') || tail.starts_with('-'))
                        && tail.as_bytes()[1..3].iter().all(u8::is_ascii_digit)
                });
        has.then(|| format!("the times carry their offset ({t:?} on line {l}): nothing to set"))
    });
    // Every value with and without 24:00, then four in five (a few bad rows must not
    // hide the format; they are named in the comment).
    let has_2400 = values.iter().any(|(_, v)| v.contains("24:00"));
    for (end_of_day, strict) in [(false, true), (true, true), (has_2400, false)] {
        if end_of_day && !has_2400 {
            continue;
        }
        let mut tally = OrderTally::default();
        let mut bad: Vec<&(usize, String)> = Vec::new();
        for value in values {
            match parse_timestamp_ordered(&value.1, utc, None, end_of_day) {
                Ok((_, e)) => tally.note(e, value.0 as u64),
                Err(_) => bad.push(value),
            }
        }
        if strict && !bad.is_empty() || !tolerable(bad.len(), values.len()) {
            continue;
        }
        let unread = bad.first().map_or(String::new(), |(l, v)| {
            format!(
                "; {} of {} values do not read ({v:?} on line {l}): fix those rows or skip them",
                bad.len(),
                values.len()
            )
        });
        let order = match tally.verdict() {
            OrderVerdict::Unneeded => None,
            OrderVerdict::Proven { order, line } => {
                let (field, no) = proof(values, line as usize, order);
                Some((
                    order,
                    format!(
                        "{}: {field} in field {no} on line {line}",
                        order_words(order)
                    ),
                ))
            }
            OrderVerdict::Ambiguous { first_line } => {
                let Some((_, v)) = values.iter().find(|(l, _)| *l as u64 == first_line) else {
                    return Some(None);
                };
                let order = if v.contains('/') {
                    DateOrder::Mdy
                } else {
                    DateOrder::Dmy
                };
                Some((
                    order,
                    format!(
                        "ASSUMED: {}; no sampled date proves the order ({v:?} on line {first_line} reads both ways): confirm",
                        order_words(order)
                    ),
                ))
            }
            OrderVerdict::Conflicting { .. } => return Some(None),
        };
        return Some(Some(TimeChoice {
            cols: Vec::new(),
            kind: TimeKind::Builtin,
            order,
            end_of_day,
            why: format!(
                "{:?} on line {} reads as a time{unread}",
                values[0].1, values[0].0
            ),
            offset_in_values: offset,
        }));
    }
    None
}

/// The first of [`FORMATS`] that reads every value.
fn chrono_format(values: &[(usize, String)]) -> Option<TimeChoice> {
    // Chrono formats; day/month formats only when the values prove their order or the
    // other order fails too (then marked as assumed).
    for f in FORMATS {
        // The agent's own reader, so a format chosen here reads in the load
        // (WeatherLink's `12:30a` included).
        let Ok(probe) = FormatProbe::new(f) else {
            continue;
        };
        if !values.iter().all(|(_, v)| probe.reads(v.trim())) {
            continue;
        }
        let order = if f.starts_with("%m/%d") {
            Some(DateOrder::Mdy)
        } else if f.starts_with("%d/%m") || f.starts_with("%d.%m") {
            Some(DateOrder::Dmy)
        } else {
            None
        };
        let order_note = order.map(|o| {
            let proven = values.iter().find_map(|(l, v)| {
                let mut it = v.split(|c: char| !c.is_ascii_digit());
                let a: u32 = it.next()?.parse().ok()?;
                let b: u32 = it.next()?.parse().ok()?;
                let (field, no) = if o == DateOrder::Mdy { (b, 2) } else { (a, 1) };
                (a != b && field > 12)
                    .then(|| format!("{}: {field} in field {no} on line {l}", order_words(o)))
            });
            proven.unwrap_or_else(|| {
                format!(
                    "ASSUMED: {} (no sampled date proves it): confirm",
                    order_words(o)
                )
            })
        });
        return Some(TimeChoice {
            cols: Vec::new(),
            kind: TimeKind::Format(f),
            order: None,
            end_of_day: false,
            why: format!(
                "{:?} on line {}{}",
                values[0].1,
                values[0].0,
                order_note.map(|n| format!("; {n}")).unwrap_or_default()
            ),
            offset_in_values: None,
        });
    }
    None
}

pub(super) fn order_words(o: DateOrder) -> &'static str {
    match o {
        DateOrder::Dmy => "day-first",
        DateOrder::Mdy => "month-first",
        DateOrder::Ymd => "year-first",
    }
}

/// The field over 12 that proves `order` in the value on `line`.
pub(super) fn proof(values: &[(usize, String)], line: usize, order: DateOrder) -> (u32, u8) {
    let v = values
        .iter()
        .find(|(l, _)| *l == line)
        .map_or("", |(_, v)| v);
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let a = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let b = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    match order {
        DateOrder::Mdy => (b, 2),
        _ => (a, 1),
    }
}

pub(super) fn infer_zone(
    time: &TimeChoice,
    time_header: &str,
    header: &[String],
    meta: Option<&Meta>,
) -> Zone {
    if let Some(why) = &time.offset_in_values {
        return Zone::InValues(why.clone());
    }
    let upper = time_header.to_ascii_uppercase();
    let at_word = |w: &str| {
        upper.match_indices(w).map(|(i, _)| i).find(|&i| {
            let before = upper[..i].chars().next_back();
            let after = upper[i + w.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        })
    };
    if let Some(i) = at_word("GMT").or_else(|| at_word("UTC")) {
        let rest = time_header[i + 3..].trim();
        if rest.starts_with('+') || rest.starts_with('-') {
            return Zone::Header(format!("the time header says {:?}", time_header.trim()));
        }
        return Zone::Named(
            "UTC".to_owned(),
            format!("the time header says {:?}", time_header.trim()),
        );
    }
    for (word, zone) in [
        ("MST", "-07:00"),
        ("EST", "-05:00"),
        ("CST", "-06:00"),
        ("PST", "-08:00"),
    ] {
        if time_header
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == word)
        {
            return Zone::Named(
                zone.to_owned(),
                format!("the time header says {word} (standard time all year)"),
            );
        }
    }
    for h in header {
        if let Some((_, z)) = h
            .split_once("Timezone :")
            .or_else(|| h.split_once("Timezone:"))
            && z.trim().parse::<chrono_tz::Tz>().is_ok()
        {
            return Zone::Named(z.trim().to_owned(), format!("the header says {h:?}"));
        }
    }
    // A field named for the zone of the times (NSRDB's `Time Zone`, `0` for UTC) first,
    // before a site's `Local Time Zone`; else the first signed offset.
    let named_zone = |f: &&super::MetaField| {
        [
            "time_zone",
            "timezone",
            "tz",
            "utc_offset",
            "zone",
            "gmt_offset",
        ]
        .contains(&f.name.as_str())
            && parse_offset(&f.value).is_some()
    };
    if let Some((_, fields)) = meta
        && let Some(f) = fields.iter().find(named_zone).or_else(|| {
            fields.iter().find(|f| {
                let v = &f.value;
                (v.starts_with('+') || v.starts_with('-') || v.starts_with("UTC"))
                    && parse_offset(v).is_some()
            })
        })
    {
        let field = if f.name.starts_with("field") {
            "utc_offset".to_owned()
        } else {
            f.name.clone()
        };
        return Zone::Metadata {
            field,
            index: f.index,
            why: format!(
                "field {} of the metadata line is an offset: {:?}",
                f.index, f.value
            ),
        };
    }
    Zone::Unknown(at_word("LST").map(|_| {
        "; the time header says LST: local standard time, its offset not given".to_owned()
    }))
}
