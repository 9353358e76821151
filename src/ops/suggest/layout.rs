//! The layout: encoding, comment lines, delimiter, header, preamble, decimal comma and
//! the units rows between the header and the data.

use std::collections::BTreeMap;

use super::out::{Out, s};
use super::{Line, Sample, SuggestError};

/// How numbers are written in this file: with a decimal point, or a decimal comma.
#[derive(Clone, Copy)]
pub(super) struct Numbers {
    decimal_comma: bool,
}

impl Numbers {
    /// The finite number `s` spells, if any.
    pub(super) fn parse(&self, s: &str) -> Option<f64> {
        // The agent's own rule, so the suggestion reads numbers as the load will.
        crate::read::parse_number(s.trim(), self.decimal_comma)
            .ok()
            .filter(|v| v.is_finite())
    }
}

/// The sample split into lines, with what was learnt about its layout.
pub(super) struct Layout {
    /// The first byte that is not UTF-8, and its line.
    bad: Option<(usize, u8)>,
    comments: usize,
    delim: u8,
    pub(super) width: usize,
    lines: Vec<Line>,
    header_at: usize,
    /// Column names joined from a two-row header (`Temp`/`Out` → `Temp Out`), whose
    /// second row is `header_at + 1`.
    names: Option<Vec<String>>,
    /// Indices in `lines` of the lines after the header with `width` fields.
    body: Vec<usize>,
    decimal_comma: Option<(usize, String)>,
    /// How many of `body` are not data (units rows).
    skip: usize,
    /// Index in `lines` of the first units row.
    units_row: Option<usize>,
    /// Lines after the header with another field count: (how many, the first's number
    /// and field count).
    malformed: Option<(usize, usize, usize)>,
    /// The header names fewer columns than the rows hold: `names` are its names and
    /// `column_N` for the rest.
    short: bool,
    /// Lines near the end of the file (the sample's tail) with another field count:
    /// (how many, the first, cut for the comment).
    tail_malformed: Option<(usize, String)>,
    /// The sample's lines from places through the file with the header's width, split:
    /// for the values' ranges only.
    spread: Vec<Vec<String>>,
}

impl Layout {
    /// Splits the sample; fails when no delimiter gives columns or no data row is left.
    pub(super) fn infer(sample: &Sample) -> Result<Layout, SuggestError> {
        let (bad, texts) = decode(sample);

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
            return Err(aligned(&texts).unwrap_or(SuggestError::NoColumns));
        };
        let decimal = decimal_comma_likely(&lines, delim);
        let mut header_at = header_line(&lines, width, decimal);
        let mut names = two_row_header(&lines, header_at, width, decimal);
        let short = names.is_none()
            && short_header(&lines, header_at, width, decimal)
                .inspect(|(at, n)| {
                    header_at = *at;
                    names = Some(n.clone());
                })
                .is_some();
        let first_body = header_at + if names.is_some() && !short { 2 } else { 1 };
        let body: Vec<usize> = (first_body..lines.len())
            .filter(|&i| lines[i].fields.len() == width)
            .collect();
        if body.is_empty() {
            return Err(aligned(&texts).unwrap_or(SuggestError::NoColumns));
        }
        let other: Vec<&Line> = lines[first_body..]
            .iter()
            .filter(|l| l.fields.len() != width)
            .collect();
        let malformed = other.first().map(|l| (other.len(), l.no, l.fields.len()));
        let tail: Vec<String> = sample
            .tail
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim().to_owned())
            .filter(|t| !t.is_empty() && split(t, delim).len() != width)
            .collect();
        let tail_malformed = tail
            .first()
            .map(|t| (tail.len(), t.chars().take(60).collect::<String>()));
        let spread: Vec<Vec<String>> = sample
            .spread
            .iter()
            .map(|l| split(String::from_utf8_lossy(l).trim(), delim))
            .filter(|f| f.len() == width)
            .collect();

        // Decimal comma: a `;`/tab file with values like `21,5`.
        let decimal_comma = (delim != b',').then(|| {
            body.iter().map(|&i| &lines[i]).find_map(|l| {
                l.fields
                    .iter()
                    .find(|f| is_comma_number(f))
                    .map(|f| (l.no, f.clone()))
            })
        });
        let decimal_comma = decimal_comma.flatten();
        let numbers = Numbers {
            decimal_comma: decimal_comma.is_some(),
        };
        let body_lines: Vec<&Line> = body.iter().map(|&i| &lines[i]).collect();
        let (skip, units_row) = units_rows(&body_lines, width, numbers);
        let units_row = units_row.map(|b| body[b]);
        if body.len() == skip {
            return Err(SuggestError::NoMeasure);
        }
        Ok(Layout {
            bad,
            comments,
            delim,
            width,
            lines,
            header_at,
            names,
            body,
            decimal_comma,
            skip,
            units_row,
            malformed,
            tail_malformed,
            spread,
            short,
        })
    }

    /// Lines from places through the file (see [`Sample::spread`]), split, with the
    /// header's width.
    pub(super) fn spread(&self) -> &[Vec<String>] {
        &self.spread
    }

    pub(super) fn numbers(&self) -> Numbers {
        Numbers {
            decimal_comma: self.decimal_comma.is_some(),
        }
    }

    pub(super) fn header(&self) -> &[String] {
        self.names
            .as_deref()
            .unwrap_or(&self.lines[self.header_at].fields)
    }

    /// The lines before the header.
    pub(super) fn preamble(&self) -> &[Line] {
        &self.lines[..self.header_at]
    }

    /// The data lines: after the header and the units rows, with `width` fields.
    pub(super) fn data(&self) -> Vec<&Line> {
        self.body[self.skip..]
            .iter()
            .map(|&i| &self.lines[i])
            .collect()
    }

    /// The `[rows]` note when lines after the header have another field count (a
    /// historian's bookkeeping rows, WinCC's `$RT_COUNT$`): the load would refuse the
    /// file for them.
    pub(super) fn malformed_note(&self) -> Option<String> {
        let head = self.malformed.map(|(n, line, fields)| {
            format!(
                "ASSUMED: {n} line(s) after the header have another field count (first: line \
                 {line}, {fields} fields, the header {}): bookkeeping rows, skipped and counted; confirm",
                self.width
            )
        });
        head.or_else(|| {
            self.tail_malformed.as_ref().map(|(n, first)| {
                format!(
                    "ASSUMED: {n} line(s) near the end of the file have another field count \
                     than the header's {} ({first:?}): a footer, skipped and counted; confirm",
                    self.width
                )
            })
        })
    }

    pub(super) fn units_row(&self) -> Option<&Line> {
        self.units_row.map(|i| &self.lines[i])
    }

    /// Writes the `[layout]` section; `rows` is the number of data lines.
    pub(super) fn write(&self, out: &mut Out, rows: usize) {
        out.section("layout");
        self.write_text(out, rows);
        self.write_header(out);
        self.write_skips(out);
    }

    /// The delimiter, a decimal comma and the encoding.
    fn write_text(&self, out: &mut Out, rows: usize) {
        let (delim, width) = (self.delim, self.width);
        if delim != b',' {
            out.kv(
                "delimiter",
                &s(&(delim as char).to_string()),
                Some(&format!("{width} fields on each of {} data lines", rows)),
            );
        } else {
            out.line(&format!(
                "# delimiter: \",\" ({width} fields on each of {} data lines)",
                rows
            ));
        }
        if let Some((line, v)) = &self.decimal_comma {
            out.kv(
                "decimal",
                &s(","),
                Some(&format!("decimal comma: {v} on line {line}")),
            );
        }
        if let Some((line, byte)) = self.bad {
            out.kv(
                "encoding",
                &s("windows-1252"),
                Some(&format!("byte 0x{byte:02X} on line {line} is not UTF-8")),
            );
        } else {
            out.line("# encoding: UTF-8 (every sampled line is valid UTF-8)");
        }
    }

    /// Where the header is, and its names where the agent cannot read them from one row.
    fn write_header(&self, out: &mut Out) {
        let width = self.width;
        let header_line = self.lines[self.header_at].no;
        if let (Some(names), true) = (&self.names, self.short) {
            out.kv(
                "preamble",
                &header_line.to_string(),
                Some(&format!(
                    "ASSUMED: the header on line {header_line} names {} of the {width} columns the rows hold: its names, then column_N for the rest; confirm",
                    self.lines[self.header_at].fields.len()
                )),
            );
            write_names(out, names, None);
        } else if let Some(names) = &self.names {
            // The agent reads one header row: both rows become preamble and the joined
            // names are given.
            let second = self.lines[self.header_at + 1].no;
            out.kv(
                "preamble",
                &second.to_string(),
                Some(&format!(
                    "a two-row header on lines {header_line} and {second}: each name is split over both"
                )),
            );
            write_names(out, names, Some("the two header rows joined"));
        } else if !self.preamble().is_empty() {
            out.kv(
                "preamble",
                &(header_line - 1).to_string(),
                Some(&format!(
                    "the header is line {header_line}: the line(s) before it are not column names"
                )),
            );
        }
    }

    /// Rows after the header and annotation lines to skip.
    fn write_skips(&self, out: &mut Out) {
        let (skip, comments) = (self.skip, self.comments);
        if skip > 0 {
            let what = self
                .units_row()
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
    }
}

/// `header = false` and the column names the agent is to use, with `why` as comment.
fn write_names(out: &mut Out, names: &[String], why: Option<&str>) {
    out.kv("header", "false", None);
    let list: Vec<String> = names.iter().map(|n| s(n)).collect();
    out.kv("names", &format!("[{}]", list.join(", ")), why);
}

/// The index of the header: the first of the leading lines with `width` fields whose
/// fields are all names (no number, one at least not empty), as a TOA5 environment line
/// of the same width (`"TOA5","Ridge_Met","CR1000X","5530",…`) is not; else the first
/// line with `width` fields.
fn header_line(lines: &[Line], width: usize, decimal_comma: bool) -> usize {
    let numbers = Numbers { decimal_comma };
    let names_only = |l: &Line| {
        l.fields.len() == width
            && l.fields.iter().any(|f| !f.is_empty())
            && l.fields.iter().all(|f| numbers.parse(f).is_none())
    };
    let has_number = |l: &Line| l.fields.iter().any(|f| numbers.parse(f).is_some());
    let first = lines
        .iter()
        .position(|l| l.fields.len() == width)
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .skip(first)
        .take(10)
        .find(|(_, l)| names_only(l))
        .map_or(first, |(i, l)| {
            // A names line and its values line before the header (NSRDB: `Source,
            // Location ID,…,Time Zone` / `NSRDB,401182,…,-7`, then `Year,Month,…`):
            // the header is the names line right before the data.
            match (lines.get(i + 1), lines.get(i + 2), lines.get(i + 3)) {
                (Some(values), Some(next), Some(data))
                    if names_only(next)
                        && has_number(values)
                        && has_number(data)
                        && values.fields.len() == l.fields.len() =>
                {
                    i + 2
                }
                _ => i,
            }
        })
}

/// A header that names fewer columns than the rows hold (a raw download re-saved with
/// unnamed extra columns): the line right before the first data line `at` is all
/// names, more than one and fewer than `width`, and `at` holds numbers. Returns its
/// index and the names, padded with `column_N` (an empty name too).
fn short_header(
    lines: &[Line],
    at: usize,
    width: usize,
    decimal_comma: bool,
) -> Option<(usize, Vec<String>)> {
    let numbers = Numbers { decimal_comma };
    let prev = lines.get(at.checked_sub(1)?)?;
    let data = lines.get(at)?;
    let n = prev.fields.len();
    let names_only = prev.fields.iter().all(|f| numbers.parse(f).is_none());
    let named = prev.fields.iter().filter(|f| !f.is_empty()).count();
    (names_only
        && n > 1
        && n < width
        && named * 2 > n
        && data.fields.iter().any(|f| numbers.parse(f).is_some()))
    .then(|| {
        let names = (0..width)
            .map(|i| match prev.fields.get(i).map(|f| f.trim()) {
                Some(f) if !f.is_empty() => f.to_owned(),
                _ => format!("column_{}", i + 1),
            })
            .collect();
        (at - 1, names)
    })
}

/// The names of a two-row header starting at `at`: the header row has empty cells
/// (names that need no second word) and the next row, as wide, is all names with none
/// empty; each name is the two cells joined with a space (WeatherLink: `""`/`Date`,
/// `Temp`/`Out`, `Hi`/`Temp`). `None` unless the joined names are all different and
/// some name of the second row alone is repeated (otherwise one row is the header and
/// the other a units or title row).
fn two_row_header(
    lines: &[Line],
    at: usize,
    width: usize,
    decimal_comma: bool,
) -> Option<Vec<String>> {
    let numbers = Numbers { decimal_comma };
    let (first, second) = (lines.get(at)?, lines.get(at + 1)?);
    let names_only =
        |l: &Line| l.fields.len() == width && l.fields.iter().all(|f| numbers.parse(f).is_none());
    if !names_only(first)
        || !names_only(second)
        || !first.fields.iter().any(|f| f.is_empty())
        || second.fields.iter().any(|f| f.is_empty())
    {
        return None;
    }
    let distinct = |v: &[String]| {
        let mut d: Vec<&String> = v.iter().collect();
        d.sort();
        d.dedup();
        d.len() == v.len()
    };
    let joined: Vec<String> = first
        .fields
        .iter()
        .zip(&second.fields)
        .map(|(a, b)| format!("{a} {b}").trim().to_owned())
        .collect();
    (distinct(&joined) && !distinct(&second.fields)).then_some(joined)
}

/// Whether a `;` or tab file writes numbers with a decimal comma (before the header is
/// known: any field of any line).
fn decimal_comma_likely(lines: &[Line], delim: u8) -> bool {
    delim != b','
        && lines
            .iter()
            .any(|l| l.fields.iter().any(|f| is_comma_number(f)))
}

/// The first byte that is not UTF-8 (1-based line, byte), and every line decoded: as
/// UTF-8, or all as Windows-1252 when one line is not UTF-8.
/// [`SuggestError::Aligned`] when runs of blanks split the most common shape of line
/// into the same number of fields (more than two) on at least two lines and nine in ten
/// of the non-empty lines from the first of them.
fn aligned(texts: &[String]) -> Option<SuggestError> {
    let counts: Vec<usize> = texts.iter().map(|t| t.split_whitespace().count()).collect();
    let mut by_width = std::collections::BTreeMap::<usize, usize>::new();
    for &n in counts.iter().filter(|&&n| n > 2) {
        *by_width.entry(n).or_default() += 1;
    }
    let (&fields, &lines) = by_width.iter().max_by_key(|(_, n)| **n)?;
    let first = counts.iter().position(|&n| n == fields)?;
    let rest = counts[first..].iter().filter(|&&n| n > 0).count();
    (lines >= 2 && lines * 10 >= rest * 9).then_some(SuggestError::Aligned {
        fields,
        lines,
        first: first + 1,
    })
}

fn decode(sample: &Sample) -> (Option<(usize, u8)>, Vec<String>) {
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
    (bad, texts)
}

/// How many of the first `body` lines are not data, and the index in `body` of the first.
fn units_rows(body: &[&Line], width: usize, numbers: Numbers) -> (usize, Option<usize>) {
    let number = |s: &str| numbers.parse(s);
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
    let mut units_row: Option<usize> = None;
    while skip < body.len().saturating_sub(1).min(5) {
        let l = body[skip];
        let any_number = (0..width).any(|c| numeric_cols[c] && number(&l.fields[c]).is_some());
        if any_number || !numeric_cols.iter().any(|&n| n) {
            break;
        }
        if units_row.is_none() {
            units_row = Some(skip);
        }
        skip += 1;
    }
    (skip, units_row)
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

#[cfg(test)]
mod tests {

    use crate::ops::suggest::suggested_text as run;

    const WEATHERLINK: &str = "\t\tTemp\tHi\tLow\tOut\tWind\tWind\t\n\
Date\tTime\tOut\tTemp\tTemp\tHum\tSpeed\tDir\tBar\n\
01/03/24\t12:30a\t34.1\t34.3\t33.9\t88\t2.0\tNW\t30.012\n\
01/03/24\t1:00a\t---\t---\t---\t---\t0.0\t---\t---\n\
01/13/24\t12:00p\t41.2\t41.5\t40.1\t71\t6.0\tW\t29.987\n";

    #[test]
    fn a_two_row_header_is_joined_and_given_as_names() {
        let t = run("vp2_1.txt", WEATHERLINK);
        assert!(
            t.contains("preamble = 2  # a two-row header on lines 1 and 2"),
            "{t}"
        );
        assert!(t.contains("header = false"), "{t}");
        assert!(
            t.contains(
                r#"names = ["Date", "Time", "Temp Out", "Hi Temp", "Low Temp", "Out Hum", "Wind Speed", "Wind Dir", "Bar"]"#
            ),
            "{t}"
        );
        // WeatherLink's one-letter am/pm reads through the agent's own format reader.
        assert!(t.contains(r#"columns = ["Date", "Time"]"#), "{t}");
        assert!(t.contains(r#"format = "%m/%d/%y %I:%M%p""#), "{t}");
        assert!(t.contains("month-first: 13 in field 2"), "{t}");
    }

    #[test]
    fn a_names_row_followed_by_a_units_row_is_no_two_row_header() {
        // The second row repeats nothing and the first has no empty cell: one header
        // and a units row.
        let t = run(
            "x_1.csv",
            "time,temp,rh\nTS,Deg C,%\n2024-01-01T00:00:00Z,1,50\n2024-01-01T01:00:00Z,2,51\n",
        );
        assert!(!t.contains("header = false"), "{t}");
        assert!(t.contains("skip_after_header = 1"), "{t}");
        // A units row with empty cells (Campbell's processing row) is not joined either.
        let t = run(
            "x_1.csv",
            "time,temp,rh\n,Avg,Smp\n2024-01-01T00:00:00Z,1,50\n2024-01-01T01:00:00Z,2,51\n",
        );
        assert!(!t.contains("header = false"), "{t}");
    }
}
