//! The watcher's decisions, with no I/O: which files are being written, which have
//! settled, which are ready to send. The loop in `watcher` feeds it events and scans
//! and does the sending; tests drive it directly with synthetic events and clocks.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind};
use tokio::time::Instant;
use tracing::warn;

use super::left_aside::{LEFT_ASIDE_MEMORY, LeftAside, Note};
use super::queue::ReadyQueue;
use super::{Seen, WatchConfig};
use crate::intake::display_name;
use crate::pattern::FilePattern;

/// A write mark this old means the close event was missed; the file is judged by settling.
const STALE_WRITE_MARK: Duration = Duration::from_secs(600);

/// Size and mtime of a file as first seen unchanged at `since`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observation {
    size: u64,
    mtime: SystemTime,
    since: Instant,
}

/// Records the latest stat of `c` in `seen` and says whether the file has settled: its
/// mtime is at least `settle` old, or the same size and mtime were seen `settle` ago.
pub(super) fn observe(
    seen: &mut HashMap<PathBuf, Observation>,
    c: &Seen,
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

/// What the watcher knows about the files of the folder; no I/O, so tests drive it directly.
pub(super) struct Tracker {
    /// The folder as configured: sent paths are `folder/name`, as `scan` builds them.
    folder: PathBuf,
    /// The folder in absolute form, as notify reports event paths.
    root: PathBuf,
    pattern: FilePattern,
    settle: Duration,
    /// Files a writer has open, with the time of their last write event.
    pub(super) writing: HashMap<PathBuf, Instant>,
    /// Scanned files waiting to settle (or for room downstream).
    pub(super) pending: HashMap<PathBuf, Observation>,
    /// Files sent in the current rescan cycle; scans skip them until the next cycle.
    sent: HashSet<PathBuf>,
    /// Files made ready by events, in arrival order, not yet sent.
    pub(super) ready: ReadyQueue,
    /// The last rename-to event, so the Both event that follows it does not queue twice.
    last_rename_to: Option<(usize, PathBuf)>,
    /// Files the pattern leaves aside: which were named in the log, which to look at.
    pub(super) left_aside: LeftAside,
}

impl Tracker {
    pub(super) fn new(cfg: &WatchConfig, root: PathBuf) -> Self {
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
            left_aside: LeftAside::new(LEFT_ASIDE_MEMORY),
        }
    }

    /// The name of an event path directly in the folder.
    fn direct_name<'p>(&self, event_path: &'p Path) -> Option<&'p str> {
        if event_path.parent() != Some(self.root.as_path()) {
            return None;
        }
        event_path.file_name()?.to_str()
    }

    /// The path to send for an event path, if it names a data file directly in the folder.
    fn local_path(&self, event_path: &Path) -> Option<PathBuf> {
        let name = self.direct_name(event_path)?;
        self.pattern.matches(name).then(|| self.folder.join(name))
    }

    /// Updates the state for one event; returns true when events were lost and the folder
    /// must be rescanned.
    pub(super) fn on_event(&mut self, event: &Event, now: Instant) -> bool {
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
            // A complete file the pattern leaves aside: named once it is known regular.
            if let Some(name) = self.direct_name(event_path)
                && self.pattern.leaves_aside(name)
            {
                self.left_aside.event(name, self.folder.join(name));
            }
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
        if let Some(name) = self.direct_name(event_path) {
            self.left_aside.forget(name);
        }
        if let Some(path) = self.local_path(event_path) {
            self.writing.remove(&path);
            self.pending.remove(&path);
            self.sent.remove(&path);
        }
    }

    /// A full scan listed exactly `names` left aside: what to log about them.
    pub(super) fn scanned_left_aside(&mut self, names: &[String]) -> Vec<Note> {
        self.left_aside.scanned(names)
    }

    /// The loop found that `path`, queued by an event, is a regular file: what to log.
    pub(super) fn checked_left_aside(&mut self, path: &Path) -> Option<Note> {
        let name = path.file_name()?.to_str()?;
        self.left_aside.seen(name)
    }

    /// Judges scanned files; returns those to send now, in the given order. Pending
    /// entries for files not among `candidates` are dropped (the files are gone).
    pub(super) fn offer(
        &mut self,
        candidates: Vec<Seen>,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Seen> {
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
                warn!(file = %display_name(&c.path), "no close event seen for a file written long ago; judging it by its size and mtime");
                self.writing.remove(&c.path);
            }
            if observe(&mut self.pending, &c, now, wall, self.settle) {
                ready.push(c);
            }
        }
        ready
    }

    pub(super) fn mark_sent(&mut self, path: &Path) {
        self.pending.remove(path);
        self.sent.insert(path.to_path_buf());
    }

    /// A periodic rescan starts a new cycle: files still present are offered again.
    pub(super) fn start_cycle(&mut self) {
        self.sent.clear();
    }

    /// Drops write marks of files that vanished without a remove event.
    pub(super) fn prune_stale_marks(&mut self, now: Instant) {
        self.writing
            .retain(|_, since| now.duration_since(*since) < STALE_WRITE_MARK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::test_support::{SETTLE, SLOW_RESCAN, config, name_of};
    use crate::watch::watcher::is_relevant;

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

    fn candidate(name: &str, mtime: SystemTime) -> Seen {
        Seen {
            path: Path::new("/data").join(name),
            size: 10,
            mtime,
        }
    }

    fn names(candidates: &[Seen]) -> Vec<String> {
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
        let grown = Seen { size: 20, ..fresh };
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

    fn remove() -> EventKind {
        EventKind::Remove(notify::event::RemoveKind::File)
    }

    /// Pops what events queued for a look and passes each as a regular file.
    fn check_all(t: &mut Tracker) -> Vec<Note> {
        let mut notes = Vec::new();
        while let Some(path) = t.left_aside.to_check.pop_front() {
            notes.extend(t.checked_left_aside(&path));
        }
        notes
    }

    fn named(name: &str) -> Note {
        Note::Named(name.to_owned())
    }

    #[test]
    fn a_file_left_aside_is_named_once_whether_an_event_or_a_scan_sees_it() {
        let mut t = tracker();
        let now = Instant::now();
        t.on_event(&event(close_write(), &["/data/c.dat"]), now);
        t.on_event(&event(rename(RenameMode::To), &["/data/c.dat"]), now);
        assert!(t.ready.is_empty() && t.writing.is_empty());
        assert_eq!(check_all(&mut t), [named("c.dat")]);
        // Touched again, then rescanned: nothing more to say.
        t.on_event(&event(close_write(), &["/data/c.dat"]), now);
        assert!(t.left_aside.to_check.is_empty());
        t.start_cycle();
        assert!(t.scanned_left_aside(&["c.dat".to_owned()]).is_empty());
        // A scan sees another one first; its event later adds nothing.
        assert_eq!(
            t.scanned_left_aside(&["c.dat".to_owned(), "readme.txt".to_owned()]),
            [named("readme.txt")]
        );
        t.on_event(&event(close_write(), &["/data/readme.txt"]), now);
        assert!(check_all(&mut t).is_empty());
    }

    #[test]
    fn hidden_temporary_matching_and_foreign_names_are_never_left_aside() {
        let mut t = tracker();
        let now = Instant::now();
        for p in [
            "/data/.c.dat",
            "/data/c.dat.tmp",
            "/data/c.dat.PART",
            "/data/c.dat~",
            "/data/ok.csv",
            "/data/sub/c.dat",
            "/other/c.dat",
        ] {
            t.on_event(&event(close_write(), &[p]), now);
        }
        assert!(t.left_aside.to_check.is_empty());
        assert_eq!(t.ready.order, [PathBuf::from("/data/ok.csv")]);
    }

    #[test]
    fn a_file_left_aside_that_leaves_and_comes_back_is_named_again() {
        let mut t = tracker();
        let now = Instant::now();
        t.on_event(&event(close_write(), &["/data/c.dat"]), now);
        assert_eq!(check_all(&mut t), [named("c.dat")]);
        t.on_event(&event(remove(), &["/data/c.dat"]), now);
        t.on_event(&event(close_write(), &["/data/c.dat"]), now);
        assert_eq!(check_all(&mut t), [named("c.dat")]);
        // Renamed to a data file name, then back.
        t.on_event(
            &event(rename(RenameMode::Both), &["/data/c.dat", "/data/c.csv"]),
            now,
        );
        assert_eq!(t.ready.order, [PathBuf::from("/data/c.csv")]);
        assert_eq!(
            t.scanned_left_aside(&["c.dat".to_owned()]),
            [named("c.dat")]
        );
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
