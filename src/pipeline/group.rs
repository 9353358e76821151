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
//!
//! Quality control of a grouped file runs in the committer, not in the reader
//! ([`judge_group`]): a group's files are put in time order and judged one after the
//! other just before the group loads, each continuing from the one before it. Files
//! read side by side would otherwise not see each other, and each would read its
//! sensors' history back from the database. A file whose flags add a spike to a
//! reading of a group still committing waits for that group's commit before loading.
//! Under `once`, small files reach the committer in the order they were taken
//! ([`super::turns`]), so a backlog's groups hold consecutive files and a file of a
//! sensor is never judged before the one before it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::debug;

use super::inspect::BATCHES_IN_FLIGHT;
use super::quality::{QcMemory, judge_group};
use super::turns::Turn;
use crate::qc::QcConfig;
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
    /// What quality control knows of each sensor, shared with the pipeline's readers.
    memory: Arc<QcMemory>,
    files: usize,
    wait: Duration,
    /// The committer's queue; a new committer is started when there is none (first
    /// use) or it is gone (its runtime ended).
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
}

/// One item waiting in the committer's queue, with where its answer goes.
struct Pending {
    item: GroupItem,
    /// The file's quality-control thresholds, when the committer is to judge it.
    qc: Option<QcConfig>,
    reply: oneshot::Sender<Result<LoadOutcome, SinkError>>,
}

impl Pending {
    /// The time of the file's first reading: a group is judged and loaded in this
    /// order (ledger rows first). A stable order: the same content twice stays in the
    /// order it came.
    fn first_reading(&self) -> Option<DateTime<Utc>> {
        match &self.item {
            GroupItem::Load(file) => file.rows.iter().map(|r| r.reading.timestamp).min(),
            GroupItem::Record(_) => None,
        }
    }

    fn file_id(&self) -> Option<String> {
        match &self.item {
            GroupItem::Load(file) => Some(file.attempt.id.hyphenated().to_string()),
            GroupItem::Record(_) => None,
        }
    }
}

/// What [`Grouper::load`] did with a file.
#[derive(Debug)]
pub(super) enum Grouped {
    /// Loaded (in a group, or streamed when too large for one): the store's answer.
    Loaded(Result<LoadOutcome, SinkError>),
    /// Too many rows for a group, and its quality control was left to the committer:
    /// the file is to be read again and streamed, judged by its reader.
    TooLarge,
}

impl Grouper {
    /// A committer of groups of up to `files` files, waiting up to `wait` for them;
    /// `None` when `files` is 1 (every file commits by itself).
    pub(super) fn new(
        store: Arc<dyn Store>,
        memory: Arc<QcMemory>,
        files: usize,
        wait: Duration,
    ) -> Option<Self> {
        (files > 1).then(|| Self {
            store,
            memory,
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
    /// group when it is a small file, judged by the committer with `qc` when given.
    /// One with more than [`GROUP_MAX_FILE_ROWS`] rows is handed to [`Store::load`] to
    /// stream, or, when its quality control was left to the committer, given back
    /// ([`Grouped::TooLarge`]) to be read again.
    pub(super) async fn load(
        &self,
        attempt: &FileAttempt,
        mut rows: mpsc::Receiver<LoadMsg>,
        qc: Option<QcConfig>,
        turn: &Turn,
    ) -> Grouped {
        let mut kept = Vec::new();
        loop {
            match rows.recv().await {
                Some(LoadMsg::Rows(batch)) if kept.len() + batch.len() > GROUP_MAX_FILE_ROWS => {
                    // It goes to no group: no other file waits for it.
                    turn.end();
                    if qc.is_some() {
                        return Grouped::TooLarge;
                    }
                    return Grouped::Loaded(self.stream(attempt, kept, batch, rows).await);
                }
                Some(LoadMsg::Rows(batch)) => kept.extend(batch),
                Some(LoadMsg::Commit(stats)) => {
                    let file = GroupFile {
                        attempt: attempt.clone(),
                        rows: kept,
                        stats,
                    };
                    let loaded = self.commit(GroupItem::Load(file), qc, turn).await;
                    return Grouped::Loaded(loaded);
                }
                Some(LoadMsg::Abort) | None => {
                    turn.end();
                    return Grouped::Loaded(Ok(LoadOutcome::Aborted));
                }
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
            .commit(
                GroupItem::Record(Box::new(entry.clone())),
                None,
                &Turn::none(),
            )
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

    /// Queues `item` for the next group in its `turn` (once the files taken before
    /// it are queued or given up) and waits for its answer, given after the group's
    /// commit.
    async fn commit(
        &self,
        item: GroupItem,
        qc: Option<QcConfig>,
        turn: &Turn,
    ) -> Result<LoadOutcome, SinkError> {
        let (reply, answer) = oneshot::channel();
        turn.wait().await;
        let queue = self.queue();
        let queued = queue.send(Pending { item, qc, reply }).await;
        turn.end();
        if queued.is_err() {
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
                tokio::spawn(commit_groups(
                    self.store.clone(),
                    self.memory.clone(),
                    rx,
                    self.files,
                    self.wait,
                ));
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
    memory: Arc<QcMemory>,
    mut queue: mpsc::Receiver<Pending>,
    files: usize,
    wait: Duration,
) {
    let loading = Arc::new(Semaphore::new(GROUPS_AT_ONCE));
    // The groups still committing: their files, and a flag raised when they are done.
    let mut committing: Vec<(HashSet<String>, watch::Receiver<bool>)> = Vec::new();
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
        group.sort_by_cached_key(Pending::first_reading);
        let mut judged: Vec<_> = group
            .iter_mut()
            .filter_map(|p| match (&mut p.item, p.qc.clone()) {
                (GroupItem::Load(file), Some(cfg)) => Some((file, cfg)),
                _ => None,
            })
            .collect();
        if !judged.is_empty()
            && let Err(e) = judge_group(store.as_ref(), &memory, &mut judged).await
        {
            // Reading history is never the files' fault: each is retried.
            let e = SinkError {
                class: ErrorClass::Transient,
                ..e
            };
            answer_all(group, &e);
            continue;
        }
        // A spike found on the last reading of a file still committing in another
        // group is added to it once that group has committed.
        let amended: HashSet<&str> = judged
            .iter()
            .flat_map(|(file, _)| file.stats.qc.amendments.iter())
            .map(|a| a.file_id.as_str())
            .collect();
        // A flat run may reach back into any of them: after all of them.
        let runs = judged
            .iter()
            .any(|(file, _)| !file.stats.qc.runs.is_empty());
        committing.retain(|(_, done)| !*done.borrow());
        let after: Vec<watch::Receiver<bool>> = committing
            .iter()
            .filter(|(ids, _)| runs || amended.iter().any(|id| ids.contains(*id)))
            .map(|(_, done)| done.clone())
            .collect();
        drop(judged);
        let (finished, done) = watch::channel(false);
        committing.push((group.iter().filter_map(Pending::file_id).collect(), done));
        let (store, memory) = (store.clone(), memory.clone());
        tokio::spawn(async move {
            for mut earlier in after {
                // An error means that group's task is gone: it commits nothing more.
                let _ = earlier.wait_for(|done| *done).await;
            }
            let unstored = load_group(store.as_ref(), group, rows).await;
            memory.forget(&unstored);
            let _ = finished.send(true);
            drop(slot);
        });
    }
}

/// Loads one group and answers each of its items; returns the files it did not store.
async fn load_group(store: &dyn Store, group: Vec<Pending>, rows: usize) -> HashSet<String> {
    let started = Instant::now();
    let mut unstored: HashSet<String> = group.iter().filter_map(Pending::file_id).collect();
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
            for ((reply, answer), item) in replies.into_iter().zip(answers).zip(&items) {
                if let (GroupItem::Load(file), Ok(LoadOutcome::Committed { .. })) = (item, &answer)
                {
                    unstored.remove(&file.attempt.id.hyphenated().to_string());
                }
                // An attempt that stopped waiting (its task was dropped) needs no answer.
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
    unstored
}

/// Answers every item of a group that could not be loaded with `e`.
fn answer_all(group: Vec<Pending>, e: &SinkError) {
    for p in group {
        let _ = p.reply.send(Err(e.clone()));
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
    use crate::sink::{ArchiveName, GroupFile};

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
        async fn known_sources(&self, _: &[String]) -> Result<Vec<String>, SinkError> {
            Ok(Vec::new())
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
        async fn mark_archived_all(&self, _: &[ArchiveName]) -> Result<(), SinkError> {
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
                follow: None,
                source_identity: None,
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
        let grouper =
            Arc::new(Grouper::new(store.clone(), Arc::default(), per_group, wait).unwrap());
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..files {
            let grouper = grouper.clone();
            tasks.spawn(async move { grouper.commit(file(n), None, &Turn::none()).await });
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

    /// Reading `i` of `sensor`: a minute apart, a slow wave with a little wobble, and
    /// a spike where `spike` says.
    fn reading(sensor: &str, i: usize, line: u64, spike: bool) -> crate::enrich::EnrichedRow {
        let t = 20.0 + 3.0 * (i as f64 / 90.0).sin() + (i % 5) as f64 * 0.05;
        let reading = crate::validate::Reading {
            line,
            timestamp: DateTime::from_timestamp(1_700_000_000 + 60 * i as i64, 0).unwrap(),
            sensor_id: sensor.to_owned(),
            temperature: Some(if spike { t + 9.0 } else { t }),
            humidity: Some(50.0 + (i % 9) as f64 * 0.2),
            pressure: None,
            extra: None,
            further: Vec::new(),
            coded_missing: 0,
        };
        crate::enrich::enrich(reading, &crate::units::Ranges::default())
    }

    /// The flags a group commit gives, by (sensor, minute), once amendments are added.
    type ByReading = std::collections::BTreeMap<(String, usize), u16>;

    /// Files judged group by group by the committer, each group while the one before is
    /// still committing (the store has nothing yet), get the flags of one file judged
    /// whole: every file continues from the one before it, and a spike on a file's
    /// last reading is added to that (not yet stored) reading by the next file.
    #[tokio::test]
    async fn files_judged_in_groups_get_the_flags_of_one_whole_file() {
        use crate::qc::{Flags, Judge, QcConfig, Test};

        const PER_FILE: usize = 100;
        const FILES: usize = 6;
        let sensors = ["a", "b"];
        // A spike on sensor a's last reading of file 1 (decided by file 2, in the next
        // group), and one inside file 4.
        let spikes = [2 * PER_FILE - 1, 4 * PER_FILE + 40];
        let rows = |file: usize| -> Vec<crate::enrich::EnrichedRow> {
            let mut rows = Vec::new();
            for i in file * PER_FILE..(file + 1) * PER_FILE {
                for (k, s) in sensors.iter().enumerate() {
                    let line = 2 + 2 * (i - file * PER_FILE) as u64 + k as u64;
                    rows.push(reading(s, i, line, *s == "a" && spikes.contains(&i)));
                }
            }
            rows
        };
        let minute = |r: &crate::enrich::EnrichedRow| {
            ((r.reading.timestamp.timestamp() - 1_700_000_000) / 60) as usize
        };

        let cfg = QcConfig::default();
        let mut whole = Judge::new(cfg.clone());
        let mut expected = ByReading::new();
        let mut decided = Vec::new();
        for row in (0..FILES).flat_map(rows) {
            decided.extend(whole.push(row, |_, _, _| Ok::<_, ()>(Vec::new())).unwrap());
        }
        decided.extend(whole.finish().0);
        for r in &decided {
            expected.insert((r.reading.sensor_id.clone(), minute(r)), r.qc_flags);
        }
        let a_spikes = expected
            .iter()
            .filter(|((s, _), f)| s == "a" && Flags(**f).has(0, Test::Spike))
            .count();
        assert_eq!(a_spikes, spikes.len(), "the reference finds both spikes");

        let store = Groups::default();
        let memory = QcMemory::default();
        let mut got = ByReading::new();
        let mut at: std::collections::HashMap<(String, i64), (String, usize)> = Default::default();
        let mut amendments = Vec::new();
        for group in [0..2, 2..4, 4..FILES] {
            let mut files: Vec<GroupFile> = group
                .map(|n| GroupFile {
                    rows: rows(n),
                    ..match file(n) {
                        GroupItem::Load(f) => f,
                        GroupItem::Record(_) => unreachable!(),
                    }
                })
                .collect();
            let mut judged: Vec<_> = files.iter_mut().map(|f| (f, cfg.clone())).collect();
            judge_group(&store, &memory, &mut judged).await.unwrap();
            for f in &files {
                let id = f.attempt.id.hyphenated().to_string();
                for r in &f.rows {
                    let key = (r.reading.sensor_id.clone(), minute(r));
                    at.insert((id.clone(), r.reading.line as i64), key.clone());
                    got.insert(key, r.qc_flags);
                }
                amendments.extend(f.stats.qc.amendments.clone());
            }
        }
        assert!(!amendments.is_empty(), "the boundary spike is an amendment");
        for a in amendments {
            *got.get_mut(&at[&(a.file_id, a.line)]).unwrap() |= a.add;
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn one_file_per_group_is_no_grouping() {
        let store: Arc<dyn Store> = Arc::new(Groups::default());
        assert!(Grouper::new(store.clone(), Arc::default(), 1, Duration::ZERO).is_none());
        let grouper = Grouper::new(store, Arc::default(), 2, Duration::ZERO).unwrap();
        assert!(grouper.takes(GROUP_MAX_FILE_BYTES));
        assert!(!grouper.takes(GROUP_MAX_FILE_BYTES + 1));
    }
}
