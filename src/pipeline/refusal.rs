//! Why a file goes to quarantine, and the report that says so.

use chrono::Utc;
use uuid::Uuid;

use super::inspect::ReadReport;
use crate::report::{QuarantineReport, ReportedError};
use crate::rule::Rule;
use crate::sink::FileAttempt;

/// A decision of the pipeline about a whole file: not something wrong with what was
/// read, but a reason not to read it, or not to archive it as loaded.
#[derive(Debug, thiserror::Error)]
pub enum Decision {
    #[error("the file is {size} bytes, more than MAX_FILE_BYTES={limit}; it was not read")]
    TooLarge { size: u64, limit: u64 },
    /// Written to after it was handed over: its first `loaded_bytes` were loaded.
    #[error(
        "the file grew from {loaded_bytes} to {size} bytes after its rows were loaded (ledger \
         id {ledger_id}); the bytes after the first {loaded_bytes} were not loaded: move them \
         into a new file with the header"
    )]
    GrewAfterLoad {
        loaded_bytes: u64,
        size: u64,
        ledger_id: Uuid,
    },
    /// An increment of a followed file gives another value for a reading stored
    /// already (same sensor, same time).
    #[error(
        "line {line}: sensor {sensor} at {time} has {new}, but {stored} is stored for that \
         sensor and time (the file was rewritten, or the logger's clock set back); nothing of \
         this increment was loaded"
    )]
    RewrittenValue {
        line: u64,
        sensor: String,
        time: String,
        stored: String,
        new: String,
    },
}

impl Decision {
    pub fn rule(&self) -> Rule {
        match self {
            Decision::TooLarge { .. } => Rule::FileTooLarge,
            Decision::GrewAfterLoad { .. } => Rule::GrewAfterLoad,
            Decision::RewrittenValue { .. } => Rule::RewrittenValue,
        }
    }
}

/// Why a file goes to quarantine.
pub enum Refusal<'a> {
    /// Its content broke rules.
    Read(&'a ReadReport),
    /// The database refused data the validator accepted.
    Database {
        report: &'a ReadReport,
        message: String,
    },
    /// The pipeline decided so.
    Decision(Decision),
}

impl Refusal<'_> {
    pub(super) fn quarantine_report(&self, attempt: &FileAttempt) -> QuarantineReport {
        let empty = ReadReport::default();
        let (reason, rule, errors, errors_total, seen) = match self {
            Refusal::Database { report, message } => (
                format!("the database refused the file's data: {message}"),
                Rule::DatabaseRejected,
                vec![ReportedError {
                    line: None,
                    column: String::new(),
                    value: String::new(),
                    rule: Rule::DatabaseRejected,
                    message: message.clone(),
                }],
                1,
                *report,
            ),
            Refusal::Decision(d) => (
                d.to_string(),
                d.rule(),
                vec![ReportedError {
                    line: None,
                    column: String::new(),
                    value: String::new(),
                    rule: d.rule(),
                    message: d.to_string(),
                }],
                1,
                &empty,
            ),
            Refusal::Read(report) => {
                let (reason, rule) = report
                    .reason()
                    .unwrap_or_else(|| ("no problem found".to_owned(), Rule::InvalidRows));
                (
                    reason,
                    rule,
                    report.reported_errors(),
                    report.problems_total(),
                    *report,
                )
            }
        };
        QuarantineReport {
            file: attempt.file_name.clone(),
            quarantined_as: attempt.file_name.clone(),
            content_hash: attempt.hash.to_string(),
            size_bytes: attempt.size,
            quarantined_at: Utc::now(),
            ledger_id: attempt.id,
            reason,
            rule,
            rows_read: seen.rows_read,
            invalid_rows: seen.invalid_rows,
            errors_truncated: errors_total > errors.len() as u64,
            errors_total,
            errors,
            copy_lines: None,
        }
    }
}
