//! Quarantine review: what is in the quarantine folder, why, what to do about it, and
//! the way back into the data folder.
//!
//! The folder holds each rejected file (`NAME`) beside its report (`NAME.error.json`,
//! see [`crate::report`]). Retrying a file moves it back into the data folder under the
//! name it was dropped with, and first moves its report to
//! `quarantine/.attempts/NAME.N.error.json` (N = 1, 2, …), so every earlier verdict is
//! kept; the hidden folder is never taken for a quarantined file. The ledger keeps one
//! row per attempt with the content hash, which links every attempt at the same bytes.
//!
//! One file per verb (`list`, `show`, `retry`, `purge`); this module finds the entries
//! they work on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::report::QuarantineReport;
use crate::rule::Rule;
use crate::sink::SinkError;

mod list;
mod purge;
mod retry;
mod show;

pub use list::{Listed, attempts, format_list, list};
pub use purge::{PurgePlan, parse_age, purge, purge_plan};
pub use retry::{Retried, retry};
pub use show::{Advice, Details, details, earlier_reports, format_details};

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

/// Cuts `s` to `width` characters, ending with `…` when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
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
}
