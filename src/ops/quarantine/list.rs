//! `quarantine list`: every entry, newest first, with the attempts the ledger counted.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Entry, QuarantineError, fit};
use crate::rule::Rule;
use crate::sink::{EntryStatus, LedgerQueries, SinkError};

/// How many times this content or this file name was quarantined, per the ledger.
pub async fn attempts(store: &dyn LedgerQueries, entry: &Entry) -> Result<u64, QuarantineError> {
    let Some(report) = &entry.report else {
        return Ok(1);
    };
    let history = store.history(&report.content_hash, &report.file).await?;
    let n = history
        .iter()
        .filter(|r| r.status == EntryStatus::Quarantined)
        .count() as u64;
    Ok(n.max(1))
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

/// The list of `entries` (as [`super::entries`] found them, newest first), with
/// attempt counts from the ledger when `store` answers. Returns the ledger's error
/// beside the list when it did not.
pub async fn list(
    entries: Vec<Entry>,
    store: Option<&dyn LedgerQueries>,
) -> Result<(Vec<Listed>, Option<SinkError>), QuarantineError> {
    let mut ledger_error = None;
    let mut out = Vec::new();
    for entry in entries {
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

/// The list as a table no wider than 80 columns.
pub fn format_list(rows: &[Listed]) -> String {
    use std::fmt::Write;
    if rows.is_empty() {
        return "The quarantine is empty.\n".to_owned();
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
