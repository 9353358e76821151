//! Files left aside by `FILE_PATTERN`: which names to log, with no I/O.
//!
//! A regular file that is neither hidden nor temporary and matches no glob would wait in
//! the data folder for ever without a word. The watcher names each such file in the log
//! once: a name is remembered from the first line until the file leaves the folder (a
//! remove or rename event, or a full scan that no longer lists it), so a file that goes
//! and comes back is named again, and a file that stays is never named twice. The
//! memory holds at most `cap` names; past that, one "more files left aside" line is
//! logged for the whole run and further names are not logged until room frees up.

use std::collections::HashSet;
use std::path::PathBuf;

use tracing::info;

use super::queue::ReadyQueue;
use crate::pattern::FilePattern;

/// Names remembered at most: about 1 MB with typical names.
pub(super) const LEFT_ASIDE_MEMORY: usize = 10_000;

/// What to log about files left aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    /// Name this file, for the first time.
    Named(String),
    /// The memory is full: say once that further files are left aside unnamed.
    More,
}

impl Note {
    /// Writes the note as one INFO line naming the pattern.
    pub(super) fn log(&self, pattern: &FilePattern) {
        match self {
            Self::Named(name) => info!(file = %name, pattern = %pattern,
                "file left aside: its name matches no FILE_PATTERN glob"),
            Self::More => info!(pattern = %pattern, named = LEFT_ASIDE_MEMORY,
                "more files left aside: their names match no FILE_PATTERN glob; \
                 not naming them one by one"),
        }
    }
}

/// The names already logged as left aside, and those an event reported that still
/// need a look (is it a regular file?) before they are logged.
#[derive(Debug)]
pub(super) struct LeftAside {
    logged: HashSet<String>,
    cap: usize,
    /// Whether the single [`Note::More`] of the run has been given.
    told_more: bool,
    /// Paths from events, checked by the loop (I/O) and then passed to [`Self::seen`].
    pub(super) to_check: ReadyQueue,
}

impl LeftAside {
    /// An empty memory of at most `cap` names.
    pub(super) fn new(cap: usize) -> Self {
        Self {
            logged: HashSet::new(),
            cap,
            told_more: false,
            to_check: ReadyQueue::default(),
        }
    }

    /// A regular file named `name` is left aside: what to log, if anything.
    pub(super) fn seen(&mut self, name: &str) -> Option<Note> {
        if self.logged.contains(name) {
            return None;
        }
        if self.logged.len() >= self.cap {
            return (!std::mem::replace(&mut self.told_more, true)).then_some(Note::More);
        }
        self.logged.insert(name.to_owned());
        Some(Note::Named(name.to_owned()))
    }

    /// A full listing of the folder found exactly `names` left aside: names no longer
    /// there are forgotten, new ones are noted, in the given order.
    pub(super) fn scanned(&mut self, names: &[String]) -> Vec<Note> {
        if !self.logged.is_empty() {
            let present: HashSet<&str> = names.iter().map(String::as_str).collect();
            self.logged.retain(|n| present.contains(n.as_str()));
        }
        names.iter().filter_map(|n| self.seen(n)).collect()
    }

    /// An event reported `path` (named `name`) complete: queue it for a look unless it
    /// was logged already. The queue is bounded like the memory; a periodic scan finds
    /// whatever does not fit.
    pub(super) fn event(&mut self, name: &str, path: PathBuf) {
        if !self.logged.contains(name) && self.to_check.len() < self.cap {
            self.to_check.push_back(path);
        }
    }

    /// The file named `name` left the folder; if it comes back, it is named again.
    pub(super) fn forget(&mut self, name: &str) {
        self.logged.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn named(name: &str) -> Note {
        Note::Named(name.to_owned())
    }

    #[test]
    fn each_name_is_noted_once_while_it_stays() {
        let mut m = LeftAside::new(LEFT_ASIDE_MEMORY);
        assert_eq!(m.seen("c.dat"), Some(named("c.dat")));
        assert_eq!(m.seen("c.dat"), None);
        assert_eq!(
            m.scanned(&names(&["c.dat", "readme.txt"])),
            [named("readme.txt")]
        );
        assert!(m.scanned(&names(&["c.dat", "readme.txt"])).is_empty());
    }

    #[test]
    fn a_name_that_leaves_and_comes_back_is_noted_again() {
        let mut m = LeftAside::new(LEFT_ASIDE_MEMORY);
        m.scanned(&names(&["a.txt", "b.txt"]));
        // Gone from a full scan.
        assert!(m.scanned(&names(&["b.txt"])).is_empty());
        assert_eq!(m.scanned(&names(&["a.txt", "b.txt"])), [named("a.txt")]);
        // Gone by an event.
        m.forget("b.txt");
        assert_eq!(m.seen("b.txt"), Some(named("b.txt")));
    }

    #[test]
    fn past_the_cap_one_more_line_for_the_whole_run() {
        let mut m = LeftAside::new(2);
        let notes = m.scanned(&names(&["a", "b", "c", "d"]));
        assert_eq!(notes, [named("a"), named("b"), Note::More]);
        assert!(m.scanned(&names(&["a", "b", "c", "d", "e"])).is_empty());
        // Room frees up: later names are named again, but "more" is not repeated.
        assert_eq!(
            m.scanned(&names(&["c", "d", "e"])),
            [named("c"), named("d")]
        );
        assert_eq!(m.seen("e"), None);
    }

    #[test]
    fn events_queue_only_names_not_logged_yet_and_stay_bounded() {
        let mut m = LeftAside::new(2);
        m.seen("a");
        m.event("a", PathBuf::from("/data/a"));
        assert!(m.to_check.is_empty());
        for n in ["b", "c", "b", "d"] {
            m.event(n, PathBuf::from("/data").join(n));
        }
        assert_eq!(m.to_check.len(), 2);
        assert_eq!(m.to_check.pop_front(), Some(PathBuf::from("/data/b")));
    }
}
