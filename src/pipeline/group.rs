//! Group commit: small files that are ready together are loaded in one transaction
//! ([`Store::load_group`]), so that the commit — for small files the ceiling, not the
//! reading — is paid once per group.
//!
//! Each small file is read as usual, by its own attempt (claim, hash, one streaming
//! pass), but its rows are kept in memory (a file of at most [`GROUP_MAX_FILE_BYTES`]
//! and [`GROUP_MAX_FILE_ROWS`]; a larger one streams as before, never waiting for a
//! group) and handed, once the reader has found every row valid, to the one committer
//! task. The committer closes a group after `GROUP_FILES` files, [`GROUP_ROWS`] rows,
//! or `GROUP_WAIT_MS` after the group's first file arrived, whichever comes first,
//! and loads it. Each attempt gets its own file's answer after the commit and goes on
//! from there exactly as after a load of its own: archive, duplicate, quarantine, or
//! retry with backoff when the whole group failed for a transient reason. The ledger
//! rows of files that loaded nothing (quarantined, duplicates) are written in the
//! groups too, before their files move.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

use super::inspect::BATCHES_IN_FLIGHT;
use crate::sink::{
    ErrorClass, FileAttempt, GroupFile, GroupItem, LedgerEntry, LoadMsg, LoadOutcome, SinkError,
    Store,
};

/// Files up to this size may be committed in a group; larger ones stream.
pub const GROUP_MAX_FILE_BYTES: u64 = 256 * 1024;

/// A file with more rows than this streams instead (whatever its size), so that what a
/// group holds in memory stays small: one reader batch.
pub const GROUP_MAX_FILE_ROWS: usize = 2048;

/// A group closes once it holds this many rows.
pub const GROUP_ROWS: usize = 50_000;

/// Groups loaded at once, each on a connection of its own: while one commits, the
/// database can work on the next (one connection alone kept PostgreSQL to one core).
pub const GROUPS_AT_ONCE: usize = 2;

/// The committer of groups, shared by every attempt of a pipeline.
#[derive(Debug)]
pub(super) struct Grouper {
    store: Arc<dyn Store>,
    files: usize,
    wait: Duration,
    /// The committer's queue; a new committer is started when there is none (first
    /// use) or it is gone (its runtime ended).
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
}

/// One item waiting in the committer's queue, with where its answer goes.
struct Pending {
    item: GroupItem,
    reply: oneshot::Sender<Result<LoadOutcome, SinkError>>,
}

impl Grouper {
    /// A committer of groups of up to `files` files, waiting up to `wait` for them;
    /// `None` when `files` is 1 (every file commits by itself).
    pub(super) fn new(store: Arc<dyn Store>, files: usize, wait: Duration) -> Option<Self> {
        (files > 1).then(|| Self {
            store,
            files,
            wait,
            queue: Mutex::new(None),
        })
    }

    /// Whether a file of `size` bytes may be committed in a group.
    pub(super) fn takes(&self, size: u64) -> bool {
        size <= GROUP_MAX_FILE_BYTES
    }

    /// How many small files may be in progress at once: enough to fill a group while
    /// the others load.
    pub(super) fn files_in_flight(&self) -> usize {
        (GROUPS_AT_ONCE + 1) * self.files
    }

    /// Takes the row stream of `attempt` like [`Store::load`] does, and commits it in a
    /// group when it is a small file; one with more than [`GROUP_MAX_FILE_ROWS`] rows is
    /// handed to [`Store::load`] to stream.
    pub(super) async fn load(
        &self,
        attempt: &FileAttempt,
        mut rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        let mut kept = Vec::new();
        loop {
            match rows.recv().await {
                Some(LoadMsg::Rows(batch)) if kept.len() + batch.len() > GROUP_MAX_FILE_ROWS => {
                    return self.stream(attempt, kept, batch, rows).await;
                }
                Some(LoadMsg::Rows(batch)) => kept.extend(batch),
                Some(LoadMsg::Commit(stats)) => {
                    let file = GroupFile {
                        attempt: attempt.clone(),
                        rows: kept,
                        stats,
                    };
                    return self.commit(GroupItem::Load(file)).await;
                }
                Some(LoadMsg::Abort) | None => return Ok(LoadOutcome::Aborted),
            }
        }
    }

    /// A file too large for a group after all: what was kept, then the rest of the
    /// stream, goes to [`Store::load`].
    async fn stream(
        &self,
        attempt: &FileAttempt,
        kept: Vec<crate::enrich::EnrichedRow>,
        batch: Vec<crate::enrich::EnrichedRow>,
        mut rows: mpsc::Receiver<LoadMsg>,
    ) -> Result<LoadOutcome, SinkError> {
        let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        let forward = async move {
            let first = (!kept.is_empty()).then_some(kept).into_iter();
            for batch in first.chain([batch]) {
                if tx.send(LoadMsg::Rows(batch)).await.is_err() {
                    return;
                }
            }
            while let Some(msg) = rows.recv().await {
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        };
        let (loaded, ()) = tokio::join!(self.store.load(attempt, rx), forward);
        loaded
    }

    /// Writes the ledger row of a file that loaded nothing (quarantined, duplicate) in
    /// the next group, and returns once that group has committed.
    pub(super) async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        match self
            .commit(GroupItem::Record(Box::new(entry.clone())))
            .await?
        {
            LoadOutcome::Recorded => Ok(()),
            other => Err(SinkError {
                class: ErrorClass::Transient,
                context: "writing the ledger row",
                detail: format!("the group answered {other:?} for a ledger row"),
            }),
        }
    }

    /// Queues `item` for the next group and waits for its answer, given after the
    /// group's commit.
    async fn commit(&self, item: GroupItem) -> Result<LoadOutcome, SinkError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue();
        if queue.send(Pending { item, reply }).await.is_err() {
            return Err(gone());
        }
        answer.await.unwrap_or_else(|_| Err(gone()))
    }

    /// The committer's queue, starting the committer if needed.
    fn queue(&self) -> mpsc::Sender<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match &*queue {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(self.files_in_flight());
                tokio::spawn(commit_groups(self.store.clone(), rx, self.files, self.wait));
                *queue = Some(tx.clone());
                tx
            }
        }
    }
}

/// The committer: takes files from `queue` into groups of up to `files` files and
/// [`GROUP_ROWS`] rows, waiting at most `wait` after a group's first file, and loads
/// each group, up to [`GROUPS_AT_ONCE`] at a time; ends when every sender is gone.
async fn commit_groups(
    store: Arc<dyn Store>,
    mut queue: mpsc::Receiver<Pending>,
    files: usize,
    wait: Duration,
) {
    let loading = Arc::new(Semaphore::new(GROUPS_AT_ONCE));
    loop {
        // A group starts gathering once one can be loaded: meanwhile files queue up, so
        // a busy database gets larger groups.
        let Ok(slot) = loading.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let closes_at = Instant::now() + wait;
        let mut rows = first.item.row_count();
        let mut group = vec![first];
        while group.len() < files && rows < GROUP_ROWS {
            let next = match queue.try_recv() {
                Ok(next) => Some(next),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                    next = queue.recv() => next,
                    _ = tokio::time::sleep_until(closes_at) => None,
                },
            };
            let Some(next) = next else { break };
            rows += next.item.row_count();
            group.push(next);
        }
        let store = store.clone();
        tokio::spawn(async move {
            load_group(store.as_ref(), group, rows).await;
            drop(slot);
        });
    }
}

/// Loads one group and answers each of its items.
async fn load_group(store: &dyn Store, group: Vec<Pending>, rows: usize) {
    let started = Instant::now();
    let (items, replies): (Vec<GroupItem>, Vec<_>) =
        group.into_iter().map(|p| (p.item, p.reply)).unzip();
    let answers = store.load_group(&items).await;
    debug!(
        items = items.len(),
        rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        ok = answers.is_ok(),
        "group loaded"
    );
    match answers {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                // An attempt that stopped waiting (its task was dropped) needs no answer.
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(SinkError {
                    class: e.class,
                    context: e.context,
                    detail: e.detail.clone(),
                }));
            }
        }
    }
}

/// The committer stopped (its runtime is ending): the file is retried.
fn gone() -> SinkError {
    SinkError {
        class: ErrorClass::Transient,
        context: "committing a group of files",
        detail: "the group committer stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::read::ContentHash;
    use crate::sink::{Activity, AgentShare, LedgerQueries, LedgerRecord, LoadedFile, ProfileRef};

    /// A store that commits every group it is given and notes its size.
    #[derive(Debug, Default)]
    struct Groups(StdMutex<Vec<usize>>);

    #[async_trait]
    impl LedgerQueries for Groups {
        async fn ping(&self) -> Result<(), SinkError> {
            Ok(())
        }
        async fn activity_since(&self, _: DateTime<Utc>) -> Result<Activity, SinkError> {
            Ok(Activity::default())
        }
        async fn agents_since(&self, _: DateTime<Utc>) -> Result<Vec<AgentShare>, SinkError> {
            Ok(Vec::new())
        }
        async fn last_loaded(&self) -> Result<Option<LedgerRecord>, SinkError> {
            Ok(None)
        }
        async fn history(&self, _: &str, _: &str) -> Result<Vec<LedgerRecord>, SinkError> {
            Ok(Vec::new())
        }
        async fn flagged_readings(
            &self,
            _: &str,
            _: DateTime<Utc>,
            _: u32,
        ) -> Result<Vec<crate::qc::FlaggedReading>, SinkError> {
            Ok(Vec::new())
        }
    }

    #[async_trait]
    impl Store for Groups {
        fn describe(&self) -> String {
            "groups".into()
        }
        async fn prepare(&self) -> Result<(), SinkError> {
            Ok(())
        }
        async fn find_loaded(&self, _: &ContentHash) -> Result<Option<LoadedFile>, SinkError> {
            Ok(None)
        }
        async fn recent_readings(
            &self,
            queries: &[crate::qc::HistoryQuery],
            _: u32,
        ) -> Result<Vec<Vec<crate::qc::HistoryReading>>, SinkError> {
            Ok(vec![Vec::new(); queries.len()])
        }
        async fn load(
            &self,
            _: &FileAttempt,
            _: mpsc::Receiver<LoadMsg>,
        ) -> Result<LoadOutcome, SinkError> {
            unreachable!("these files are committed in groups")
        }
        async fn load_group(
            &self,
            items: &[GroupItem],
        ) -> Result<Vec<Result<LoadOutcome, SinkError>>, SinkError> {
            self.0.lock().unwrap().push(items.len());
            let rows = |i: &GroupItem| i.row_count() as u64;
            Ok(items
                .iter()
                .map(|i| Ok(LoadOutcome::Committed { rows: rows(i) }))
                .collect())
        }
        async fn record(&self, _: &LedgerEntry) -> Result<(), SinkError> {
            Ok(())
        }
        async fn mark_archived(&self, _: Uuid, _: &str) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn file(n: usize) -> GroupItem {
        GroupItem::Load(GroupFile {
            attempt: FileAttempt {
                id: Uuid::now_v7(),
                file_name: format!("f{n}.csv"),
                hash: ContentHash::unread(&n.to_string()),
                size: 10,
                started_at: Utc::now(),
                profile: ProfileRef::default(),
            },
            rows: Vec::new(),
            stats: Box::default(),
        })
    }

    /// Commits `files` files at once through a grouper of `per_group` files waiting
    /// `wait`; the sizes of the groups, sorted, and how long it took.
    async fn commit_at_once(
        files: usize,
        per_group: usize,
        wait: Duration,
    ) -> (Vec<usize>, Duration) {
        let store = Arc::new(Groups::default());
        let grouper = Arc::new(Grouper::new(store.clone(), per_group, wait).unwrap());
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..files {
            let grouper = grouper.clone();
            tasks.spawn(async move { grouper.commit(file(n)).await });
        }
        while let Some(answer) = tasks.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), LoadOutcome::Committed { rows: 0 });
        }
        let mut sizes = store.0.lock().unwrap().clone();
        sizes.sort_unstable();
        (sizes, started.elapsed())
    }

    #[tokio::test]
    async fn a_group_closes_as_soon_as_it_holds_its_files() {
        let (sizes, took) = commit_at_once(6, 3, Duration::from_secs(10)).await;
        assert_eq!(sizes, [3, 3]);
        assert!(took < Duration::from_secs(5), "{took:?}: no group waited");
    }

    #[tokio::test]
    async fn a_lone_file_is_committed_after_the_wait() {
        let wait = Duration::from_millis(50);
        let (sizes, took) = commit_at_once(1, 64, wait).await;
        assert_eq!(sizes, [1]);
        assert!(took >= wait && took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn one_file_per_group_is_no_grouping() {
        let store: Arc<dyn Store> = Arc::new(Groups::default());
        assert!(Grouper::new(store.clone(), 1, Duration::ZERO).is_none());
        let grouper = Grouper::new(store, 2, Duration::ZERO).unwrap();
        assert!(grouper.takes(GROUP_MAX_FILE_BYTES));
        assert!(!grouper.takes(GROUP_MAX_FILE_BYTES + 1));
    }
}
