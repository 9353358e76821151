//! The reading side of an attempt: one pass over a file through read → validate →
//! enrich → stats, into the sink's channel ([`stream_to_sink`]) or nowhere
//! ([`check_file`], for `check`). [`ReadReport`] is what the pass saw.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::quality::{BATCH_ROWS, QcRun, QcStage};
use crate::enrich::{EnrichedRow, enrich};
use crate::intake;
use crate::profile::plan::{FileContext, Plan};
use crate::profile::{MeasureTarget, Profile, RowPolicy};
use crate::read::{ContentHash, CsvSource, FileError, read_buffer_for};
use crate::report::{MAX_REPORTED_ERRORS, ReportedError};
use crate::rule::Rule;
use crate::sink::LoadMsg;
use crate::stats::FileStats;
use crate::timestamp::DateOrder;
use crate::timestamp::SourceTimezone;
use crate::units::Quantity;
use crate::units::Ranges;
use crate::validate::{
    FileChecks, FileVerdict, LongRow, MERGE_WINDOW, Merger, Reading, RowError, Validator,
};

/// Batches in flight between reader and sink: bounds memory whatever the file size.
pub(super) const BATCHES_IN_FLIGHT: usize = 4;
/// Bad lines remembered under a skip-rows policy (for the rejects file); a file with
/// more is held back whole.
const MAX_SKIPPED_LINES: usize = 100_000;

/// How one file is read: its profile and what the settings add.
#[derive(Debug, Clone)]
pub struct ReadContext {
    pub profile: Arc<Profile>,
    pub file_name: String,
    pub ranges: Ranges,
    pub tz: SourceTimezone,
    /// A date order proven by an earlier pass over the same bytes.
    pub order: Option<DateOrder>,
}

/// What the reader saw in one pass over a file.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Every whole-file problem found (all header problems at once).
    pub file_errors: Vec<FileError>,
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
    /// The dates proved an order other than the one ambiguous dates were read in: the
    /// file must be read again in this order.
    pub reread: Option<DateOrder>,
    /// Under a skip-rows policy: the bad rows' lines, left out of a partial load.
    pub skipped_lines: Vec<u64>,
    /// Rows skipped because every cell was empty (profiles with `rows.skip_blank`).
    pub blank_rows: u64,
    /// The physical line of the first data row: what comes before it (preamble,
    /// header, unit rows) heads a rejects file.
    pub first_data_line: u64,
    /// Long files: rows whose metric or entity the profile does not map, skipped.
    pub unmapped_rows: u64,
    /// Rows with another number of fields than the header, skipped by a profile's
    /// `rows.skip_malformed`.
    pub malformed_rows: u64,
    /// The physical line of the header (0 for a file without one).
    pub header_line: u64,
    /// Long files: rows without a value (empty, or a missing-value code), skipped.
    pub missing_values: u64,
    /// Long files: the readings the rows merged into.
    pub readings: u64,
    /// Quality control could not read a sensor's history from the database: the pass
    /// stopped, and the attempt fails with this (transient) error.
    pub history_error: Option<crate::sink::SinkError>,
    /// What quality control remembers of each sensor once the file is committed.
    pub qc_memories: Vec<(String, crate::qc::SensorMemory)>,
}

pub(super) enum Verdict {
    Valid,
    Invalid,
    Unreadable(io::Error),
    Changed,
    Interrupted,
    /// Read again in this date order.
    Reread(DateOrder),
}

impl ReadReport {
    pub(super) fn verdict(&self) -> Verdict {
        match self.file_errors.first() {
            Some(FileError::Io(e)) => Verdict::Unreadable(io::Error::new(e.kind(), e.to_string())),
            Some(_) => Verdict::Invalid,
            None if self.interrupted => Verdict::Interrupted,
            None if self.changed => Verdict::Changed,
            None if self.reread.is_some() => Verdict::Reread(self.reread.unwrap_or(DateOrder::Dmy)),
            None if self.invalid_rows > self.skipped_lines.len() as u64 => Verdict::Invalid,
            None => Verdict::Valid,
        }
    }

    /// True when the file loads (perhaps partly, under a skip-rows policy).
    pub fn is_valid(&self) -> bool {
        self.file_errors.is_empty()
            && self.reread.is_none()
            && self.invalid_rows == self.skipped_lines.len() as u64
    }

    /// One sentence describing the problem, and its rule; `None` for a valid file.
    pub fn reason(&self) -> Option<(String, Rule)> {
        if let Some(e) = self.file_errors.first() {
            let at = self
                .line_of(e)
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            return Some((format!("{e}{at}"), e.rule()));
        }
        if self.is_valid() {
            return None;
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

    /// For a partial load: why rows were left out, and their rule.
    pub fn rejects_reason(&self) -> Option<(String, Rule)> {
        let first = self.errors.first()?;
        let rule = if self.errors.iter().all(|e| e.rule == first.rule) {
            first.rule
        } else {
            Rule::InvalidRows
        };
        let n = self.skipped_lines.len();
        let noun = if n == 1 { "row was" } else { "rows were" };
        Some((
            format!(
                "{n} bad {noun} left out of the file's load (rows.on_error = \"skip_rows\"); \
                 first at line {}: {}",
                first.line, first.message
            ),
            rule,
        ))
    }

    /// The line a whole-file problem is on: a header problem is on the header's real
    /// line, after any preamble.
    pub fn line_of(&self, e: &FileError) -> Option<u64> {
        match e.line() {
            Some(1) if e.is_header_error() && self.header_line > 1 => Some(self.header_line),
            line => line,
        }
    }

    /// Every problem found, whole-file problem first, as reported.
    pub fn reported_errors(&self) -> Vec<ReportedError> {
        let whole = self.file_errors.iter().map(|e| ReportedError {
            line: self.line_of(e),
            column: String::new(),
            value: String::new(),
            rule: e.rule(),
            message: e.to_string(),
        });
        whole
            .chain(self.errors.iter().map(ReportedError::from))
            .collect()
    }

    /// Problems counted, including those beyond the listed ones.
    pub fn problems_total(&self) -> u64 {
        self.errors_total + self.file_errors.len() as u64
    }
}

/// Reads `input` in one pass: validates, enriches and summarises every row, handing
/// each valid row to `on_row` until the first invalid one (after that rows are only
/// checked, so the report lists every problem) — or, under a skip-rows policy, every
/// valid row. `on_row` returns false to stop early.
pub fn read_rows(
    input: impl Read,
    cx: &ReadContext,
    on_row: impl FnMut(EnrichedRow) -> bool,
) -> ReadReport {
    read_rows_buffered(input, cx, read_buffer_for(u64::MAX), on_row)
}

/// [`read_rows`], the parser reading ahead `buffer` bytes ([`read_buffer_for`]).
fn read_rows_buffered(
    input: impl Read,
    cx: &ReadContext,
    buffer: usize,
    mut on_row: impl FnMut(EnrichedRow) -> bool,
) -> ReadReport {
    let mut report = ReadReport::default();
    let Some((mut source, plan)) = open(input, cx, buffer, &mut report) else {
        return report;
    };
    let ranges = plan_ranges(&plan, cx.ranges);
    let validator = Validator::new(&plan, cx.order);
    let mut checks = FileChecks::new();
    let mut stats = FileStats::new(&plan);
    let skip = match cx.profile.rows {
        RowPolicy::RejectFile => None,
        RowPolicy::SkipRows {
            max_bad_rows,
            max_bad_percent,
        } => Some((max_bad_rows, max_bad_percent)),
    };
    // Under reject_file, rows stop flowing at the first bad one; under skip_rows the
    // good ones keep going.
    let mut merger = plan
        .long
        .as_ref()
        .map(|_| Merger::new(plan.measures.len(), MERGE_WINDOW));
    loop {
        let (line, record) = match source.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(FileError::FieldCount { .. }) if cx.profile.skip_malformed => {
                report.rows_read += 1;
                report.malformed_rows += 1;
                continue;
            }
            Err(e) => {
                report.file_errors.push(e);
                return report;
            }
        };
        report.rows_read += 1;
        if report.first_data_line == 0 {
            report.first_data_line = line;
        }
        let result = match &mut merger {
            None => validator.validate(line, record, &mut checks),
            Some(merger) => match validator.validate_long(line, record, &mut checks, merger) {
                Ok(LongRow::Taken(reading)) => Ok(reading),
                Ok(skipped) => {
                    count_skipped(&skipped, &mut report, &mut stats);
                    continue;
                }
                Err(errors) => Err(errors),
            },
        };
        match result {
            Ok(Some(reading)) => {
                if !deliver(
                    reading,
                    &mut report,
                    &mut stats,
                    &ranges,
                    skip.is_some(),
                    &mut on_row,
                ) {
                    return report;
                }
            }
            Ok(None) if merger.is_some() => {}
            Ok(None) => report.blank_rows += 1,
            Err(errors) => count_invalid(&mut report, line, errors, skip.is_some()),
        }
    }
    // The readings still pending belong to the file: flushed before its verdict.
    if let Some(merger) = &mut merger {
        while let Some(merged) = merger.pop() {
            let reading = validator.merged_reading(merged);
            if !deliver(
                reading,
                &mut report,
                &mut stats,
                &ranges,
                skip.is_some(),
                &mut on_row,
            ) {
                return report;
            }
        }
        // Measures the file never gave have no metrics.
        stats
            .columns
            .retain(|c| c.stats.count > 0 || c.coded_missing > 0);
    }
    match source.finish() {
        Ok(content) => report.content = Some(content),
        Err(e) => report.file_errors.push(e),
    }
    conclude(&mut report, &checks, &plan, skip, stats);
    report
}

/// An invalid row: counted, its problems listed up to [`MAX_REPORTED_ERRORS`]; under
/// skip_rows (`skipping`) its line is kept for the ledger.
fn count_invalid(report: &mut ReadReport, line: u64, errors: Vec<RowError>, skipping: bool) {
    report.invalid_rows += 1;
    if skipping && report.skipped_lines.len() < MAX_SKIPPED_LINES {
        report.skipped_lines.push(line);
    }
    report.errors_total += errors.len() as u64;
    let room = MAX_REPORTED_ERRORS.saturating_sub(report.errors.len());
    report.errors.extend(errors.into_iter().take(room));
}

/// What only the whole file can say, once every row is read: the file checks' verdict
/// and, under skip_rows (`skip`: its limits), whether too many rows were bad; the
/// statistics join the report.
fn conclude(
    report: &mut ReadReport,
    checks: &FileChecks,
    plan: &Plan,
    skip: Option<(Option<u64>, Option<f64>)>,
    mut stats: FileStats,
) {
    match checks.verdict(plan) {
        FileVerdict::Valid => report.file_errors.extend(checks.refusals(plan)),
        FileVerdict::Reread(order) => report.reread = Some(order),
        FileVerdict::Invalid(e) => {
            report.file_errors.push(e);
            report.file_errors.extend(checks.refusals(plan));
        }
    }
    if let Some((max_rows, max_percent)) = skip {
        check_bad_row_limits(report, max_rows, max_percent);
    }
    stats.rejected_rows = report.skipped_lines.len() as u64;
    stats.blank_rows = report.blank_rows;
    report.stats = Some(stats);
}

/// Reads the preamble and header and plans the columns; `None` (with the problems in
/// `report`) when the file cannot be read that way.
fn open<R: Read>(
    input: R,
    cx: &ReadContext,
    buffer: usize,
    report: &mut ReadReport,
) -> Option<(CsvSource<R>, Plan)> {
    let source = match CsvSource::with_buffer(input, cx.profile.layout.clone(), buffer) {
        Ok(s) => s,
        Err(e) => {
            report.file_errors.push(e);
            return None;
        }
    };
    report.header_line = source.header().line;
    let file = FileContext {
        file_name: &cx.file_name,
        ranges: cx.ranges,
        tz: cx.tz,
    };
    match Plan::build(source.header(), source.text(), &cx.profile, file) {
        Ok(plan) => Some((source, plan)),
        Err(errors) => {
            report.file_errors = errors;
            None
        }
    }
}

/// Counts a row of a long file that gave no value (blank, unmapped, missing).
fn count_skipped(row: &LongRow, report: &mut ReadReport, stats: &mut FileStats) {
    match row {
        LongRow::Blank => report.blank_rows += 1,
        LongRow::Unmapped => report.unmapped_rows += 1,
        LongRow::Missing { measure, coded } => {
            report.missing_values += 1;
            if let (true, Some(c)) = (*coded, stats.columns.get_mut(*measure)) {
                c.coded_missing += 1;
            }
        }
        LongRow::Taken(_) => {}
    }
}

/// Under a skip-rows policy: more bad rows than the profile allows (or than can be
/// remembered for the rejects file) hold the whole file back.
fn check_bad_row_limits(report: &mut ReadReport, max_rows: Option<u64>, max_percent: Option<f64>) {
    let bad = report.invalid_rows;
    let percent = 100.0 * bad as f64 / report.rows_read.max(1) as f64;
    let over_rows = max_rows.is_some_and(|m| bad > m);
    let over_percent = max_percent.is_some_and(|m| percent > m);
    let unremembered = bad > report.skipped_lines.len() as u64;
    if bad > 0 && (over_rows || over_percent || unremembered) {
        let limit = match (max_rows, max_percent) {
            (Some(r), Some(p)) => format!("max_bad_rows = {r}, max_bad_percent = {p}"),
            (Some(r), None) => format!("max_bad_rows = {r}"),
            (None, Some(p)) => format!("max_bad_percent = {p}"),
            (None, None) => format!("at most {MAX_SKIPPED_LINES} remembered"),
        };
        report.file_errors.push(FileError::TooManyBadRows {
            bad,
            rows: report.rows_read,
            limit,
        });
    }
}

/// Hands a valid reading on (summarised, enriched), unless an invalid row already
/// condemned the file; false when the consumer stopped taking rows.
fn deliver(
    reading: Reading,
    report: &mut ReadReport,
    stats: &mut FileStats,
    ranges: &Ranges,
    skipping: bool,
    on_row: &mut impl FnMut(EnrichedRow) -> bool,
) -> bool {
    report.readings += 1;
    if report.invalid_rows == 0 || skipping {
        stats.push(&reading);
        if !on_row(enrich(reading, ranges)) {
            report.interrupted = true;
            return false;
        }
    }
    true
}

/// The ranges the derived (normalised) columns use: a profile's, else the settings'.
fn plan_ranges(plan: &Plan, settings: Ranges) -> Ranges {
    let mut r = settings;
    for m in &plan.measures {
        if let (MeasureTarget::Canonical(q), Some(range)) = (&m.target, m.range) {
            match q {
                Quantity::Temperature => r.temperature = range,
                Quantity::Humidity => r.humidity = range,
                Quantity::Pressure => r.pressure = range,
            }
        }
    }
    r
}

/// The reader task of one attempt: [`read_rows`] into the sink's channel, then the
/// end message that decides commit or rollback. With `qc`, every reading is judged on
/// its way ([`QcStage`]), the readings held back go out at the end, and what QC found
/// travels with the statistics.
pub(super) fn stream_to_sink(
    file: File,
    cx: &ReadContext,
    expected: &ContentHash,
    tx: &mpsc::Sender<LoadMsg>,
    qc: Option<QcRun>,
) -> ReadReport {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut send = |row: EnrichedRow| {
        batch.push(row);
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            return tx.blocking_send(LoadMsg::Rows(full)).is_ok();
        }
        true
    };
    let mut stage = qc.as_ref().map(QcStage::new);
    let mut history_error = None;
    // Sized to the file: a small file's reading was dominated by zeroing 256 KiB.
    let buffer = read_buffer_for(file.metadata().map_or(u64::MAX, |m| m.len()));
    let input = io::BufReader::with_capacity(buffer, file);
    let mut report = read_rows_buffered(input, cx, buffer, |row| {
        let Some(stage) = &mut stage else {
            return send(row);
        };
        stage.take(row, &mut send).unwrap_or_else(|e| {
            history_error = Some(e);
            false
        })
    });
    report.changed = report
        .content
        .as_ref()
        .is_some_and(|(hash, _)| hash != expected);
    let end = match (&report.stats, report.verdict()) {
        (Some(stats), Verdict::Valid) => {
            let mut stats = stats.clone();
            if let Some(mut stage) = stage {
                match stage.drain(&mut send) {
                    Ok(true) => {}
                    Ok(false) => {
                        report.interrupted = true;
                        return report;
                    }
                    Err(e) => {
                        report.history_error = Some(e);
                        report.interrupted = true;
                        let _ = tx.blocking_send(LoadMsg::Abort);
                        return report;
                    }
                }
                let (held, summary, memories) = stage.finish();
                report.qc_memories = memories;
                for row in held {
                    if !send(row) {
                        report.interrupted = true;
                        return report;
                    }
                }
                stats.qc = summary;
            }
            if !batch.is_empty() && tx.blocking_send(LoadMsg::Rows(batch)).is_err() {
                report.interrupted = true;
                return report;
            }
            LoadMsg::Commit(Box::new(stats))
        }
        _ => LoadMsg::Abort,
    };
    report.history_error = report.history_error.take().or(history_error);
    // A closed channel means the sink already gave up; its error tells why.
    let _ = tx.blocking_send(end);
    report
}

/// Validates a file without loading it (the `check` command), reading it again when
/// its dates prove an order other than the one first assumed.
pub fn check_file(path: &Path, cx: &ReadContext) -> io::Result<ReadReport> {
    let mut cx = cx.clone();
    loop {
        let (file, _) = intake::open_regular(path)?.map_err(io::Error::other)?;
        let report = read_rows(io::BufReader::with_capacity(256 * 1024, file), &cx, |_| {
            true
        });
        match report.reread {
            Some(order) if cx.order.is_none() => cx.order = Some(order),
            _ => return Ok(report),
        }
    }
}
