//! Watching followed files (append mode): a followed file is offered whenever it may
//! have grown — at once on a write, close, create or rename event for it, and, as a
//! safety net for missed events, whenever a stat poll every [`POLL`] finds its size,
//! mtime or inode changed; every `rescan_interval` each one is offered again
//! regardless. Unlike whole files, nothing waits for a writer to close or settle: the
//! reader takes only complete lines.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::scan::scan;
use super::watcher::{EVENT_QUEUE, check_folder, start_watcher};
use super::{MIN_TICK, WatchConfig, WatchError};
use crate::intake::display_name;

/// How often followed files are looked at when no event came.
pub const POLL: Duration = Duration::from_millis(500);

/// What a followed file looked like when it was last offered.
type Stat = (u64, SystemTime, u64);

/// Watches `cfg.folder` until `shutdown` and sends every file `followed` names (by its
/// file name, among those the pattern takes) on `out` when it may have grown. Returns
/// `Err` only when the folder or the file watcher cannot be set up.
pub async fn follow<T: From<PathBuf> + Send + 'static>(
    cfg: WatchConfig,
    followed: impl Fn(&str) -> bool + Send + Sync + 'static,
    out: mpsc::Sender<T>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let root = check_folder(&cfg.folder)?;
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let _watcher = start_watcher(&root, events_tx, overflow.clone())?;
    let followed = Arc::new(followed);
    let mut poll = tokio::time::interval(POLL);
    let mut again = tokio::time::interval(cfg.rescan_interval.max(MIN_TICK));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut offered: HashMap<PathBuf, Stat> = HashMap::new();
    loop {
        let due: Vec<PathBuf> = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                let Ok(event) = event else { continue };
                event
                    .paths
                    .iter()
                    .filter(|p| p.parent() == Some(root.as_path()) || p.parent() == Some(cfg.folder.as_path()))
                    .map(|p| cfg.folder.join(display_name(p)))
                    .filter(|p| cfg.pattern.matches(&display_name(p)) && followed(&display_name(p)))
                    .collect()
            }
            _ = poll.tick() => {
                if overflow.swap(false, Ordering::AcqRel) {
                    offered.clear();
                }
                changed(&cfg, followed.clone(), &mut offered).await
            }
            _ = again.tick() => {
                offered.clear();
                continue;
            }
        };
        for path in due {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                sent = out.send(T::from(path)) => if sent.is_err() { return Ok(()) },
            }
        }
    }
}

/// The followed files whose size, mtime or inode changed since they were last offered
/// (recording them as offered).
async fn changed(
    cfg: &WatchConfig,
    followed: Arc<impl Fn(&str) -> bool + Send + Sync + 'static>,
    offered: &mut HashMap<PathBuf, Stat>,
) -> Vec<PathBuf> {
    let (folder, pattern) = (cfg.folder.clone(), cfg.pattern.clone());
    let stats = tokio::task::spawn_blocking(move || {
        let seen = scan(&folder, &pattern).unwrap_or_default();
        seen.into_iter()
            .filter(|s| followed(&display_name(&s.path)))
            .filter_map(|s| {
                let ino = std::fs::symlink_metadata(&s.path).ok()?.ino();
                Some((s.path, (s.size, s.mtime, ino)))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut due = Vec::new();
    let present: std::collections::HashSet<&PathBuf> = stats.iter().map(|(p, _)| p).collect();
    offered.retain(|p, _| present.contains(p));
    for (path, stat) in stats {
        if offered.get(&path) != Some(&stat) {
            offered.insert(path.clone(), stat);
            due.push(path);
        }
    }
    due
}
