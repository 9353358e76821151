//! Missing-value codes: known words, and sentinel numbers far outside a column's values.

use super::{ColumnStats, fmt, min_max};

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

/// Missing-value codes of the mostly numeric columns, each with its evidence: known
/// words, and known sentinel numbers far outside the column's other values.
pub(super) fn missing_codes(
    stats: &[ColumnStats],
    header: &[String],
    rows: usize,
) -> Vec<(String, String)> {
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
