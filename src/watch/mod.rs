//! Watching the data folder: decides when a CSV file is completely written and hands its
//! path to the workers (as the folder source's candidate, `source::folder`).
//!
//! A file is ready when the kernel reports that a writer closed it (`CloseWrite`) or that
//! it was renamed into the folder. Files found only by a scan (at startup, by the periodic
//! rescan, or after file events were lost) are taken once their size and mtime have stopped
//! changing for `settle`, and never while a writer is known to hold them open.
//!
//! The watcher is not the deduplication authority: every periodic rescan offers again the
//! files still present (that is how a file left behind by a failed attempt is retried), and
//! the dispatcher downstream skips paths it already has in flight.
//!
//! Files that `FILE_PATTERN` leaves aside (regular, not hidden, not temporary, matching
//! no glob) are named in the log once each, by the startup scan, a rescan or an event,
//! so a user can tell why a file waits.
//!
//! Where things are: `tracker` holds the decisions (no I/O, driven directly by tests),
//! with `left_aside` its memory of the files named as left aside and `queue` the
//! queue of paths both keep; `watcher` the notify
//! watch and the loop around the tracker; `scan` the folder listing and the
//! regular-file checks.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::intake::display_name;
use crate::pattern::FilePattern;

pub mod follow;
mod left_aside;
mod queue;
mod scan;
#[cfg(test)]
mod test_support;
mod tracker;
mod watcher;

pub use scan::{Listing, list, scan};

use left_aside::{LEFT_ASIDE_MEMORY, LeftAside};
use scan::{list_in_background, stat_in_background};
use tracker::{Observation, observe};
use watcher::{EVENT_QUEUE, Runner, check_folder, start_watcher};

/// Floor for timer periods, so a zero setting cannot spin the loop (or panic `interval`).
const MIN_TICK: Duration = Duration::from_millis(10);

/// What the watcher watches and how patient it is.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The folder whose direct children are watched (not recursive).
    pub folder: PathBuf,
    /// Which file names are data files.
    pub pattern: FilePattern,
    /// How long a file found by a scan must stay unchanged before it is taken.
    pub settle: Duration,
    /// How often the whole folder is scanned again as a safety net.
    pub rescan_interval: Duration,
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the data folder {} does not exist", .path.display())]
    FolderMissing { path: PathBuf },
    #[error("the data folder {} is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot read the data folder {}", .path.display())]
    Folder { path: PathBuf, source: io::Error },
    #[error("cannot start the file watcher on {}", .path.display())]
    Watcher {
        path: PathBuf,
        source: notify::Error,
    },
}

/// A regular file in the data folder whose name matches the pattern, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: PathBuf,
    pub size: u64,
    pub mtime: SystemTime,
}

/// Scans `cfg.folder` once, waits until every candidate has settled (unchanged size and
/// mtime across `settle`, or an mtime already `settle` in the past) and returns the settled
/// paths in scan order. Files still changing after `4 × settle` are left out. Files the
/// pattern leaves aside are named in the log, as the watcher does.
pub async fn settled_files(cfg: &WatchConfig) -> io::Result<Vec<PathBuf>> {
    let Listing {
        candidates,
        left_aside,
    } = list_in_background(&cfg.folder, &cfg.pattern).await?;
    for note in LeftAside::new(LEFT_ASIDE_MEMORY).scanned(&left_aside) {
        note.log(&cfg.pattern);
    }
    let deadline = Instant::now() + cfg.settle.saturating_mul(4);
    let mut seen: HashMap<PathBuf, Observation> = HashMap::new();
    let mut settled: HashSet<PathBuf> = HashSet::new();
    let mut current = candidates.clone();
    loop {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut waiting = Vec::new();
        for c in current {
            if observe(&mut seen, &c, now, wall, cfg.settle) {
                settled.insert(c.path);
            } else {
                waiting.push(c.path);
            }
        }
        if waiting.is_empty() || now >= deadline {
            for path in &waiting {
                info!(file = %display_name(path), "file is still changing; leaving it out");
            }
            break;
        }
        tokio::time::sleep(cfg.settle.min(deadline - now).max(MIN_TICK)).await;
        current = stat_in_background(waiting).await?;
    }
    Ok(candidates
        .into_iter()
        .map(|c| c.path)
        .filter(|p| settled.contains(p))
        .collect())
}

/// Watches `cfg.folder` until `shutdown` is cancelled and sends each completely written
/// data file on `out`, as its path or as what its path makes (a source's candidate). A file is sent when a writer closes it or it is renamed into the
/// folder, and files found by the startup scan or a rescan are sent once settled. A path
/// may be sent more than once (each periodic rescan re-offers files still present). Returns
/// `Err` only when the folder or the file watcher cannot be set up; returns `Ok` on shutdown
/// or when the receiver of `out` is gone.
pub async fn watch<T: From<PathBuf>>(
    cfg: WatchConfig,
    out: mpsc::Sender<T>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let root = check_folder(&cfg.folder)?;
    let overflow = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    // Dropped when this function returns, which stops notify's thread.
    let _watcher = start_watcher(&root, events_tx, Arc::clone(&overflow))?;
    // The watch is in place before the first scan, so no file falls between the two.
    let startup = list_in_background(&cfg.folder, &cfg.pattern)
        .await
        .map_err(|source| WatchError::Folder {
            path: cfg.folder.clone(),
            source,
        })?;
    info!(folder = %cfg.folder.display(), files = startup.candidates.len(), "watching the data folder");
    Runner::new(cfg, root, events, overflow, out, shutdown)
        .run(startup)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::Write;
    use std::sync::atomic::Ordering;

    use super::test_support::{SETTLE, SLOW_RESCAN, WAIT, config, write_aged, write_file};
    use super::*;

    #[tokio::test]
    async fn settled_files_waits_for_fresh_files_and_leaves_out_busy_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_path_buf();
        write_aged(&d.join("old.csv"), b"x\n", Duration::from_secs(3600));
        write_file(&d.join("fresh.csv"), b"x\n");
        fs::create_dir(d.join("dir.csv")).expect("mkdir");
        write_file(&d.join("busy.csv"), b"x\n");

        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, path) = (Arc::clone(&stop), d.join("busy.csv"));
            std::thread::spawn(move || {
                let mut f = File::options().append(true).open(path).expect("open busy");
                while !stop.load(Ordering::Acquire) {
                    f.write_all(b"more\n").expect("append");
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let started = std::time::Instant::now();
        let files = settled_files(&config(&d, SETTLE, SLOW_RESCAN)).await;
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Release);
        writer.join().expect("writer thread");

        let files = files.expect("settled_files");
        assert_eq!(files, [d.join("old.csv"), d.join("fresh.csv")]);
        // It gave up on the busy file at the deadline rather than waiting for it.
        assert!(elapsed >= SETTLE * 4, "returned after {elapsed:?}");
        assert!(elapsed < WAIT, "returned after {elapsed:?}");
    }

    #[tokio::test]
    async fn settled_files_returns_old_files_in_scan_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_aged(&d.join("z.csv"), b"x\n", Duration::from_secs(7200));
        write_aged(&d.join("y.csv"), b"x\n", Duration::from_secs(3600));
        let files = settled_files(&config(d, SETTLE, SLOW_RESCAN))
            .await
            .expect("settled_files");
        assert_eq!(files, [d.join("z.csv"), d.join("y.csv")]);
    }
}
