//! The pipeline: takes one file through read → validate → enrich → stats → sink →
//! archive, and decides its outcome.
//!
//! The pipeline works on a [`Candidate`] of a [`Source`] (the data folder today) and
//! asks the source to open, archive and quarantine it; it never handles a path.
//!
//! Order of events for one attempt:
//! 1. the source takes hold of the candidate (for the folder: a regular file, never
//!    through a symlink, that no one is writing); on a store that several agents
//!    share, claim its identity (or leave it, quietly, to the agent that holds it)
//!    and keep the claim renewed until the attempt ends; then the source hashes it;
//! 2. if its content is already loaded, archive it as a duplicate (or, when the ledger
//!    says this very file was loaded but never archived, finish that archive);
//! 3. stream it: a blocking task reads, validates, enriches and summarises, sending
//!    row batches through a bounded channel to the sink, which COPYs them inside one
//!    transaction; the reader ends the stream with Commit only if every row was valid
//!    and the bytes still hash to what step 1 saw;
//!    — or, for a small file (at most 256 KiB and 2,048 rows, with `GROUP_FILES` above
//!    1), keeps its rows until the reader says Commit and hands the file to [`group`]'s
//!    committer, which loads it with other small files in one transaction, each file
//!    in its own savepoint (all-or-nothing on its own), and answers after the commit;
//! 4. after the commit, the source archives the file (`processed/`); after a
//!    rejection, write the ledger row, then the source quarantines it beside its
//!    report (`quarantine/`).
//!
//! A database that cannot be reached fails the attempt with a transient error; the
//! file stays in the data folder and [`Pipeline::process`] retries it with capped,
//! jittered exponential backoff.
//!
//! The rooms: this file holds the attempt and its outcome types; [`outcome`] the
//! handlers that end an attempt (archive, duplicate, quarantine…); [`inspect`] the
//! reading pass; [`group`] the committer of small files in groups; [`follow`] one
//! increment of a followed file (append mode: `docs/append.md`); [`refusal`] why a file is quarantined and its report; [`retry`] the
//! backoff; [`turns`] the order a backlog's small files reach the committer in; [`observe`] the log line and metrics of an outcome; `claim` a candidate's
//! claim key and the renewal of its claim while it is worked on. Opening, hashing,
//! archiving and quarantining a file are the [`crate::source`]'s.

mod claim;
mod follow;
mod group;
mod idle;
mod inspect;
mod observe;
mod outcome;
mod quality;
mod refusal;
mod retry;
mod settings;
mod turns;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use backon::Retryable;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};
use uuid::Uuid;

pub use self::claim::claim_key;
pub use self::group::{GROUP_MAX_FILE_BYTES, GROUP_MAX_FILE_ROWS, GROUP_ROWS, GROUPS_AT_ONCE};
use self::group::{Grouped, Grouper};
use self::inspect::{BATCHES_IN_FLIGHT, Verdict, stream_to_sink};
pub use self::inspect::{ReadContext, ReadReport, check_file, read_rows};
use self::outcome::Job;
use self::quality::{QcMemory, QcRun};
pub use self::refusal::{Decision, Refusal};
pub use self::retry::{RetryLimit, RetryPolicy, sleep_unless_cancelled};
pub use self::settings::PipelineSettings;
pub use self::turns::{Turn, Turns};
use crate::archive::ArchiveError;
use crate::metrics::Metrics;
use crate::profile::Profiles;
use crate::qc::QcConfig;
use crate::sink::batched::PerFile;
use crate::sink::claim::RENEW_EVERY;
use crate::sink::{ClaimKey, FileAttempt, LedgerEntry, LoadOutcome, ProfileRef, SinkError, Store};
pub use crate::source::Archived;
use crate::source::{Candidate, Folder, Identity, Opened, Source};
use crate::timestamp::SourceTimezone;
use crate::units::Ranges;

/// Files up to this size go straight to the load, which refuses content loaded already
/// (the unique index on the hash) and then says by whom: for small files the separate
/// lookup first was a round trip and a statement per file, about a tenth of their
/// throughput. Larger files are looked up first so that a duplicate is not read twice.
const LOOKUP_FIRST_ABOVE_BYTES: u64 = 1 << 20;

/// [`Outcome::Skipped`]'s reason for a file another agent has claimed: it is that
/// agent's to process, and this one says nothing about it above DEBUG.
pub const CLAIMED_ELSEWHERE: &str = "claimed by another agent";

/// [`Outcome::Skipped`]'s reason for a file whose claim ran out while this agent worked
/// on it (it could not renew it, cut from the database) and another agent took over:
/// this agent's attempt is dropped (its transaction rolls back) and the file is the
/// other agent's.
pub const TAKEN_OVER: &str = "taken over by another agent";

/// [`Outcome::Skipped`]'s reason for an object left in place (`S3_AFTER=keep`) whose
/// identity the ledger records already (another agent loaded it since this one listed
/// it): left alone, unread.
pub const RECORDED_ALREADY: &str = "recorded in the ledger already";

/// How one file ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed and moved to `processed/`.
    Loaded {
        id: Uuid,
        rows: u64,
        archived_as: Archived,
    },
    /// The same content was loaded before (under any name); moved to `processed/`.
    Duplicate {
        id: Uuid,
        of: Uuid,
        archived_as: Archived,
    },
    /// Loaded by an earlier run that stopped before moving it; now moved.
    Recovered { id: Uuid, archived_as: Archived },
    /// Rejected; moved to `quarantine/` beside its report.
    Quarantined {
        id: Uuid,
        reason: String,
        archived_as: Archived,
    },
    /// Not a file to process (gone, or not a regular file); nothing was done.
    Skipped { reason: &'static str },
}

/// An attempt that did not reach an outcome; the file is still in the data folder.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("database unavailable: {0}")]
    Database(#[from] SinkError),
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file} changed while it was being read")]
    Changed { file: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("internal error while reading {file}: {message}")]
    Internal { file: String, message: String },
}

impl ProcessError {
    /// Worth retrying soon with backoff. Read and archive failures are left to the next
    /// rescan instead: they need a person or a writer to finish first.
    pub fn is_transient(&self) -> bool {
        match self {
            ProcessError::Database(e) => e.is_transient(),
            ProcessError::Changed { .. } => true,
            // A source that is away (an object store restarting): never given up on.
            ProcessError::Read { source, .. } => crate::source::is_transient(source),
            ProcessError::Archive(e) => crate::source::is_transient(&e.source),
            _ => false,
        }
    }
}

/// Everything needed to process files; cheap to share between workers.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    /// Where files come from, and where they go once their outcome is committed.
    source: Arc<dyn Source>,
    ranges: Ranges,
    tz: SourceTimezone,
    retry: RetryPolicy,
    max_file_bytes: Option<u64>,
    /// The source profiles in force (reloaded by the agent when they change).
    profiles: Profiles,
    /// Where outcomes, retries and bytes are counted, when metrics are served.
    metrics: Option<Arc<Metrics>>,
    /// Quality-control thresholds (a profile's `[qc]` applies over them).
    qc: QcConfig,
    /// What quality control remembers of each sensor between files.
    qc_memory: Arc<QcMemory>,
    /// The committer of small files in groups (`GROUP_FILES` above 1).
    group: Option<Arc<Grouper>>,
    /// `append`: every file is followed in place (else only those whose profile says so).
    mode: crate::source::Mode,
    /// Held by an increment from its comparison with the stored readings to its commit,
    /// so that two increments holding the same lines (a file and its rotated copy, read
    /// at once) cannot both find them unstored.
    follow_lock: Arc<tokio::sync::Mutex<()>>,
    /// Archiving followed files that stopped growing (`FOLLOW_ARCHIVE_AFTER`).
    follow_archive: Option<crate::profile::ArchiveIdle>,
    /// Where archived followed files go.
    processed: std::path::PathBuf,
    /// The claims, claim releases and archive names of files in progress, each kind
    /// coalesced into one statement for the files asking at the same time.
    per_file: Arc<PerFile>,
}

impl Pipeline {
    pub fn new(settings: impl Into<PipelineSettings>, store: Arc<dyn Store>) -> Self {
        let settings = settings.into();
        let qc_memory: Arc<QcMemory> = Arc::default();
        Self {
            store: store.clone(),
            source: Arc::new(Folder::new(
                settings.processed_folder.clone(),
                settings.quarantine_folder.clone(),
            )),
            ranges: settings.ranges,
            tz: settings.source_timezone,
            retry: RetryPolicy::new(settings.retry_max_delay),
            max_file_bytes: settings.max_file_bytes,
            profiles: Profiles::new(settings.profiles),
            metrics: None,
            qc: settings.qc,
            mode: settings.source_mode,
            follow_lock: Arc::default(),
            follow_archive: settings.follow_archive,
            processed: settings.processed_folder.clone(),
            qc_memory: qc_memory.clone(),
            per_file: Arc::new(PerFile::new(store.clone())),
            group: Grouper::new(store, qc_memory, settings.group_files, settings.group_wait)
                .map(Arc::new),
        }
    }

    /// Whether a file of `size` bytes is committed in a group with other small files
    /// (`GROUP_FILES` above 1, and at most [`GROUP_MAX_FILE_BYTES`]).
    pub fn groups(&self, size: u64) -> bool {
        self.group.as_ref().is_some_and(|g| g.takes(size))
    }

    /// How many small files ([`Pipeline::groups`]) may be in progress at once, beside
    /// the `WORKERS` for the others: enough to fill a group while the others load
    /// (`3 × GROUP_FILES`); 0 when files are not grouped.
    pub fn grouped_in_flight(&self) -> usize {
        self.group.as_ref().map_or(0, |g| g.files_in_flight())
    }

    /// Takes its files from `source` rather than the data folder.
    pub fn with_source(mut self, source: Arc<dyn Source>) -> Self {
        self.source = source;
        self
    }

    /// Records outcomes, rows, database retries, bytes read and drop-to-commit
    /// latency into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Where this pipeline counts what happens, if anywhere.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where files come from.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The source profiles in force.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// Processes one candidate, retrying transient failures until it reaches an
    /// outcome, `limit` is exhausted, or `shutdown` is cancelled during a wait. Logs one
    /// line with the outcome.
    ///
    /// A followed file (append mode) is processed one increment at a time, each with
    /// its own outcome and log line, until it has no complete new line.
    pub async fn process(
        &self,
        candidate: &Candidate,
        limit: RetryLimit,
        shutdown: &CancellationToken,
    ) -> Result<Outcome, ProcessError> {
        self.process_in_turn(candidate, Turn::none(), limit, shutdown)
            .await
    }

    /// [`Pipeline::process`] for a file of a backlog: a small file hands its rows to
    /// the group committer in its `turn`, after the files taken before it ([`Turns`]).
    pub async fn process_in_turn(
        &self,
        candidate: &Candidate,
        turn: Turn,
        limit: RetryLimit,
        shutdown: &CancellationToken,
    ) -> Result<Outcome, ProcessError> {
        if !self.follows(candidate.name()) {
            return self.process_once(candidate, &turn, limit, shutdown).await;
        }
        // The outcome returned is the last increment's; what comes after it (nothing
        // new, or a failure the next growth or poll retries) is logged on its own.
        let mut last = None;
        loop {
            let result = self.process_once(candidate, &turn, limit, shutdown).await;
            let more = matches!(
                result,
                Ok(Outcome::Loaded { .. } | Outcome::Quarantined { .. })
            );
            if more && !shutdown.is_cancelled() {
                last = Some(result);
                continue;
            }
            return if more { result } else { last.unwrap_or(result) };
        }
    }

    /// [`Pipeline::process`] for one outcome.
    async fn process_once(
        &self,
        candidate: &Candidate,
        turn: &Turn,
        limit: RetryLimit,
        shutdown: &CancellationToken,
    ) -> Result<Outcome, ProcessError> {
        let span = info_span!("file", file = %candidate.name());
        let started = Instant::now();
        let arrived = self
            .metrics
            .as_ref()
            .and_then(|_| self.source.arrival_time(candidate));
        let attempts = AtomicU32::new(1);
        // A turn lasts one attempt: a retry waits for no other file.
        let attempt = || async {
            let result = self.attempt_in_turn(candidate, turn).await;
            turn.end();
            result
        };
        let result = attempt
            .retry(self.retry.backoff(limit))
            .sleep(sleep_unless_cancelled(shutdown))
            .when(|e| e.is_transient() && !shutdown.is_cancelled())
            .notify(|e, delay| {
                let attempt = attempts.fetch_add(1, Ordering::Relaxed);
                if let (Some(m), ProcessError::Database(_)) = (&self.metrics, e) {
                    m.database_retry();
                }
                warn!(attempt, next_delay_ms = delay.as_millis() as u64, error = %e,
                    "attempt failed; the file stays in the data folder and is retried");
            })
            .instrument(span.clone())
            .await;
        let _enter = span.enter();
        observe::log_outcome(&result, started.elapsed(), self.store.claims().is_some());
        if let Some(m) = &self.metrics {
            observe::record_outcome(m, &result, arrived);
        }
        result
    }

    /// One attempt at one candidate, without retries. On a store several agents share,
    /// the source takes hold of it first (without reading it), its identity is claimed
    /// (one statement, shared with the files claimed at the same time) and the
    /// candidate left alone, as [`Outcome::Skipped`] with [`CLAIMED_ELSEWHERE`], when
    /// another agent holds it; the claim is renewed while the file is worked on.
    /// Opening and reading are the source's (for the folder, `intake`'s).
    ///
    /// A followed file's attempt is its next increment (nothing is claimed: its
    /// position commits only from the position it read).
    pub async fn attempt(&self, candidate: &Candidate) -> Result<Outcome, ProcessError> {
        self.attempt_in_turn(candidate, &Turn::none()).await
    }

    /// [`Pipeline::attempt`], a small file handing its rows to the committer in `turn`.
    async fn attempt_in_turn(
        &self,
        candidate: &Candidate,
        turn: &Turn,
    ) -> Result<Outcome, ProcessError> {
        if self.follows(candidate.name()) {
            return self.follow_once(candidate).await;
        }
        let started_at = Utc::now();
        let max = self.max_file_bytes;
        let Some(claims) = self.store.claims() else {
            // Nothing to claim: opened and hashed in one trip to the blocking pool.
            let opened = self
                .on_source(candidate, move |s, c| s.open(c, max))
                .await?;
            return self
                .attempt_hashed(candidate, None, started_at, opened, turn)
                .await;
        };
        let taken = match self.on_source(candidate, |s, c| s.take(c)).await? {
            Ok(taken) => taken,
            Err(reason) => return Ok(Outcome::Skipped { reason }),
        };
        let key = claim_key(candidate, taken.identity());
        if !self.per_file.claim(key.clone()).await? {
            return Ok(Outcome::Skipped {
                reason: CLAIMED_ELSEWHERE,
            });
        }
        // Claimed, so no other agent is writing its ledger row now: one it recorded
        // before is there to see.
        if self.recorded_already(taken.identity()).await? {
            if let Err(e) = self.per_file.release(key).await {
                debug!(error = %e, "could not release the claim; it runs out by itself");
            }
            return Ok(Outcome::Skipped {
                reason: RECORDED_ALREADY,
            });
        }
        // Read (hashed) only once claimed; the claim is held meanwhile.
        let work = async {
            let opened = self
                .on_source(candidate, move |s, _| s.read(taken, max))
                .await?;
            self.attempt_hashed(candidate, Some(&key), started_at, opened, turn)
                .await
        };
        let result = claim::while_held(claims, &key, RENEW_EVERY, work).await;
        if result.is_err() {
            // The file stays in the folder: let any agent take it at once, rather than
            // after the lease, should this one give up or stop (a retry claims it again).
            if let Err(e) = self.per_file.release(key).await {
                debug!(error = %e, "could not release the claim; it runs out by itself");
            }
        }
        result
    }

    /// Whether the item `identity` names stays where it is (`S3_AFTER=keep`) and the
    /// ledger records it already: then it is not read again.
    async fn recorded_already(&self, identity: Identity) -> Result<bool, ProcessError> {
        let Some(recorded) = identity.recorded() else {
            return Ok(false);
        };
        if !self.source.leaves_in_place() {
            return Ok(false);
        }
        let known = self.store.known_sources(&[recorded.text()]).await?;
        if known.is_empty() {
            return Ok(false);
        }
        if let Some(m) = &self.metrics {
            m.s3_known(1);
        }
        Ok(true)
    }

    /// The rest of an attempt, on the candidate opened and hashed (and claimed,
    /// `claim`): looked up when large, then loaded, and its outcome concluded.
    async fn attempt_hashed(
        &self,
        candidate: &Candidate,
        claim: Option<&ClaimKey>,
        started_at: chrono::DateTime<Utc>,
        opened: Opened,
        turn: &Turn,
    ) -> Result<Outcome, ProcessError> {
        let name = candidate.name();
        let (file, hash, size, read) = match opened {
            Opened::File {
                file,
                hash,
                size,
                identity,
            } => (file, hash, size, identity),
            Opened::Skip(reason) => return Ok(Outcome::Skipped { reason }),
            Opened::TooLarge {
                size,
                limit,
                identity,
            } => {
                return self
                    .too_large(candidate, claim, identity, started_at, size, limit)
                    .await;
            }
        };
        if let Some(m) = &self.metrics {
            m.bytes_read(size);
        }
        let mut cx = self.read_context(name);
        let job = Job {
            candidate,
            read,
            claim,
            attempt: FileAttempt {
                id: Uuid::now_v7(),
                file_name: name.to_owned(),
                hash,
                size,
                started_at,
                profile: ProfileRef {
                    name: cx.profile.name.clone(),
                    hash: cx.profile.hash.clone(),
                },
                follow: None,
                source_identity: read.recorded().map(|r| r.text()),
            },
        };
        let looked_up = job.attempt.size > LOOKUP_FIRST_ABOVE_BYTES;
        if looked_up && let Some(loaded) = self.store.find_loaded(&job.attempt.hash).await? {
            return self.already_loaded(job, loaded).await;
        }
        // A second handle on the open file: after the commit it tells whether a producer
        // appended to the file after the reader reached its end.
        let after = file.try_clone().map_err(|source| ProcessError::Read {
            file: name.to_owned(),
            source,
        })?;
        let (loaded, report) = self.load(&job, file, &after, &mut cx, turn).await?;
        self.conclude(job, loaded, report, after, looked_up).await
    }

    /// How the file called `name` is read: the profile its name selects, the ranges and
    /// the source zone in force.
    fn read_context(&self, name: &str) -> ReadContext {
        ReadContext {
            profile: self.profiles.current().select(name).profile,
            file_name: name.to_owned(),
            ranges: self.ranges,
            tz: self.tz,
            order: None,
        }
    }

    /// Ends an attempt after its load: archived after a commit, a duplicate, a read
    /// failure to retry, or a refusal to quarantine. `after` is a second handle on the
    /// file read.
    async fn conclude(
        &self,
        job: Job<'_>,
        loaded: Result<LoadOutcome, SinkError>,
        mut report: ReadReport,
        after: std::fs::File,
        looked_up: bool,
    ) -> Result<Outcome, ProcessError> {
        let name = job.candidate.name();
        match loaded {
            Ok(LoadOutcome::Committed { rows }) => {
                self.committed(job, rows, &mut report, after).await
            }
            Ok(LoadOutcome::AlreadyLoaded(loaded)) => self.already_loaded(job, loaded).await,
            Ok(LoadOutcome::Recorded) => Err(internal(name, "a load was answered as a record")),
            Ok(LoadOutcome::Aborted) => match report.verdict() {
                Verdict::Valid => Err(internal(name, "the sink rolled back a valid file")),
                Verdict::Unreadable(source) => Err(ProcessError::Read {
                    file: name.to_owned(),
                    source,
                }),
                Verdict::Changed => Err(ProcessError::Changed {
                    file: name.to_owned(),
                }),
                Verdict::Interrupted => Err(internal(name, "the row stream stopped early")),
                Verdict::Reread(_) => Err(internal(name, "the date order changed twice")),
                Verdict::Invalid => self.refuse(job, Refusal::Read(&report), looked_up).await,
            },
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let refusal = Refusal::Database {
                    report: &report,
                    message: e.to_string(),
                };
                self.refuse(job, refusal, looked_up).await
            }
        }
    }

    /// After the commit of `rows`: the sensors' quality state remembered, the file
    /// archived (or quarantined if it grew after it was read), its skipped rows written
    /// to the quarantine.
    async fn committed(
        &self,
        job: Job<'_>,
        rows: u64,
        report: &mut ReadReport,
        after: std::fs::File,
    ) -> Result<Outcome, ProcessError> {
        self.qc_memory
            .remember(std::mem::take(&mut report.qc_memories));
        let read_bytes = report.content.as_ref().map_or(job.attempt.size, |c| c.1);
        if after.metadata().is_ok_and(|m| m.len() != read_bytes) {
            return self.grew_after_load(job, read_bytes, after).await;
        }
        let archived_as = self.archive(&job).await?;
        self.note_archived(job.claim, job.attempt.id, &archived_as)
            .await;
        if !report.skipped_lines.is_empty() {
            self.write_rejects(&job, report, &after).await;
        }
        observe::log_skipped_rows(report);
        Ok(Outcome::Loaded {
            id: job.attempt.id,
            rows,
            archived_as,
        })
    }

    /// Runs `f` on the source and an owned copy of `candidate`, on the blocking pool;
    /// its failure is a read error of the candidate.
    async fn on_source<T: Send + 'static>(
        &self,
        candidate: &Candidate,
        f: impl FnOnce(&dyn Source, &Candidate) -> io::Result<T> + Send + 'static,
    ) -> Result<T, ProcessError> {
        let (source, owned) = (self.source.clone(), candidate.clone());
        read_blocking(candidate.name(), move || f(source.as_ref(), &owned)).await
    }
}

impl Pipeline {
    /// Streams the file into the store in one transaction, and once more, in the proven
    /// order, when its dates proved month-first after some were read day-first. A small
    /// file goes to a group commit, where the committer judges its quality; if it has
    /// too many rows for a group after all, it is read once more and streamed.
    async fn load(
        &self,
        job: &Job<'_>,
        file: std::fs::File,
        after: &std::fs::File,
        cx: &mut ReadContext,
        turn: &Turn,
    ) -> Result<(Result<LoadOutcome, SinkError>, ReadReport), ProcessError> {
        let name = &job.attempt.file_name;
        let mut file = Some(file);
        let mut group = self.group.as_ref().filter(|g| g.takes(job.attempt.size));
        loop {
            let input = match file.take() {
                Some(f) => f,
                None => rewound(after).map_err(|source| ProcessError::Read {
                    file: name.clone(),
                    source,
                })?,
            };
            let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
            let (reader_cx, expected) = (cx.clone(), job.attempt.hash.clone());
            let qc = Some(self.qc.with(&cx.profile.qc)).filter(|qc| qc.enabled);
            let reader_qc = qc.clone().filter(|_| group.is_none()).map(|cfg| QcRun {
                cfg,
                store: self.store.clone(),
                runtime: tokio::runtime::Handle::current(),
                memory: self.qc_memory.clone(),
                file_id: job.attempt.id.hyphenated().to_string(),
            });
            let reader = tokio::task::spawn_blocking(move || {
                stream_to_sink(input, &reader_cx, &expected, &tx, reader_qc)
            });
            let loaded = match group {
                Some(g) => match g.load(&job.attempt, rx, qc, turn).await {
                    Grouped::Loaded(loaded) => loaded,
                    Grouped::TooLarge => {
                        // It streams: no other file waits for it.
                        turn.end();
                        // The reader stops at its next batch: the channel is closed.
                        reader.await.map_err(|e| internal(name, e))?;
                        group = None;
                        continue;
                    }
                },
                None => self.store.load(&job.attempt, rx).await,
            };
            let mut report = reader.await.map_err(|e| internal(name, e))?;
            if let Some(mut e) = report.history_error.take() {
                // Reading history is never the file's fault: retried, not quarantined.
                e.class = crate::sink::ErrorClass::Transient;
                return Err(e.into());
            }
            match (&loaded, report.verdict()) {
                (Ok(LoadOutcome::Aborted), Verdict::Reread(order)) if cx.order.is_none() => {
                    cx.order = Some(order);
                }
                _ => return Ok((loaded, report)),
            }
        }
    }
}

impl Pipeline {
    /// Writes the ledger row of a file that loaded nothing: in the next group when
    /// files are grouped (one commit shared with the group's loads), else by itself.
    pub(super) async fn record(&self, entry: &LedgerEntry) -> Result<(), SinkError> {
        match &self.group {
            Some(group) => group.record(entry).await,
            None => self.store.record(entry).await,
        }
    }
}

/// A new handle on the file behind `file`, at its start.
fn rewound(file: &std::fs::File) -> io::Result<std::fs::File> {
    use std::io::Seek;
    let mut f = file.try_clone()?;
    f.rewind()?;
    Ok(f)
}

/// Runs file I/O on the blocking pool; its failure is a read error of `file`.
async fn read_blocking<T: Send + 'static>(
    file: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, ProcessError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(file, e))?
        .map_err(|source| ProcessError::Read {
            file: file.to_owned(),
            source,
        })
}

fn internal(file: &str, e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Internal {
        file: file.to_owned(),
        message: e.to_string(),
    }
}
