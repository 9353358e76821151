//! Watching the data folder: decides when a CSV file is completely written and hands its
//! path to the workers.
//!
//! A file is ready when the kernel reports that a writer closed it (`CloseWrite`) or that
//! it was renamed into the folder. Files found only by a scan (at startup, by the periodic
//! rescan, or after file events were lost) are taken once their size and mtime have stopped
//! changing for `settle`, and never while a writer is known to hold them open.
//!
//! The watcher is not the deduplication authority: every periodic rescan offers again the
//! files still present (that is how a file left behind by a failed attempt is retried), and
//! the dispatcher downstream skips paths it already has in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::FilePattern;

/// Capacity of the queue between notify's thread and the watch loop: half the kernel's
/// default inotify queue (16,384 events), about 1 MB at most. With 1,024, a backlog of
/// 2,000 files renamed in at once overflowed it and cost a rescan of the folder.
const EVENT_QUEUE: usize = 8192;
/// Events applied in one go before the loop sends what became ready.
const EVENT_BATCH: usize = 256;
/// A write mark this old means the close event was missed; the file is judged by settling.
const STALE_WRITE_MARK: Duration = Duration::from_secs(600);
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
pub struct Candidate {
    pub path: PathBuf,
    pub size: u64,
    pub mtime: SystemTime,
}

/// Lists the regular files directly in `folder` whose names match `pattern`, oldest mtime
/// first (ties by name). Directories, FIFOs, sockets and symlinks are skipped without being
/// opened; names that are not valid UTF-8 are skipped with a warning. Fails only when the
/// folder itself cannot be listed.
pub fn scan(folder: &Path, pattern: &FilePattern) -> io::Result<Vec<Candidate>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warn!(folder = %folder.display(), error = %e, "could not read a folder entry; skipping it");
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            warn!(folder = %folder.display(), name = ?os_name, "skipping a file whose name is not valid UTF-8");
            continue;
        };
        if pattern.matches(name) {
            found.extend(regular_file(folder.join(name)));
        }
    }
    sort_oldest_first(&mut found);
    Ok(found)
}

/// Scans `cfg.folder` once, waits until every candidate has settled (unchanged size and
/// mtime across `settle`, or an mtime already `settle` in the past) and returns the settled
/// paths in scan order. Files still changing after `4 × settle` are left out.
pub async fn settled_files(cfg: &WatchConfig) -> io::Result<Vec<PathBuf>> {
    let candidates = scan_in_background(&cfg.folder, &cfg.pattern).await?;
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
                info!(file = %file_name(path), "file is still changing; leaving it out");
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
/// data file on `out`. A file is sent when a writer closes it or it is renamed into the
/// folder, and files found by the startup scan or a rescan are sent once settled. A path
/// may be sent more than once (each periodic rescan re-offers files still present). Returns
/// `Err` only when the folder or the file watcher cannot be set up; returns `Ok` on shutdown
/// or when the receiver of `out` is gone.
pub async fn watch(
    cfg: WatchConfig,
    out: mpsc::Sender<PathBuf>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let root = check_folder(&cfg.folder)?;
    let overflow = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    // Dropped when this function returns, which stops notify's thread.
    let _watcher = start_watcher(&root, events_tx, Arc::clone(&overflow))?;
    // The watch is in place before the first scan, so no file falls between the two.
    let startup = scan_in_background(&cfg.folder, &cfg.pattern)
        .await
        .map_err(|source| WatchError::Folder {
            path: cfg.folder.clone(),
            source,
        })?;
    info!(folder = %cfg.folder.display(), files = startup.len(), "watching the data folder");
    let runner = Runner {
        tracker: Tracker::new(&cfg, root),
        cfg,
        events,
        events_open: true,
        overflow,
        out,
        shutdown,
        recheck_at: None,
    };
    runner.run(startup).await;
    Ok(())
}

fn check_folder(folder: &Path) -> Result<PathBuf, WatchError> {
    let path = folder.to_path_buf();
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(WatchError::NotADirectory { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(WatchError::FolderMissing { path });
        }
        Err(source) => return Err(WatchError::Folder { path, source }),
    }
    // notify reports event paths under the path it was given: make it absolute once so
    // event paths can be compared with it.
    std::path::absolute(folder).map_err(|source| WatchError::Folder { path, source })
}

fn start_watcher(
    root: &Path,
    events: mpsc::Sender<notify::Result<Event>>,
    overflow: Arc<AtomicBool>,
) -> Result<RecommendedWatcher, WatchError> {
    let handler = move |event: notify::Result<Event>| {
        if let Ok(e) = &event
            && !is_relevant(e)
        {
            return;
        }
        // Never block notify's thread: when the loop falls behind, ask it for a rescan.
        if let Err(TrySendError::Full(_)) = events.try_send(event) {
            overflow.store(true, Ordering::Release);
        }
    };
    let failed = |source| WatchError::Watcher {
        path: root.to_path_buf(),
        source,
    };
    let mut watcher =
        RecommendedWatcher::new(handler, notify::Config::default()).map_err(failed)?;
    watcher
        .watch(root, RecursiveMode::NonRecursive)
        .map_err(failed)?;
    Ok(watcher)
}

/// Events that can change what the watcher decides; opens, reads and metadata are noise
/// (workers reading files produce them) and are dropped on notify's thread.
fn is_relevant(event: &Event) -> bool {
    event.need_rescan()
        || matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Name(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        )
}

/// The watch loop: owns the event queue, the decisions and the output channel.
struct Runner {
    cfg: WatchConfig,
    tracker: Tracker,
    events: mpsc::Receiver<notify::Result<Event>>,
    /// False once notify's thread has gone; rescans are then the only source.
    events_open: bool,
    overflow: Arc<AtomicBool>,
    out: mpsc::Sender<PathBuf>,
    shutdown: CancellationToken,
    /// When to look again at scanned files that had not settled yet.
    recheck_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanKind {
    Startup,
    Periodic,
    Overflow,
}

impl Runner {
    async fn run(mut self, startup: Vec<Candidate>) {
        let period = self.cfg.rescan_interval.max(MIN_TICK);
        let mut rescan = tokio::time::interval_at(Instant::now() + period, period);
        rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
        if self.take_scan(ScanKind::Startup, startup).is_break() {
            return;
        }
        loop {
            let recheck_at = self.recheck_at;
            let step = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => ControlFlow::Break(()),
                event = self.events.recv(), if self.events_open => {
                    match event {
                        Some(event) => self.apply_batch(event),
                        None => {
                            warn!("the file watcher stopped; relying on periodic rescans");
                            self.events_open = false;
                        }
                    }
                    ControlFlow::Continue(())
                }
                _ = rescan.tick() => self.rescan(ScanKind::Periodic).await,
                () = sleep_until_opt(recheck_at), if recheck_at.is_some() => self.recheck().await,
                // Room downstream for files made ready by events: flushed below.
                // (The slot is released at once: the watcher is the queue's only sender.)
                open = has_room(&self.out), if !self.tracker.ready.is_empty() => {
                    if open {
                        ControlFlow::Continue(())
                    } else {
                        info!("the file queue was closed; stopping the watcher");
                        ControlFlow::Break(())
                    }
                }
            };
            if step.is_break() || self.flush_ready().await.is_break() {
                break;
            }
            if self.overflow.swap(false, Ordering::AcqRel) {
                warn!(folder = %self.cfg.folder.display(), "file events were lost; rescanning the folder");
                if self.rescan(ScanKind::Overflow).await.is_break() {
                    break;
                }
            }
        }
        debug!(folder = %self.cfg.folder.display(), "watcher stopped");
    }

    /// Applies one event and whatever else is already queued, so that the several events
    /// of one rename or write are judged together.
    fn apply_batch(&mut self, first: notify::Result<Event>) {
        let now = Instant::now();
        self.apply(first, now);
        for _ in 0..EVENT_BATCH {
            match self.events.try_recv() {
                Ok(event) => self.apply(event, now),
                Err(_) => break,
            }
        }
    }

    fn drain_events(&mut self) {
        let now = Instant::now();
        while let Ok(event) = self.events.try_recv() {
            self.apply(event, now);
        }
    }

    fn apply(&mut self, event: notify::Result<Event>, now: Instant) {
        let lost = match event {
            Ok(event) => self.tracker.on_event(&event, now),
            Err(e) => {
                warn!(error = %e, "the file watcher reported an error");
                true
            }
        };
        if lost {
            self.overflow.store(true, Ordering::Release);
        }
    }

    /// Sends the files made ready by events while there is room downstream. It never
    /// waits for room: the loop does, while it goes on draining events. Waiting here
    /// stalled the event queue whenever the workers were busy, so a burst of files
    /// overflowed it and each overflow cost a rescan and a settle wait.
    async fn flush_ready(&mut self) -> ControlFlow<()> {
        while let Some(path) = self.tracker.ready.pop_front() {
            // Opened for writing again after the close that queued it: wait for the next close.
            if self.tracker.writing.contains_key(&path) {
                continue;
            }
            if !is_regular_file(&path).await {
                continue;
            }
            match self.out.try_send(path.clone()) {
                Ok(()) => {
                    debug!(file = %file_name(&path), trigger = "event", "file is ready");
                    self.tracker.mark_sent(&path);
                }
                Err(TrySendError::Full(_)) => {
                    self.tracker.ready.push_front(path);
                    break;
                }
                Err(TrySendError::Closed(_)) => {
                    info!("the file queue was closed; stopping the watcher");
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    async fn rescan(&mut self, kind: ScanKind) -> ControlFlow<()> {
        let scanned = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return ControlFlow::Break(()),
            scanned = scan_in_background(&self.cfg.folder, &self.cfg.pattern) => scanned,
        };
        match scanned {
            Ok(candidates) => self.take_scan(kind, candidates),
            Err(e) => {
                warn!(folder = %self.cfg.folder.display(), error = %e, "could not scan the data folder");
                ControlFlow::Continue(())
            }
        }
    }

    /// Looks again at the scanned files that had not settled, without a full rescan.
    async fn recheck(&mut self) -> ControlFlow<()> {
        self.recheck_at = None;
        let paths: Vec<PathBuf> = self.tracker.pending.keys().cloned().collect();
        let restat = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return ControlFlow::Break(()),
            restat = stat_in_background(paths) => restat,
        };
        match restat {
            Ok(mut candidates) => {
                sort_oldest_first(&mut candidates);
                self.drain_events();
                let ready = self
                    .tracker
                    .offer(candidates, Instant::now(), SystemTime::now());
                self.send_scanned(ready)
            }
            Err(e) => {
                warn!(error = %e, "could not check the files waiting to settle");
                self.arm_recheck();
                ControlFlow::Continue(())
            }
        }
    }

    fn take_scan(&mut self, kind: ScanKind, candidates: Vec<Candidate>) -> ControlFlow<()> {
        // Apply events that arrived during the scan first, e.g. a Create for a new file.
        self.drain_events();
        let now = Instant::now();
        match kind {
            ScanKind::Startup => {}
            ScanKind::Periodic => self.tracker.start_cycle(),
            ScanKind::Overflow => self.tracker.writing.clear(),
        }
        let ready = self.tracker.offer(candidates, now, SystemTime::now());
        if kind == ScanKind::Periodic {
            self.tracker.prune_stale_marks(now);
        }
        self.send_scanned(ready)
    }

    /// Offers settled scanned files without waiting: with the queue downstream full they
    /// join the files made ready by events, sent as soon as there is room (waiting for
    /// the next recheck instead cost a settle period each time a burst filled the queue).
    fn send_scanned(&mut self, ready: Vec<Candidate>) -> ControlFlow<()> {
        let mut deferred = 0usize;
        for c in ready {
            match self.out.try_send(c.path.clone()) {
                Ok(()) => {
                    debug!(file = %file_name(&c.path), trigger = "scan", "file is ready");
                    self.tracker.mark_sent(&c.path);
                }
                Err(TrySendError::Full(_)) => {
                    deferred += 1;
                    self.tracker.pending.remove(&c.path);
                    self.tracker.ready.push_back(c.path);
                }
                Err(TrySendError::Closed(_)) => {
                    info!("the file queue was closed; stopping the watcher");
                    return ControlFlow::Break(());
                }
            }
        }
        if deferred > 0 {
            debug!(
                files = deferred,
                "the file queue is full; these files go as soon as there is room"
            );
        }
        self.arm_recheck();
        ControlFlow::Continue(())
    }

    fn arm_recheck(&mut self) {
        if self.tracker.pending.is_empty() {
            self.recheck_at = None;
        } else if self.recheck_at.is_none() {
            self.recheck_at = Some(Instant::now() + self.cfg.settle.max(MIN_TICK));
        }
    }
}

/// Waits until `out` has room for one path; false if it was closed.
async fn has_room(out: &mpsc::Sender<PathBuf>) -> bool {
    out.reserve().await.is_ok()
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Size and mtime of a file as first seen unchanged at `since`.
#[derive(Debug, Clone, Copy)]
struct Observation {
    size: u64,
    mtime: SystemTime,
    since: Instant,
}

/// Records the latest stat of `c` in `seen` and says whether the file has settled: its
/// mtime is at least `settle` old, or the same size and mtime were seen `settle` ago.
fn observe(
    seen: &mut HashMap<PathBuf, Observation>,
    c: &Candidate,
    now: Instant,
    wall: SystemTime,
    settle: Duration,
) -> bool {
    if wall.duration_since(c.mtime).is_ok_and(|age| age >= settle) {
        return true;
    }
    match seen.get(&c.path) {
        Some(o) if o.size == c.size && o.mtime == c.mtime => now.duration_since(o.since) >= settle,
        _ => {
            let first = Observation {
                size: c.size,
                mtime: c.mtime,
                since: now,
            };
            seen.insert(c.path.clone(), first);
            false
        }
    }
}

/// Paths waiting to be sent, in arrival order, each once. The set makes "already
/// queued?" constant-time: with a burst of thousands of files, scanning the queue for
/// each event made the watch loop fall behind its events (and the overflow cost a
/// rescan).
#[derive(Debug, Default)]
struct ReadyQueue {
    order: VecDeque<PathBuf>,
    queued: HashSet<PathBuf>,
}

impl ReadyQueue {
    /// Queues `path` at the back unless it is queued already.
    fn push_back(&mut self, path: PathBuf) {
        if self.queued.insert(path.clone()) {
            self.order.push_back(path);
        }
    }

    /// Puts back at the front a path just popped.
    fn push_front(&mut self, path: PathBuf) {
        if self.queued.insert(path.clone()) {
            self.order.push_front(path);
        }
    }

    fn pop_front(&mut self) -> Option<PathBuf> {
        let path = self.order.pop_front()?;
        self.queued.remove(&path);
        Some(path)
    }

    fn contains(&self, path: &Path) -> bool {
        self.queued.contains(path)
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    #[cfg(test)]
    fn clear(&mut self) {
        self.order.clear();
        self.queued.clear();
    }
}

/// What the watcher knows about the files of the folder; no I/O, so tests drive it directly.
struct Tracker {
    /// The folder as configured: sent paths are `folder/name`, as `scan` builds them.
    folder: PathBuf,
    /// The folder in absolute form, as notify reports event paths.
    root: PathBuf,
    pattern: FilePattern,
    settle: Duration,
    /// Files a writer has open, with the time of their last write event.
    writing: HashMap<PathBuf, Instant>,
    /// Scanned files waiting to settle (or for room downstream).
    pending: HashMap<PathBuf, Observation>,
    /// Files sent in the current rescan cycle; scans skip them until the next cycle.
    sent: HashSet<PathBuf>,
    /// Files made ready by events, in arrival order, not yet sent.
    ready: ReadyQueue,
    /// The last rename-to event, so the Both event that follows it does not queue twice.
    last_rename_to: Option<(usize, PathBuf)>,
}

impl Tracker {
    fn new(cfg: &WatchConfig, root: PathBuf) -> Self {
        Self {
            folder: cfg.folder.clone(),
            root,
            pattern: cfg.pattern.clone(),
            settle: cfg.settle,
            writing: HashMap::new(),
            pending: HashMap::new(),
            sent: HashSet::new(),
            ready: ReadyQueue::default(),
            last_rename_to: None,
        }
    }

    /// The path to send for an event path, if it names a data file directly in the folder.
    fn local_path(&self, event_path: &Path) -> Option<PathBuf> {
        if event_path.parent() != Some(self.root.as_path()) {
            return None;
        }
        let name = event_path.file_name()?.to_str()?;
        self.pattern.matches(name).then(|| self.folder.join(name))
    }

    /// Updates the state for one event; returns true when events were lost and the folder
    /// must be rescanned.
    fn on_event(&mut self, event: &Event, now: Instant) -> bool {
        if event.need_rescan() {
            return true;
        }
        match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                event.paths.iter().for_each(|p| self.trigger(p));
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                if let Some(to) = event.paths.first() {
                    self.trigger(to);
                    self.last_rename_to = event.tracker().map(|t| (t, to.clone()));
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(from) = event.paths.first() {
                    self.forget(from);
                }
                if let Some(to) = event.paths.get(1) {
                    let queued_by_to = matches!(
                        (&self.last_rename_to, event.tracker()),
                        (Some((t, p)), Some(tracker)) if *t == tracker && p == to
                    );
                    if !queued_by_to {
                        self.trigger(to);
                    }
                }
                self.last_rename_to = None;
            }
            EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => {
                event.paths.iter().for_each(|p| self.forget(p));
            }
            EventKind::Create(_) => {
                for p in &event.paths {
                    if let Some(path) = self.local_path(p) {
                        // A new file under a name already sent is a new file.
                        self.sent.remove(&path);
                        self.mark_writing(path, now);
                    }
                }
            }
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                for p in &event.paths {
                    if let Some(path) = self.local_path(p) {
                        self.mark_writing(path, now);
                    }
                }
            }
            _ => {}
        }
        false
    }

    fn mark_writing(&mut self, path: PathBuf, now: Instant) {
        self.pending.remove(&path);
        self.writing.insert(path, now);
    }

    fn trigger(&mut self, event_path: &Path) {
        let Some(path) = self.local_path(event_path) else {
            return;
        };
        self.writing.remove(&path);
        self.pending.remove(&path);
        self.ready.push_back(path);
    }

    /// The file left the folder (removed or renamed away).
    fn forget(&mut self, event_path: &Path) {
        if event_path == self.root {
            warn!(folder = %self.folder.display(), "the data folder was removed or renamed");
            return;
        }
        if let Some(path) = self.local_path(event_path) {
            self.writing.remove(&path);
            self.pending.remove(&path);
            self.sent.remove(&path);
        }
    }

    /// Judges scanned files; returns those to send now, in the given order. Pending
    /// entries for files not among `candidates` are dropped (the files are gone).
    fn offer(
        &mut self,
        candidates: Vec<Candidate>,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Candidate> {
        let offered: HashSet<PathBuf> = candidates.iter().map(|c| c.path.clone()).collect();
        self.pending.retain(|path, _| offered.contains(path));
        let mut ready = Vec::new();
        for c in candidates {
            if self.sent.contains(&c.path) || self.ready.contains(&c.path) {
                self.pending.remove(&c.path);
                continue;
            }
            if let Some(since) = self.writing.get(&c.path) {
                if now.duration_since(*since) < STALE_WRITE_MARK {
                    self.pending.remove(&c.path);
                    continue;
                }
                warn!(file = %file_name(&c.path), "no close event seen for a file written long ago; judging it by its size and mtime");
                self.writing.remove(&c.path);
            }
            if observe(&mut self.pending, &c, now, wall, self.settle) {
                ready.push(c);
            }
        }
        ready
    }

    fn mark_sent(&mut self, path: &Path) {
        self.pending.remove(path);
        self.sent.insert(path.to_path_buf());
    }

    /// A periodic rescan starts a new cycle: files still present are offered again.
    fn start_cycle(&mut self) {
        self.sent.clear();
    }

    /// Drops write marks of files that vanished without a remove event.
    fn prune_stale_marks(&mut self, now: Instant) {
        self.writing
            .retain(|_, since| now.duration_since(*since) < STALE_WRITE_MARK);
    }
}

/// Stats `path` without following symlinks; `Some` only for a regular file.
fn regular_file(path: PathBuf) -> Option<Candidate> {
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => match meta.modified() {
            Ok(mtime) => Some(Candidate {
                size: meta.len(),
                mtime,
                path,
            }),
            Err(e) => {
                warn!(file = %file_name(&path), error = %e, "cannot read the modification time; skipping the file");
                None
            }
        },
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            warn!(file = %file_name(&path), error = %e, "cannot read file metadata; skipping the file");
            None
        }
    }
}

async fn is_regular_file(path: &Path) -> bool {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_file() => true,
        Ok(_) => {
            debug!(file = %file_name(path), "not a regular file; ignoring it");
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            debug!(file = %file_name(path), "file is gone before it could be sent");
            false
        }
        Err(e) => {
            warn!(file = %file_name(path), error = %e, "cannot read file metadata; skipping the file");
            false
        }
    }
}

fn sort_oldest_first(files: &mut [Candidate]) {
    files.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.path.cmp(&b.path)));
}

/// Runs `scan` on the blocking pool: listing a folder on a network share can stall.
async fn scan_in_background(folder: &Path, pattern: &FilePattern) -> io::Result<Vec<Candidate>> {
    let (folder, pattern) = (folder.to_path_buf(), pattern.clone());
    tokio::task::spawn_blocking(move || scan(&folder, &pattern))
        .await
        .map_err(io::Error::other)?
}

/// Stats `paths` on the blocking pool, keeping the regular files still present.
async fn stat_in_background(paths: Vec<PathBuf>) -> io::Result<Vec<Candidate>> {
    tokio::task::spawn_blocking(move || paths.into_iter().filter_map(regular_file).collect())
        .await
        .map_err(io::Error::other)
}

fn file_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs::{self, File, FileTimes};
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use tokio::task::JoinHandle;
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(5);
    const SETTLE: Duration = Duration::from_millis(200);
    const SLOW_RESCAN: Duration = Duration::from_secs(60);
    const FAST_RESCAN: Duration = Duration::from_millis(100);
    /// A file present before each watch test starts; its arrival proves the watch is live.
    const SYNC: &str = "000-sync.csv";

    fn csv_pattern() -> FilePattern {
        FilePattern::new("*.csv").expect("*.csv is a valid pattern")
    }

    fn config(folder: &Path, settle: Duration, rescan_interval: Duration) -> WatchConfig {
        WatchConfig {
            folder: folder.to_path_buf(),
            pattern: csv_pattern(),
            settle,
            rescan_interval,
        }
    }

    fn write_file(path: &Path, content: &[u8]) {
        let mut f = File::create(path).expect("create test file");
        f.write_all(content).expect("write test file");
    }

    fn write_aged(path: &Path, content: &[u8], age: Duration) {
        write_file(path, content);
        set_mtime(path, SystemTime::now() - age);
    }

    fn set_mtime(path: &Path, mtime: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_times(FileTimes::new().set_modified(mtime)))
            .expect("set mtime");
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo failed: {}", io::Error::last_os_error());
    }

    fn name_of(path: &Path) -> String {
        file_name(path).into_owned()
    }

    struct Harness {
        rx: mpsc::Receiver<PathBuf>,
        shutdown: CancellationToken,
        task: JoinHandle<Result<(), WatchError>>,
    }

    impl Harness {
        /// Starts `watch` on `dir` and returns once its startup scan has delivered SYNC.
        async fn start(dir: &Path, settle: Duration, rescan: Duration) -> Self {
            write_aged(&dir.join(SYNC), b"sync\n", Duration::from_secs(3600));
            let (tx, rx) = mpsc::channel(64);
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(watch(config(dir, settle, rescan), tx, shutdown.clone()));
            let mut h = Self { rx, shutdown, task };
            let seen = h.wait_for(SYNC).await;
            assert!(seen.is_empty(), "unexpected files before sync: {seen:?}");
            fs::remove_file(dir.join(SYNC)).expect("remove sync file");
            h
        }

        /// Receives until `name` arrives (panics after WAIT); returns the other names seen.
        async fn wait_for(&mut self, name: &str) -> Vec<String> {
            let mut others = Vec::new();
            let found = timeout(WAIT, async {
                while let Some(path) = self.rx.recv().await {
                    let n = name_of(&path);
                    if n == name {
                        return true;
                    }
                    others.push(n);
                }
                false
            })
            .await;
            assert_eq!(found, Ok(true), "{name} was not sent; saw {others:?}");
            others.retain(|n| n != SYNC);
            others
        }

        /// Everything received during `window`, sync file excluded.
        async fn received_within(&mut self, window: Duration) -> Vec<String> {
            let mut names = Vec::new();
            let _ = timeout(window, async {
                while let Some(path) = self.rx.recv().await {
                    names.push(name_of(&path));
                }
            })
            .await;
            names.retain(|n| n != SYNC);
            names
        }

        async fn stop(self) {
            self.shutdown.cancel();
            let result = timeout(WAIT, self.task).await;
            assert!(
                matches!(result, Ok(Ok(Ok(())))),
                "watch did not stop cleanly: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn file_written_in_place_is_sent_once_after_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Harness::start(dir.path(), SETTLE, SLOW_RESCAN).await;

        // Created and held open before any byte is written, then written: a writer that
        // is slow to start must not be taken on its Create event.
        let mut f = File::create(dir.path().join("inplace.csv")).expect("create");
        let early = h.received_within(SETTLE * 2).await;
        assert!(early.is_empty(), "sent on create: {early:?}");
        f.write_all(b"a,b\n1,2\n").expect("write");
        f.flush().expect("flush");
        let early = h.received_within(SETTLE * 2).await;
        assert!(early.is_empty(), "sent while still open: {early:?}");

        drop(f);
        let before = h.wait_for("inplace.csv").await;
        assert!(before.is_empty(), "unexpected files: {before:?}");
        let again = h.received_within(Duration::from_millis(700)).await;
        assert!(again.is_empty(), "sent more than once: {again:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn renamed_in_files_are_sent_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let mut h = Harness::start(dir.path(), SETTLE, SLOW_RESCAN).await;

        let tmp = dir.path().join("local.csv.tmp");
        write_file(&tmp, b"a,b\n1,2\n");
        fs::rename(&tmp, dir.path().join("local.csv")).expect("rename in folder");
        let before = h.wait_for("local.csv").await;
        assert!(before.is_empty(), "unexpected files: {before:?}");

        let outside = elsewhere.path().join("moved.csv");
        write_file(&outside, b"a,b\n3,4\n");
        fs::rename(&outside, dir.path().join("moved.csv")).expect("rename into folder");
        let before = h.wait_for("moved.csv").await;
        assert!(before.is_empty(), "unexpected files: {before:?}");

        // One rename yields both a To and a Both event: still one send per file.
        let again = h.received_within(Duration::from_millis(700)).await;
        assert!(again.is_empty(), "sent more than once: {again:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn slowly_written_open_file_is_sent_only_after_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Harness::start(dir.path(), SETTLE, FAST_RESCAN).await;

        let path = dir.path().join("slow.csv");
        let mut f = File::create(&path).expect("create");
        let chunk = b"2024-01-01T00:00:00Z,1.0\n";
        let pieces = 5;
        for _ in 0..pieces {
            f.write_all(chunk).expect("write");
            f.flush().expect("flush");
            // Pauses longer than `settle`, with rescans every 100 ms in between.
            let seen = h.received_within(Duration::from_millis(300)).await;
            assert!(
                !seen.iter().any(|n| n == "slow.csv"),
                "sent while still open"
            );
        }
        drop(f);
        h.wait_for("slow.csv").await;
        let size = fs::metadata(&path).expect("stat").len();
        assert_eq!(size, (chunk.len() * pieces) as u64);
        h.stop().await;
    }

    #[tokio::test]
    async fn hidden_temp_unmatched_and_special_files_are_never_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut h = Harness::start(d, SETTLE, FAST_RESCAN).await;

        write_file(&d.join(".hidden.csv"), b"x\n");
        write_file(&d.join("temp.csv.tmp"), b"x\n");
        write_file(&d.join("part.csv.part"), b"x\n");
        write_file(&d.join("notes.txt"), b"x\n");
        fs::create_dir(d.join("d.csv")).expect("mkdir");
        mkfifo(&d.join("f.csv"));
        let target = elsewhere.path().join("target.csv");
        write_file(&target, b"x\n");
        std::os::unix::fs::symlink(&target, d.join("l.csv")).expect("symlink");
        // Renamed in, so they reach the event path too, not only scans.
        std::os::unix::fs::symlink(&target, elsewhere.path().join("m.csv")).expect("symlink");
        fs::rename(elsewhere.path().join("m.csv"), d.join("m.csv")).expect("rename symlink");
        fs::create_dir(elsewhere.path().join("e.csv")).expect("mkdir");
        fs::rename(elsewhere.path().join("e.csv"), d.join("e.csv")).expect("rename dir");

        write_file(&d.join("ok.csv"), b"a,b\n1,2\n");
        let mut seen = h.wait_for("ok.csv").await;
        // Several rescans and rechecks happen in this window.
        seen.extend(h.received_within(Duration::from_secs(1)).await);
        seen.retain(|n| n != "ok.csv");
        assert!(seen.is_empty(), "sent files that must be ignored: {seen:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn startup_scan_sends_present_files_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_aged(&d.join("b-old.csv"), b"x\n", Duration::from_secs(7200));
        write_aged(&d.join("a-newer.csv"), b"x\n", Duration::from_secs(3600));
        write_file(&d.join("c-fresh.csv"), b"x\n");
        let (tx, mut rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        // With a 60 s rescan, the fresh file can only come from the settle recheck.
        let task = tokio::spawn(watch(config(d, SETTLE, SLOW_RESCAN), tx, shutdown.clone()));

        let mut names = Vec::new();
        for _ in 0..3 {
            let path = timeout(WAIT, rx.recv()).await.expect("file in time");
            names.push(name_of(&path.expect("channel open")));
        }
        assert_eq!(names, ["b-old.csv", "a-newer.csv", "c-fresh.csv"]);

        shutdown.cancel();
        let result = timeout(WAIT, task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }

    /// Receives `n` names from `rx`, each within WAIT.
    async fn receive(rx: &mut mpsc::Receiver<PathBuf>, n: usize) -> Vec<String> {
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            match timeout(WAIT, rx.recv()).await {
                Ok(Some(path)) => names.push(name_of(&path)),
                other => panic!("only {} of {n} files sent ({other:?})", names.len()),
            }
        }
        names
    }

    /// Settled files found by a scan while the queue downstream is full go as soon as
    /// there is room, not a settle period later (30 s here, longer than WAIT).
    #[tokio::test]
    async fn scanned_files_beyond_a_full_queue_go_as_soon_as_there_is_room() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..5 {
            write_aged(
                &dir.path().join(format!("old-{i}.csv")),
                b"x\n",
                Duration::from_secs(3600 - i),
            );
        }
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let cfg = config(dir.path(), Duration::from_secs(30), SLOW_RESCAN);
        let task = tokio::spawn(watch(cfg, tx, shutdown.clone()));

        let names = receive(&mut rx, 5).await;
        assert_eq!(
            names,
            (0..5).map(|i| format!("old-{i}.csv")).collect::<Vec<_>>()
        );
        shutdown.cancel();
        let result = timeout(WAIT, task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }

    /// A backlog renamed in while nobody takes files (a queue of one, workers busy)
    /// must neither stall the event loop nor overflow its queue: every file is sent
    /// once there is room, with none left to a rescan and a settle wait (30 s here).
    #[tokio::test]
    async fn a_burst_renamed_in_while_the_queue_is_full_is_sent_without_a_settle_wait() {
        const FILES: usize = 1_500;
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        write_aged(&dir.path().join(SYNC), b"sync\n", Duration::from_secs(3600));
        let (tx, mut rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let cfg = config(dir.path(), Duration::from_secs(30), SLOW_RESCAN);
        let task = tokio::spawn(watch(cfg, tx, shutdown.clone()));
        assert_eq!(receive(&mut rx, 1).await, [SYNC]);

        for i in 0..FILES {
            let outside = elsewhere.path().join(format!("b-{i:04}.csv"));
            write_file(&outside, b"a,b\n1,2\n");
            fs::rename(&outside, dir.path().join(format!("b-{i:04}.csv"))).expect("rename in");
        }
        let mut names = receive(&mut rx, FILES).await;
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FILES, "a file was sent twice");
        shutdown.cancel();
        let result = timeout(WAIT, task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }

    #[tokio::test]
    async fn periodic_rescan_offers_files_still_present_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Harness::start(dir.path(), SETTLE, FAST_RESCAN).await;
        write_aged(
            &dir.path().join("left.csv"),
            b"x\n",
            Duration::from_secs(60),
        );
        h.wait_for("left.csv").await;
        h.wait_for("left.csv").await;
        h.stop().await;
    }

    #[tokio::test]
    async fn watch_fails_at_startup_without_a_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, _rx) = mpsc::channel(1);
        let missing = dir.path().join("missing");
        let err = watch(
            config(&missing, SETTLE, SLOW_RESCAN),
            tx.clone(),
            CancellationToken::new(),
        )
        .await
        .expect_err("missing folder");
        assert!(matches!(err, WatchError::FolderMissing { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");

        let file = dir.path().join("file.csv");
        write_file(&file, b"x\n");
        let err = watch(
            config(&file, SETTLE, SLOW_RESCAN),
            tx,
            CancellationToken::new(),
        )
        .await
        .expect_err("not a directory");
        assert!(matches!(err, WatchError::NotADirectory { .. }), "{err:?}");
    }

    #[test]
    fn scan_lists_regular_matching_files_by_mtime_then_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let base = SystemTime::now() - Duration::from_secs(3600);
        for (name, secs, content) in [
            ("a.csv", 30, &b"aaa"[..]),
            ("b.csv", 0, b"b"),
            ("d.csv", 60, b"dd"),
            ("C.CSV", 60, b"c"),
            ("e.txt", 0, b"e"),
            (".f.csv", 0, b"f"),
        ] {
            write_file(&d.join(name), content);
            set_mtime(&d.join(name), base + Duration::from_secs(secs));
        }
        fs::create_dir(d.join("g.csv")).expect("mkdir");
        mkfifo(&d.join("h.csv"));
        write_aged(
            &elsewhere.path().join("t.csv"),
            b"t",
            Duration::from_secs(7200),
        );
        std::os::unix::fs::symlink(elsewhere.path().join("t.csv"), d.join("i.csv"))
            .expect("symlink");

        let found = scan(d, &csv_pattern()).expect("scan");
        let names: Vec<String> = found.iter().map(|c| name_of(&c.path)).collect();
        assert_eq!(names, ["b.csv", "a.csv", "C.CSV", "d.csv"]);
        assert_eq!(found[1].size, 3);
        assert_eq!(found[1].path, d.join("a.csv"));
        assert_eq!(found[1].mtime, base + Duration::from_secs(30));
    }

    #[test]
    fn scan_of_missing_folder_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = scan(&dir.path().join("nope"), &csv_pattern()).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

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

    // Tracker: the decisions alone, with synthetic events and injected clocks.

    fn tracker() -> Tracker {
        let cfg = config(Path::new("/data"), SETTLE, SLOW_RESCAN);
        Tracker::new(&cfg, PathBuf::from("/data"))
    }

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    fn close_write() -> EventKind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    }

    fn create() -> EventKind {
        EventKind::Create(notify::event::CreateKind::File)
    }

    fn rename(mode: RenameMode) -> EventKind {
        EventKind::Modify(ModifyKind::Name(mode))
    }

    fn candidate(name: &str, mtime: SystemTime) -> Candidate {
        Candidate {
            path: Path::new("/data").join(name),
            size: 10,
            mtime,
        }
    }

    fn names(candidates: &[Candidate]) -> Vec<String> {
        candidates.iter().map(|c| name_of(&c.path)).collect()
    }

    #[test]
    fn create_alone_is_not_ready_but_close_write_is() {
        let mut t = tracker();
        let now = Instant::now();
        assert!(!t.on_event(&event(create(), &["/data/x.csv"]), now));
        assert!(t.ready.is_empty());
        assert!(t.writing.contains_key(Path::new("/data/x.csv")));
        t.on_event(&event(close_write(), &["/data/x.csv"]), now);
        assert_eq!(t.ready.order, [PathBuf::from("/data/x.csv")]);
        assert!(t.writing.is_empty());
    }

    #[test]
    fn events_outside_the_folder_or_pattern_are_ignored() {
        let mut t = tracker();
        let now = Instant::now();
        for p in [
            "/data/sub/x.csv",
            "/other/x.csv",
            "/data/x.txt",
            "/data/x.csv.tmp",
        ] {
            t.on_event(&event(close_write(), &[p]), now);
            t.on_event(&event(create(), &[p]), now);
        }
        assert!(t.ready.is_empty());
        assert!(t.writing.is_empty());
    }

    #[test]
    fn rename_to_and_both_queue_the_destination_once() {
        let mut t = tracker();
        let now = Instant::now();
        let to = event(rename(RenameMode::To), &["/data/x.csv"]).set_tracker(7);
        let both = event(
            rename(RenameMode::Both),
            &["/data/x.csv.tmp", "/data/x.csv"],
        )
        .set_tracker(7);
        t.on_event(&to, now);
        assert_eq!(t.ready.order, [PathBuf::from("/data/x.csv")]);
        // The loop may send between the two events of one rename.
        t.ready.clear();
        t.on_event(&both, now);
        assert!(t.ready.is_empty(), "queued twice: {:?}", t.ready.order);

        // A Both event on its own (other backends) still queues its destination.
        let mut t = tracker();
        t.on_event(&event(create(), &["/data/a.csv"]), now);
        t.on_event(
            &event(rename(RenameMode::Both), &["/data/a.csv", "/data/b.csv"]),
            now,
        );
        assert_eq!(t.ready.order, [PathBuf::from("/data/b.csv")]);
        assert!(t.writing.is_empty(), "the source's write mark is cleared");
    }

    #[test]
    fn overflow_flag_and_errors_ask_for_a_rescan() {
        let mut t = tracker();
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(t.on_event(&overflow, Instant::now()));
        assert!(is_relevant(&overflow));
        assert!(!is_relevant(&event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/data/x.csv"]
        )));
    }

    #[test]
    fn scanned_file_waits_for_settle_unless_already_old() {
        let mut t = tracker();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let fresh = candidate("fresh.csv", wall);
        let old = candidate("old.csv", wall - SETTLE);
        let ready = t.offer(vec![old.clone(), fresh.clone()], now, wall);
        assert_eq!(ready, [old]);
        assert!(t.pending.contains_key(&fresh.path));

        let ready = t.offer(vec![fresh.clone()], now + SETTLE / 2, wall);
        assert!(ready.is_empty());
        let ready = t.offer(vec![fresh.clone()], now + SETTLE, wall);
        assert_eq!(names(&ready), ["fresh.csv"]);

        // A change restarts the wait.
        let mut t = tracker();
        t.offer(vec![fresh.clone()], now, wall);
        let grown = Candidate { size: 20, ..fresh };
        assert!(t.offer(vec![grown], now + SETTLE, wall).is_empty());
    }

    #[test]
    fn scan_skips_files_being_written_until_the_mark_is_stale_or_cleared() {
        let mut t = tracker();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let old = candidate("x.csv", wall - Duration::from_secs(60));
        t.on_event(&event(create(), &["/data/x.csv"]), now);
        assert!(t.offer(vec![old.clone()], now, wall).is_empty());
        assert!(t.pending.is_empty());

        let later = now + STALE_WRITE_MARK + Duration::from_secs(1);
        assert_eq!(names(&t.offer(vec![old.clone()], later, wall)), ["x.csv"]);

        let mut t = tracker();
        t.on_event(&event(create(), &["/data/x.csv"]), now);
        t.writing.clear(); // what an overflow rescan does
        assert_eq!(t.offer(vec![old.clone()], now, wall), [old]);
    }

    #[test]
    fn sent_files_are_offered_again_only_in_the_next_cycle() {
        let mut t = tracker();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let old = candidate("x.csv", wall - Duration::from_secs(60));
        assert_eq!(names(&t.offer(vec![old.clone()], now, wall)), ["x.csv"]);
        t.mark_sent(&old.path);
        assert!(t.offer(vec![old.clone()], now, wall).is_empty());
        t.start_cycle();
        assert_eq!(t.offer(vec![old.clone()], now, wall), [old]);
    }

    #[test]
    fn vanished_pending_files_are_forgotten() {
        let mut t = tracker();
        let (now, wall) = (Instant::now(), SystemTime::now());
        t.offer(vec![candidate("x.csv", wall)], now, wall);
        assert_eq!(t.pending.len(), 1);
        t.offer(Vec::new(), now, wall);
        assert!(t.pending.is_empty());
    }
}
