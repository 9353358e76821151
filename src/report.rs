//! The quarantine report: what was wrong with a file, in a form both a person and a
//! script can read. Written as `quarantine/NAME.error.json` before the file is moved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rule::Rule;
use crate::validate::RowError;

/// Row errors listed in one report; the total is always given.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// Everything known about why a file was quarantined.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuarantineReport {
    /// The file's own name when it was dropped (never a path).
    pub file: String,
    /// Its name inside the quarantine folder (differs when the name was taken).
    pub quarantined_as: String,
    pub content_hash: String,
    pub size_bytes: u64,
    pub quarantined_at: DateTime<Utc>,
    /// The ledger row of this attempt.
    pub ledger_id: Uuid,
    /// One sentence for a person.
    pub reason: String,
    /// Machine-readable cause: a row rule when rows were invalid (`invalid_rows` when
    /// they broke several), a whole-file rule (`field_count`, `missing_column`, …), a
    /// decision of the pipeline (`file_too_large`), or `database_rejected`.
    pub rule: Rule,
    /// Data rows read before the verdict.
    pub rows_read: u64,
    pub invalid_rows: u64,
    /// Every broken rule counted, including those beyond the listed ones.
    pub errors_total: u64,
    pub errors_truncated: bool,
    /// The first [`MAX_REPORTED_ERRORS`] problems, in file order.
    pub errors: Vec<ReportedError>,
    /// A refused increment of a followed file (append mode): its line numbers count in
    /// the followed file, and the copy beside the report holds the header lines then
    /// the increment's lines, so a line after the header is this much earlier in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_lines: Option<CopyLines>,
}

/// Where the lines of a refused increment are in its copy (the quarantined file):
/// the first `header_lines` are the followed file's own; every later line `l` of the
/// followed file is line `l - shift` of the copy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopyLines {
    pub header_lines: u64,
    pub shift: u64,
}

impl CopyLines {
    /// The copy's line for line `line` of the followed file (`None`: not in the copy).
    pub fn in_copy(self, line: u64) -> Option<u64> {
        if line <= self.header_lines {
            Some(line)
        } else {
            line.checked_sub(self.shift)
                .filter(|l| *l > self.header_lines)
        }
    }

    /// The followed file's line for line `line` of the copy.
    pub fn in_file(self, line: u64) -> u64 {
        if line <= self.header_lines {
            line
        } else {
            line + self.shift
        }
    }
}

/// One problem, positioned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportedError {
    /// Physical line (header = 1); absent for problems of the whole file.
    pub line: Option<u64>,
    /// Header name of the column; empty for row- or file-level problems.
    pub column: String,
    pub value: String,
    pub rule: Rule,
    pub message: String,
}

impl From<&RowError> for ReportedError {
    fn from(e: &RowError) -> Self {
        Self {
            line: Some(e.line),
            column: e.column.clone(),
            value: e.value.clone(),
            rule: e.rule,
            message: e.message.clone(),
        }
    }
}
