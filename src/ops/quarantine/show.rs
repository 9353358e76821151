//! `quarantine show`: one entry's report, the offending lines quoted from the file,
//! advice per rule, and the reports of earlier attempts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read};

use serde::Serialize;

use super::{ATTEMPTS_DIR, Entry, QuarantineError, REPORT_SUFFIX, fit, io_err};
use crate::report::QuarantineReport;
use crate::rule::Rule;
use crate::sink::LedgerRecord;
use crate::source::QuarantineArea;

/// Everything `quarantine show` prints about one entry.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub entry: Entry,
    /// The file's header line (line 1), when the file is still there.
    pub header: Option<String>,
    /// The physical lines the report points at, by line number.
    pub lines: BTreeMap<u64, String>,
    /// Per rule met in the report: how many problems, and what to do.
    pub advice: Vec<Advice>,
    /// Every ledger row of this content or name, oldest first (empty without a ledger).
    pub history: Vec<LedgerRecord>,
    /// Reports of earlier attempts under this name, oldest first, relative to the
    /// quarantine folder.
    pub earlier_reports: Vec<String>,
}

/// What to do about one rule.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub rule: Rule,
    pub count: u64,
    pub advice: &'static str,
}

/// Longest quoted line, in characters.
const MAX_QUOTED_CHARS: usize = 200;

/// Gathers the details of `entry`: the quoted lines from the file, advice per rule,
/// and earlier reports. `history` is left empty for the caller to fill from the ledger.
pub fn details(area: &dyn QuarantineArea, entry: Entry) -> Result<Details, QuarantineError> {
    let mut wanted: BTreeSet<u64> = BTreeSet::new();
    let mut counts: BTreeMap<Rule, u64> = BTreeMap::new();
    if let Some(r) = &entry.report {
        for e in &r.errors {
            if let Some(l) = e.line {
                wanted.insert(l);
            }
            *counts.entry(e.rule).or_default() += 1;
        }
    }
    wanted.insert(1);
    let mut lines = if entry.has_file {
        let open = |wanted: &BTreeSet<u64>| {
            area.open(&entry.name)
                .and_then(|r| quote_lines(r, wanted))
                .map_err(io_err(area, &entry.name))
        };
        match entry.report.as_ref().and_then(|r| r.copy_lines) {
            // A followed file's increment: its lines are found in the copy.
            Some(copy) => {
                let in_copy = wanted.iter().filter_map(|l| copy.in_copy(*l)).collect();
                open(&in_copy)?
                    .into_iter()
                    .map(|(l, text)| (copy.in_file(l), text))
                    .collect()
            }
            None => open(&wanted)?,
        }
    } else {
        BTreeMap::new()
    };
    let header = lines.remove(&1);
    if let Some(r) = &entry.report
        && r.errors.iter().any(|e| e.line == Some(1))
        && let Some(h) = &header
    {
        lines.insert(1, h.clone());
    }
    let advice = counts
        .into_iter()
        .map(|(rule, count)| Advice {
            advice: rule.advice(),
            rule,
            count,
        })
        .collect();
    let earlier_reports = earlier_reports(area, &entry.original_name)?;
    Ok(Details {
        entry,
        header,
        lines,
        advice,
        history: Vec::new(),
        earlier_reports,
    })
}

/// Bytes kept of one quoted line: enough for any real CSV row, and a file whose "line"
/// is a gigabyte-long field is not read into memory.
const MAX_QUOTED_BYTES: usize = 4096;

/// The physical lines numbered in `wanted` (header = 1), without their line ending,
/// control characters escaped, cut to [`MAX_QUOTED_CHARS`]. Reads no further than the
/// last wanted line and keeps at most [`MAX_QUOTED_BYTES`] of each.
fn quote_lines(input: impl Read, wanted: &BTreeSet<u64>) -> io::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    let mut reader = io::BufReader::new(input);
    let (mut n, mut line) = (1u64, Vec::new());
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if wanted.contains(&n) && !line.is_empty() {
                out.insert(n, printable(&line));
            }
            return Ok(out);
        }
        let (chunk, ends_line) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        if wanted.contains(&n) {
            let room = MAX_QUOTED_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let used = chunk.len() + usize::from(ends_line);
        reader.consume(used);
        if ends_line {
            if wanted.contains(&n) {
                out.insert(n, printable(&line));
            }
            line.clear();
            n += 1;
            if n > last {
                return Ok(out);
            }
        }
    }
}

fn printable(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    crate::read::shorten(text, MAX_QUOTED_CHARS, true)
}

/// Names (relative to the quarantine) of earlier reports for `original_name`, in
/// attempt order.
pub fn earlier_reports(
    area: &dyn QuarantineArea,
    original_name: &str,
) -> Result<Vec<String>, QuarantineError> {
    let mut found: Vec<(u64, String)> = Vec::new();
    for item in area.list(true).map_err(io_err(area, ATTEMPTS_DIR))? {
        let n = item
            .name
            .strip_prefix(ATTEMPTS_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_prefix(original_name))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(REPORT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            found.push((n, item.name));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, name)| name).collect())
}

/// `quarantine show` as text: the report, the offending lines, advice, history.
pub fn format_details(d: &Details) -> String {
    use std::fmt::Write;
    let e = &d.entry;
    let mut out = String::new();
    let _ = writeln!(out, "{}", e.name);
    if e.original_name != e.name {
        let _ = writeln!(out, "  dropped as    {}", e.original_name);
    }
    let _ = writeln!(
        out,
        "  quarantined   {}",
        e.quarantined_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if !e.has_file {
        let _ = writeln!(out, "  file          gone (only the report is left)");
    }
    let Some(r) = &e.report else {
        match &e.report_error {
            Some(error) => {
                let _ = writeln!(out, "  report        unreadable: {error}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "  no report     the file has no {REPORT_SUFFIX} beside it"
                );
            }
        }
        let _ = writeln!(
            out,
            "\nRun `sensor-ingest check` on the file to see its problems."
        );
        return out;
    };
    write_summary(&mut out, d, r);
    write_problems(&mut out, d, r);
    write_history(&mut out, d, r);
    if e.has_file {
        let _ = writeln!(
            out,
            "\nFix the file in the quarantine, check it with \
             `sensor-ingest check`, then `sensor-ingest quarantine retry {}`.",
            e.name
        );
    }
    out
}

/// The report's numbers and the file's header line.
fn write_summary(out: &mut String, d: &Details, r: &QuarantineReport) {
    use std::fmt::Write;
    let _ = writeln!(out, "  content hash  {}", r.content_hash);
    let _ = writeln!(out, "  size          {} bytes", r.size_bytes);
    let _ = writeln!(out, "  rule          {}", r.rule);
    let _ = writeln!(out, "  reason        {}", r.reason);
    let _ = writeln!(
        out,
        "  rows          {} read, {} invalid, {} problems{}",
        r.rows_read,
        r.invalid_rows,
        r.errors_total,
        if r.errors_truncated {
            format!(" ({} listed)", r.errors.len())
        } else {
            String::new()
        }
    );
    if let Some(h) = &d.header {
        let _ = writeln!(out, "\nHeader\n  {:>6} | {h}", 1);
    }
}

/// Each problem with the line it points at (quoted once), then what to do per rule.
fn write_problems(out: &mut String, d: &Details, r: &QuarantineReport) {
    use std::fmt::Write;
    let _ = writeln!(out, "\nProblems");
    let mut quoted: BTreeSet<u64> = BTreeSet::new();
    for p in &r.errors {
        let at = match p.line {
            Some(l) => format!("line {l}"),
            None => "file".to_owned(),
        };
        let column = if p.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", p.column)
        };
        let _ = writeln!(out, "  {at}{column}: {} [{}]", p.message, p.rule);
        if let Some(l) = p.line
            && quoted.insert(l)
            && let Some(text) = d.lines.get(&l)
        {
            let _ = writeln!(out, "  {l:>6} | {text}");
        }
    }
    if r.errors_truncated {
        let _ = writeln!(
            out,
            "  … {} more problems not listed in the report",
            r.errors_total - r.errors.len() as u64
        );
    }
    let _ = writeln!(out, "\nWhat to do");
    for a in &d.advice {
        let _ = writeln!(out, "  {} ({}×): {}", a.rule, a.count, a.advice);
    }
}

/// Ledger rows of the same content or name, and reports of earlier attempts.
fn write_history(out: &mut String, d: &Details, r: &QuarantineReport) {
    use std::fmt::Write;
    if !d.history.is_empty() {
        let _ = writeln!(out, "\nLedger history (same content or same name)");
        for h in &d.history {
            let same = if h.content_hash == r.content_hash {
                "same content"
            } else {
                "other content"
            };
            let _ = writeln!(
                out,
                "  {}  {:<11} {:<24} {} rows  {same} ({})",
                h.finished_at.format("%Y-%m-%d %H:%M:%S"),
                h.status,
                fit(&h.file_name, 24),
                h.row_count,
                &h.content_hash[..h.content_hash.len().min(12)]
            );
        }
    }
    if !d.earlier_reports.is_empty() {
        let _ = writeln!(out, "\nEarlier reports");
        for name in &d.earlier_reports {
            let _ = writeln!(out, "  {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wanted_lines_are_quoted_and_each_is_bounded() {
        let mut content = b"h1,h2\r\na,1\nb,2\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 100_000));
        let wanted = BTreeSet::from([1, 3, 4, 9]);
        let lines = quote_lines(&content[..], &wanted).unwrap();
        assert_eq!(lines[&1], "h1,h2");
        assert_eq!(lines[&3], "b,2");
        assert_eq!(
            lines[&4].chars().count(),
            MAX_QUOTED_CHARS + 1,
            "cut, unterminated"
        );
        assert!(!lines.contains_key(&2) && !lines.contains_key(&9));
    }

    #[test]
    fn quoted_lines_are_cut_and_escaped() {
        assert_eq!(printable(b"a,b\tc\r"), "a,b\\tc");
        assert_eq!(
            printable(&[b'x'; 300]).chars().count(),
            MAX_QUOTED_CHARS + 1
        );
    }
}
