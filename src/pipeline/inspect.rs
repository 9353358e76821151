//! The reading side of an attempt: one pass over a file through read → validate →
//! enrich → stats, into the sink's channel ([`stream_to_sink`]) or nowhere
//! ([`check_file`], for `check`). [`ReadReport`] is what the pass saw.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use tokio::sync::mpsc;

use crate::config::{Ranges, SourceTimezone};
use crate::enrich::{EnrichedRow, enrich};
use crate::intake;
use crate::read::{ContentHash, CsvSource, FileError};
use crate::report::{MAX_REPORTED_ERRORS, ReportedError};
use crate::rule::Rule;
use crate::sink::LoadMsg;
use crate::stats::FileStats;
use crate::validate::{RowError, Validator};

/// Rows per batch sent from the reader to the sink.
const BATCH_ROWS: usize = 2048;
/// Batches in flight between reader and sink: bounds memory whatever the file size.
pub(super) const BATCHES_IN_FLIGHT: usize = 4;

/// What the reader saw in one pass over a file.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub file_error: Option<FileError>,
    pub rows_read: u64,
    pub invalid_rows: u64,
    pub errors_total: u64,
    /// The first [`MAX_REPORTED_ERRORS`] row errors.
    pub errors: Vec<RowError>,
    pub stats: Option<FileStats>,
    /// Hash and size of the bytes read, when the pass reached the end.
    pub content: Option<(ContentHash, u64)>,
    /// The hash differs from the one the attempt started with.
    pub changed: bool,
    /// The consumer stopped taking rows (the sink failed).
    pub interrupted: bool,
}

pub(super) enum Verdict {
    Valid,
    Invalid,
    Unreadable(io::Error),
    Changed,
    Interrupted,
}

impl ReadReport {
    pub(super) fn verdict(&self) -> Verdict {
        match &self.file_error {
            Some(FileError::Io(e)) => Verdict::Unreadable(io::Error::new(e.kind(), e.to_string())),
            Some(_) => Verdict::Invalid,
            None if self.interrupted => Verdict::Interrupted,
            None if self.changed => Verdict::Changed,
            None if self.invalid_rows > 0 => Verdict::Invalid,
            None => Verdict::Valid,
        }
    }

    /// True when nothing is wrong with the file's content.
    pub fn is_valid(&self) -> bool {
        self.file_error.is_none() && self.invalid_rows == 0
    }

    /// One sentence describing the problem, and its rule; `None` for a valid file.
    pub fn reason(&self) -> Option<(String, Rule)> {
        if let Some(e) = &self.file_error {
            let at = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
            return Some((format!("{e}{at}"), e.rule()));
        }
        let first = self.errors.first()?;
        let rule = if self.errors.iter().all(|e| e.rule == first.rule) {
            first.rule
        } else {
            Rule::InvalidRows
        };
        let noun = if self.invalid_rows == 1 {
            "row"
        } else {
            "rows"
        };
        let column = if first.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", first.column)
        };
        Some((
            format!(
                "{} invalid {noun} of {}; first at line {}{column}: {}",
                self.invalid_rows, self.rows_read, first.line, first.message
            ),
            rule,
        ))
    }

    /// Every problem found, whole-file problem first, as reported.
    pub fn reported_errors(&self) -> Vec<ReportedError> {
        let whole = self.file_error.as_ref().map(|e| ReportedError {
            line: e.line(),
            column: String::new(),
            value: String::new(),
            rule: e.rule(),
            message: e.to_string(),
        });
        whole
            .into_iter()
            .chain(self.errors.iter().map(ReportedError::from))
            .collect()
    }

    /// Problems counted, including those beyond the listed ones.
    pub fn problems_total(&self) -> u64 {
        self.errors_total + u64::from(self.file_error.is_some())
    }
}

/// Reads `input` in one pass: validates, enriches and summarises every row, handing
/// each valid row to `on_row` until the first invalid one (after that rows are only
/// checked, so the report lists every problem). `on_row` returns false to stop early.
pub fn read_rows(
    input: impl Read,
    ranges: Ranges,
    tz: SourceTimezone,
    mut on_row: impl FnMut(EnrichedRow) -> bool,
) -> ReadReport {
    let mut report = ReadReport::default();
    let mut source = match CsvSource::new(input) {
        Ok(s) => s,
        Err(e) => {
            report.file_error = Some(e);
            return report;
        }
    };
    let layout = source.layout().clone();
    let validator = Validator::new(&layout, ranges, tz);
    let mut stats = FileStats::new(&layout);
    loop {
        let (line, record) = match source.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                report.file_error = Some(e);
                return report;
            }
        };
        report.rows_read += 1;
        match validator.validate(line, record) {
            Ok(reading) => {
                if report.invalid_rows == 0 {
                    stats.push(&reading);
                    if !on_row(enrich(reading, &ranges)) {
                        report.interrupted = true;
                        return report;
                    }
                }
            }
            Err(errors) => {
                report.invalid_rows += 1;
                report.errors_total += errors.len() as u64;
                let room = MAX_REPORTED_ERRORS.saturating_sub(report.errors.len());
                report.errors.extend(errors.into_iter().take(room));
            }
        }
    }
    match source.finish() {
        Ok(content) => report.content = Some(content),
        Err(e) => report.file_error = Some(e),
    }
    report.stats = Some(stats);
    report
}

/// The reader task of one attempt: [`read_rows`] into the sink's channel, then the
/// end message that decides commit or rollback.
pub(super) fn stream_to_sink(
    file: File,
    ranges: Ranges,
    tz: SourceTimezone,
    expected: &ContentHash,
    tx: &mpsc::Sender<LoadMsg>,
) -> ReadReport {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut report = read_rows(
        io::BufReader::with_capacity(256 * 1024, file),
        ranges,
        tz,
        |row| {
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                return tx.blocking_send(LoadMsg::Rows(full)).is_ok();
            }
            true
        },
    );
    report.changed = report
        .content
        .as_ref()
        .is_some_and(|(hash, _)| hash != expected);
    let end = match (&report.stats, report.verdict()) {
        (Some(stats), Verdict::Valid) => {
            if !batch.is_empty() && tx.blocking_send(LoadMsg::Rows(batch)).is_err() {
                report.interrupted = true;
                return report;
            }
            LoadMsg::Commit(Box::new(stats.clone()))
        }
        _ => LoadMsg::Abort,
    };
    // A closed channel means the sink already gave up; its error tells why.
    let _ = tx.blocking_send(end);
    report
}

/// Validates a file without loading it (the `check` command).
pub fn check_file(path: &Path, ranges: Ranges, tz: SourceTimezone) -> io::Result<ReadReport> {
    let (file, _) = intake::open_regular(path)?.map_err(io::Error::other)?;
    Ok(read_rows(
        io::BufReader::with_capacity(256 * 1024, file),
        ranges,
        tz,
        |_| true,
    ))
}
