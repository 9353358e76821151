//! The queue of paths waiting to be sent, shared by the tracker (files ready) and the
//! memory of files left aside (names to look at): a leaf of `watch`, so neither of the
//! two depends on the other for it.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Paths waiting to be sent, in arrival order, each once. The set makes "already
/// queued?" constant-time: with a burst of thousands of files, scanning the queue for
/// each event made the watch loop fall behind its events (and the overflow cost a
/// rescan).
#[derive(Debug, Default)]
pub(super) struct ReadyQueue {
    pub(super) order: VecDeque<PathBuf>,
    queued: HashSet<PathBuf>,
}

impl ReadyQueue {
    /// Queues `path` at the back unless it is queued already.
    pub(super) fn push_back(&mut self, path: PathBuf) {
        if self.queued.insert(path.clone()) {
            self.order.push_back(path);
        }
    }

    /// Puts back at the front a path just popped.
    pub(super) fn push_front(&mut self, path: PathBuf) {
        if self.queued.insert(path.clone()) {
            self.order.push_front(path);
        }
    }

    pub(super) fn pop_front(&mut self) -> Option<PathBuf> {
        let path = self.order.pop_front()?;
        self.queued.remove(&path);
        Some(path)
    }

    pub(super) fn contains(&self, path: &Path) -> bool {
        self.queued.contains(path)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.queued.clear();
    }
}
