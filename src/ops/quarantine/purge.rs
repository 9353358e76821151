//! `quarantine purge`: what is older than a cutoff, and deleting it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Entry, QuarantineError, REPORT_SUFFIX, entries, io_err};
use crate::source::QuarantineArea;

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
pub fn purge_plan(
    area: &dyn QuarantineArea,
    cutoff: DateTime<Utc>,
) -> Result<PurgePlan, QuarantineError> {
    let entries = entries(area)?
        .into_iter()
        .filter(|e| e.quarantined_at < cutoff)
        .collect();
    let mut earlier_reports: Vec<String> = area
        .list(true)
        .map_err(io_err(area, super::ATTEMPTS_DIR))?
        .into_iter()
        .filter(|item| item.modified < cutoff)
        .map(|item| item.name)
        .collect();
    earlier_reports.sort();
    Ok(PurgePlan {
        entries,
        earlier_reports,
    })
}

/// Deletes what `plan` lists. Items already gone are not an error. Returns how many
/// items the plan found there (each file, report and earlier report).
pub fn purge(area: &dyn QuarantineArea, plan: &PurgePlan) -> Result<usize, QuarantineError> {
    let mut removed = 0;
    let mut remove = |name: &str, there: bool| {
        area.remove(name).map_err(io_err(area, name))?;
        removed += usize::from(there);
        Ok::<(), QuarantineError>(())
    };
    for e in &plan.entries {
        remove(&e.name, e.has_file)?;
        let has_report = e.report.is_some() || e.report_error.is_some();
        remove(&format!("{}{REPORT_SUFFIX}", e.name), has_report)?;
    }
    for r in &plan.earlier_reports {
        remove(r, true)?;
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
