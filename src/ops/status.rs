//! `sensor-ingest status`: what the agent has been doing, from the ledger and the
//! folders: files waiting and how long the oldest has waited, what was loaded,
//! quarantined or recognised as a duplicate in the last hour and day, the last file
//! loaded, recent throughput, and the database it talks to (never its password).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::config::{FilePattern, Settings};
use crate::ops::quarantine;
use crate::sink::{Activity, LedgerRecord, SinkError, Store};
use crate::watch;

/// Status could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot list {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the quarantine folder: {0}")]
    Quarantine(#[from] quarantine::QuarantineError),
    #[error("reading the ledger: {0}")]
    Database(#[from] SinkError),
}

/// Files waiting in the data folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiting {
    pub folder: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// The file waiting longest (by modification time) and for how many seconds.
    pub oldest: Option<String>,
    pub oldest_age_seconds: Option<f64>,
}

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub at: DateTime<Utc>,
    /// The database, password redacted ([`Store::describe`]).
    pub database: String,
    pub waiting: Waiting,
    /// Files (with or without report) in the quarantine folder now.
    pub quarantine_entries: usize,
    pub last_hour: Activity,
    pub last_day: Activity,
    pub last_loaded: Option<LedgerRecord>,
    /// Rows loaded in the last hour divided by the time spent loading them.
    pub rows_per_second_while_loading: Option<f64>,
    /// Rows loaded in the last hour, per minute of the hour.
    pub rows_per_minute_last_hour: f64,
}

/// Lists the data files waiting in `folder`.
pub fn waiting(
    folder: &Path,
    pattern: &FilePattern,
    now: SystemTime,
) -> Result<Waiting, StatusError> {
    let found = match watch::scan(folder, pattern) {
        Ok(found) => found,
        // Not created yet (the agent creates it at startup): nothing waits.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(StatusError::Folder {
                path: folder.to_owned(),
                source,
            });
        }
    };
    // scan() sorts oldest first.
    let oldest = found.first();
    Ok(Waiting {
        folder: folder.to_owned(),
        files: found.len(),
        bytes: found.iter().map(|c| c.size).sum(),
        oldest: oldest.map(|c| crate::intake::display_name(&c.path)),
        oldest_age_seconds: oldest
            .map(|c| now.duration_since(c.mtime).map_or(0.0, |d| d.as_secs_f64())),
    })
}

/// Gathers the status at `now`.
pub async fn collect(
    settings: &Settings,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Status, StatusError> {
    let waiting = waiting(&settings.data_folder, &settings.file_pattern, now.into())?;
    let quarantine_entries = quarantine::entries(&settings.quarantine_folder)?.len();
    let last_hour = store.activity_since(now - TimeDelta::hours(1)).await?;
    let last_day = store.activity_since(now - TimeDelta::days(1)).await?;
    let last_loaded = store.last_loaded().await?;
    let rows_per_second_while_loading = (last_hour.load_seconds > 0.0)
        .then(|| last_hour.loaded.rows as f64 / last_hour.load_seconds);
    Ok(Status {
        at: now,
        database: store.describe(),
        waiting,
        quarantine_entries,
        last_hour,
        last_day,
        last_loaded,
        rows_per_second_while_loading,
        rows_per_minute_last_hour: last_hour.loaded.rows as f64 / 60.0,
    })
}

/// A short human duration: `42s`, `3m 5s`, `2h 10m`, `3d 4h`.
pub fn human_age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `1 file`, `2 files`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The status as text for a terminal.
pub fn format(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database      {}", s.database);
    let w = &s.waiting;
    match (&w.oldest, w.oldest_age_seconds) {
        (Some(name), Some(age)) => {
            let _ = writeln!(
                out,
                "waiting       {} ({} bytes) in {}; oldest {} ({} ago)",
                count(w.files as u64, "file"),
                w.bytes,
                w.folder.display(),
                name,
                human_age(age)
            );
        }
        _ => {
            let _ = writeln!(out, "waiting       none in {}", w.folder.display());
        }
    }
    let _ = writeln!(
        out,
        "quarantine    {}",
        count(s.quarantine_entries as u64, "file")
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "              {:>14} {:>14}", "last hour", "last day");
    let rows = [
        ("loaded", s.last_hour.loaded, s.last_day.loaded),
        (
            "quarantined",
            s.last_hour.quarantined,
            s.last_day.quarantined,
        ),
        ("duplicate", s.last_hour.duplicate, s.last_day.duplicate),
    ];
    for (label, hour, day) in rows {
        let _ = writeln!(
            out,
            "{label:<13} {:>14} {:>14}",
            count(hour.files, "file"),
            count(day.files, "file")
        );
        if label != "duplicate" {
            let _ = writeln!(
                out,
                "{:<13} {:>14} {:>14}",
                "",
                count(hour.rows, "row"),
                count(day.rows, "row")
            );
        }
    }
    let _ = writeln!(out);
    match &s.last_loaded {
        Some(l) => {
            let ago = (s.at - l.finished_at).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(
                out,
                "last loaded   {} ({} rows) at {} ({} ago)",
                l.file_name,
                l.row_count,
                l.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
                human_age(ago)
            );
        }
        None => {
            let _ = writeln!(out, "last loaded   nothing yet");
        }
    }
    match s.rows_per_second_while_loading {
        Some(rate) => {
            let _ = writeln!(
                out,
                "throughput    {:.0} rows/s while loading; {:.0} rows/min over the last hour",
                rate, s.rows_per_minute_last_hour
            );
        }
        None => {
            let _ = writeln!(out, "throughput    nothing loaded in the last hour");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(5.2), "5s");
        assert_eq!(human_age(185.0), "3m 5s");
        assert_eq!(human_age(7800.0), "2h 10m");
        assert_eq!(human_age(3.0 * 86_400.0 + 4.0 * 3600.0), "3d 4h");
    }

    #[test]
    fn waiting_counts_matching_files_and_finds_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("new.csv"), "abc").unwrap();
        std::fs::write(dir.path().join(".hidden.csv"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let old = dir.path().join("old.csv");
        std::fs::write(&old, "abcde").unwrap();
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let w = waiting(
            dir.path(),
            &FilePattern::new("*.csv").unwrap(),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!((w.files, w.bytes), (2, 8));
        assert_eq!(w.oldest.as_deref(), Some("old.csv"));
        assert!(w.oldest_age_seconds.unwrap() >= 3600.0);
    }
}
