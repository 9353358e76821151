//! Classing a suggestion against the careful profile.
//!
//! - `exact`: the suggestion (zone filled) stores what the expectation says;
//! - `assumed`: it differs, and every profile choice behind a difference sits on a line
//!   (or under a comment, or a section) marked `# ASSUMED` or `# FILL IN`;
//! - `declined`: `suggest` exits non-zero, or declines the column behind a difference
//!   (a marked comment naming it), or the load is refused with the same choices;
//! - `confident mistake`: a choice behind a difference carries no mark, or the result
//!   differs with the same choices, or `match` is wider than the file's own name
//!   pattern (`*.csv`) without a mark.
//!
//! Choices compared, for the aspects of the result that differ (all of them when the
//! file is refused): the time columns, order and zone; the sensor's source; for each
//! measure, its column and unit, and the missing-value codes when its count of values
//! differs; lines before and after the header and rows skipped.

use std::collections::BTreeSet;
use std::path::Path;

use toml::{Table, Value};

use super::Aspect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Exact,
    Assumed,
    Declined,
    ConfidentMistake,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Exact => "exact",
            Class::Assumed => "assumed",
            Class::Declined => "declined",
            Class::ConfidentMistake => "confident mistake",
        }
    }
}

pub struct Verdict {
    pub class: Class,
    pub detail: String,
    /// Assumed, and the readings are the careful ones but for the sensor's name: the
    /// only difference is a sensor named by a marked choice.
    pub only_the_name: bool,
    /// The station's name was a `# FILL IN` line, filled with the careful profile's.
    pub station_filled: bool,
}

impl Verdict {
    pub fn declined(detail: String) -> Self {
        Verdict {
            class: Class::Declined,
            detail,
            only_the_name: false,
            station_filled: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    Assumed,
    Declined,
}

/// One profile choice on which the suggestion and the careful profile differ.
struct Choice {
    what: String,
    careful: String,
    suggested: String,
    mark: Mark,
}

const CANONICAL: [&str; 3] = ["temperature", "humidity", "pressure"];
const TIME_KEYS: [&str; 13] = [
    "column",
    "columns",
    "year",
    "month",
    "day",
    "day_of_year",
    "hour",
    "minute",
    "second",
    "hhmm",
    "order",
    "epoch",
    "end_of_day",
];
const ZONE_KEYS: [&str; 3] = ["zone", "zone_from_metadata", "zone_from_header"];
const ROW_KEYS: [(&str, &str); 8] = [
    ("layout", "preamble"),
    ("layout", "skip_after_header"),
    ("layout", "header"),
    ("layout", "delimiter"),
    ("layout", "comment"),
    ("rows", "skip_unmeasured"),
    ("rows", "skip_malformed"),
    ("rows", "on_error"),
];

fn table<'a>(t: &'a Table, path: &str) -> Option<&'a Table> {
    path.split('.')
        .try_fold(t, |t, k| t.get(k).and_then(Value::as_table))
}

fn get(t: &Table, section: &str, key: &str) -> String {
    let v = if section.is_empty() {
        t.get(key)
    } else {
        table(t, section).and_then(|s| s.get(key))
    };
    v.map_or("-".into(), |v| v.to_string())
}

/// The zone the careful profile reads the file's local times in, as a `zone` value:
/// its `zone`, or the metadata field it names converted to an offset; `None` when
/// its times carry their own offset.
pub fn careful_zone(careful: &str, file: &Path) -> Option<String> {
    let t: Table = toml::from_str(careful).unwrap();
    let time = table(&t, "time")?;
    if let Some(z) = time.get("zone").and_then(Value::as_str) {
        return Some(z.to_owned());
    }
    let field = time.get("zone_from_metadata")?.as_str()?;
    let meta = table(&t, "metadata")?;
    let line = meta["line"].as_integer()? as usize;
    let pos = meta["fields"].as_table()?[field].as_integer()? as usize;
    let text = std::fs::read_to_string(file).ok()?;
    let value = text.lines().nth(line - 1)?.split(',').nth(pos - 1)?;
    let hours: f64 = value.trim().trim_matches('"').parse().ok()?;
    let minutes = (hours * 60.0).round() as i64;
    let sign = if minutes < 0 { '-' } else { '+' };
    Some(format!(
        "{sign}{:02}:{:02}",
        minutes.abs() / 60,
        minutes.abs() % 60
    ))
}

/// The suggestion with its `# FILL IN` zone line (if any) set to `zone`.
pub fn fill_zone(suggested: &str, zone: &Option<String>) -> String {
    let Some(zone) = zone else {
        return suggested.to_owned();
    };
    let mut done = false;
    suggested
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let is_zone = ZONE_KEYS.iter().any(|k| t.starts_with(k));
            if !done && is_zone && l.contains("# FILL IN") {
                done = true;
                format!("zone = \"{zone}\"  # FILL IN: filled with the careful profile's zone")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The suggestion with its `[sensor]` section replaced by the careful profile's when the
/// suggestion asks for the station's name (`# FILL IN` in its `[sensor]` section) and the
/// careful profile gives it as a `constant`: a name the file holds nowhere, which only the
/// person can give. Whether it filled anything is returned too, so the table says how many
/// exact suggestions needed it. A careful profile reading the sensor from a column or the
/// metadata line is never copied: missing that evidence is the suggester's own miss.
pub fn fill_station(suggested: &str, careful: &str) -> (String, bool) {
    let careful: Table = toml::from_str(careful).unwrap();
    let Some(constant) = table(&careful, "sensor")
        .and_then(|s| s.get("constant"))
        .and_then(Value::as_str)
    else {
        return (suggested.to_owned(), false);
    };
    let mut out = Vec::new();
    let (mut in_sensor, mut filled) = (false, false);
    for l in suggested.lines() {
        let t = l.trim_start();
        if t.starts_with('[') {
            in_sensor = t.starts_with("[sensor]");
        } else if in_sensor && !t.starts_with('#') && t.contains('=') && l.contains("# FILL IN") {
            out.push(format!(
                "constant = {}  # FILL IN: filled with the careful profile's name",
                Value::String(constant.to_owned())
            ));
            filled = true;
            continue;
        }
        out.push(l.to_owned());
    }
    (out.join("\n") + "\n", filled)
}

/// The column a measure table reads, written the same way for both profiles.
fn column_of(m: &Table) -> Option<String> {
    if let Some(c) = m.get("column").and_then(Value::as_str) {
        return Some(c.to_owned());
    }
    if let Some(cs) = m.get("columns").and_then(Value::as_array) {
        return cs.first().and_then(Value::as_str).map(str::to_owned);
    }
    m.get("regex")
        .and_then(Value::as_str)
        .map(|r| format!("re:{r}"))
}

/// The measure of `spec` reading `column`, if any.
fn measure_reading(spec: &Table, column: &str) -> Option<String> {
    let measures = table(spec, "measures")?;
    measures.iter().find_map(|(name, m)| {
        let m = m.as_table()?;
        (column_of(m).as_deref() == Some(column)).then(|| name.clone())
    })
}

/// Where the suggestion stores the careful profile's measure `name` (column `column`):
/// canonical measures in their columns, further ones in `extra` under the suggestion's
/// name for that column, or the column's own name when it maps none.
pub fn key_for(spec: &Table, name: &str, column: &str) -> String {
    if CANONICAL.contains(&name) {
        return name.to_owned();
    }
    measure_reading(spec, column).unwrap_or_else(|| column.to_owned())
}

/// The mark on `key` of `section` in the suggestion's text: on its line, in the comment
/// lines right above it, or on the section's header. For a key the suggestion lacks,
/// the section's marked comments; for a section it lacks, `Declined` when a marked
/// comment names `column`.
fn mark(text: &str, section: &str, key: &str, column: Option<&str>) -> Mark {
    let marked = |l: &str| l.contains("ASSUMED") || l.contains("FILL IN");
    let declines = |l: &str| l.to_lowercase().contains("declin");
    let mut current = String::new();
    let mut header_marked = false;
    let mut section_seen = section.is_empty();
    let mut above = Mark::None;
    let mut in_section_marks = Mark::None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t[1..t.find(']').unwrap_or(t.len())].to_owned();
            if current == section {
                section_seen = true;
                header_marked = marked(t);
            }
            above = Mark::None;
            continue;
        }
        if current != section {
            continue;
        }
        if t.starts_with('#') {
            if marked(t) {
                above = Mark::Assumed;
                in_section_marks = Mark::Assumed;
            }
            continue;
        }
        let is_key = t
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key {
            return if marked(t) || above == Mark::Assumed || header_marked {
                Mark::Assumed
            } else {
                Mark::None
            };
        }
        above = Mark::None;
    }
    if section_seen {
        return if header_marked {
            Mark::Assumed
        } else {
            in_section_marks
        };
    }
    match column {
        Some(c) => {
            let quoted = format!("\"{c}\"");
            let named = text
                .lines()
                .filter(|l| l.trim_start().starts_with('#') && l.contains(&quoted));
            let lines: Vec<&str> = named.collect();
            if lines.iter().any(|l| declines(l)) {
                Mark::Declined
            } else if lines.iter().any(|l| marked(l)) {
                Mark::Assumed
            } else {
                Mark::None
            }
        }
        None => Mark::None,
    }
}

fn zone_of(t: &Table) -> String {
    ZONE_KEYS
        .iter()
        .find_map(|k| table(t, "time")?.get(*k).map(|v| format!("{k}={v}")))
        .unwrap_or_else(|| "from the values".into())
}

fn sensor_of(t: &Table) -> String {
    let Some(s) = table(t, "sensor") else {
        return "-".into();
    };
    let mut out: Vec<String> = s.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(field) = s.get("metadata").and_then(Value::as_str) {
        let pos =
            table(t, "metadata").and_then(|m| m.get("fields")?.as_table()?.get(field).cloned());
        out.push(format!(
            "field {}",
            pos.map_or("?".into(), |p| p.to_string())
        ));
    }
    out.join(" ")
}

fn unit_of(m: Option<&Table>) -> String {
    let u = m.and_then(|m| m.get("unit")).and_then(Value::as_str);
    match u.map(str::to_lowercase).as_deref() {
        None => "(header)".into(),
        Some("mbar") => "hpa".into(),
        Some(u) => u.to_owned(),
    }
}

fn missing_of(t: &Table, measure: Option<&Table>) -> String {
    let mut codes: BTreeSet<String> = BTreeSet::new();
    for list in [t.get("missing"), measure.and_then(|m| m.get("missing"))] {
        for v in list.and_then(Value::as_array).into_iter().flatten() {
            codes.insert(v.as_str().unwrap_or_default().to_owned());
        }
    }
    format!("{codes:?}")
}

/// The choices behind `aspects` on which the two profiles differ.
fn choices(careful: &Table, sug: &Table, text: &str, aspects: &BTreeSet<Aspect>) -> Vec<Choice> {
    let mut out = Vec::new();
    let mut push = |what: String, c: String, s: String, mark: Mark| {
        if c != s {
            out.push(Choice {
                what,
                careful: c,
                suggested: s,
                mark,
            });
        }
    };
    if aspects.contains(&Aspect::Rows) {
        for (section, key) in ROW_KEYS {
            let m = mark(text, section, key, None);
            push(
                format!("{section}.{key}"),
                get(careful, section, key),
                get(sug, section, key),
                m,
            );
        }
    }
    if aspects.iter().any(|a| matches!(a, Aspect::Sensors(_))) {
        let key = table(sug, "sensor")
            .and_then(|s| s.keys().next().cloned())
            .unwrap_or_default();
        push(
            "sensor".into(),
            sensor_of(careful),
            sensor_of(sug),
            mark(text, "sensor", &key, None),
        );
    }
    if aspects.contains(&Aspect::Time) {
        for key in TIME_KEYS {
            push(
                format!("time.{key}"),
                get(careful, "time", key),
                get(sug, "time", key),
                mark(text, "time", key, None),
            );
        }
        let zkey = ZONE_KEYS
            .iter()
            .find(|k| table(sug, "time").is_some_and(|t| t.contains_key(**k)));
        push(
            "zone".into(),
            zone_of(careful),
            zone_of(sug),
            mark(text, "time", zkey.copied().unwrap_or("zone"), None),
        );
    }
    for aspect in aspects {
        let Aspect::Measure(name, count_differs) = aspect else {
            continue;
        };
        let cm = table(careful, &format!("measures.{name}"));
        let Some(column) = cm.and_then(column_of) else {
            continue;
        };
        let canonical = CANONICAL.contains(&name.as_str());
        if canonical {
            let section = format!("measures.{name}");
            let sm = table(sug, &section);
            let s_col = sm.and_then(column_of);
            let col_mark = mark(text, &section, "column", Some(&column));
            let s_desc = s_col.clone().unwrap_or_else(|| "none".into());
            push(format!("{name} column"), column.clone(), s_desc, col_mark);
            if s_col.as_deref() == Some(column.as_str()) {
                push(
                    format!("{name} unit"),
                    unit_of(cm),
                    unit_of(sm),
                    mark(text, &section, "unit", None),
                );
            }
        } else if let Some(other) =
            measure_reading(sug, &column).filter(|s| CANONICAL.contains(&s.as_str()))
        {
            // A further measure of the careful profile read as a canonical one.
            let section = format!("measures.{other}");
            let m = mark(text, &section, "column", Some(&column));
            push(
                format!("{column:?}"),
                format!("further measure {name}"),
                format!("read as {other}"),
                m,
            );
        }
        if !count_differs {
            continue;
        }
        let sm = measure_reading(sug, &column).and_then(|s| table(sug, &format!("measures.{s}")));
        push(
            format!("{name} missing"),
            missing_of(careful, cm),
            missing_of(sug, sm),
            mark(text, "", "missing", None),
        );
    }
    out
}

/// Whether a glob takes more than the file's own name pattern: nothing literal but
/// the extension (`*.csv`, `*`).
fn too_wide(glob: &str) -> bool {
    let stem = match glob.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains(['*', '?', '[']) => stem,
        _ => glob,
    };
    let mut inside = false;
    stem.chars().all(|c| match c {
        '[' => {
            inside = true;
            true
        }
        ']' => {
            inside = false;
            true
        }
        '*' | '?' | '.' => true,
        _ => inside,
    })
}

fn match_choice(sug: &Table, text: &str, name: &str) -> Option<Choice> {
    let globs: Vec<String> = sug
        .get("match")?
        .as_array()?
        .iter()
        .filter_map(|g| g.as_str().map(str::to_owned))
        .collect();
    let fits = globs.iter().any(|g| {
        glob::Pattern::new(&g.to_lowercase()).is_ok_and(|p| p.matches(&name.to_lowercase()))
    });
    let wide = globs.iter().any(|g| too_wide(g));
    (wide || !fits).then(|| Choice {
        what: "match".into(),
        careful: format!("the name pattern of {name}"),
        suggested: format!("{globs:?}"),
        mark: mark(text, "", "match", None),
    })
}

/// Classes one suggestion (see the module doc).
pub fn classify(
    careful: &str,
    suggested: &str,
    file_name: &str,
    refused: Option<String>,
    diffs: &[(Aspect, String)],
) -> Verdict {
    let careful: Table = toml::from_str(careful).unwrap();
    let sug: Table = toml::from_str(suggested).unwrap();
    let mut aspects: BTreeSet<Aspect> = diffs.iter().map(|(a, _)| a.clone()).collect();
    if refused.is_some() {
        aspects.extend([Aspect::Rows, Aspect::Sensors(false), Aspect::Time]);
        if let Some(ms) = table(&careful, "measures") {
            aspects.extend(ms.keys().map(|k| Aspect::Measure(k.clone(), true)));
        }
    }
    let mut found = choices(&careful, &sug, suggested, &aspects);
    found.extend(match_choice(&sug, suggested, file_name));
    let describe = |c: &Choice| format!("{}: {} (careful {})", c.what, c.suggested, c.careful);
    let unmarked: Vec<String> = found
        .iter()
        .filter(|c| c.mark == Mark::None)
        .map(describe)
        .collect();
    let result = refused.clone().unwrap_or_else(|| {
        diffs
            .first()
            .map_or("same result".into(), |(_, d)| d.clone())
    });
    if !unmarked.is_empty() {
        return Verdict {
            class: Class::ConfidentMistake,
            detail: format!("{}; {result}", unmarked.join("; ")),
            only_the_name: false,
            station_filled: false,
        };
    }
    if diffs.is_empty() && refused.is_none() {
        return Verdict {
            class: Class::Exact,
            detail: String::new(),
            only_the_name: false,
            station_filled: false,
        };
    }
    if !found.is_empty() {
        let all: Vec<String> = found.iter().map(describe).collect();
        let class = if found.iter().any(|c| c.mark == Mark::Declined) {
            Class::Declined
        } else {
            Class::Assumed
        };
        let only_the_name = class == Class::Assumed
            && refused.is_none()
            && diffs.iter().all(|(a, _)| *a == Aspect::Sensors(true));
        return Verdict {
            class,
            detail: format!("marked {}; {result}", all.join("; ")),
            only_the_name,
            station_filled: false,
        };
    }
    match refused {
        Some(r) => Verdict::declined(format!("same choices, refused at load: {r}")),
        None => Verdict {
            class: Class::ConfidentMistake,
            detail: format!("same choices, different result: {result}"),
            only_the_name: false,
            station_filled: false,
        },
    }
}

#[test]
fn a_glob_with_nothing_but_an_extension_is_too_wide() {
    assert!(too_wide("*.csv"));
    assert!(too_wide("*"));
    assert!(too_wide("*.*"));
    assert!(!too_wide("seattle-*.csv"));
    assert!(!too_wide("??????TY.csv"));
}
