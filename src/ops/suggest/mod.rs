//! `profile suggest`: a profile inferred from a bounded sample of one export.
//!
//! [`Sample::read`] takes at most [`MAX_SAMPLE_BYTES`] and [`MAX_LINES`] lines, whatever
//! the file's size, and refuses a line over [`MAX_LINE_BYTES`]; [`suggest`] infers the
//! layout, time, sensor, measures, missing-value codes and shape from it and writes a
//! commented TOML profile, each choice with a `#` comment giving its evidence. What the
//! sample cannot prove (a zone the file does not state, an ambiguous date order) is
//! written as a valid choice marked `# FILL IN` or `# ASSUMED`, never silently.
//!
//! Layout, one file per stage in the order [`suggest`] runs them: `sample` (the bounded
//! read), `layout` (encoding, delimiter, header, preamble, decimal comma, units rows,
//! comments), `missing` (missing-value codes), `metadata` (the preamble's metadata line),
//! `shape` (long or wide), `time_column` (which column(s) hold the time) and `time`
//! (format, date order, zone; `parts` for a time in year / day / HHMM columns),
//! `sensor`, `measures` (quantities, units, ranges) and
//! `further` (the one naming rule for further measures), `evidence` (what a name says
//! about its quantity: a canonical measure needs it); `names` (glob, profile name,
//! sensor capture from the file name or a title naming it) and `out` (TOML quoting and
//! comments). This file types the columns, runs the stages and checks the
//! result.

use std::collections::BTreeMap;
use std::path::Path;

use crate::profile::Profile;

mod epw;
mod evidence;
mod further;
mod layout;
mod measures;
mod metadata;
mod missing;
mod names;
mod out;
mod parts;
#[cfg(test)]
mod rule_tests;
mod sample;
mod sensor;
mod shape;
mod time;
mod time_column;

pub use names::{derive_glob, derive_name};
use out::{Out, s};
pub use sample::{MAX_LINE_BYTES, MAX_LINES, MAX_SAMPLE_BYTES, MAX_TAIL_BYTES, Sample};
use time::infer_zone;

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
    /// No delimiter character gives columns, but runs of blanks do: a fixed-width export
    /// (weather services, radiometer networks), usually without a header line.
    #[error(
        "the fields are aligned with blanks ({fields} on each of {lines} lines from line {first}), not separated by `,` `;` tab or `|`: write the profile by hand with `[layout] delimiter = \"whitespace\"`, and, as such exports have no header line, `header = false` with the column names from the publisher's documentation (`names = [...]`); the values cannot name their columns"
    )]
    Aligned {
        fields: usize,
        lines: usize,
        first: usize,
    },
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

/// What every stage reads: the header, the data lines, their column statistics and
/// the missing-value codes.
struct Ctx<'a> {
    file_name: &'a str,
    header: &'a [String],
    /// Which header names were empty in the file (named `column_N` in `header`).
    unnamed: Vec<bool>,
    width: usize,
    data: Vec<&'a Line>,
    units_row: Option<&'a Line>,
    stats: Vec<ColumnStats>,
    rows: usize,
    missing: Vec<(String, String)>,
    numbers: layout::Numbers,
    /// Lines from places through the file beyond the sample's head (split, of the
    /// header's width): they widen the values' ranges that units are read from.
    spread: &'a [Vec<String>],
}

impl Ctx<'_> {
    fn number(&self, v: &str) -> Option<f64> {
        self.numbers.parse(v)
    }
    fn is_missing(&self, v: &str) -> bool {
        self.missing.iter().any(|(c, _)| c == v)
    }
}

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
    if epw::is_epw(sample) {
        return epw::suggest(sample, file_name, name);
    }

    let layout = layout::Layout::infer(sample)?;
    let (names, unnamed) = header_names(layout.header());
    let header = names.as_slice();
    let data = layout.data();
    let numbers = layout.numbers();
    let stats = column_stats(&data, layout.width, numbers);
    let rows = data.len();
    let missing = missing::missing_codes(&stats, header, rows);
    let cx = Ctx {
        file_name,
        header,
        unnamed,
        width: layout.width,
        data,
        units_row: layout.units_row(),
        stats,
        rows,
        missing,
        numbers,
        spread: layout.spread(),
    };
    let meta = metadata::find(layout.preamble(), &cx);
    let shape = shape::Columns::find(&cx);
    let mut time = time_column::choose(&cx, &shape)?;
    note_unnamed(&mut time, &cx);

    // Zone.
    let time_header = time
        .cols
        .iter()
        .map(|&c| header[c].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let zone = infer_zone(&time, &time_header, header, meta.as_ref());

    // Sensor.
    let used = used_columns(&time, &shape);
    let sensor_col = sensor::find_column(&cx, &used, &time.cols);

    // The TOML.
    write_head(&mut out, &cx, sample);
    layout.write(&mut out, rows);
    let no_sensor_column = sensor_col.is_none() && shape.entity.is_none();
    let sensor_from_meta = metadata::write(&mut out, &cx, meta.as_ref(), no_sensor_column, &zone);
    // Shape and measures.
    let (measures, empty_note) = if shape.is_long() {
        (shape::write_long(&mut out, &cx, &shape)?, None)
    } else {
        measures::wide(&mut out, &cx, &used, sensor_col)?
    };
    // Sensor section (never with an entity pattern).
    if shape.entity.is_none() {
        let title = names::title_sensor(file_name, layout.preamble());
        sensor::write(
            &mut out,
            &cx,
            sensor_col,
            sensor_from_meta.as_ref(),
            title.as_ref(),
            &name,
        );
    }
    time_column::write(&mut out, header, &time, &zone);
    measures::write(
        &mut out,
        &measures,
        empty_note.as_ref(),
        layout.malformed_note().as_deref(),
    );
    for n in &out.notes {
        out.text.push_str(n);
        out.text.push('\n');
    }

    checked(name, out.text)
}

/// The header's names as the agent reads them: an empty name is `column_N` (a
/// dataframe's index column); beside them, which names were empty.
fn header_names(header: &[String]) -> (Vec<String>, Vec<bool>) {
    let names = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if h.trim().is_empty() {
                format!("column_{}", i + 1)
            } else {
                h.clone()
            }
        })
        .collect();
    let unnamed = header.iter().map(|h| h.trim().is_empty()).collect();
    (names, unnamed)
}

/// Says of each time column with no name in the header what the agent calls it.
fn note_unnamed(time: &mut time::TimeChoice, cx: &Ctx) {
    for &c in &time.cols {
        if cx.unnamed[c] {
            time.why.push_str(&format!(
                "; column {} has no name in the header: the agent calls it {}",
                c + 1,
                cx.header[c]
            ));
        }
    }
}

/// The columns the time and a long shape take: none of them is a sensor or a measure.
fn used_columns(time: &time::TimeChoice, shape: &shape::Columns) -> Vec<usize> {
    time.cols
        .iter()
        .copied()
        .chain(shape.value)
        .chain(shape.entity)
        .chain(shape.metric)
        .collect()
}

/// The suggestion, once the agent's own profile check accepts its text.
fn checked(name: String, text: String) -> Result<Suggestion, SuggestError> {
    Profile::from_text(&name, Path::new(&format!("{name}.toml")), &text).map_err(|errors| {
        SuggestError::Invalid(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok(Suggestion { name, text })
}

/// What the values of each of the `width` columns of `data` look like.
fn column_stats(data: &[&Line], width: usize, numbers: layout::Numbers) -> Vec<ColumnStats> {
    let number = |s: &str| numbers.parse(s);
    // Column statistics.
    let mut stats: Vec<ColumnStats> = (0..width).map(|_| ColumnStats::default()).collect();
    for l in data {
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
    stats
}

/// The opening comments, `description`, `match` and `missing`.
fn write_head(out: &mut Out, cx: &Ctx, sample: &Sample) {
    let (file_name, missing) = (cx.file_name, &cx.missing);
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
        for (_, why) in missing {
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
}

/// The metadata line: its number and its fields.
type Meta = (usize, Vec<MetaField>);

/// One field of the metadata line.
struct MetaField {
    /// Its name: from the names line, the format's documented layout, else `fieldN`.
    name: String,
    /// Its 1-based position on the line.
    index: usize,
    value: String,
    /// Named well enough to keep in every reading (`meta_<name>`).
    keep: bool,
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

/// A name a further measure cannot take: a column of the readings table, or a
/// canonical quantity's.
fn is_reserved(k: &str) -> bool {
    crate::profile::RESERVED_COLUMNS.contains(&k)
        || crate::units::Quantity::ALL.iter().any(|q| q.name() == k)
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

/// The suggestion's text for `text` read as the file `file`: the stages' tests.
#[cfg(test)]
pub(crate) fn suggested_text(file: &str, text: &str) -> String {
    let sample = Sample::from_bytes(text.as_bytes(), false).unwrap();
    suggest(&sample, file, None).unwrap().text
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    use super::suggested_text as run;

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
        // Never wider than the file's own name.
        assert_eq!(derive_glob("2024-01-05.csv"), "2024-01-05.csv");
        assert_eq!(derive_glob("703165TY.csv"), "*TY.csv");
        assert_eq!(derive_glob("723170TYA.CSV"), "*TYA.CSV");
        assert_eq!(derive_glob("_x.csv"), "_x*.csv");
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
