//! The I/O around the [`Tracker`]: notify's watch on the folder, and the loop that feeds
//! it events, rescans and rechecks, and sends ready files downstream without ever
//! blocking on a full queue.

use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::scan::{
    Listing, is_regular_file, list_in_background, sort_oldest_first, stat_in_background,
};
use super::tracker::Tracker;
use super::{MIN_TICK, Seen, WatchConfig, WatchError};
use crate::intake::display_name;

/// Capacity of the queue between notify's thread and the watch loop: half the kernel's
/// default inotify queue (16,384 events), about 1 MB at most. With 1,024, a backlog of
/// 2,000 files renamed in at once overflowed it and cost a rescan of the folder.
pub(super) const EVENT_QUEUE: usize = 8192;
/// Events applied in one go before the loop sends what became ready.
const EVENT_BATCH: usize = 256;

/// Checks that `folder` is a directory and returns it in absolute form.
pub(super) fn check_folder(folder: &Path) -> Result<PathBuf, WatchError> {
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

/// Starts notify's watch on `root`. Relevant events go to `events` without ever blocking
/// notify's thread; when `events` is full, `overflow` is set instead.
pub(super) fn start_watcher(
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
pub(super) fn is_relevant(event: &Event) -> bool {
    event.need_rescan()
        || matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Name(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        )
}

/// The watch loop: owns the event queue, the decisions and the output channel, on
/// which it sends each ready path as a `T` (a path, or a source's candidate).
pub(super) struct Runner<T> {
    cfg: WatchConfig,
    tracker: Tracker,
    events: mpsc::Receiver<notify::Result<Event>>,
    /// False once notify's thread has gone; rescans are then the only source.
    events_open: bool,
    overflow: Arc<AtomicBool>,
    out: mpsc::Sender<T>,
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

impl<T: From<PathBuf>> Runner<T> {
    /// The loop for `cfg.folder`, whose absolute form is `root`; not started yet.
    pub(super) fn new(
        cfg: WatchConfig,
        root: PathBuf,
        events: mpsc::Receiver<notify::Result<Event>>,
        overflow: Arc<AtomicBool>,
        out: mpsc::Sender<T>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            tracker: Tracker::new(&cfg, root),
            cfg,
            events,
            events_open: true,
            overflow,
            out,
            shutdown,
            recheck_at: None,
        }
    }

    /// Takes the `startup` scan, then runs until shutdown or until `out` is closed.
    pub(super) async fn run(mut self, startup: Listing) {
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
            if step.is_break()
                || self.flush_ready().await.is_break()
                || self.name_left_aside().await.is_break()
            {
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
            match self.out.try_send(T::from(path.clone())) {
                Ok(()) => {
                    debug!(file = %display_name(&path), trigger = "event", "file is ready");
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
            scanned = list_in_background(&self.cfg.folder, &self.cfg.pattern) => scanned,
        };
        match scanned {
            Ok(candidates) => self.take_scan(kind, candidates),
            Err(e) => {
                warn!(folder = %self.cfg.folder.display(), error = %e, "could not scan the data folder");
                ControlFlow::Continue(())
            }
        }
    }

    /// Names in the log the files left aside that events reported, once each, after one
    /// look (on the blocking pool) that they are regular files.
    async fn name_left_aside(&mut self) -> ControlFlow<()> {
        if self.tracker.left_aside.to_check.is_empty() {
            return ControlFlow::Continue(());
        }
        let mut paths = Vec::with_capacity(self.tracker.left_aside.to_check.len());
        while let Some(path) = self.tracker.left_aside.to_check.pop_front() {
            paths.push(path);
        }
        let regular = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return ControlFlow::Break(()),
            regular = stat_in_background(paths) => regular,
        };
        match regular {
            Ok(files) => {
                for file in files {
                    if let Some(note) = self.tracker.checked_left_aside(&file.path) {
                        note.log(&self.cfg.pattern);
                    }
                }
            }
            // The next scan names them instead.
            Err(e) => debug!(error = %e, "could not look at files left aside"),
        }
        ControlFlow::Continue(())
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

    fn take_scan(&mut self, kind: ScanKind, listing: Listing) -> ControlFlow<()> {
        let Listing {
            candidates,
            left_aside,
        } = listing;
        // Apply events that arrived during the scan first, e.g. a Create for a new file.
        self.drain_events();
        for note in self.tracker.scanned_left_aside(&left_aside) {
            note.log(&self.cfg.pattern);
        }
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
    fn send_scanned(&mut self, ready: Vec<Seen>) -> ControlFlow<()> {
        let mut deferred = 0usize;
        for c in ready {
            match self.out.try_send(T::from(c.path.clone())) {
                Ok(()) => {
                    debug!(file = %display_name(&c.path), trigger = "scan", "file is ready");
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
async fn has_room<T>(out: &mpsc::Sender<T>) -> bool {
    out.reserve().await.is_ok()
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::Write;
    use std::time::Duration;

    use tokio::task::JoinHandle;
    use tokio::time::timeout;

    use super::*;
    use crate::watch::test_support::{
        FAST_RESCAN, SETTLE, SLOW_RESCAN, SYNC, WAIT, config, mkfifo, name_of, write_aged,
        write_file,
    };
    use crate::watch::watch;

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
        let (tx, mut rx) = mpsc::channel::<PathBuf>(64);
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
        let (tx, _rx) = mpsc::channel::<PathBuf>(1);
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
}
