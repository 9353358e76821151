//! `sensor-ingest status`: what the agent has been doing, from the ledger and the
//! folders: files waiting and how long the oldest has waited, files left aside by
//! `FILE_PATTERN`, what was loaded,
//! quarantined or recognised as a duplicate in the last hour and day, the last file
//! loaded, recent throughput, and the database it talks to (never its password).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::config::{FilePattern, Settings};
use crate::ops::quarantine;
use crate::sink::{Activity, AgentShare, LedgerRecord, SinkError, Storage, Store};
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

/// Files in the data folder that `FILE_PATTERN` leaves aside: regular, not hidden, not
/// temporary, matching no glob. They will never be loaded as things stand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftAside {
    pub files: usize,
    /// Up to [`LEFT_ASIDE_SHOWN`] of their names, newest modification first.
    pub newest: Vec<String>,
}

/// How many names of files left aside `status` shows.
pub const LEFT_ASIDE_SHOWN: usize = 5;

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub at: DateTime<Utc>,
    /// The database, password redacted ([`Store::describe`]).
    pub database: String,
    /// `FILE_PATTERN` as written.
    pub file_pattern: String,
    pub waiting: Waiting,
    pub left_aside: LeftAside,
    /// Files (with or without report) in the quarantine folder now.
    pub quarantine_entries: usize,
    pub last_hour: Activity,
    pub last_day: Activity,
    pub last_loaded: Option<LedgerRecord>,
    /// Rows loaded in the last hour divided by the time spent loading them.
    pub rows_per_second_while_loading: Option<f64>,
    /// Rows loaded in the last hour, per minute of the hour.
    pub rows_per_minute_last_hour: f64,
    /// Partitions, a pending migration, retention (PostgreSQL).
    pub storage: Option<Storage>,
    /// The agents that finished files in the last hour (`AGENT_ID`), each with its share
    /// of the files and rows, most files first.
    pub agents_last_hour: Vec<AgentShare>,
    /// The followed files (append mode): offset, size now, lag and last growth.
    pub followed: Vec<super::followed::Followed>,
}

/// Lists `folder`; a folder not created yet (the agent creates it at startup) is empty.
fn listing(folder: &Path, pattern: &FilePattern) -> Result<watch::Listing, StatusError> {
    match watch::list(folder, pattern) {
        Ok(listing) => Ok(listing),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(watch::Listing::default()),
        Err(source) => Err(StatusError::Folder {
            path: folder.to_owned(),
            source,
        }),
    }
}

/// Lists the data files waiting in `folder`.
pub fn waiting(
    folder: &Path,
    pattern: &FilePattern,
    now: SystemTime,
) -> Result<Waiting, StatusError> {
    let found = listing(folder, pattern)?.candidates;
    Ok(waiting_from(folder, &found, now))
}

fn waiting_from(folder: &Path, found: &[watch::Seen], now: SystemTime) -> Waiting {
    // list() sorts oldest first.
    let oldest = found.first();
    Waiting {
        folder: folder.to_owned(),
        files: found.len(),
        bytes: found.iter().map(|c| c.size).sum(),
        oldest: oldest.map(|c| crate::intake::display_name(&c.path)),
        oldest_age_seconds: oldest
            .map(|c| now.duration_since(c.mtime).map_or(0.0, |d| d.as_secs_f64())),
    }
}

/// Counts the files `pattern` leaves aside in `folder` and names the newest few.
pub fn left_aside(folder: &Path, pattern: &FilePattern) -> Result<LeftAside, StatusError> {
    let names = listing(folder, pattern)?.left_aside;
    Ok(left_aside_from(folder, names))
}

fn left_aside_from(folder: &Path, names: Vec<String>) -> LeftAside {
    // Statted here, not by the listing: the watcher's rescans need only the names.
    let mut files: Vec<(SystemTime, String)> = names
        .into_iter()
        .filter_map(|name| match crate::intake::look(&folder.join(&name)) {
            Ok(crate::intake::Found::Regular(meta)) => {
                Some((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), name))
            }
            // Gone or replaced since the listing: no longer left aside.
            Ok(crate::intake::Found::NotRegular | crate::intake::Found::Gone) => None,
            // Listed as a regular file, age unknown: counted, shown last.
            Err(_) => Some((SystemTime::UNIX_EPOCH, name)),
        })
        .collect();
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    LeftAside {
        files: files.len(),
        newest: files
            .into_iter()
            .take(LEFT_ASIDE_SHOWN)
            .map(|(_, name)| name)
            .collect(),
    }
}

/// Gathers the status at `now`.
pub async fn collect(
    settings: &Settings,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Status, StatusError> {
    let folder = &settings.data_folder;
    let watch::Listing {
        candidates,
        left_aside,
    } = listing(folder, &settings.file_pattern)?;
    let waiting = waiting_from(folder, &candidates, now.into());
    let left_aside = left_aside_from(folder, left_aside);
    let quarantine_entries = quarantine::entries(&crate::source::FolderQuarantine::new(
        &settings.quarantine_folder,
        folder,
    ))?
    .len();
    let last_hour = store.activity_since(now - TimeDelta::hours(1)).await?;
    let last_day = store.activity_since(now - TimeDelta::days(1)).await?;
    let last_loaded = store.last_loaded().await?;
    let storage = store.storage().await?;
    let agents_last_hour = store.agents_since(now - TimeDelta::hours(1)).await?;
    let followed = super::followed::collect(folder, store, now).await?;
    let rows_loaded = last_hour.loaded.rows + last_hour.partial.rows;
    // A file loaded in less than a millisecond gives no meaningful rate.
    let rows_per_second_while_loading =
        (last_hour.load_seconds >= 0.001).then(|| rows_loaded as f64 / last_hour.load_seconds);
    Ok(Status {
        at: now,
        database: store.describe(),
        file_pattern: settings.file_pattern.to_string(),
        waiting,
        left_aside,
        quarantine_entries,
        last_hour,
        last_day,
        last_loaded,
        rows_per_second_while_loading,
        rows_per_minute_last_hour: rows_loaded as f64 / 60.0,
        storage,
        agents_last_hour,
        followed,
    })
}

/// The `status` lines of the followed files (nothing when there are none).
fn followed_text(files: &[super::followed::Followed]) -> String {
    let mut out = String::new();
    if files.is_empty() {
        return out;
    }
    let _ = writeln!(out, "followed      {}", count(files.len() as u64, "file"));
    for f in files {
        let size = f
            .size
            .map_or_else(|| "gone".to_owned(), |s| format!("{s} bytes now"));
        let _ = writeln!(
            out,
            "  {}: offset {} ({} lines), {size}, lag {} bytes, last growth {} ago",
            f.file_name,
            f.offset,
            f.lines,
            f.lag_bytes,
            human_age(f.last_growth_age_seconds)
        );
    }
    out
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

/// What was loaded in the last hour, and how fast: decided by the files loaded, not
/// by the time measured, so a file that loaded in an instant still counts.
fn throughput_text(s: &Status) -> String {
    let (hour, partial) = (&s.last_hour.loaded, &s.last_hour.partial);
    let files = hour.files + partial.files;
    if files == 0 {
        return "nothing loaded in the last hour".to_owned();
    }
    let rows = hour.rows + partial.rows;
    let per_minute = s.rows_per_minute_last_hour;
    // Below 10 rows a minute a rounded figure would read "0 rows/min".
    let per_minute = if per_minute < 10.0 {
        format!("{per_minute:.1}")
    } else {
        format!("{per_minute:.0}")
    };
    let mut text = format!(
        "{} in {} over the last hour ({per_minute} rows/min)",
        count(rows, "row"),
        count(files, "file")
    );
    if let Some(rate) = s.rows_per_second_while_loading {
        let _ = write!(text, "; {rate:.0} rows/s while loading");
    }
    text
}

/// `1 file`, `2 files`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `none`, or `2 files whose names match no FILE_PATTERN (b.txt, a.xlsx)`, with
/// `and N more` past the names shown.
fn left_aside_text(l: &LeftAside) -> String {
    if l.files == 0 {
        return "none".to_owned();
    }
    let whose = if l.files == 1 {
        "whose name matches"
    } else {
        "whose names match"
    };
    let mut names = l.newest.join(", ");
    if l.files > l.newest.len() {
        let _ = write!(names, " and {} more", l.files - l.newest.len());
    }
    format!(
        "{} {whose} no FILE_PATTERN ({names})",
        count(l.files as u64, "file")
    )
}

/// The status as text for a terminal.
pub fn format(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database      {}", s.database);
    let _ = writeln!(out, "file pattern  {}", s.file_pattern);
    let w = &s.waiting;
    match (&w.oldest, w.oldest_age_seconds) {
        (Some(name), Some(age)) => {
            let _ = writeln!(
                out,
                "waiting       {} ({}) in {}; oldest {} ({} ago)",
                count(w.files as u64, "file"),
                count(w.bytes, "byte"),
                w.folder.display(),
                name,
                human_age(age)
            );
        }
        _ => {
            let _ = writeln!(out, "waiting       none in {}", w.folder.display());
        }
    }
    let _ = writeln!(out, "left aside    {}", left_aside_text(&s.left_aside));
    out.push_str(&followed_text(&s.followed));
    let _ = writeln!(
        out,
        "quarantine    {}",
        count(s.quarantine_entries as u64, "file")
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "              {:>14} {:>14}", "last hour", "last day");
    let mut rows = vec![("loaded", s.last_hour.loaded, s.last_day.loaded)];
    // Partial loads (a skip-rows profile) only get a line when there were any.
    if s.last_day.partial.files > 0 {
        rows.push(("partial", s.last_hour.partial, s.last_day.partial));
    }
    rows.extend([
        (
            "quarantined",
            s.last_hour.quarantined,
            s.last_day.quarantined,
        ),
        ("duplicate", s.last_hour.duplicate, s.last_day.duplicate),
    ]);
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
        if label == "partial" {
            let _ = writeln!(
                out,
                "{:<13} {:>14} {:>14}",
                "",
                count(hour.rejected_rows, "bad row"),
                count(day.rejected_rows, "bad row")
            );
        }
    }
    let _ = writeln!(out);
    match &s.last_loaded {
        Some(l) => {
            let ago = (s.at - l.finished_at).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(
                out,
                "last loaded   {} ({}) at {} ({} ago)",
                l.file_name,
                count(l.row_count, "row"),
                l.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
                human_age(ago)
            );
        }
        None => {
            let _ = writeln!(out, "last loaded   nothing yet");
        }
    }
    let _ = writeln!(out, "throughput    {}", throughput_text(s));
    if let Some(storage) = &s.storage {
        out.push_str(&storage_text(storage));
    }
    out.push_str(&agents_text(&s.agents_last_hour, s.at));
    out
}

/// The `partitions` and `retention` lines.
fn storage_text(s: &Storage) -> String {
    let mut out = String::new();
    if s.migration_pending {
        let progress = match s.migration_copied {
            Some((copied, total)) => {
                format!("; started, {copied} of {total} readings copied")
            }
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "partitions    none: sensor_readings is one plain table, a migration is pending \
             (run `sensor-ingest migrate`){progress}"
        );
    } else if let (Some(first), Some(last)) = (&s.first_month, &s.last_month) {
        let _ = writeln!(
            out,
            "partitions    {} monthly, {first} to {last}",
            s.partitions
        );
    }
    if let Some(r) = &s.retention {
        let _ = writeln!(
            out,
            "retention     readings before {} dropped ({}, {} readings; last on {}); \
             their ledger rows stay",
            r.before.format("%Y-%m-%d %H:%M UTC"),
            count(r.months.max(0) as u64, "month"),
            r.readings,
            r.last_dropped_at.format("%Y-%m-%d %H:%M UTC"),
        );
    }
    out
}

/// The agents of the last hour, one line each with its share of files and rows:
/// `agents        host-a:311   640 files (64%)   64000 rows (64%)   last 3s ago`.
fn agents_text(agents: &[AgentShare], at: DateTime<Utc>) -> String {
    let mut out = String::new();
    if agents.is_empty() {
        let _ = writeln!(out, "agents        none active in the last hour");
        return out;
    }
    let files: u64 = agents.iter().map(|a| a.files).sum();
    let rows: u64 = agents.iter().map(|a| a.rows).sum();
    let share = |part: u64, whole: u64| match whole {
        0 => 0.0,
        _ => 100.0 * part as f64 / whole as f64,
    };
    let width = agents
        .iter()
        .map(|a| a.agent.chars().count())
        .max()
        .unwrap_or(0);
    for (i, a) in agents.iter().enumerate() {
        let label = if i == 0 { "agents" } else { "" };
        let ago = (at - a.last_finished_at).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            out,
            "{label:<13} {:<width$}  {:>12} ({:>3.0}%)  {:>14} ({:>3.0}%)  last {} ago",
            a.agent,
            count(a.files, "file"),
            share(a.files, files),
            count(a.rows, "row"),
            share(a.rows, rows),
            human_age(ago),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(hour: Activity, rate: Option<f64>, last_loaded_rows: u64) -> Status {
        let at = Utc::now();
        let rows = hour.loaded.rows + hour.partial.rows;
        Status {
            followed: Vec::new(),
            at,
            database: "sqlite:x.db".into(),
            file_pattern: "*.csv".into(),
            waiting: Waiting {
                folder: "data".into(),
                files: 1,
                bytes: 1,
                oldest: Some("a.csv".into()),
                oldest_age_seconds: Some(2.0),
            },
            left_aside: LeftAside {
                files: 0,
                newest: vec![],
            },
            quarantine_entries: 1,
            last_hour: hour,
            last_day: hour,
            last_loaded: (hour.loaded.files > 0).then(|| LedgerRecord {
                id: uuid::Uuid::nil(),
                file_name: "a.csv".into(),
                content_hash: "h".into(),
                size_bytes: 0,
                status: crate::sink::EntryStatus::Loaded,
                row_count: last_loaded_rows,
                rejected_rows: 0,
                error_summary: None,
                started_at: at,
                finished_at: at,
                archived_as: None,
                agent: "test".into(),
                profile: None,
            }),
            rows_per_second_while_loading: rate,
            rows_per_minute_last_hour: rows as f64 / 60.0,
            storage: None,
            agents_last_hour: vec![],
        }
    }

    #[test]
    fn a_file_loaded_in_an_instant_shows_as_throughput_with_plurals_right() {
        let mut hour = Activity::default();
        hour.loaded.files = 1;
        hour.loaded.rows = 1;
        // The load took no measurable time: no rate, but the file is counted.
        let text = format(&status_with(hour, None, 1));
        assert!(
            text.contains("throughput    1 row in 1 file over the last hour (0.0 rows/min)"),
            "{text}"
        );
        assert!(!text.contains("nothing loaded"), "{text}");
        assert!(text.contains("(1 row) at"), "{text}");
        assert!(
            text.contains("waiting       1 file (1 byte) in data"),
            "{text}"
        );
        assert!(text.contains("quarantine    1 file\n"), "{text}");
        assert!(text.contains("1 file"), "{text}");
        for wrong in ["1 rows", "1 files", "1 bytes"] {
            assert!(!text.contains(wrong), "{wrong} in\n{text}");
        }

        hour.loaded.files = 3;
        hour.loaded.rows = 1200;
        let text = format(&status_with(hour, Some(5000.0), 400));
        assert!(
            text.contains(
                "throughput    1200 rows in 3 files over the last hour (20 rows/min); \
                 5000 rows/s while loading"
            ),
            "{text}"
        );
        assert!(text.contains("(400 rows) at"), "{text}");

        let text = format(&status_with(Activity::default(), None, 0));
        assert!(
            text.contains("throughput    nothing loaded in the last hour"),
            "{text}"
        );
        assert!(text.contains("last loaded   nothing yet"), "{text}");
    }

    #[test]
    fn agents_are_listed_with_their_share_of_files_and_rows() {
        let at = Utc::now();
        let share = |agent: &str, files, rows, secs| AgentShare {
            agent: agent.to_owned(),
            files,
            rows,
            last_finished_at: at - TimeDelta::seconds(secs),
        };
        let text = agents_text(&[share("host-a:1", 3, 300, 2), share("b", 1, 100, 65)], at);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("agents        host-a:1"), "{text}");
        assert!(lines[0].contains("3 files ( 75%)"), "{text}");
        assert!(lines[0].contains("300 rows ( 75%)"), "{text}");
        assert!(lines[0].ends_with("last 2s ago"), "{text}");
        assert!(lines[1].starts_with("              b       "), "{text}");
        assert!(lines[1].contains("1 file ( 25%)"), "{text}");
        assert!(lines[1].ends_with("last 1m 5s ago"), "{text}");
        assert_eq!(
            agents_text(&[], at),
            "agents        none active in the last hour\n"
        );
    }

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

    #[test]
    fn left_aside_counts_names_matching_no_glob_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let now = SystemTime::now();
        for (i, name) in [
            "a.txt", "b.dat", "c.xlsx", "d.txt", "e.txt", "f.txt", "g.txt",
        ]
        .into_iter()
        .enumerate()
        {
            std::fs::write(d.join(name), "x").unwrap();
            std::fs::File::options()
                .write(true)
                .open(d.join(name))
                .unwrap()
                .set_modified(now - std::time::Duration::from_secs(60 * i as u64))
                .unwrap();
        }
        for name in ["x.csv", ".hidden.txt", "y.txt.part", "z~"] {
            std::fs::write(d.join(name), "x").unwrap();
        }
        std::fs::create_dir(d.join("sub.txt")).unwrap();

        let l = left_aside(d, &FilePattern::new("*.csv").unwrap()).unwrap();
        assert_eq!(l.files, 7);
        assert_eq!(l.newest, ["a.txt", "b.dat", "c.xlsx", "d.txt", "e.txt"]);
        assert_eq!(
            left_aside_text(&l),
            "7 files whose names match no FILE_PATTERN (a.txt, b.dat, c.xlsx, d.txt, e.txt \
             and 2 more)"
        );

        let l = left_aside(d, &FilePattern::new("*.csv, *.txt").unwrap()).unwrap();
        assert_eq!(l.files, 2);
        assert_eq!(l.newest, ["b.dat", "c.xlsx"]);
        assert_eq!(
            left_aside_text(&l),
            "2 files whose names match no FILE_PATTERN (b.dat, c.xlsx)"
        );
        let l = left_aside(d, &FilePattern::new("*.csv,*.txt,*.xlsx").unwrap()).unwrap();
        assert_eq!(
            left_aside_text(&l),
            "1 file whose name matches no FILE_PATTERN (b.dat)"
        );
        let l = left_aside(d, &FilePattern::new("*").unwrap()).unwrap();
        assert_eq!((l.files, left_aside_text(&l).as_str()), (0, "none"));
        let l = left_aside(&d.join("missing"), &FilePattern::new("*").unwrap()).unwrap();
        assert_eq!(l.files, 0);
    }
}
