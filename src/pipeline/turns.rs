//! The order small files of a backlog reach the group committer: the order the agent
//! took them from the folder (`once` and `run`'s first scan: oldest first, then by
//! name; `run` then as they arrive), not the order their readers happen to finish in.
//!
//! Quality control judges a group's files in time order, each continuing from the one
//! before it, and a group after the group before it. Files read side by side finish in
//! any order, so without a turn a file could reach a later group than the file after
//! it: judged first, it saw a gap the earlier file fills, and the earlier file's
//! readings, older than the sensor's latest, went unjudged.
//!
//! Each small file taken gets a [`Turn`]: a number in the order taken. A file hands its
//! rows to the committer only once every file taken before it has handed over its rows
//! or is done with the committer in this attempt (a duplicate, a refusal, a file too
//! large for a group, a failed attempt: its turn is then given up, and its retry goes
//! to the committer without waiting). Waiting files are bounded by the room the agent
//! gives small files, the turns not yet given up likewise.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

/// The turns of one backlog, handed out in the order its files are taken.
#[derive(Debug)]
pub struct Turns {
    next: AtomicU64,
    front: watch::Sender<Front>,
}

/// Which turns are over: every one below `open`, and those in `over` (ahead of it).
#[derive(Debug, Default)]
struct Front {
    open: u64,
    over: BTreeSet<u64>,
}

impl Turns {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            next: AtomicU64::new(0),
            front: watch::Sender::new(Front::default()),
        })
    }

    /// The next turn: after every one taken before it.
    pub fn take(self: &Arc<Self>) -> Turn {
        Turn {
            of: Some((self.clone(), self.next.fetch_add(1, Ordering::Relaxed))),
            over: AtomicBool::new(false),
        }
    }
}

/// A file's place in the order its rows reach the committer; given up when dropped.
#[derive(Debug)]
pub struct Turn {
    of: Option<(Arc<Turns>, u64)>,
    over: AtomicBool,
}

impl Turn {
    /// No place: a file that waits for no other (outside a backlog, or one that streams).
    pub fn none() -> Self {
        Self {
            of: None,
            over: AtomicBool::new(true),
        }
    }

    /// Waits until every turn taken before this one is over; at once when this one is.
    pub(super) async fn wait(&self) {
        let Some((turns, n)) = &self.of else { return };
        if self.over.load(Ordering::Acquire) {
            return;
        }
        let mut front = turns.front.subscribe();
        // The sender lives in `turns`, held here: the wait cannot fail.
        let _ = front.wait_for(|f| f.open >= *n).await;
    }

    /// Ends the turn (the rows were handed over, or the file goes no further this
    /// attempt): the next ones may go. Once is enough; again does nothing.
    pub(super) fn end(&self) {
        let Some((turns, n)) = &self.of else { return };
        if self.over.swap(true, Ordering::AcqRel) {
            return;
        }
        turns.front.send_modify(|f| {
            f.over.insert(*n);
            while f.over.remove(&f.open) {
                f.open += 1;
            }
        });
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A turn waits for every earlier one, whatever order they end in, and not for a
    /// later one; an ended turn waits for nothing.
    #[tokio::test]
    async fn a_turn_waits_for_the_earlier_ones_only() {
        let turns = Turns::new();
        let (a, b, c) = (turns.take(), turns.take(), turns.take());
        let soon = Duration::from_millis(50);
        assert!(tokio::time::timeout(soon, a.wait()).await.is_ok());
        assert!(tokio::time::timeout(soon, c.wait()).await.is_err());
        b.end();
        assert!(tokio::time::timeout(soon, c.wait()).await.is_err());
        drop(a);
        assert!(tokio::time::timeout(soon, c.wait()).await.is_ok());
        let (d, e) = (turns.take(), turns.take());
        e.end();
        assert!(tokio::time::timeout(soon, e.wait()).await.is_ok());
        c.end();
        c.end();
        assert!(tokio::time::timeout(soon, d.wait()).await.is_ok());
        assert!(
            tokio::time::timeout(soon, Turn::none().wait())
                .await
                .is_ok()
        );
    }

    /// Turns ended out of order are forgotten once the front passes them.
    #[test]
    fn the_front_keeps_only_turns_ahead_of_it() {
        let turns = Turns::new();
        let all: Vec<Turn> = (0..5).map(|_| turns.take()).collect();
        for t in all.iter().rev() {
            t.end();
        }
        let front = turns.front.borrow();
        assert_eq!((front.open, front.over.len()), (5, 0));
    }
}
