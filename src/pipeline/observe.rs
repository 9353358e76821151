//! Observing outcomes: one log line per file, and the metrics of what happened.

use std::time::{Duration, SystemTime};

use tracing::{debug, error, info, warn};

use super::{Archived, Outcome, ProcessError, ReadReport};
use crate::metrics::Metrics;

pub(super) fn record_outcome(
    m: &Metrics,
    result: &Result<Outcome, ProcessError>,
    arrived: Option<SystemTime>,
) {
    let outcome = match result {
        Ok(Outcome::Loaded { rows, .. }) => {
            m.rows_loaded(*rows);
            if let Some(arrived) = arrived {
                m.committed(arrived);
            }
            "loaded"
        }
        Ok(Outcome::Duplicate { .. }) => "duplicate",
        Ok(Outcome::Recovered { .. }) => "recovered",
        Ok(Outcome::Quarantined { .. }) => "quarantined",
        Ok(Outcome::Skipped { .. }) => "skipped",
        Err(_) => "failed",
    };
    m.file(outcome);
}

/// Logs the outcome of one file. `shared`: the store is shared with other agents, so a
/// file that vanished was most likely archived by one of them; such skips, and files
/// claimed or taken over by another agent, are logged at DEBUG only.
pub(super) fn log_outcome(result: &Result<Outcome, ProcessError>, elapsed: Duration, shared: bool) {
    let ms = elapsed.as_millis() as u64;
    match result {
        Ok(Outcome::Loaded {
            rows, archived_as, ..
        }) => {
            let rows_per_s = (*rows as f64 / elapsed.as_secs_f64().max(1e-6)).round() as u64;
            info!(
                outcome = "loaded",
                rows,
                duration_ms = ms,
                rows_per_s,
                archived_as = shown(archived_as),
                "file loaded"
            );
        }
        Ok(Outcome::Duplicate {
            of, archived_as, ..
        }) => {
            info!(outcome = "duplicate", duplicate_of = %of, duration_ms = ms, archived_as = shown(archived_as),
                "content already loaded; file archived without loading");
        }
        Ok(Outcome::Recovered { archived_as, .. }) => {
            info!(
                outcome = "recovered",
                duration_ms = ms,
                archived_as = shown(archived_as),
                "file was loaded by an earlier run; archived now"
            );
        }
        Ok(Outcome::Quarantined {
            reason,
            archived_as,
            ..
        }) => {
            warn!(outcome = "quarantined", reason = %reason, duration_ms = ms, archived_as = shown(archived_as),
                "file quarantined");
        }
        Ok(Outcome::Skipped { reason }) => {
            let others = [super::CLAIMED_ELSEWHERE, super::TAKEN_OVER];
            if others.contains(reason) || (shared && *reason == crate::intake::VANISHED) {
                debug!(outcome = "skipped", reason, "file left to another agent");
            } else {
                info!(outcome = "skipped", reason, "file skipped");
            }
        }
        Err(e) => {
            error!(outcome = "failed", error = %e, duration_ms = ms,
                "file not processed; it stays in the data folder and is tried again at the next scan");
        }
    }
}

/// An archive name for logs.
fn shown(archived_as: &Archived) -> &str {
    archived_as.as_deref().unwrap_or("(replaced)")
}

/// One line for the rows a profile told the agent to skip, when there were any.
pub(super) fn log_skipped_rows(report: &ReadReport) {
    if report.unmapped_rows > 0
        || report.missing_values > 0
        || report.malformed_rows > 0
        || report.blank_rows > 0
    {
        info!(
            unmapped_rows = report.unmapped_rows,
            missing_values = report.missing_values,
            malformed_rows = report.malformed_rows,
            blank_or_unmeasured_rows = report.blank_rows,
            readings = report.readings,
            "rows the profile skips were skipped"
        );
    }
}
