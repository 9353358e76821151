//! The pipeline: takes one file through read → validate → enrich → stats → sink →
//! archive, and decides its outcome.
//!
//! Order of events for one attempt:
//! 1. open the file (regular files only, never following a symlink) and hash it;
//! 2. if its content is already loaded, archive it as a duplicate (or, when the ledger
//!    says this very file was loaded but never archived, finish that archive);
//! 3. stream it: a blocking task reads, validates, enriches and summarises, sending
//!    row batches through a bounded channel to the sink, which COPYs them inside one
//!    transaction; the reader ends the stream with Commit only if every row was valid
//!    and the bytes still hash to what step 1 saw;
//! 4. after the commit, move the file to `processed/`; after a rejection, write the
//!    ledger row, the report, and move the file to `quarantine/`.
//!
//! A database that cannot be reached fails the attempt with a transient error; the
//! file stays in the data folder and [`Pipeline::process`] retries it with capped,
//! jittered exponential backoff.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use uuid::Uuid;

use crate::archive::{self, ArchiveError, FileIdentity};
use crate::config::{Ranges, Settings, SourceTimezone};
use crate::enrich::{EnrichedRow, enrich};
use crate::metrics::Metrics;
use crate::read::{ContentHash, CsvSource, FileError};
use crate::report::{MAX_REPORTED_ERRORS, QuarantineReport, ReportedError};
use crate::rule::Rule;
use crate::sink::{
    EntryStatus, FileAttempt, LedgerEntry, LoadMsg, LoadOutcome, LoadedFile, SinkError, Store,
};
use crate::stats::FileStats;
use crate::validate::{RowError, Validator};

/// Rows per batch sent from the reader to the sink.
const BATCH_ROWS: usize = 2048;
/// Batches in flight between reader and sink: bounds memory whatever the file size.
const BATCHES_IN_FLIGHT: usize = 4;
/// Files up to this size go straight to the load, which refuses content loaded already
/// (the unique index on the hash) and then says by whom: for small files the separate
/// lookup first was a round trip and a statement per file, about a tenth of their
/// throughput. Larger files are looked up first so that a duplicate is not read twice.
const LOOKUP_FIRST_ABOVE_BYTES: u64 = 1 << 20;

/// The name a file was archived under, or `None` when another file had been renamed
/// over its name in the data folder meanwhile: the outcome concerns the content that
/// was read, and the newcomer is left for its own turn.
pub type Archived = Option<String>;

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
            _ => false,
        }
    }
}

/// How long [`Pipeline::process`] keeps retrying transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLimit {
    /// Until the agent shuts down.
    Forever,
    /// At most this many retries after the first attempt.
    Times(usize),
}

/// Everything needed to process files; cheap to share between workers.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    ranges: Ranges,
    tz: SourceTimezone,
    processed: PathBuf,
    quarantine: PathBuf,
    retry_max_delay: Duration,
    max_file_bytes: Option<u64>,
    /// Where outcomes, retries and bytes are counted, when metrics are served.
    metrics: Option<Arc<Metrics>>,
}

impl Pipeline {
    pub fn new(settings: &Settings, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            ranges: settings.ranges,
            tz: settings.source_timezone,
            processed: settings.processed_folder.clone(),
            quarantine: settings.quarantine_folder.clone(),
            retry_max_delay: settings.retry_max_delay,
            max_file_bytes: settings.max_file_bytes,
            metrics: None,
        }
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

    /// The backoff used for database retries. backon's jitter adds up to 100 % of the
    /// delay, so the exponential part is capped at half of `RETRY_MAX_DELAY` to keep
    /// every wait within it.
    pub fn backoff(&self, limit: RetryLimit) -> ExponentialBuilder {
        let cap = self.retry_max_delay / 2;
        let b = ExponentialBuilder::default()
            .with_min_delay(cap.min(Duration::from_millis(250)))
            .with_max_delay(cap)
            .with_jitter();
        match limit {
            RetryLimit::Forever => b.without_max_times(),
            RetryLimit::Times(n) => b.with_max_times(n),
        }
    }

    /// Processes one file, retrying transient failures until it reaches an outcome,
    /// `limit` is exhausted, or `shutdown` is cancelled during a wait. Logs one line
    /// with the outcome.
    pub async fn process(
        &self,
        path: &Path,
        limit: RetryLimit,
        shutdown: &CancellationToken,
    ) -> Result<Outcome, ProcessError> {
        let name = display_name(path);
        let span = info_span!("file", file = %name);
        let started = Instant::now();
        // A rename into the folder sets ctime, a write sets both: ctime is arrival.
        let arrived = self.metrics.as_ref().and_then(|_| arrival_time(path));
        let attempts = AtomicU32::new(1);
        let sleep_token = shutdown.clone();
        let result = (|| self.attempt(path))
            .retry(self.backoff(limit))
            .sleep(move |d| {
                let token = sleep_token.clone();
                async move {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = token.cancelled() => {}
                    }
                }
            })
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
        log_outcome(&result, started.elapsed());
        if let Some(m) = &self.metrics {
            record_outcome(m, &result, arrived);
        }
        result
    }

    /// One attempt at one file, without retries.
    pub async fn attempt(&self, path: &Path) -> Result<Outcome, ProcessError> {
        let name = display_name(path);
        let started_at = Utc::now();
        let owned = path.to_owned();
        let max = self.max_file_bytes;
        let opened = tokio::task::spawn_blocking(move || open_and_hash(&owned, max))
            .await
            .map_err(|e| internal(&name, e))?
            .map_err(|source| ProcessError::Read {
                file: name.clone(),
                source,
            })?;
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
                    .too_large(path, identity, name, started_at, size, limit)
                    .await;
            }
        };
        if let Some(m) = &self.metrics {
            m.bytes_read(size);
        }
        let attempt = FileAttempt {
            id: Uuid::now_v7(),
            file_name: name.clone(),
            hash,
            size,
            started_at,
        };
        let looked_up = attempt.size > LOOKUP_FIRST_ABOVE_BYTES;
        if looked_up && let Some(loaded) = self.store.find_loaded(&attempt.hash).await? {
            return self.already_loaded(path, read, attempt, loaded).await;
        }

        // A second handle on the open file: after the commit it tells whether a producer
        // appended to the file after the reader reached its end.
        let after = file.try_clone().map_err(|source| ProcessError::Read {
            file: name.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        let (ranges, tz, expected) = (self.ranges, self.tz, attempt.hash.clone());
        let reader =
            tokio::task::spawn_blocking(move || stream_to_sink(file, ranges, tz, &expected, &tx));
        let loaded = self.store.load(&attempt, rx).await;
        let report = reader.await.map_err(|e| internal(&name, e))?;

        match loaded {
            Ok(LoadOutcome::Committed { rows }) => {
                let read_bytes = report.content.as_ref().map_or(attempt.size, |c| c.1);
                if after.metadata().is_ok_and(|m| m.len() != read_bytes) {
                    return self
                        .grew_after_load(path, read, &attempt, read_bytes, after)
                        .await;
                }
                let archived_as = self.archive(path, read, &self.processed, &attempt).await?;
                self.note_archived(attempt.id, &archived_as).await;
                Ok(Outcome::Loaded {
                    id: attempt.id,
                    rows,
                    archived_as,
                })
            }
            Ok(LoadOutcome::AlreadyLoaded(loaded)) => {
                self.already_loaded(path, read, attempt, loaded).await
            }
            Ok(LoadOutcome::Aborted) => match report.verdict() {
                Verdict::Valid => Err(internal(&name, "the sink rolled back a valid file")),
                Verdict::Unreadable(source) => Err(ProcessError::Read { file: name, source }),
                Verdict::Changed => Err(ProcessError::Changed { file: name }),
                Verdict::Interrupted => Err(internal(&name, "the row stream stopped early")),
                Verdict::Invalid => {
                    self.refuse(path, read, attempt, &report, None, looked_up)
                        .await
                }
            },
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let message = e.to_string();
                self.refuse(path, read, attempt, &report, Some(message), looked_up)
                    .await
            }
        }
    }

    /// Quarantines a file the rules or the database refused, unless its content was
    /// loaded before: that is a duplicate whatever the rules say now (ranges may have
    /// changed since). `looked_up`: the content hash was looked up before reading.
    async fn refuse(
        &self,
        path: &Path,
        read: FileIdentity,
        attempt: FileAttempt,
        report: &ReadReport,
        database_error: Option<String>,
        looked_up: bool,
    ) -> Result<Outcome, ProcessError> {
        if !looked_up && let Some(loaded) = self.store.find_loaded(&attempt.hash).await? {
            return self.already_loaded(path, read, attempt, loaded).await;
        }
        let refusal = match database_error {
            Some(message) => Refusal::Database { report, message },
            None => Refusal::Read(report),
        };
        self.quarantine(path, read, attempt, refusal).await
    }

    /// Quarantines a file over `MAX_FILE_BYTES` without reading a byte of it. Having no
    /// content hash, its ledger row and report carry a stand-in (`unread-…`).
    async fn too_large(
        &self,
        path: &Path,
        read: FileIdentity,
        name: String,
        started_at: chrono::DateTime<Utc>,
        size: u64,
        limit: u64,
    ) -> Result<Outcome, ProcessError> {
        let id = Uuid::now_v7();
        let attempt = FileAttempt {
            id,
            hash: ContentHash::unread(&format!("{name}:{size}:{id}")),
            file_name: name,
            size,
            started_at,
        };
        let refusal = Refusal::Decision(Decision::TooLarge { size, limit });
        self.quarantine(path, read, attempt, refusal).await
    }

    /// The file grew after the reader reached its end, and the rows read are committed.
    /// Archiving it in processed/ would hide the rows added, and another attempt would
    /// load the committed ones twice: it is quarantined for a person to split, with a
    /// report saying how many bytes were loaded.
    async fn grew_after_load(
        &self,
        path: &Path,
        read: FileIdentity,
        loaded: &FileAttempt,
        loaded_bytes: u64,
        mut file: File,
    ) -> Result<Outcome, ProcessError> {
        let name = loaded.file_name.clone();
        let (hash, size) = tokio::task::spawn_blocking(move || {
            file.rewind()?;
            ContentHash::of_reader(&file)
        })
        .await
        .map_err(|e| internal(&name, e))?
        .map_err(|source| ProcessError::Read {
            file: name.clone(),
            source,
        })?;
        let attempt = FileAttempt {
            id: Uuid::now_v7(),
            file_name: name,
            hash,
            size,
            started_at: Utc::now(),
        };
        let refusal = Refusal::Decision(Decision::GrewAfterLoad {
            loaded_bytes,
            size,
            ledger_id: loaded.id,
        });
        self.quarantine(path, read, attempt, refusal).await
    }

    async fn already_loaded(
        &self,
        path: &Path,
        read: FileIdentity,
        attempt: FileAttempt,
        loaded: LoadedFile,
    ) -> Result<Outcome, ProcessError> {
        if loaded.file_name == attempt.file_name && loaded.archived_as.is_none() {
            // The commit happened but the move did not (crash, or processed/ unwritable).
            let archived_as = self.archive(path, read, &self.processed, &attempt).await?;
            self.note_archived(loaded.id, &archived_as).await;
            return Ok(Outcome::Recovered {
                id: loaded.id,
                archived_as,
            });
        }
        self.store
            .record(&LedgerEntry {
                attempt: attempt.clone(),
                status: EntryStatus::Duplicate,
                rows_read: 0,
                rejected_rows: 0,
                error_summary: Some(format!("same content as {}", loaded.file_name)),
                duplicate_of: Some(loaded.id),
            })
            .await?;
        let archived_as = self.archive(path, read, &self.processed, &attempt).await?;
        self.note_archived(attempt.id, &archived_as).await;
        Ok(Outcome::Duplicate {
            id: attempt.id,
            of: loaded.id,
            archived_as,
        })
    }

    async fn quarantine(
        &self,
        path: &Path,
        read: FileIdentity,
        attempt: FileAttempt,
        refusal: Refusal<'_>,
    ) -> Result<Outcome, ProcessError> {
        let mut report = refusal.quarantine_report(&attempt);
        if let Some(m) = &self.metrics {
            m.rows_rejected(report.invalid_rows);
        }
        self.store
            .record(&LedgerEntry {
                attempt: attempt.clone(),
                status: EntryStatus::Quarantined,
                rows_read: report.rows_read,
                rejected_rows: report.invalid_rows,
                error_summary: Some(report.reason.clone()),
                duplicate_of: None,
            })
            .await?;
        let (src, dir, hash) = (
            path.to_owned(),
            self.quarantine.clone(),
            attempt.hash.clone(),
        );
        let reason = report.reason.clone();
        let archived_as = tokio::task::spawn_blocking(move || {
            archive::quarantine(&src, read, &dir, &mut report, &hash)
        })
        .await
        .map_err(|e| internal(&attempt.file_name, e))??;
        self.note_archived(attempt.id, &archived_as).await;
        Ok(Outcome::Quarantined {
            id: attempt.id,
            reason,
            archived_as,
        })
    }

    async fn archive(
        &self,
        path: &Path,
        read: FileIdentity,
        dir: &Path,
        attempt: &FileAttempt,
    ) -> Result<Archived, ProcessError> {
        let (src, dir, name, hash) = (
            path.to_owned(),
            dir.to_owned(),
            attempt.file_name.clone(),
            attempt.hash.clone(),
        );
        tokio::task::spawn_blocking(move || archive::move_into(&src, read, &dir, &name, &hash))
            .await
            .map_err(|e| internal(&attempt.file_name, e))?
            .map_err(ProcessError::from)
    }

    /// Best effort: the archive name is for people; exactly-once does not depend on it.
    async fn note_archived(&self, id: Uuid, archived_as: &Archived) {
        let Some(archived_as) = archived_as else {
            warn!(
                "the file's name no longer points at the file that was read (replaced or \
                 removed meanwhile); the content read is accounted for, and a new file \
                 under that name waits for its own turn"
            );
            return;
        };
        if let Err(e) = self.store.mark_archived(id, archived_as).await {
            warn!(error = %e, "could not record the archive name in the ledger");
        }
    }
}

/// When the file at `path` arrived in the data folder, as far as its inode tells.
fn arrival_time(path: &Path) -> Option<std::time::SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let secs = u64::try_from(meta.ctime()).ok()?;
    let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn record_outcome(
    m: &Metrics,
    result: &Result<Outcome, ProcessError>,
    arrived: Option<std::time::SystemTime>,
) {
    let outcome = match result {
        Ok(Outcome::Loaded { rows, .. }) => {
            m.rows_loaded(*rows);
            if let Some(arrived) = arrived {
                m.committed(arrived);
            }
            "loaded"
        }
        Ok(Outcome::Duplicate { .. }) => "duplicate",
        Ok(Outcome::Recovered { .. }) => "recovered",
        Ok(Outcome::Quarantined { .. }) => "quarantined",
        Ok(Outcome::Skipped { .. }) => "skipped",
        Err(_) => "failed",
    };
    m.file(outcome);
}

fn internal(file: &str, e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Internal {
        file: file.to_owned(),
        message: e.to_string(),
    }
}

fn log_outcome(result: &Result<Outcome, ProcessError>, elapsed: Duration) {
    let ms = elapsed.as_millis() as u64;
    match result {
        Ok(Outcome::Loaded {
            rows, archived_as, ..
        }) => {
            let rows_per_s = (*rows as f64 / elapsed.as_secs_f64().max(1e-6)).round() as u64;
            info!(
                outcome = "loaded",
                rows,
                duration_ms = ms,
                rows_per_s,
                archived_as = shown(archived_as),
                "file loaded"
            );
        }
        Ok(Outcome::Duplicate {
            of, archived_as, ..
        }) => {
            info!(outcome = "duplicate", duplicate_of = %of, duration_ms = ms, archived_as = shown(archived_as),
                "content already loaded; file archived without loading");
        }
        Ok(Outcome::Recovered { archived_as, .. }) => {
            info!(
                outcome = "recovered",
                duration_ms = ms,
                archived_as = shown(archived_as),
                "file was loaded by an earlier run; archived now"
            );
        }
        Ok(Outcome::Quarantined {
            reason,
            archived_as,
            ..
        }) => {
            warn!(outcome = "quarantined", reason = %reason, duration_ms = ms, archived_as = shown(archived_as),
                "file quarantined");
        }
        Ok(Outcome::Skipped { reason }) => {
            info!(outcome = "skipped", reason, "file skipped");
        }
        Err(e) => {
            error!(outcome = "failed", error = %e, duration_ms = ms,
                "file not processed; it stays in the data folder and is tried again at the next scan");
        }
    }
}

/// An archive name for logs.
fn shown(archived_as: &Archived) -> &str {
    archived_as.as_deref().unwrap_or("(replaced)")
}

/// The file's own name, for logs, reports and the ledger.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

enum Opened {
    File {
        file: File,
        hash: ContentHash,
        size: u64,
        identity: FileIdentity,
    },
    Skip(&'static str),
    /// Over `MAX_FILE_BYTES`: not read at all.
    TooLarge {
        size: u64,
        limit: u64,
        identity: FileIdentity,
    },
}

/// Opens a regular file without following symlinks or blocking on a FIFO. `Ok(Err)`
/// says why the path is not a data file.
fn open_regular(path: &Path) -> io::Result<Result<(File, FileIdentity), &'static str>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err("file vanished")),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Err("symbolic link")),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Err("not a regular file"));
    }
    Ok(Ok((file, FileIdentity::of(&meta))))
}

/// Opens a data file that no one is still writing, and hashes it unless it is larger
/// than `max_bytes`.
fn open_and_hash(path: &Path, max_bytes: Option<u64>) -> io::Result<Opened> {
    let (mut file, identity) = match open_regular(path)? {
        Ok(opened) => opened,
        Err(reason) => return Ok(Opened::Skip(reason)),
    };
    if open_for_writing_elsewhere(&file) {
        // Its close will fire an event (or the next rescan will find it).
        return Ok(Opened::Skip("still open for writing by another process"));
    }
    let size = file.metadata()?.len();
    if let Some(limit) = max_bytes.filter(|limit| size > *limit) {
        return Ok(Opened::TooLarge {
            size,
            limit,
            identity,
        });
    }
    let (hash, size) = ContentHash::of_reader(&file)?;
    file.rewind()?;
    Ok(Opened::File {
        file,
        hash,
        size,
        identity,
    })
}

/// True when another process has `file` open for writing, as far as the kernel can
/// tell us: a read lease cannot be taken on a file open for writing (`EAGAIN`). This
/// catches writers the watcher never saw, such as one that was already writing when
/// the agent started. Where leases are unavailable (not the owner and no
/// CAP_LEASE, or a filesystem without leases) it answers false and the settle rule
/// alone applies.
fn open_for_writing_elsewhere(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor we own; F_SETLEASE takes an int argument.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // Release at once: holding it would make a writer's open() wait for us.
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// What the reader saw in one pass over a file.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub file_error: Option<FileError>,
    pub rows_read: u64,
    pub invalid_rows: u64,
    pub errors_total: u64,
    /// The first [`MAX_REPORTED_ERRORS`] row errors.
    pub errors: Vec<RowError>,
    pub stats: Option<FileStats>,
    /// Hash and size of the bytes read, when the pass reached the end.
    pub content: Option<(ContentHash, u64)>,
    /// The hash differs from the one the attempt started with.
    pub changed: bool,
    /// The consumer stopped taking rows (the sink failed).
    pub interrupted: bool,
}

enum Verdict {
    Valid,
    Invalid,
    Unreadable(io::Error),
    Changed,
    Interrupted,
}

impl ReadReport {
    fn verdict(&self) -> Verdict {
        match &self.file_error {
            Some(FileError::Io(e)) => Verdict::Unreadable(io::Error::new(e.kind(), e.to_string())),
            Some(_) => Verdict::Invalid,
            None if self.interrupted => Verdict::Interrupted,
            None if self.changed => Verdict::Changed,
            None if self.invalid_rows > 0 => Verdict::Invalid,
            None => Verdict::Valid,
        }
    }

    /// True when nothing is wrong with the file's content.
    pub fn is_valid(&self) -> bool {
        self.file_error.is_none() && self.invalid_rows == 0
    }

    /// One sentence describing the problem, and its rule; `None` for a valid file.
    pub fn reason(&self) -> Option<(String, Rule)> {
        if let Some(e) = &self.file_error {
            let at = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
            return Some((format!("{e}{at}"), e.rule()));
        }
        let first = self.errors.first()?;
        let rule = if self.errors.iter().all(|e| e.rule == first.rule) {
            first.rule
        } else {
            Rule::InvalidRows
        };
        let noun = if self.invalid_rows == 1 {
            "row"
        } else {
            "rows"
        };
        let column = if first.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", first.column)
        };
        Some((
            format!(
                "{} invalid {noun} of {}; first at line {}{column}: {}",
                self.invalid_rows, self.rows_read, first.line, first.message
            ),
            rule,
        ))
    }

    /// Every problem found, whole-file problem first, as reported.
    pub fn reported_errors(&self) -> Vec<ReportedError> {
        let whole = self.file_error.as_ref().map(|e| ReportedError {
            line: e.line(),
            column: String::new(),
            value: String::new(),
            rule: e.rule(),
            message: e.to_string(),
        });
        whole
            .into_iter()
            .chain(self.errors.iter().map(ReportedError::from))
            .collect()
    }

    /// Problems counted, including those beyond the listed ones.
    pub fn problems_total(&self) -> u64 {
        self.errors_total + u64::from(self.file_error.is_some())
    }
}

/// A decision of the pipeline about a whole file: not something wrong with what was
/// read, but a reason not to read it, or not to archive it as loaded.
#[derive(Debug, thiserror::Error)]
pub enum Decision {
    #[error("the file is {size} bytes, more than MAX_FILE_BYTES={limit}; it was not read")]
    TooLarge { size: u64, limit: u64 },
    /// Written to after it was handed over: its first `loaded_bytes` were loaded.
    #[error(
        "the file grew from {loaded_bytes} to {size} bytes after its rows were loaded (ledger \
         id {ledger_id}); the bytes after the first {loaded_bytes} were not loaded: move them \
         into a new file with the header"
    )]
    GrewAfterLoad {
        loaded_bytes: u64,
        size: u64,
        ledger_id: Uuid,
    },
}

impl Decision {
    pub fn rule(&self) -> Rule {
        match self {
            Decision::TooLarge { .. } => Rule::FileTooLarge,
            Decision::GrewAfterLoad { .. } => Rule::GrewAfterLoad,
        }
    }
}

/// Why a file goes to quarantine.
pub enum Refusal<'a> {
    /// Its content broke rules.
    Read(&'a ReadReport),
    /// The database refused data the validator accepted.
    Database {
        report: &'a ReadReport,
        message: String,
    },
    /// The pipeline decided so.
    Decision(Decision),
}

impl Refusal<'_> {
    fn quarantine_report(&self, attempt: &FileAttempt) -> QuarantineReport {
        let empty = ReadReport::default();
        let (reason, rule, errors, errors_total, seen) = match self {
            Refusal::Database { report, message } => (
                format!("the database refused the file's data: {message}"),
                Rule::DatabaseRejected,
                vec![ReportedError {
                    line: None,
                    column: String::new(),
                    value: String::new(),
                    rule: Rule::DatabaseRejected,
                    message: message.clone(),
                }],
                1,
                *report,
            ),
            Refusal::Decision(d) => (
                d.to_string(),
                d.rule(),
                vec![ReportedError {
                    line: None,
                    column: String::new(),
                    value: String::new(),
                    rule: d.rule(),
                    message: d.to_string(),
                }],
                1,
                &empty,
            ),
            Refusal::Read(report) => {
                let (reason, rule) = report
                    .reason()
                    .unwrap_or_else(|| ("no problem found".to_owned(), Rule::InvalidRows));
                (
                    reason,
                    rule,
                    report.reported_errors(),
                    report.problems_total(),
                    *report,
                )
            }
        };
        QuarantineReport {
            file: attempt.file_name.clone(),
            quarantined_as: attempt.file_name.clone(),
            content_hash: attempt.hash.to_string(),
            size_bytes: attempt.size,
            quarantined_at: Utc::now(),
            ledger_id: attempt.id,
            reason,
            rule,
            rows_read: seen.rows_read,
            invalid_rows: seen.invalid_rows,
            errors_truncated: errors_total > errors.len() as u64,
            errors_total,
            errors,
        }
    }
}

/// Reads `input` in one pass: validates, enriches and summarises every row, handing
/// each valid row to `on_row` until the first invalid one (after that rows are only
/// checked, so the report lists every problem). `on_row` returns false to stop early.
pub fn read_rows(
    input: impl Read,
    ranges: Ranges,
    tz: SourceTimezone,
    mut on_row: impl FnMut(EnrichedRow) -> bool,
) -> ReadReport {
    let mut report = ReadReport::default();
    let mut source = match CsvSource::new(input) {
        Ok(s) => s,
        Err(e) => {
            report.file_error = Some(e);
            return report;
        }
    };
    let layout = source.layout().clone();
    let validator = Validator::new(&layout, ranges, tz);
    let mut stats = FileStats::new(&layout);
    loop {
        let (line, record) = match source.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                report.file_error = Some(e);
                return report;
            }
        };
        report.rows_read += 1;
        match validator.validate(line, record) {
            Ok(reading) => {
                if report.invalid_rows == 0 {
                    stats.push(&reading);
                    if !on_row(enrich(reading, &ranges)) {
                        report.interrupted = true;
                        return report;
                    }
                }
            }
            Err(errors) => {
                report.invalid_rows += 1;
                report.errors_total += errors.len() as u64;
                let room = MAX_REPORTED_ERRORS.saturating_sub(report.errors.len());
                report.errors.extend(errors.into_iter().take(room));
            }
        }
    }
    match source.finish() {
        Ok(content) => report.content = Some(content),
        Err(e) => report.file_error = Some(e),
    }
    report.stats = Some(stats);
    report
}

/// The reader task of one attempt: [`read_rows`] into the sink's channel, then the
/// end message that decides commit or rollback.
fn stream_to_sink(
    file: File,
    ranges: Ranges,
    tz: SourceTimezone,
    expected: &ContentHash,
    tx: &mpsc::Sender<LoadMsg>,
) -> ReadReport {
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut report = read_rows(
        io::BufReader::with_capacity(256 * 1024, file),
        ranges,
        tz,
        |row| {
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                return tx.blocking_send(LoadMsg::Rows(full)).is_ok();
            }
            true
        },
    );
    report.changed = report
        .content
        .as_ref()
        .is_some_and(|(hash, _)| hash != expected);
    let end = match (&report.stats, report.verdict()) {
        (Some(stats), Verdict::Valid) => {
            if !batch.is_empty() && tx.blocking_send(LoadMsg::Rows(batch)).is_err() {
                report.interrupted = true;
                return report;
            }
            LoadMsg::Commit(Box::new(stats.clone()))
        }
        _ => LoadMsg::Abort,
    };
    // A closed channel means the sink already gave up; its error tells why.
    let _ = tx.blocking_send(end);
    report
}

/// Validates a file without loading it (the `check` command).
pub fn check_file(path: &Path, ranges: Ranges, tz: SourceTimezone) -> io::Result<ReadReport> {
    let (file, _) = open_regular(path)?.map_err(io::Error::other)?;
    Ok(read_rows(
        io::BufReader::with_capacity(256 * 1024, file),
        ranges,
        tz,
        |_| true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_open_for_writing_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.csv");
        let mut writer = File::create(&path).unwrap();
        writer.write_all(b"ts,id,t\n").unwrap();
        assert!(matches!(
            open_and_hash(&path, None).unwrap(),
            Opened::Skip("still open for writing by another process")
        ));
        drop(writer);
        assert!(matches!(
            open_and_hash(&path, None).unwrap(),
            Opened::File { size: 8, .. }
        ));
    }

    #[test]
    fn symlinks_and_fifos_are_never_opened_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.csv");
        std::fs::write(&target, "ts,id,t\n").unwrap();
        let link = dir.path().join("l.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            open_and_hash(&link, None).unwrap(),
            Opened::Skip("symbolic link")
        ));
        let fifo = dir.path().join("f.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_and_hash(&fifo, None).unwrap(),
            Opened::Skip("not a regular file")
        ));
        assert!(matches!(
            open_and_hash(&dir.path().join("gone.csv"), None).unwrap(),
            Opened::Skip("file vanished")
        ));
    }
}
