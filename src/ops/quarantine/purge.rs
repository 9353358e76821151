//! `quarantine purge`: what is older than a cutoff, and deleting it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ATTEMPTS_DIR, Entry, QuarantineError, REPORT_SUFFIX, entries, io_err};

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
    fn ages_accept_days_weeks_and_smaller_units() {
        assert_eq!(parse_age("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_age("7"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("soon"), None);
    }
}
