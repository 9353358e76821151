//! The handlers that end an attempt: archive a loaded file, finish one an earlier run
//! loaded, record a duplicate, refuse and quarantine. Each takes the [`Job`]: the
//! candidate, which item was read there, and its ledger attempt. Archiving and
//! quarantining are the source's.

use std::fs::File;
use std::io::Seek;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};

use chrono::Utc;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{
    Archived, Decision, Outcome, Pipeline, ProcessError, ReadReport, Refusal, TAKEN_OVER, internal,
    read_blocking,
};
use crate::archive::ArchiveError;
use crate::read::ContentHash;
use crate::report::{QuarantineReport, ReportedError};
use crate::sink::{ClaimKey, EntryStatus, FileAttempt, LedgerEntry, LoadedFile, ProfileRef};
use crate::source::{Candidate, Identity, Source};

/// One file on its way to an outcome.
pub(super) struct Job<'a> {
    /// What the source offered.
    pub candidate: &'a Candidate,
    /// The item that was taken and read there; only it may be moved.
    pub read: Identity,
    /// This agent's claim on it, on a store several agents share.
    pub claim: Option<&'a ClaimKey>,
    /// Its ledger row.
    pub attempt: FileAttempt,
}

impl Pipeline {
    /// Quarantines a file the rules or the database refused, unless its content was
    /// loaded before: that is a duplicate whatever the rules say now (ranges may have
    /// changed since). `looked_up`: the content hash was looked up before reading.
    pub(super) async fn refuse(
        &self,
        job: Job<'_>,
        refusal: Refusal<'_>,
        looked_up: bool,
    ) -> Result<Outcome, ProcessError> {
        if !looked_up && let Some(loaded) = self.store.find_loaded(&job.attempt.hash).await? {
            return self.already_loaded(job, loaded).await;
        }
        self.quarantine(job, refusal).await
    }

    /// Quarantines a file over `MAX_FILE_BYTES` without reading a byte of it. Having no
    /// content hash, its ledger row and report carry a stand-in (`unread-…`).
    pub(super) async fn too_large(
        &self,
        candidate: &Candidate,
        claim: Option<&ClaimKey>,
        read: Identity,
        started_at: chrono::DateTime<Utc>,
        size: u64,
        limit: u64,
    ) -> Result<Outcome, ProcessError> {
        let (id, name) = (Uuid::now_v7(), candidate.name());
        let attempt = FileAttempt {
            id,
            hash: ContentHash::unread(&format!("{name}:{size}:{id}")),
            profile: self.profile_of(name),
            follow: None,
            source_identity: read.recorded().map(|r| r.text()),
            file_name: name.to_owned(),
            size,
            started_at,
        };
        let job = Job {
            candidate,
            read,
            claim,
            attempt,
        };
        let refusal = Refusal::Decision(Decision::TooLarge { size, limit });
        self.quarantine(job, refusal).await
    }

    /// The file grew after the reader reached its end, and the rows read are committed.
    /// Archiving it in processed/ would hide the rows added, and another attempt would
    /// load the committed ones twice: it is quarantined for a person to split, with a
    /// report saying how many bytes were loaded.
    pub(super) async fn grew_after_load(
        &self,
        loaded: Job<'_>,
        loaded_bytes: u64,
        mut file: File,
    ) -> Result<Outcome, ProcessError> {
        let name = loaded.attempt.file_name.clone();
        let (hash, size) = read_blocking(&name, move || {
            file.rewind()?;
            ContentHash::of_reader(&file)
        })
        .await?;
        let refusal = Refusal::Decision(Decision::GrewAfterLoad {
            loaded_bytes,
            size,
            ledger_id: loaded.attempt.id,
        });
        let job = Job {
            candidate: loaded.candidate,
            read: loaded.read,
            claim: loaded.claim,
            attempt: FileAttempt {
                id: Uuid::now_v7(),
                file_name: name,
                hash,
                size,
                started_at: Utc::now(),
                profile: loaded.attempt.profile.clone(),
                follow: None,
                source_identity: loaded.attempt.source_identity.clone(),
            },
        };
        self.quarantine(job, refusal).await
    }

    /// The content is in the ledger as loaded: either this very file, loaded by a run
    /// that stopped before moving it (finish the move), or a duplicate.
    pub(super) async fn already_loaded(
        &self,
        job: Job<'_>,
        loaded: LoadedFile,
    ) -> Result<Outcome, ProcessError> {
        if loaded.file_name == job.attempt.file_name && self.claim_lost(job.claim).await {
            // Another agent took the file over while this one could not renew its claim,
            // and loaded it: the rest is that agent's.
            return Ok(Outcome::Skipped { reason: TAKEN_OVER });
        }
        if loaded.file_name == job.attempt.file_name
            && loaded.archived_as.is_none()
            && self.arrived_before(&job, loaded.started_at).await
        {
            // The commit happened but the move did not (crash, or processed/ unwritable).
            let archived_as = self.archive(&job).await?;
            self.note_archived(job.claim, loaded.id, &archived_as).await;
            return Ok(Outcome::Recovered {
                id: loaded.id,
                archived_as,
            });
        }
        self.record(&LedgerEntry {
            attempt: job.attempt.clone(),
            status: EntryStatus::Duplicate,
            rows_read: 0,
            rejected_rows: 0,
            error_summary: Some(format!("same content as {}", loaded.file_name)),
            duplicate_of: Some(loaded.id),
        })
        .await?;
        let archived_as = self.archive(&job).await?;
        self.note_archived(job.claim, job.attempt.id, &archived_as)
            .await;
        Ok(Outcome::Duplicate {
            id: job.attempt.id,
            of: loaded.id,
            archived_as,
        })
    }

    /// Records the refusal in the ledger, then writes the report and moves the file to
    /// `quarantine/`.
    pub(super) async fn quarantine(
        &self,
        job: Job<'_>,
        refusal: Refusal<'_>,
    ) -> Result<Outcome, ProcessError> {
        let Job {
            candidate,
            read,
            claim,
            attempt,
        } = job;
        let mut report = refusal.quarantine_report(&attempt);
        if let Some(m) = &self.metrics {
            m.rows_rejected(report.invalid_rows);
            m.quarantined(report.rule);
        }
        self.record(&LedgerEntry {
            attempt: attempt.clone(),
            status: EntryStatus::Quarantined,
            rows_read: report.rows_read,
            rejected_rows: report.invalid_rows,
            error_summary: Some(report.reason.clone()),
            duplicate_of: None,
        })
        .await?;
        let (c, hash) = (candidate.clone(), attempt.hash.clone());
        let reason = report.reason.clone();
        let archived_as = self
            .let_go(&attempt.file_name, move |s| {
                s.quarantine(&c, read, &mut report, &hash)
            })
            .await?;
        self.note_archived(claim, attempt.id, &archived_as).await;
        Ok(Outcome::Quarantined {
            id: attempt.id,
            reason,
            archived_as,
        })
    }

    /// Has the source archive the item that was read as processed (never overwriting).
    pub(super) async fn archive(&self, job: &Job<'_>) -> Result<Archived, ProcessError> {
        let (c, read, hash) = (job.candidate.clone(), job.read, job.attempt.hash.clone());
        self.let_go(&job.attempt.file_name, move |s| s.archive(&c, read, &hash))
            .await
    }

    /// Runs an archive step `f` on the source, on the blocking pool.
    async fn let_go<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&dyn Source) -> Result<T, ArchiveError> + Send + 'static,
    ) -> Result<T, ProcessError> {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || f(source.as_ref()))
            .await
            .map_err(|e| internal(name, e))?
            .map_err(ProcessError::from)
    }

    /// Whether the item read by `job` arrived no later than `started_at`, when the load
    /// found in the ledger started: then it is that very item, committed but not moved
    /// (a crash, an archive name that could not be recorded). The same name and content
    /// dropped again after the first was moved arrived later, and is a duplicate — as
    /// is, safely, any item the source cannot place.
    async fn arrived_before(&self, job: &Job<'_>, started_at: chrono::DateTime<Utc>) -> bool {
        let (source, c, read) = (self.source.clone(), job.candidate.clone(), job.read);
        tokio::task::spawn_blocking(move || source.arrived_before(&c, read, started_at))
            .await
            .unwrap_or(false)
    }

    /// The profile that would read a file called `name`, for a ledger row written
    /// without reading it.
    fn profile_of(&self, name: &str) -> ProfileRef {
        let p = self.profiles.current().select(name).profile;
        ProfileRef {
            name: p.name.clone(),
            hash: p.hash.clone(),
        }
    }

    /// After a partial load: the bad rows, as their original lines after the lines
    /// before the data (preamble and header), go to `quarantine/NAME.rejects.EXT`
    /// beside a report of their problems, for a person to fix and drop again. Best
    /// effort: the load is committed and the ledger row counts them either way.
    pub(super) async fn write_rejects(&self, job: &Job<'_>, report: &ReadReport, file: &File) {
        let name = rejects_name(&job.attempt.file_name);
        if let Some(m) = &self.metrics {
            m.rows_rejected(report.skipped_lines.len() as u64);
        }
        let Some((reason, rule)) = report.rejects_reason() else {
            return;
        };
        let mut qr = QuarantineReport {
            file: name.clone(),
            quarantined_as: name.clone(),
            content_hash: job.attempt.hash.to_string(),
            size_bytes: 0,
            quarantined_at: Utc::now(),
            ledger_id: job.attempt.id,
            reason,
            rule,
            rows_read: report.rows_read,
            invalid_rows: report.invalid_rows,
            errors_total: report.errors_total,
            errors_truncated: report.errors_total > report.errors.len() as u64,
            errors: report.errors.iter().map(ReportedError::from).collect(),
            copy_lines: None,
        };
        let wanted: BTreeSet<u64> = report.skipped_lines.iter().copied().collect();
        let before_data = report.first_data_line.saturating_sub(1);
        let (rejects_of, hash) = (self.source.clone(), job.attempt.hash.clone());
        let source = match file.try_clone() {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "could not write the rejected rows");
                return;
            }
        };
        let written = tokio::task::spawn_blocking(move || {
            let write =
                Box::new(|out: &mut dyn Write| copy_lines(source, out, before_data, &wanted));
            rejects_of.quarantine_new(&mut qr, &hash, write)
        })
        .await;
        match written {
            Ok(Ok(Some(as_name))) => {
                info!(rejects = %as_name, rows = report.skipped_lines.len(), "bad rows left out of the load written to quarantine")
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(error = %e, "could not write the rejected rows"),
            Err(e) => warn!(error = %e, "could not write the rejected rows"),
        }
    }

    /// Best effort: the archive name is for people; exactly-once does not depend on it.
    /// A file whose name no longer points at the file read is expected when another
    /// agent took it over (this agent's claim is gone): that is said at DEBUG only.
    pub(super) async fn note_archived(
        &self,
        claim: Option<&ClaimKey>,
        id: Uuid,
        archived_as: &Archived,
    ) {
        let Some(archived_as) = archived_as else {
            if self.claim_lost(claim).await {
                debug!("another agent took the file over and archived it");
                return;
            }
            warn!(
                "the file's name no longer points at the file that was read (replaced or \
                 removed meanwhile); the content read is accounted for, and a new file \
                 under that name waits for its own turn"
            );
            return;
        };
        if let Err(e) = self.per_file.mark_archived(id, archived_as.clone()).await {
            warn!(error = %e, "could not record the archive name in the ledger");
        }
        // Released after the archive name is recorded: an identical upload taken next
        // under the same identity is then told from this one by the ledger.
        if let Some(key) = claim.filter(|_| self.source.claim_ends_when_let_go())
            && let Err(e) = self.per_file.release(key.clone()).await
        {
            debug!(error = %e, "could not release the claim; it runs out by itself");
        }
    }
}

impl Pipeline {
    /// Whether this agent's claim on the file is gone (it expired and another agent took
    /// it over). One round trip; `false` without claims, or when the database cannot
    /// say (then nothing is known to be another agent's).
    async fn claim_lost(&self, claim: Option<&ClaimKey>) -> bool {
        let (Some(key), Some(claims)) = (claim, self.store.claims()) else {
            return false;
        };
        matches!(claims.renew(key).await, Ok(false))
    }
}

/// `x.csv` → `x.rejects.csv`, `TOA5_pond.dat` → `TOA5_pond.rejects.dat`: the extension
/// stays, so the profile that read the file still matches its rejects once fixed and
/// dropped again.
fn rejects_name(file_name: &str) -> String {
    match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.rejects.{ext}"),
        _ => format!("{file_name}.rejects"),
    }
}

/// Copies from `source` (from its start) the physical lines up to `before` and those in
/// `wanted`, as they are (line endings included). Lines are read with a bounded buffer
/// per line: a huge line costs its own length once, not the file's.
fn copy_lines(
    mut source: File,
    out: &mut dyn Write,
    before: u64,
    wanted: &BTreeSet<u64>,
) -> std::io::Result<()> {
    source.rewind()?;
    let last = wanted.last().copied().unwrap_or(0).max(before);
    let mut reader = BufReader::with_capacity(64 * 1024, source);
    let mut writer = std::io::BufWriter::new(out);
    let mut line = Vec::new();
    for n in 1..=last {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if n <= before || wanted.contains(&n) {
            writer.write_all(&line)?;
        }
    }
    writer.flush()
}
