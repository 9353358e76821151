//! `profile suggest`: a profile inferred from a bounded sample of one export.
//!
//! [`Sample::read`] takes at most [`MAX_SAMPLE_BYTES`] and [`MAX_LINES`] lines, whatever
//! the file's size, and refuses a line over [`MAX_LINE_BYTES`]; [`suggest`] infers the
//! layout, time, sensor, measures, missing-value codes and shape from it and writes a
//! commented TOML profile, each choice with a `#` comment giving its evidence. What the
//! sample cannot prove (a zone the file does not state, an ambiguous date order) is
//! written as a valid choice marked `# FILL IN` or `# ASSUMED`, never silently.
//!
//! Layout: `sample` (the bounded read), `time` (format, date order, zone), `names`
//! (glob, profile name, sensor capture from the file name), `out` (TOML quoting and
//! comments); this file splits the lines, types the columns, finds codes, the shape,
//! the sensor and the measures, and checks the result.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Ranges;
use crate::timestamp::parse_offset;
use crate::units::{Quantity, Unit, UnitMarker, quantity_word, split_header_unit};

use super::Profile;

mod names;
mod out;
mod sample;
mod time;

use names::file_name_sensor;
pub use names::{derive_glob, derive_name};
use out::{Out, inline_table, lit, s, toml_key};
pub use sample::{MAX_LINE_BYTES, MAX_LINES, MAX_SAMPLE_BYTES, Sample};
use time::{TimeChoice, TimeKind, Zone, infer_time, infer_zone};

/// Why no profile could be suggested. Each message names what is missing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SuggestError {
    /// No bytes, or only blank lines.
    #[error("the file is empty")]
    Empty,
    /// Reading the file failed.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// A NUL byte, or control bytes (not tab, CR, LF) in over 1 % of the sample.
    #[error("byte 0x{byte:02X} on line {line}: a binary file, not a text export")]
    Binary { byte: u8, line: usize },
    /// A line over [`MAX_LINE_BYTES`] (or no line end in the whole sample).
    #[error("line {line} is longer than {MAX_LINE_BYTES} bytes: not a CSV export this can read")]
    LineTooLong { line: usize },
    /// No delimiter gives more than one field consistently.
    #[error(
        "no delimiter (`,` `;` tab `|`) gives the same number of fields (more than one) on the data lines: one column, or not a CSV export"
    )]
    NoColumns,
    /// No column reads as a time; the text says what was tried.
    #[error("no time column: no column is named like a time and parses as one ({0})")]
    NoTime(String),
    /// No numeric column (or no mapped metric) to store.
    #[error("no measure: no numeric column besides the time and the sensor")]
    NoMeasure,
    /// The text failed [`Profile::from_text`]: a bug here, never printed as a profile.
    #[error("the suggested profile does not load (a bug in suggest): {0}")]
    Invalid(String),
}

/// A suggested profile: its TOML text (accepted by [`Profile::from_text`]) and the name
/// to save it under.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The profile name (`--name`, else [`derive_name`] of the file name).
    pub name: String,
    /// The commented TOML.
    pub text: String,
}

/// One line of the sample, decoded and split.
struct Line {
    no: usize,
    fields: Vec<String>,
}

/// What the values of one data column look like.
#[derive(Default)]
struct ColumnStats {
    values: Vec<(usize, String)>,
    numbers: Vec<(usize, f64, String)>,
    empty: usize,
    words: BTreeMap<String, usize>,
}

impl ColumnStats {
    fn non_empty(&self) -> usize {
        self.values.len() - self.empty
    }
    fn mostly_numeric(&self) -> bool {
        !self.numbers.is_empty() && self.numbers.len() * 2 >= self.non_empty()
    }
    fn distinct(&self) -> usize {
        let mut v: Vec<&str> = self.values.iter().map(|(_, s)| s.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    }
}

/// Known words for "no value".
const MISSING_WORDS: [&str; 16] = [
    "NA",
    "N/A",
    "NAN",
    "NaN",
    "nan",
    "null",
    "NULL",
    "None",
    "unavailable",
    "unknown",
    "---",
    "--",
    "M",
    "I/O Timeout",
    "No Data",
    "Bad Input",
];

/// Numbers loggers and services write for "no value".
const MISSING_NUMBERS: [f64; 7] = [-7999.0, -9999.0, -9900.0, -999.0, -99999.0, 9999.0, 99999.0];

/// Infers a profile for the file called `file_name` from `sample`; `name` overrides the
/// derived profile name. The text is checked with [`Profile::from_text`] before it is
/// returned, so a suggestion is always a profile the agent accepts.
pub fn suggest(
    sample: &Sample,
    file_name: &str,
    name: Option<&str>,
) -> Result<Suggestion, SuggestError> {
    let mut out = Out::default();
    let name = name.map_or_else(|| derive_name(file_name), str::to_owned);

    // Encoding.
    let bad = sample.lines.iter().enumerate().find_map(|(i, l)| {
        std::str::from_utf8(l)
            .err()
            .map(|e| (i + 1, l[e.valid_up_to()]))
    });
    let texts: Vec<String> = sample
        .lines
        .iter()
        .map(|l| match bad {
            None => String::from_utf8_lossy(l).into_owned(),
            Some(_) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(l)
                .0
                .into_owned(),
        })
        .collect();

    // Comment lines (annotated CSV).
    let is_comment = |t: &str| {
        t.starts_with('#')
            && t[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
    };
    let comments = texts.iter().filter(|t| is_comment(t)).count();

    let best = choose_delimiter(&texts, is_comment);
    let Some((delim, width, lines)) = best else {
        return Err(SuggestError::NoColumns);
    };
    let header_at = lines
        .iter()
        .position(|l| l.fields.len() == width)
        .unwrap_or(0);
    let header = lines[header_at].fields.clone();
    let preamble: Vec<&Line> = lines[..header_at].iter().collect();
    let body: Vec<&Line> = lines[header_at + 1..]
        .iter()
        .filter(|l| l.fields.len() == width)
        .collect();
    if body.is_empty() {
        return Err(SuggestError::NoColumns);
    }

    // Decimal comma: a `;`/tab file with values like `21,5`.
    let decimal_comma = (delim != b',').then(|| {
        body.iter().find_map(|l| {
            l.fields
                .iter()
                .find(|f| is_comma_number(f))
                .map(|f| (l.no, f.clone()))
        })
    });
    let decimal_comma = decimal_comma.flatten();
    let number = |s: &str| -> Option<f64> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let v = if decimal_comma.is_some() {
            if s.contains('.') {
                return None;
            }
            s.replace(',', ".").parse::<f64>().ok()
        } else {
            s.parse::<f64>().ok()
        };
        v.filter(|v| v.is_finite())
    };

    // Rows after the header that are not data: no number where the data has numbers.
    let numeric_cols: Vec<bool> = (0..width)
        .map(|c| {
            let half = &body[body.len() / 2..];
            let n = half
                .iter()
                .filter(|l| number(&l.fields[c]).is_some())
                .count();
            n > 0 && n * 2 >= half.iter().filter(|l| !l.fields[c].is_empty()).count()
        })
        .collect();
    let mut skip = 0;
    let mut units_row: Option<&Line> = None;
    while skip < body.len().saturating_sub(1).min(5) {
        let l = body[skip];
        let any_number = (0..width).any(|c| numeric_cols[c] && number(&l.fields[c]).is_some());
        if any_number || !numeric_cols.iter().any(|&n| n) {
            break;
        }
        if units_row.is_none() {
            units_row = Some(l);
        }
        skip += 1;
    }
    let data: Vec<&Line> = body[skip..].to_vec();
    if data.is_empty() {
        return Err(SuggestError::NoMeasure);
    }

    // Column statistics.
    let mut stats: Vec<ColumnStats> = (0..width).map(|_| ColumnStats::default()).collect();
    for l in &data {
        for (c, f) in l.fields.iter().enumerate() {
            let s = &mut stats[c];
            s.values.push((l.no, f.clone()));
            if f.is_empty() {
                s.empty += 1;
            } else if let Some(v) = number(f) {
                s.numbers.push((l.no, v, f.clone()));
            } else if s.words.len() < 64 || s.words.contains_key(f) {
                *s.words.entry(f.clone()).or_default() += 1;
            }
        }
    }

    let rows = data.len();
    let missing = missing_codes(&stats, &header, rows);
    let is_missing = |s: &str| missing.iter().any(|(c, _)| c == s);

    // Metadata line: a preamble line with fields (named by the line before it when
    // that line is all names and as wide, as Netatmo writes them).
    let meta = preamble.iter().rev().find(|l| l.fields.len() > 1).map(|l| {
        let names_line = preamble
            .iter()
            .find(|p| p.no + 1 == l.no && p.fields.len() == l.fields.len())
            .filter(|p| p.fields.iter().all(|f| number(f).is_none()));
        let fields: Vec<(String, usize, String)> = l
            .fields
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = names_line
                    .map(|p| key(&p.fields[i]))
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| format!("field{}", i + 1));
                (name, i + 1, v.clone())
            })
            .collect();
        (l.no, fields)
    });

    // Shape: long (entity or metric) or wide.
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let value_col = find(&["state", "value", "_value", "val", "reading"]);
    let entity_col = find(&["entity_id", "entity"]).filter(|&c| {
        stats[c]
            .values
            .iter()
            .all(|(_, v)| v.contains('.') && number(v).is_none())
    });
    let metric_col = find(&[
        "metric", "measure", "_field", "field", "variable", "element", "quantity",
    ])
    .filter(|&c| !stats[c].mostly_numeric());

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
        let values: Vec<(usize, String)> = data
            .iter()
            .map(|l| {
                let v = cols
                    .iter()
                    .map(|&c| l.fields[c].trim())
                    .collect::<Vec<_>>()
                    .join(" ");
                (l.no, v)
            })
            .filter(|(_, v)| !v.trim().is_empty() && !is_missing(v))
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
    let Some(time) = time else {
        return Err(SuggestError::NoTime(if tried.is_empty() {
            "no value parses as a time".to_owned()
        } else {
            format!("tried {}", tried.join(", "))
        }));
    };

    // Zone.
    let time_header = time
        .cols
        .iter()
        .map(|&c| header[c].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let zone = infer_zone(&time, &time_header, &header, meta.as_ref());

    // Sensor.
    let used: Vec<usize> = time
        .cols
        .iter()
        .copied()
        .chain(value_col)
        .chain(entity_col)
        .chain(metric_col)
        .collect();
    let sensor_names = [
        "sensor",
        "sensor_id",
        "sensorid",
        "device",
        "device_id",
        "station",
        "station_id",
        "id",
        "entity",
        "site",
        "host",
        "location",
        "room",
        "node",
        "name",
        "varname",
        "tag",
    ];
    let text_col =
        |c: usize| !used.contains(&c) && !stats[c].mostly_numeric() && stats[c].empty == 0;
    let not_unique = |c: usize| rows <= 1 || stats[c].distinct() < rows;
    let sensor_col = (0..width)
        .find(|&c| {
            sensor_names.contains(&header[c].trim().to_ascii_lowercase().as_str())
                && text_col(c)
                && not_unique(c)
        })
        .or_else(|| {
            (0..width).find(|&c| {
                text_col(c)
                    && rows >= 10
                    && stats[c].distinct() * 10 <= rows
                    && stats[c].distinct() >= 1
                    && !stats[c].values.iter().any(|(_, v)| v.len() > 64)
            })
        });

    // The TOML.
    out.line(&format!(
        "# Suggested by `sensor-ingest profile suggest` from {} line(s) of {file_name}.",
        sample.len()
    ));
    out.line("# Check every line marked FILL IN or ASSUMED, then `sensor-ingest check --profile NAME FILE`.");
    out.kv(
        "description",
        &s(&format!("Suggested from {file_name}")),
        None,
    );
    let glob = derive_glob(file_name);
    out.kv(
        "match",
        &format!("[{}]", s(&glob)),
        Some(&format!("from the file name {file_name}")),
    );
    if !missing.is_empty() {
        for (_, why) in &missing {
            out.line(&format!("# missing: {why}"));
        }
        out.kv(
            "missing",
            &format!(
                "[{}]",
                missing
                    .iter()
                    .map(|(c, _)| s(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
    }

    out.section("layout");
    if delim != b',' {
        out.kv(
            "delimiter",
            &s(&(delim as char).to_string()),
            Some(&format!(
                "{width} fields on each of {} data lines",
                data.len()
            )),
        );
    } else {
        out.line(&format!(
            "# delimiter: \",\" ({width} fields on each of {} data lines)",
            data.len()
        ));
    }
    if let Some((line, v)) = &decimal_comma {
        out.kv(
            "decimal",
            &s(","),
            Some(&format!("decimal comma: {v} on line {line}")),
        );
    }
    if let Some((line, byte)) = bad {
        out.kv(
            "encoding",
            &s("windows-1252"),
            Some(&format!("byte 0x{byte:02X} on line {line} is not UTF-8")),
        );
    } else {
        out.line("# encoding: UTF-8 (every sampled line is valid UTF-8)");
    }
    let header_line = lines[header_at].no;
    if !preamble.is_empty() {
        out.kv(
            "preamble",
            &(header_line - 1).to_string(),
            Some(&format!(
                "the header is line {header_line}: line(s) before it have another field count"
            )),
        );
    }
    if skip > 0 {
        let what = units_row
            .map(|l| {
                l.fields
                    .iter()
                    .take(4)
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        out.kv(
            "skip_after_header",
            &skip.to_string(),
            Some(&format!("no numbers where the data has them: {what}…")),
        );
    }
    if comments > 0 {
        out.kv(
            "comment",
            &s("#"),
            Some(&format!("{comments} annotation line(s) start with #")),
        );
    }

    let mut meta_used: Vec<(String, usize)> = Vec::new();
    let mut sensor_from_meta: Option<(String, String)> = None;
    if let Some((_, fields)) = &meta
        && sensor_col.is_none()
        && entity_col.is_none()
    {
        let pick = fields
            .iter()
            .find(|(n, _, v)| {
                [
                    "name",
                    "station",
                    "stationname",
                    "station_name",
                    "device",
                    "site",
                ]
                .contains(&n.as_str())
                    && !v.is_empty()
            })
            .or_else(|| {
                fields.iter().skip(1).find(|(_, _, v)| {
                    !v.is_empty()
                        && number(v).is_none()
                        && v.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c))
                })
            });
        if let Some((n, i, v)) = pick {
            let n = if n.starts_with("field") {
                "station".to_owned()
            } else {
                n.clone()
            };
            meta_used.push((n.clone(), *i));
            sensor_from_meta = Some((n, v.clone()));
        }
    }
    if let Zone::Metadata { field, index, .. } = &zone {
        meta_used.push((field.clone(), *index));
    }
    if let Some((line, fields)) = &meta
        && !meta_used.is_empty()
    {
        out.section("metadata");
        out.kv("line", &line.to_string(), Some("the metadata line"));
        out.kv(
            "fields",
            &format!(
                "{{ {} }}",
                meta_used
                    .iter()
                    .map(|(n, i)| format!("{} = {i}", toml_key(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
        let others: Vec<String> = fields
            .iter()
            .filter(|(_, i, _)| !meta_used.iter().any(|(_, u)| u == i))
            .map(|(n, i, v)| format!("{n} = {i} ({} {v:?})", looks_like(v, &number)))
            .collect();
        if !others.is_empty() {
            out.line(&format!("# other fields: {}", others.join("; ")));
        }
    }

    // Shape and measures.
    let mut measures: Vec<Measure> = Vec::new();
    let mut empty_note: Option<String> = None;
    let long = value_col.is_some() && (entity_col.is_some() || metric_col.is_some());
    if long {
        let value = value_col.unwrap_or(0);
        out.section("shape");
        out.kv("kind", &s("long"), Some("one value per row"));
        out.kv("value", &s(&header[value]), None);
        if let Some(e) = entity_col {
            let mut words: Vec<String> = Vec::new();
            let mut metrics: BTreeMap<String, String> = BTreeMap::new();
            let mut seen = 0;
            for (_, v) in &stats[e].values {
                let Some(rest) = v.strip_prefix("sensor.") else {
                    continue;
                };
                seen += 1;
                let Some((_, word)) = rest.rsplit_once('_') else {
                    continue;
                };
                if let Some(q) = quantity_word(word)
                    && !words.iter().any(|w| w == word)
                {
                    words.push(word.to_owned());
                    if word != q.name() {
                        metrics.insert(word.to_owned(), q.name().to_owned());
                    }
                }
            }
            if words.is_empty() {
                return Err(SuggestError::NoMeasure);
            }
            out.kv(
                "entity",
                &s(&header[e]),
                Some(&format!("{seen} sensor.* entities in the sample")),
            );
            let pattern = format!(
                "^sensor\\.(?P<sensor>.+)_(?P<measure>{})$",
                words
                    .iter()
                    .map(|w| regex::escape(w))
                    .collect::<Vec<_>>()
                    .join("|")
            );
            out.kv(
                "entity_pattern",
                &lit(&pattern),
                Some("entity names end in the measure"),
            );
            if !metrics.is_empty() {
                out.kv("metrics", &inline_table(&metrics), None);
            }
        } else if let Some(m) = metric_col {
            let mut metrics: BTreeMap<String, String> = BTreeMap::new();
            let mut names: Vec<String> = stats[m].values.iter().map(|(_, v)| v.clone()).collect();
            names.sort();
            names.dedup();
            for n in names.iter().take(50) {
                let (base, marker) = split_header_unit(n);
                let q = quantity_word(&base).or_else(|| quantity_word(n));
                let target = match q {
                    Some(q) if !metrics.values().any(|t| t == q.name()) => {
                        let unit = match &marker {
                            Some(UnitMarker::Known(u)) if u.quantity() == q => {
                                Some(u.name().to_owned())
                            }
                            _ => None,
                        };
                        if let Some(u) = unit
                            && u != q.canonical_unit().name()
                        {
                            measures.push(Measure {
                                name: q.name().to_owned(),
                                column: None,
                                unit: Some(u.clone()),
                                range: None,
                                why: format!("metric {n:?}: unit {u} from its name"),
                            });
                        }
                        q.name().to_owned()
                    }
                    _ => {
                        let k = key(n);
                        if k.is_empty() || metrics.values().any(|t| *t == k) || is_reserved(&k) {
                            continue;
                        }
                        k
                    }
                };
                metrics.insert(n.clone(), target);
            }
            if metrics.is_empty() {
                return Err(SuggestError::NoMeasure);
            }
            out.kv(
                "metric",
                &s(&header[m]),
                Some(&format!("{} metric names", names.len())),
            );
            out.kv("metrics", &inline_table(&metrics), None);
        }
    } else {
        let counters = [
            "record", "#", "entry_id", "id", "index", "row", "rn", "no", "nr", "line",
        ];
        for c in 0..width {
            if used.contains(&c) || Some(c) == sensor_col || !stats[c].mostly_numeric() {
                continue;
            }
            let h = header[c].trim();
            if counters.contains(&h.to_ascii_lowercase().as_str()) {
                continue;
            }
            let (base, marker) = split_header_unit(h);
            let row_unit = units_row
                .map(|l| l.fields[c].trim().to_owned())
                .filter(|u| !u.is_empty());
            // The unit may be the header's last word (`Druck mbar`).
            let (base, marker) = match (&marker, base.rsplit_once(' ')) {
                (None, Some((b, u))) if Unit::parse(u).is_some() && !b.trim().is_empty() => {
                    (b.trim().to_owned(), Unit::parse(u).map(UnitMarker::Known))
                }
                _ => (base, marker),
            };
            let q = quantity_word(&base)
                .or_else(|| other_word(&base))
                .or_else(|| match &marker {
                    Some(UnitMarker::Known(u)) => Some(u.quantity()),
                    _ => None,
                })
                .or_else(|| {
                    row_unit
                        .as_deref()
                        .and_then(Unit::parse)
                        .map(Unit::quantity)
                });
            let vals: Vec<f64> = stats[c]
                .numbers
                .iter()
                .map(|(_, v, t)| (*v, t))
                .filter(|(_, t)| !is_missing(t))
                .map(|(v, _)| v)
                .collect();
            let canonical = q.filter(|q| !measures.iter().any(|m| m.name == q.name()));
            match (canonical, &marker) {
                (_, Some(UnitMarker::Unknown(u))) => {
                    out.note(&format!(
                        "# column {h:?} left out: its unit {u:?} cannot be read"
                    ));
                }
                (Some(q), _) => {
                    let (unit, src) = match (&marker, row_unit.as_deref().and_then(Unit::parse)) {
                        (Some(UnitMarker::Known(u)), _) if u.quantity() == q => {
                            (Some(*u), "the header")
                        }
                        (Some(UnitMarker::Known(_)), _) => {
                            out.note(&format!(
                                "# column {h:?} left out: its unit is not one of {}",
                                q.name()
                            ));
                            continue;
                        }
                        (_, Some(u)) if u.quantity() == q => (Some(u), "the units row"),
                        _ => match unit_from_values(q, &vals) {
                            Some(u) => (Some(u), "the values (ASSUMED: confirm)"),
                            None => (None, ""),
                        },
                    };
                    let shown = unit.unwrap_or(q.canonical_unit());
                    let plaus = plausibility(q, shown, &vals);
                    let why = match unit {
                        Some(u) => format!(
                            "{} from {h:?}; unit {} from {src}{plaus}",
                            q.name(),
                            u.name()
                        ),
                        None => format!(
                            "{} from {h:?}; no unit marker: read as {}{plaus}",
                            q.name(),
                            shown.name()
                        ),
                    };
                    let range = min_max(&vals).and_then(|(lo, hi)| {
                        let (lo, hi) = (shown.to_canonical(lo), shown.to_canonical(hi));
                        let d = default_range(q);
                        (lo < d.0 || hi > d.1).then(|| {
                            let lo = if lo < d.0 {
                                ((lo - 10.0) / 10.0).floor() * 10.0
                            } else {
                                d.0
                            };
                            let hi = if hi > d.1 {
                                ((hi + 10.0) / 10.0).ceil() * 10.0
                            } else {
                                d.1
                            };
                            (lo, hi)
                        })
                    });
                    measures.push(Measure {
                        name: q.name().to_owned(),
                        column: Some(h.to_owned()),
                        unit: unit.map(|u| u.name().to_owned()),
                        range,
                        why,
                    });
                }
                (None, _) => {
                    let mut k = key(&base);
                    if k.is_empty() || is_reserved(&k) || measures.iter().any(|m| m.name == k) {
                        k = format!("column_{}", c + 1);
                    }
                    let unit = match &marker {
                        Some(UnitMarker::Other(u)) => Some(u.clone()),
                        _ => row_unit
                            .clone()
                            .filter(|u| u.chars().any(|c| c.is_alphanumeric()) || u.contains('%')),
                    };
                    measures.push(Measure {
                        name: k,
                        column: Some(h.to_owned()),
                        unit,
                        range: None,
                        why: format!("a further numeric column {h:?}"),
                    });
                }
            }
        }
        if measures.is_empty() {
            return Err(SuggestError::NoMeasure);
        }
        // Rows without any measured value (HOBO event rows) would hold the file back.
        let cols: Vec<usize> = measures
            .iter()
            .filter_map(|m| {
                header
                    .iter()
                    .position(|h| Some(h.trim()) == m.column.as_deref())
            })
            .collect();
        let empty_rows: Vec<usize> = data
            .iter()
            .filter(|l| {
                cols.iter()
                    .all(|&c| l.fields[c].is_empty() || is_missing(&l.fields[c]))
            })
            .map(|l| l.no)
            .collect();
        if let Some(first) = empty_rows.first() {
            empty_note = Some(format!(
                "ASSUMED: {} of {rows} sampled rows have no measured value (first: line {first}): \
                 they go to a rejects file, the others load; confirm",
                empty_rows.len()
            ));
        }
    }

    // Sensor section (never with an entity pattern).
    if entity_col.is_none() {
        out.section("sensor");
        if let Some(c) = sensor_col {
            out.kv(
                "column",
                &s(&header[c]),
                Some(&format!(
                    "{} distinct value(s) in {rows} rows",
                    stats[c].distinct()
                )),
            );
        } else if let Some((field, v)) = &sensor_from_meta {
            out.kv(
                "metadata",
                &s(field),
                Some(&format!("the metadata line names the station: {v:?}")),
            );
        } else if let Some(re) = file_name_sensor(file_name) {
            out.kv(
                "file_name",
                &lit(&re),
                Some("ASSUMED: one sensor per file, the leading token of the file name; confirm"),
            );
        } else {
            out.kv(
                "constant",
                &s(&name),
                Some("ASSUMED: one sensor per file and no column names it; confirm"),
            );
        }
    }

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
    match &zone {
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
    for m in &measures {
        out.section(&format!("measures.{}", toml_key(&m.name)));
        out.line(&format!("# {}", m.why));
        if let Some(c) = &m.column {
            out.kv("column", &s(c), None);
        }
        if let Some(u) = &m.unit {
            out.kv("unit", &s(u), None);
        }
        if let Some((lo, hi)) = m.range {
            out.kv(
                "range",
                &format!("[{}, {}]", fmt(lo), fmt(hi)),
                Some("ASSUMED: the sampled values lie outside the default range; confirm"),
            );
        }
    }
    if let Some(why) = &empty_note {
        out.section("rows");
        out.kv("on_error", &s("skip_rows"), Some(why));
    }
    for n in &out.notes {
        out.text.push_str(n);
        out.text.push('\n');
    }

    Profile::from_text(&name, Path::new(&format!("{name}.toml")), &out.text).map_err(|errors| {
        SuggestError::Invalid(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok(Suggestion {
        name,
        text: out.text,
    })
}

/// The delimiter giving the most lines at its most common field count (> 1), that
/// count, and the lines (comments and blank lines left out) split with it.
fn choose_delimiter(
    texts: &[String],
    is_comment: impl Fn(&str) -> bool,
) -> Option<(u8, usize, Vec<Line>)> {
    let mut best: Option<(u8, usize, usize, Vec<Line>)> = None;
    for delim in [b',', b';', b'\t', b'|'] {
        let lines: Vec<Line> = texts
            .iter()
            .enumerate()
            .filter(|(_, t)| !is_comment(t) && !t.trim().is_empty())
            .map(|(i, t)| Line {
                no: i + 1,
                fields: split(t, delim),
            })
            .collect();
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for l in &lines {
            *counts.entry(l.fields.len()).or_default() += 1;
        }
        let Some((&width, &n)) = counts.iter().max_by_key(|(w, n)| (**n, **w)) else {
            continue;
        };
        if width > 1 && best.as_ref().is_none_or(|b| n > b.2) {
            best = Some((delim, width, n, lines));
        }
    }
    best.map(|(d, w, _, lines)| (d, w, lines))
}

/// Missing-value codes of the mostly numeric columns, each with its evidence: known
/// words, and known sentinel numbers far outside the column's other values.
fn missing_codes(stats: &[ColumnStats], header: &[String], rows: usize) -> Vec<(String, String)> {
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut add_missing = |code: &str, why: String| {
        if !missing.iter().any(|(c, _)| c == code) {
            missing.push((code.to_owned(), why));
        }
    };
    for (c, s) in stats.iter().enumerate() {
        if !s.mostly_numeric() {
            continue;
        }
        for (word, n) in &s.words {
            if MISSING_WORDS.contains(&word.as_str()) {
                add_missing(
                    word,
                    format!("{word} in {n} of {rows} rows of column {}", header[c]),
                );
            }
        }
        for code in MISSING_NUMBERS {
            let hits: Vec<&(usize, f64, String)> =
                s.numbers.iter().filter(|(_, v, _)| *v == code).collect();
            let Some((_, _, text)) = hits.first() else {
                continue;
            };
            let others: Vec<f64> = s
                .numbers
                .iter()
                .map(|(_, v, _)| *v)
                .filter(|v| *v != code)
                .collect();
            let far = match min_max(&others) {
                None => true,
                Some((lo, hi)) => {
                    let span = (hi - lo).max(1.0);
                    code < lo - 10.0 * span || code > hi + 10.0 * span
                }
            };
            if far {
                let others = match min_max(&others) {
                    Some((lo, hi)) => format!("; the others {} to {}", fmt(lo), fmt(hi)),
                    None => String::new(),
                };
                add_missing(
                    text,
                    format!(
                        "{text} in {} of {rows} rows of column {}{others}",
                        hits.len(),
                        header[c]
                    ),
                );
            }
        }
    }
    missing
}

/// The metadata line: its number and its fields as (name, 1-based position, value).
type Meta = (usize, Vec<(String, usize, String)>);

struct Measure {
    name: String,
    column: Option<String>,
    unit: Option<String>,
    range: Option<(f64, f64)>,
    why: String,
}

/// A lowercase name of ASCII letters, digits and `_`.
fn key(v: &str) -> String {
    let mut k = String::new();
    for c in v.trim().chars() {
        if c.is_ascii_alphanumeric() {
            k.push(c.to_ascii_lowercase());
        } else if !k.is_empty() && !k.ends_with('_') {
            k.push('_');
        }
    }
    k.trim_end_matches('_').to_owned()
}

fn is_reserved(k: &str) -> bool {
    [
        "timestamp",
        "sensor_id",
        "ts",
        "temperature_k",
        "line",
        "extra",
        "temperature",
        "humidity",
        "pressure",
    ]
    .contains(&k)
}

/// Splits one line with `delim`, honouring quotes; fields trimmed.
fn split(line: &str, delim: u8) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => rec.iter().map(|f| f.trim().to_owned()).collect(),
        _ => vec![line.to_owned()],
    }
}

fn is_comma_number(f: &str) -> bool {
    let f = f.strip_prefix('-').unwrap_or(f);
    match f.split_once(',') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn min_max(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().reduce(f64::min)?;
    let hi = v.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn default_range(q: Quantity) -> (f64, f64) {
    let r = Ranges::default();
    let r = match q {
        Quantity::Temperature => r.temperature,
        Quantity::Humidity => r.humidity,
        Quantity::Pressure => r.pressure,
    };
    (r.min, r.max)
}

/// "; values 23–46: plausible degF" or a warning when they are not.
fn plausibility(q: Quantity, u: Unit, vals: &[f64]) -> String {
    let Some((lo, hi)) = min_max(vals) else {
        return String::new();
    };
    let (clo, chi) = (u.to_canonical(lo), u.to_canonical(hi));
    let d = default_range(q);
    let verdict = if clo >= d.0 && chi <= d.1 {
        format!("plausible {}", u.name())
    } else {
        format!(
            "outside the usual range when read as {}: check the unit",
            u.name()
        )
    };
    format!("; values {}–{}: {verdict}", fmt(lo), fmt(hi))
}

fn looks_like(v: &str, number: &impl Fn(&str) -> Option<f64>) -> &'static str {
    if v.is_empty() {
        "empty"
    } else if parse_offset(v).is_some()
        && (v.starts_with('+') || v.starts_with('-') || v.starts_with("UTC"))
    {
        "a signed offset"
    } else if let Some(x) = number(v) {
        if v.contains('.') && x.abs() <= 180.0 {
            "a coordinate"
        } else {
            "an id"
        }
    } else {
        "a name"
    }
}

/// Quantity words the units module does not know: German and weather-service names.
fn other_word(base: &str) -> Option<Quantity> {
    let l = base.trim().to_lowercase();
    let words: [(&str, Quantity); 9] = [
        ("temperatur", Quantity::Temperature),
        ("lufttemperatur", Quantity::Temperature),
        ("feuchte", Quantity::Humidity),
        ("luftfeuchte", Quantity::Humidity),
        ("luftfeuchtigkeit", Quantity::Humidity),
        ("druck", Quantity::Pressure),
        ("luftdruck", Quantity::Pressure),
        ("altimeter", Quantity::Pressure),
        ("altim", Quantity::Pressure),
    ];
    words.iter().find(|(w, _)| l == *w).map(|(_, q)| *q)
}

/// A pressure unit the values prove on their own: all within 25–32 (inHg) or 80–110
/// (kPa); the canonical hPa needs no unit.
fn unit_from_values(q: Quantity, vals: &[f64]) -> Option<Unit> {
    let (lo, hi) = min_max(vals)?;
    match q {
        Quantity::Pressure if lo >= 25.0 && hi <= 32.0 => Some(Unit::InchMercury),
        Quantity::Pressure if lo >= 80.0 && hi <= 110.0 => Some(Unit::Kilopascal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn run(file: &str, text: &str) -> String {
        let sample = Sample::from_bytes(text.as_bytes(), false).unwrap();
        suggest(&sample, file, None).unwrap().text
    }

    #[test]
    fn the_sample_is_bounded_in_bytes_lines_and_line_length() {
        let big = "a,b\n".repeat(100_000);
        let s = Sample::read(big.as_bytes()).unwrap();
        assert_eq!(s.len(), MAX_LINES);
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(
            Sample::from_bytes(&long, false).unwrap_err(),
            SuggestError::LineTooLong { line: 1 }
        );
        let huge = vec![b'x'; 10 * 1024 * 1024];
        assert!(matches!(
            Sample::read(&huge[..]),
            Err(SuggestError::LineTooLong { line: 1 })
        ));
        // A reader that would give far more than the cap is read only up to it.
        let endless = std::io::repeat(b'a').take(u64::MAX);
        assert!(Sample::read(endless).is_err());
    }

    #[test]
    fn hostile_samples_are_refused_with_a_reason() {
        assert_eq!(
            Sample::from_bytes(b"", false).unwrap_err(),
            SuggestError::Empty
        );
        assert_eq!(
            Sample::from_bytes(b"\n\n  \n", false).unwrap_err(),
            SuggestError::Empty
        );
        assert!(matches!(
            Sample::from_bytes(&[0u8; 100], false),
            Err(SuggestError::Binary { byte: 0, line: 1 })
        ));
        let one = Sample::from_bytes(b"value\n1\n2\n", false).unwrap();
        assert_eq!(
            suggest(&one, "x.csv", None).unwrap_err(),
            SuggestError::NoColumns
        );
        let no_time = Sample::from_bytes(b"a,b\n1,2\n3,4\n", false).unwrap();
        assert!(matches!(
            suggest(&no_time, "x.csv", None),
            Err(SuggestError::NoTime(_))
        ));
        let no_measure =
            Sample::from_bytes(b"time,note\n2024-01-01T00:00:00Z,hi\n", false).unwrap();
        assert_eq!(
            suggest(&no_measure, "x.csv", None).unwrap_err(),
            SuggestError::NoMeasure
        );
    }

    #[test]
    fn globs_and_names_come_from_the_file_name() {
        assert_eq!(derive_glob("TOA5_pond.dat"), "TOA5_*.dat");
        assert_eq!(derive_glob("KDEN_2024-01.csv"), "KDEN_*.csv");
        assert_eq!(derive_glob("history.csv"), "history*.csv");
        assert_eq!(derive_glob("2024-01-05.csv"), "*.csv");
        assert_eq!(derive_name("KDEN_2024-01.csv"), "kden");
    }

    #[test]
    fn a_toa5_file_gets_its_layout_metadata_and_codes() {
        let t = run(
            "TOA5_pond.dat",
            "\"TOA5\",\"Pond_North\",\"CR1000X\",\"4711\",\"CR1000X.Std.05.02\",\"CPU:pond.CR1X\",\"27131\",\"Hourly\"\n\
\"TIMESTAMP\",\"RECORD\",\"BattV_Min\",\"AirT_C_Avg\",\"RH\"\n\
\"TS\",\"RN\",\"Volts\",\"Deg C\",\"%\"\n\
\"\",\"\",\"Min\",\"Avg\",\"Smp\"\n\
\"2024-03-10 01:00:00\",812,12.61,4.27,81\n\
\"2024-03-10 02:00:00\",813,12.60,-7999,82\n\
\"2024-03-10 03:00:00\",814,12.58,3.98,NAN\n",
        );
        assert!(t.contains("preamble = 1"), "{t}");
        assert!(t.contains("skip_after_header = 2"), "{t}");
        assert!(
            t.contains("missing = [\"NAN\", \"-7999\"]")
                || t.contains("missing = [\"-7999\", \"NAN\"]"),
            "{t}"
        );
        assert!(t.contains("metadata = \"station\""), "{t}");
        assert!(t.contains("FILL IN"), "{t}");
        assert!(t.contains("unit = \"degC\""), "{t}");
    }

    #[test]
    fn a_few_bad_times_or_a_stray_control_byte_do_not_hide_the_format() {
        let mut text = "timestamp,temperature\n".to_owned();
        for i in 0..9 {
            text.push_str(&format!("2024-05-01T12:0{i}:00Z,21.{i}\n"));
        }
        text.push_str("yesterday,\u{1}21\n");
        let t = run("x_1.csv", &text);
        assert!(
            t.contains("1 of 10 values do not read (\"yesterday\" on line 11)"),
            "{t}"
        );
        let s = Sample::from_bytes(b"a,b\n\x01\x02\x03,\x04\n", false).unwrap_err();
        assert_eq!(s, SuggestError::Binary { byte: 1, line: 2 });
    }

    #[test]
    fn the_zone_comes_from_header_words_only() {
        let t = run(
            "lst_1.csv",
            "Time (LST),OUTCOME,Temp\n2024-01-01 00:00,x,1\n2024-01-01 01:00,x,2\n",
        );
        assert!(
            t.contains("# FILL IN") && t.contains("LST: local standard time"),
            "{t}"
        );
        let t = run(
            "utc_1.csv",
            "Time (UTC),Temp\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n",
        );
        assert!(t.contains("zone = \"UTC\"  # the time header says"), "{t}");
        let t = run(
            "mst_1.csv",
            "Date MST,Temp\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n",
        );
        assert!(t.contains("zone = \"-07:00\""), "{t}");
    }

    #[test]
    fn no_input_panics() {
        use proptest::prelude::*;
        proptest!(|(bytes in proptest::collection::vec(any::<u8>(), 0..400))| {
            if let Ok(s) = Sample::from_bytes(&bytes, false) {
                let _ = suggest(&s, "f_1.csv", None);
            }
        });
        proptest!(|(text in "[a-z0-9,;:./ \n\"-]{0,300}")| {
            if let Ok(s) = Sample::from_bytes(text.as_bytes(), false) {
                let _ = suggest(&s, "f_1.csv", None);
            }
        });
    }
}
