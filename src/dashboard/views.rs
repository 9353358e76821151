//! The pages' templates (askama, compiled in; every `{{ }}` is HTML-escaped unless
//! marked `safe`, which only the server-drawn SVG charts are) and the rows they show,
//! formatted here so the templates stay plain.

use askama::Template;
use chrono::{DateTime, Utc};

use crate::ops::status::human_age;
use crate::sink::LedgerRecord;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The database, password redacted.
    pub database: String,
    pub now: String,
    /// `HTTP_TOKEN` is set: the retry action exists.
    pub token_set: bool,
    /// This browser has a session.
    pub signed_in: bool,
}

/// One ledger row in a table.
#[derive(Debug, Clone)]
pub struct FileLine {
    pub href: String,
    pub name: String,
    pub status: &'static str,
    pub rows: u64,
    pub bad_rows: u64,
    pub duration: String,
    pub finished: String,
    pub archived_as: String,
    pub profile: String,
}

impl From<&LedgerRecord> for FileLine {
    fn from(f: &LedgerRecord) -> Self {
        Self {
            href: format!("/files/{}", f.id),
            name: f.file_name.clone(),
            status: f.status.as_str(),
            rows: f.row_count,
            bad_rows: f.rejected_rows,
            duration: duration(f.duration_seconds()),
            finished: time(f.finished_at),
            archived_as: f.archived_as.clone().unwrap_or_default(),
            profile: f.profile.clone().unwrap_or_default(),
        }
    }
}

/// `2026-11-30 19:04:05`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `0.012 s`, `3.4 s`, `2m 5s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{:.3} s", seconds.max(0.0))
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        human_age(seconds)
    }
}

/// A number with a sensible precision, or empty.
pub fn number(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.3}"))
}

/// A row of the last-hour / last-day table.
#[derive(Debug, Clone)]
pub struct CountLine {
    pub status: &'static str,
    pub hour_files: u64,
    pub hour_rows: u64,
    pub day_files: u64,
    pub day_rows: u64,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct Overview {
    pub layout: Layout,
    pub db_ok: bool,
    pub db_state: String,
    pub waiting: String,
    pub waiting_stale: bool,
    pub agents: String,
    pub quarantine: String,
    pub error: Option<String>,
    pub counts: Vec<CountLine>,
    pub files_chart: String,
    pub rows_chart: String,
    pub files: Vec<FileLine>,
}

#[derive(Template)]
#[template(path = "files.html")]
pub struct Files {
    pub layout: Layout,
    pub error: Option<String>,
    pub files: Vec<FileLine>,
    pub page: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// The hidden fields of a retry form.
#[derive(Debug, Clone)]
pub struct RetryForm {
    pub name: String,
    pub csrf: String,
}

/// One problem of a quarantine report.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: String,
    pub column: String,
    pub value: String,
    pub rule: &'static str,
    pub message: String,
}

/// A quarantined file's report, with the lines it points at.
#[derive(Debug, Clone)]
pub struct QuarantineView {
    pub reason: String,
    pub retry: Option<RetryForm>,
    pub advice: Vec<(&'static str, &'static str)>,
    pub problems: Vec<Problem>,
    /// Problems counted beyond those listed.
    pub more: u64,
    pub lines: Vec<(u64, String)>,
}

/// One `file_metrics` row, formatted.
#[derive(Debug, Clone)]
pub struct MetricLine {
    pub column: String,
    pub values: u64,
    pub nulls: u64,
    pub min: String,
    pub max: String,
    pub mean: String,
    pub stddev: String,
    pub unit: String,
}

#[derive(Template)]
#[template(path = "file.html")]
pub struct FilePage {
    pub layout: Layout,
    pub file: FileLine,
    pub size: String,
    pub started: String,
    pub agent: String,
    pub hash: String,
    pub summary: Option<String>,
    pub quarantine: Option<QuarantineView>,
    pub report_note: Option<String>,
    pub metrics: Vec<MetricLine>,
    pub history: Vec<FileLine>,
}

/// One row of the quarantine page.
#[derive(Debug, Clone)]
pub struct QuarantineLine {
    pub at: String,
    pub name: String,
    pub href: Option<String>,
    pub reason: String,
    pub rule: String,
    pub bad_rows: String,
    pub attempts: String,
    pub retry: Option<RetryForm>,
}

#[derive(Template)]
#[template(path = "quarantine.html")]
pub struct Quarantine {
    pub layout: Layout,
    pub message: Option<String>,
    pub error: Option<String>,
    pub entries: Vec<QuarantineLine>,
    pub signed_in: bool,
    pub token_set: bool,
}

/// One followed file (append mode).
#[derive(Debug, Clone)]
pub struct FollowedLine {
    pub name: String,
    pub offset: u64,
    pub lines: u64,
    /// Bytes now, or `gone`.
    pub size: String,
    /// Bytes after the offset (empty when the file is gone).
    pub lag: String,
    pub last_growth: String,
    pub ago: String,
    /// The ledger status of the last increment (empty when its row is gone).
    pub status: &'static str,
    /// The last increment's ledger page.
    pub href: String,
}

#[derive(Template)]
#[template(path = "followed.html")]
pub struct Followed {
    pub layout: Layout,
    pub error: Option<String>,
    pub files: Vec<FollowedLine>,
}

/// One row of the sensors page.
#[derive(Debug, Clone)]
pub struct SensorLine {
    pub id: String,
    pub href: String,
    pub last: String,
    pub ago: String,
    pub day_readings: u64,
    pub interval: String,
    pub silent: bool,
}

#[derive(Template)]
#[template(path = "sensors.html")]
pub struct Sensors {
    pub layout: Layout,
    pub error: Option<String>,
    pub sensors: Vec<SensorLine>,
}

#[derive(Template)]
#[template(path = "sensor.html")]
pub struct Sensor {
    pub layout: Layout,
    pub id: String,
    /// Label, link, and whether it is the range shown.
    pub ranges: Vec<(&'static str, String, bool)>,
    pub from_input: String,
    pub to_input: String,
    pub from: String,
    pub to: String,
    pub error: Option<String>,
    pub readings: u64,
    pub bucket_note: String,
    /// Readings in the range with a quality flag on any measure's value.
    pub flagged: u64,
    pub temperature: String,
    pub humidity: String,
    pub pressure: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub layout: Layout,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub layout: Layout,
    pub title: String,
    pub text: String,
}
