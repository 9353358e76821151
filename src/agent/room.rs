//! Room for the files an agent has in progress, and the mark that keeps one candidate
//! from being taken by two workers at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::pipeline::Pipeline;
use crate::source::Candidate;

/// Room for files in progress: `WORKERS` files that stream, and beside them the small
/// files committed in groups, up to `3 × GROUP_FILES` of them and
/// [`GROUPED_IN_FLIGHT_KIB`] of their bytes together (a file's rows wait in memory
/// for its group: a backlog of the largest small files would otherwise hold hundreds
/// of megabytes of rows). Small files have their own permits, so that a group can fill
/// while the `WORKERS` serve larger files (which never wait behind small ones).
pub(super) struct Room {
    workers: Arc<Semaphore>,
    small_files: Arc<Semaphore>,
    small_kib: Arc<Semaphore>,
    kib_total: usize,
}

/// The bytes of small files in progress at once, in KiB: three groups of 50,000 rows of
/// about 160 bytes. Files of a few KiB are bounded by their number long before this.
const GROUPED_IN_FLIGHT_KIB: usize = 24 * 1024;

impl Room {
    pub(super) fn new(pipeline: &Pipeline, workers: usize) -> Self {
        Self::with(workers, pipeline.grouped_in_flight(), GROUPED_IN_FLIGHT_KIB)
    }

    fn with(workers: usize, small_files: usize, small_kib: usize) -> Self {
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            small_files: Arc::new(Semaphore::new(small_files)),
            small_kib: Arc::new(Semaphore::new(small_kib)),
            kib_total: small_kib.max(1),
        }
    }

    /// Waits for room for a file of `size` bytes, `grouped` when it is a small file
    /// ([`Pipeline::groups`]); the room is given back when the permits are dropped.
    pub(super) async fn take(&self, grouped: bool, size: u64) -> Vec<OwnedSemaphorePermit> {
        let closed = "the semaphore is never closed";
        if !grouped {
            return vec![self.workers.clone().acquire_owned().await.expect(closed)];
        }
        // A file larger than the whole budget takes all of it (it never is: small files
        // are at most 256 KiB).
        let kib = size.div_ceil(1024).clamp(1, self.kib_total as u64) as u32;
        let file = self
            .small_files
            .clone()
            .acquire_owned()
            .await
            .expect(closed);
        let bytes = self
            .small_kib
            .clone()
            .acquire_many_owned(kib)
            .await
            .expect(closed);
        vec![file, bytes]
    }
}

/// Marks a candidate as taken by a worker until dropped.
pub(super) struct InFlight {
    set: Arc<Mutex<HashSet<Candidate>>>,
    candidate: Candidate,
}

impl InFlight {
    pub(super) fn claim(
        set: &Arc<Mutex<HashSet<Candidate>>>,
        candidate: &Candidate,
    ) -> Option<Self> {
        let mut guard = set.lock().unwrap_or_else(|e| e.into_inner());
        guard.insert(candidate.clone()).then(|| InFlight {
            set: set.clone(),
            candidate: candidate.clone(),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut guard = self.set.lock().unwrap_or_else(|e| e.into_inner());
        guard.remove(&self.candidate);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Room;

    /// Small files in progress are bounded by their bytes as well as their number: a
    /// file waits while the budget is spent, goes on once a file ends, and a small file
    /// never waits for the workers of the large ones.
    #[tokio::test]
    async fn small_files_in_flight_are_bounded_by_bytes_and_by_count() {
        let room = Room::with(1, 10, 300);
        let first = room.take(true, 200 * 1024).await;
        let waits = tokio::time::timeout(Duration::from_millis(50), room.take(true, 200 * 1024));
        assert!(
            waits.await.is_err(),
            "400 KiB in flight against a 300 KiB budget"
        );
        let tiny = room.take(true, 10).await;
        let _large = room.take(false, 1 << 30).await;
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), room.take(true, 200 * 1024));
        assert!(second.await.is_ok(), "room came back with the first file");
        drop(tiny);

        let counted = Room::with(1, 2, 1 << 20);
        let _a = counted.take(true, 1).await;
        let _b = counted.take(true, 1).await;
        let third = tokio::time::timeout(Duration::from_millis(50), counted.take(true, 1));
        assert!(third.await.is_err(), "two small files at most");
    }
}
