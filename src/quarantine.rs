//! Quarantine review: what is in the quarantine folder, why, what to do about it, and
//! the way back into the data folder.
//!
//! The folder holds each rejected file (`NAME`) beside its report (`NAME.error.json`,
//! see [`crate::report`]). Retrying a file moves it back into the data folder under the
//! name it was dropped with, and first moves its report to
//! `quarantine/.attempts/NAME.N.error.json` (N = 1, 2, …), so every earlier verdict is
//! kept; the hidden folder is never taken for a quarantined file. The ledger keeps one
//! row per attempt with the content hash, which links every attempt at the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::archive;
use crate::report::QuarantineReport;
use crate::rule::Rule;
use crate::sink::{LedgerRecord, SinkError, Store};

/// Suffix of a quarantine report beside its file.
pub const REPORT_SUFFIX: &str = ".error.json";
/// Hidden folder inside the quarantine folder where reports of earlier attempts go.
pub const ATTEMPTS_DIR: &str = ".attempts";

/// A quarantine operation that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a readable quarantine report: {source}", path.display())]
    Report {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0:?} is not in the quarantine folder (see `sensor-ingest quarantine list`)")]
    NotFound(String),
    #[error(
        "{name:?} has only a report left in quarantine; the file itself is gone, so there is nothing to retry"
    )]
    NoFile { name: String },
    #[error(
        "the data folder already has a file named {name:?}; move it away or rename one of them, then retry"
    )]
    NameTaken { name: String },
    #[error("reading the ledger: {0}")]
    Database(#[from] SinkError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QuarantineError + '_ {
    move |source| QuarantineError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One quarantined file (or a report whose file is gone), as found in the folder.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its name inside the quarantine folder.
    pub name: String,
    /// The name it was dropped with (from the report; else the quarantine name).
    pub original_name: String,
    /// When it was quarantined (the report's time; else the file's mtime).
    pub quarantined_at: DateTime<Utc>,
    /// False when only the report is left.
    pub has_file: bool,
    pub report: Option<QuarantineReport>,
    /// Why the report beside the file could not be read, when it could not.
    pub report_error: Option<String>,
}

impl Entry {
    /// The reason in a few words, for a table.
    pub fn short_reason(&self) -> String {
        let Some(r) = &self.report else {
            return if self.report_error.is_some() {
                "unreadable report".to_owned()
            } else {
                "no report".to_owned()
            };
        };
        if r.rule != Rule::InvalidRows {
            return r.rule.short_reason().to_owned();
        }
        // Several rules: name each, most frequent first.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &r.errors {
            *counts.entry(e.rule.short_reason()).or_default() += 1;
        }
        let mut rules: Vec<(&str, usize)> = counts.into_iter().collect();
        rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        rules.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
    }

    pub fn invalid_rows(&self) -> Option<u64> {
        self.report.as_ref().map(|r| r.invalid_rows)
    }
}

/// Every entry of the quarantine folder `dir`, newest first. Hidden names (such as
/// [`ATTEMPTS_DIR`]) and sub-folders are not entries; a folder not created yet has none.
pub fn entries(dir: &Path) -> Result<Vec<Entry>, QuarantineError> {
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut reports: BTreeSet<String> = BTreeSet::new();
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for item in listing {
        let item = item.map_err(io_err(dir))?;
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') || !item.file_type().map_err(io_err(dir))?.is_file() {
            continue;
        }
        match name.strip_suffix(REPORT_SUFFIX) {
            Some(stem) if !stem.is_empty() => reports.insert(stem.to_owned()),
            _ => files.insert(name),
        };
    }
    let mut out = Vec::new();
    for name in files.union(&reports) {
        out.push(load_entry(
            dir,
            name,
            files.contains(name),
            reports.contains(name),
        )?);
    }
    out.sort_by(|a, b| {
        b.quarantined_at
            .cmp(&a.quarantined_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

fn load_entry(
    dir: &Path,
    name: &str,
    has_file: bool,
    has_report: bool,
) -> Result<Entry, QuarantineError> {
    // A damaged report must not hide the other entries: keep its error instead.
    let (report, report_error) = if has_report {
        match read_report(&dir.join(format!("{name}{REPORT_SUFFIX}"))) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let quarantined_at = match &report {
        Some(r) => r.quarantined_at,
        None => {
            let path = if has_file {
                dir.join(name)
            } else {
                dir.join(format!("{name}{REPORT_SUFFIX}"))
            };
            let meta = fs::metadata(&path).map_err(io_err(&path))?;
            meta.modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_default()
        }
    };
    Ok(Entry {
        name: name.to_owned(),
        original_name: report
            .as_ref()
            .map_or_else(|| name.to_owned(), |r| r.file.clone()),
        quarantined_at,
        has_file,
        report,
        report_error,
    })
}

/// Reads one quarantine report.
pub fn read_report(path: &Path) -> Result<QuarantineReport, QuarantineError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| QuarantineError::Report {
        path: path.to_owned(),
        source,
    })
}

/// The entry `file` names: a quarantine name, a path to it, or its report's name.
pub fn find(dir: &Path, file: &str) -> Result<Entry, QuarantineError> {
    let base = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(file);
    let name = base.strip_suffix(REPORT_SUFFIX).unwrap_or(base);
    let has_file = dir.join(name).is_file();
    let has_report = dir.join(format!("{name}{REPORT_SUFFIX}")).is_file();
    if name.starts_with('.') || !(has_file || has_report) {
        return Err(QuarantineError::NotFound(file.to_owned()));
    }
    load_entry(dir, name, has_file, has_report)
}

/// How many times this content or this file name was quarantined, per the ledger.
pub async fn attempts(store: &dyn Store, entry: &Entry) -> Result<u64, QuarantineError> {
    let Some(report) = &entry.report else {
        return Ok(1);
    };
    let history = store.history(&report.content_hash, &report.file).await?;
    let n = history.iter().filter(|r| r.status == "quarantined").count() as u64;
    Ok(n.max(1))
}

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
pub fn details(dir: &Path, entry: Entry) -> Result<Details, QuarantineError> {
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
        let path = dir.join(&entry.name);
        quote_lines(&path, &wanted).map_err(io_err(&path))?
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
    let earlier_reports = earlier_reports(dir, &entry.original_name)?;
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
fn quote_lines(path: &Path, wanted: &BTreeSet<u64>) -> io::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    let mut reader = io::BufReader::new(fs::File::open(path)?);
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
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Names (relative to the quarantine folder) of earlier reports for `original_name`,
/// in attempt order.
pub fn earlier_reports(dir: &Path, original_name: &str) -> Result<Vec<String>, QuarantineError> {
    let attempts = dir.join(ATTEMPTS_DIR);
    let mut found: Vec<(u64, String)> = Vec::new();
    let listing = match fs::read_dir(&attempts) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&attempts)(e)),
    };
    for item in listing {
        let item = item.map_err(io_err(&attempts))?;
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let n = name
            .strip_prefix(original_name)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(REPORT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            found.push((n, format!("{ATTEMPTS_DIR}/{name}")));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, name)| name).collect())
}

/// One row of `quarantine list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub file: String,
    pub original_name: String,
    pub quarantined_at: DateTime<Utc>,
    pub reason: String,
    pub rule: Option<Rule>,
    pub invalid_rows: Option<u64>,
    pub rows_read: Option<u64>,
    /// Times this content or name was quarantined, per the ledger; `None` when the
    /// ledger could not be read.
    pub attempts: Option<u64>,
    pub content_hash: Option<String>,
    pub has_file: bool,
    /// The report's one-sentence reason.
    pub detail: Option<String>,
}

/// The list, newest first, with attempt counts from the ledger when `store` answers.
/// Returns the ledger's error beside the list when it did not.
pub async fn list(
    dir: &Path,
    store: Option<&dyn Store>,
) -> Result<(Vec<Listed>, Option<SinkError>), QuarantineError> {
    let mut ledger_error = None;
    let mut out = Vec::new();
    for entry in entries(dir)? {
        let attempts = match (store, &ledger_error) {
            (Some(store), None) => match attempts(store, &entry).await {
                Ok(n) => Some(n),
                Err(QuarantineError::Database(e)) => {
                    ledger_error = Some(e);
                    None
                }
                Err(e) => return Err(e),
            },
            _ => None,
        };
        out.push(Listed {
            file: entry.name.clone(),
            original_name: entry.original_name.clone(),
            quarantined_at: entry.quarantined_at,
            reason: entry.short_reason(),
            rule: entry.report.as_ref().map(|r| r.rule),
            invalid_rows: entry.invalid_rows(),
            rows_read: entry.report.as_ref().map(|r| r.rows_read),
            attempts,
            content_hash: entry.report.as_ref().map(|r| r.content_hash.clone()),
            has_file: entry.has_file,
            detail: entry.report.as_ref().map(|r| r.reason.clone()),
        });
    }
    Ok((out, ledger_error))
}

/// Cuts `s` to `width` characters, ending with `…` when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The list as a table no wider than 80 columns.
pub fn format_list(rows: &[Listed]) -> String {
    use std::fmt::Write;
    if rows.is_empty() {
        return "The quarantine folder is empty.\n".to_owned();
    }
    let mut out = format!(
        "{:<25} {:<16} {:<22} {:>6} {:>6}\n",
        "FILE", "WHEN (UTC)", "REASON", "BAD", "TRIES"
    );
    for r in rows {
        let file = if r.has_file {
            r.file.clone()
        } else {
            format!("{} (gone)", r.file)
        };
        let bad = r.invalid_rows.map_or("-".to_owned(), |n| n.to_string());
        let tries = r.attempts.map_or("?".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<25} {:<16} {:<22} {:>6} {:>6}",
            fit(&file, 25),
            r.quarantined_at.format("%Y-%m-%d %H:%M"),
            fit(&r.reason, 22),
            bad,
            tries
        );
    }
    out
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
    if e.has_file {
        let _ = writeln!(
            out,
            "\nFix the file in the quarantine folder, check it with \
             `sensor-ingest check`, then `sensor-ingest quarantine retry {}`.",
            e.name
        );
    }
    out
}

/// Where a retried file went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Its name in the quarantine folder.
    pub name: String,
    /// Its path in the data folder.
    pub moved_to: PathBuf,
    /// Where its report was kept, relative to the quarantine folder.
    pub report_kept_as: Option<String>,
}

/// Moves a quarantined file back into `data_dir` under the name it was dropped with,
/// after moving its report to `.attempts/NAME.N.error.json`. Never overwrites: a file
/// of that name already waiting in the data folder stops the retry, and the report is
/// put back.
pub fn retry(dir: &Path, data_dir: &Path, entry: &Entry) -> Result<Retried, QuarantineError> {
    if !entry.has_file {
        return Err(QuarantineError::NoFile {
            name: entry.name.clone(),
        });
    }
    archive::ensure_dir(data_dir).map_err(io_err(data_dir))?;
    let target = data_dir.join(&entry.original_name);
    if target.symlink_metadata().is_ok() {
        return Err(QuarantineError::NameTaken {
            name: entry.original_name.clone(),
        });
    }
    let report_path = dir.join(format!("{}{REPORT_SUFFIX}", entry.name));
    let kept = if report_path.is_file() {
        let attempts = dir.join(ATTEMPTS_DIR);
        archive::ensure_dir(&attempts).map_err(io_err(&attempts))?;
        Some(keep_report(&report_path, &attempts, &entry.original_name)?)
    } else {
        None
    };
    let src = dir.join(&entry.name);
    if let Err(e) = archive::move_no_clobber(&src, &target) {
        if let Some(kept) = &kept {
            // Put the report back so the entry stays whole; the error says why.
            let _ = archive::move_no_clobber(&dir.join(kept), &report_path);
        }
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            QuarantineError::NameTaken {
                name: entry.original_name.clone(),
            }
        } else {
            io_err(&src)(e)
        });
    }
    Ok(Retried {
        name: entry.name.clone(),
        moved_to: target,
        report_kept_as: kept,
    })
}

/// Moves `report` to the first free `attempts/NAME.N.error.json`; returns its name
/// relative to the quarantine folder.
fn keep_report(
    report: &Path,
    attempts: &Path,
    original_name: &str,
) -> Result<String, QuarantineError> {
    for n in 1..100_000u64 {
        let name = format!("{original_name}.{n}{REPORT_SUFFIX}");
        match archive::move_no_clobber(report, &attempts.join(&name)) {
            Ok(()) => return Ok(format!("{ATTEMPTS_DIR}/{name}")),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(report)(e)),
        }
    }
    Err(io_err(attempts)(io::Error::other("no free attempt number")))
}

/// What `purge` would delete (or deleted).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgePlan {
    /// Entries quarantined before the cutoff: their file and report go.
    pub entries: Vec<Entry>,
    /// Reports of earlier attempts older than the cutoff, relative to the folder.
    pub earlier_reports: Vec<String>,
}

impl PurgePlan {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.earlier_reports.is_empty()
    }
}

/// Entries quarantined before `cutoff`, and earlier-attempt reports last written
/// before it.
pub fn purge_plan(dir: &Path, cutoff: DateTime<Utc>) -> Result<PurgePlan, QuarantineError> {
    let entries = entries(dir)?
        .into_iter()
        .filter(|e| e.quarantined_at < cutoff)
        .collect();
    let mut earlier_reports = Vec::new();
    let attempts = dir.join(ATTEMPTS_DIR);
    if let Ok(listing) = fs::read_dir(&attempts) {
        for item in listing {
            let item = item.map_err(io_err(&attempts))?;
            let meta = item.metadata().map_err(io_err(&attempts))?;
            let modified = meta.modified().map(DateTime::<Utc>::from);
            if meta.is_file() && modified.is_ok_and(|m| m < cutoff) {
                earlier_reports.push(format!(
                    "{ATTEMPTS_DIR}/{}",
                    item.file_name().to_string_lossy()
                ));
            }
        }
    }
    earlier_reports.sort();
    Ok(PurgePlan {
        entries,
        earlier_reports,
    })
}

/// Deletes what `plan` lists. Files already gone are not an error. Returns how many
/// files were removed.
pub fn purge(dir: &Path, plan: &PurgePlan) -> Result<usize, QuarantineError> {
    let mut removed = 0;
    let mut remove = |path: PathBuf| match fs::remove_file(&path) {
        Ok(()) => {
            removed += 1;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    };
    for e in &plan.entries {
        remove(dir.join(&e.name))?;
        remove(dir.join(format!("{}{REPORT_SUFFIX}", e.name)))?;
    }
    for r in &plan.earlier_reports {
        remove(dir.join(r))?;
    }
    Ok(removed)
}

/// An age such as `30d`, `12h`, `2w`, `90m`; a bare number is days.
pub fn parse_age(v: &str) -> Option<Duration> {
    let v = v.trim();
    let day = 86_400_000u64;
    if let Some(n) = v.strip_suffix('d') {
        return crate::config::parse_duration(n, day);
    }
    if let Some(n) = v.strip_suffix('w') {
        return crate::config::parse_duration(n, 7 * day);
    }
    crate::config::parse_duration(v, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_report_does_not_hide_the_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.csv"), "x").unwrap();
        fs::write(dir.path().join("a.csv.error.json"), "{not json").unwrap();
        fs::write(dir.path().join("b.csv"), "x").unwrap();
        fs::create_dir(dir.path().join(ATTEMPTS_DIR)).unwrap();
        let found = entries(dir.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a.csv") && names.contains(&"b.csv"));
        let a = found.iter().find(|e| e.name == "a.csv").unwrap();
        assert_eq!(a.short_reason(), "unreadable report");
        assert!(
            a.report_error
                .as_deref()
                .unwrap()
                .contains("not a readable")
        );
        let b = found.iter().find(|e| e.name == "b.csv").unwrap();
        assert_eq!(b.short_reason(), "no report");
        assert!(format_details(&details(dir.path(), a.clone()).unwrap()).contains("unreadable"));
    }

    #[test]
    fn ages_accept_days_weeks_and_smaller_units() {
        assert_eq!(parse_age("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("7"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("soon"), None);
    }

    #[test]
    fn only_the_wanted_lines_are_quoted_and_each_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let mut content = b"h1,h2\r\na,1\nb,2\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 100_000));
        fs::write(&path, &content).unwrap();
        let wanted = BTreeSet::from([1, 3, 4, 9]);
        let lines = quote_lines(&path, &wanted).unwrap();
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
