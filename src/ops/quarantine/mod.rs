//! Quarantine review: what is in the quarantine, why, what to do about it, and the
//! way back into the source.
//!
//! The quarantine holds each rejected item (`NAME`) beside its report
//! (`NAME.error.json`, see [`crate::report`]): the quarantine folder, or the bucket's
//! quarantine prefix, read through the source's [`QuarantineArea`]. Retrying an item
//! puts it back into the source under the name it was dropped with (what that means is
//! the source's: a rename into the data folder, a copy under the bucket's prefix), and
//! first moves its report to `.attempts/NAME.N.error.json` (N = 1, 2, …), so every
//! earlier verdict is kept; the hidden area is never taken for a quarantined item. The
//! ledger keeps one row per attempt with the content hash, which links every attempt
//! at the same bytes.
//!
//! One file per verb (`list`, `show`, `retry`, `purge`); this module finds the entries
//! they work on.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::report::QuarantineReport;
use crate::rule::Rule;
use crate::sink::SinkError;
use crate::source::QuarantineArea;

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
pub const ATTEMPTS_DIR: &str = crate::source::review::ATTEMPTS;

/// A quarantine operation that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("{place}: {source}")]
    Io {
        /// The quarantine item (or the quarantine itself) that could not be reached.
        place: String,
        #[source]
        source: io::Error,
    },
    #[error("{place}: not a readable quarantine report: {source}")]
    Report {
        place: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0:?} is not in the quarantine (see `sensor-ingest quarantine list`)")]
    NotFound(String),
    #[error(
        "{name:?} has only a report left in quarantine; the file itself is gone, so there is nothing to retry"
    )]
    NoFile { name: String },
    #[error(
        "the source already has an item named {name:?} waiting (a file in the data folder, an \
         object under the bucket's prefix); move it away or rename one of them, then retry"
    )]
    NameTaken { name: String },
    #[error("reading the ledger: {0}")]
    Database(#[from] SinkError),
}

/// An I/O error about the item `name` of `area` (the whole quarantine when empty).
fn io_err(area: &dyn QuarantineArea, name: &str) -> impl FnOnce(io::Error) -> QuarantineError {
    let place = if name.is_empty() {
        area.describe()
    } else {
        format!("{}/{name}", area.describe().trim_end_matches('/'))
    };
    move |source| QuarantineError::Io { place, source }
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

/// Every entry of the quarantine, newest first. Hidden names (such as
/// [`ATTEMPTS_DIR`]) and sub-folders are not entries; a quarantine not created yet has
/// none.
pub fn entries(area: &dyn QuarantineArea) -> Result<Vec<Entry>, QuarantineError> {
    let mut files: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut reports: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for item in area.list(false).map_err(io_err(area, ""))? {
        match item.name.strip_suffix(REPORT_SUFFIX) {
            Some(stem) if !stem.is_empty() => reports.insert(stem.to_owned(), item.modified),
            _ => files.insert(item.name, item.modified),
        };
    }
    let names: BTreeSet<&String> = files.keys().chain(reports.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let written = files.get(name).or(reports.get(name)).copied();
        out.push(load_entry(
            area,
            name,
            files.contains_key(name),
            reports.contains_key(name),
            written.unwrap_or_default(),
        ));
    }
    out.sort_by(|a, b| {
        b.quarantined_at
            .cmp(&a.quarantined_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// The entry `name`: its report read when there is one (a damaged or unreadable
/// report is kept as an error, so that it does not hide the other entries), else the
/// time the item was `written`.
fn load_entry(
    area: &dyn QuarantineArea,
    name: &str,
    has_file: bool,
    has_report: bool,
    written: DateTime<Utc>,
) -> Entry {
    let (report, report_error) = if has_report {
        match read_report(area, &format!("{name}{REPORT_SUFFIX}")) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    Entry {
        name: name.to_owned(),
        original_name: report
            .as_ref()
            .map_or_else(|| name.to_owned(), |r| r.file.clone()),
        quarantined_at: report.as_ref().map_or(written, |r| r.quarantined_at),
        has_file,
        report,
        report_error,
    }
}

/// Bytes read of a report at most: a real one is a few kilobytes (its problems are
/// capped); anything larger is not a report of ours.
const MAX_REPORT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads the quarantine report `name`.
pub fn read_report(
    area: &dyn QuarantineArea,
    name: &str,
) -> Result<QuarantineReport, QuarantineError> {
    let mut bytes = Vec::new();
    area.open(name)
        .and_then(|r| {
            use std::io::Read;
            r.take(MAX_REPORT_BYTES).read_to_end(&mut bytes)
        })
        .map_err(io_err(area, name))?;
    serde_json::from_slice(&bytes).map_err(|source| QuarantineError::Report {
        place: format!("{}/{name}", area.describe().trim_end_matches('/')),
        source,
    })
}

/// The entry `file` names: a quarantine name, a path to it, or its report's name.
pub fn find(area: &dyn QuarantineArea, file: &str) -> Result<Entry, QuarantineError> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let name = base.strip_suffix(REPORT_SUFFIX).unwrap_or(base);
    if name.is_empty() || name.starts_with('.') {
        return Err(QuarantineError::NotFound(file.to_owned()));
    }
    let item = area.stat(name).map_err(io_err(area, name))?;
    let report_name = format!("{name}{REPORT_SUFFIX}");
    let report = area
        .stat(&report_name)
        .map_err(io_err(area, &report_name))?;
    let Some(written) = item.as_ref().or(report.as_ref()).map(|s| s.modified) else {
        return Err(QuarantineError::NotFound(file.to_owned()));
    };
    Ok(load_entry(
        area,
        name,
        item.is_some(),
        report.is_some(),
        written,
    ))
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
        use std::fs;
        let dir = tempfile::tempdir().unwrap();
        let area = crate::source::FolderQuarantine::new(dir.path(), dir.path().join("data"));
        fs::write(dir.path().join("a.csv"), "x").unwrap();
        fs::write(dir.path().join("a.csv.error.json"), "{not json").unwrap();
        fs::write(dir.path().join("b.csv"), "x").unwrap();
        fs::create_dir(dir.path().join(ATTEMPTS_DIR)).unwrap();
        let found = entries(&area).unwrap();
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
        assert!(format_details(&details(&area, a.clone()).unwrap()).contains("unreadable"));
    }
}
