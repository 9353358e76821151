//! One increment of a followed file (append mode): the file is never moved. Its
//! position is read from the store, the source spools the complete new lines behind
//! the file's header lines ([`crate::source::follow`]), the usual reading pass reads
//! the spool, and its readings go to the store through [`compare`]: a reading already
//! stored with the same values (a file read again after a rewrite or rotation) is
//! skipped, one stored with other values refuses the increment (`rewritten_value`).
//! The new position commits with the increment's ledger row, loaded or refused.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::info;
use uuid::Uuid;

use super::inspect::{BATCHES_IN_FLIGHT, ReadReport, Verdict, stream_to_sink};
use super::outcome::Job;
use super::quality::QcRun;
use super::{Decision, Outcome, Pipeline, ProcessError, ReadContext, Refusal, internal};
use crate::enrich::EnrichedRow;
use crate::report::CopyLines;
use crate::sink::{
    EntryStatus, FileAttempt, FollowMark, LedgerEntry, LoadMsg, LoadOutcome, ProfileRef,
    ReadingKey, SinkError, Store, StoredReading,
};
use crate::source::follow::{self, Increment, Restart, Snapshot};
use crate::source::{Candidate, folder};

/// How the comparison with the stored readings ended.
enum Compared {
    /// Every reading passed on (those stored already with the same values left out).
    Passed { skipped: u64 },
    /// A reading differs from the one stored: the store was told to roll back.
    Refused(Decision),
    /// The stored readings could not be read: the store was told to roll back.
    Failed(SinkError),
    /// The reader stopped without an end.
    Stopped,
}

impl Pipeline {
    /// Whether the file called `name` is followed in place: `SOURCE_MODE=append`, or
    /// its profile says `[source] mode = "append"`.
    pub fn follows(&self, name: &str) -> bool {
        self.mode == follow::Mode::Append || self.profiles.current().select(name).profile.follow
    }

    /// Whether any file may be followed: `SOURCE_MODE=append`, or a profile in force
    /// says `[source] mode = "append"`.
    pub fn follows_any(&self) -> bool {
        self.mode == follow::Mode::Append
            || self.profiles.current().profiles().iter().any(|p| p.follow)
    }

    /// Whether every file is followed (`SOURCE_MODE=append`): nothing is ever moved.
    pub fn follows_all(&self) -> bool {
        self.mode == follow::Mode::Append
    }

    /// One increment of the followed file `candidate`: loaded (its new position with
    /// it), refused (its ledger row and position, then its lines and report in the
    /// quarantine), or skipped when there is no complete new line.
    pub(super) async fn follow_once(&self, candidate: &Candidate) -> Result<Outcome, ProcessError> {
        let started_at = Utc::now();
        let name = candidate.name().to_owned();
        let mut cx = self.read_context(&name);
        let header_lines = follow::header_lines(&cx.profile.layout);
        let previous = self.store.followed_file(&name).await?;
        let before = previous.clone();
        let snapshot = self
            .on_source(candidate, move |_, c| {
                follow::snapshot(folder::path_of(c), c.name(), before.as_ref(), header_lines)
            })
            .await?;
        let mut inc = match snapshot {
            Snapshot::Nothing(reason) => {
                if let (Some(rule), Some(p)) = (self.archive_rule(&name), previous.as_ref()) {
                    self.archive_if_idle(candidate, p, rule).await;
                }
                return Ok(Outcome::Skipped { reason });
            }
            Snapshot::Increment(inc) => inc,
        };
        if let Some(restart) = inc.restart.filter(|r| *r != Restart::New) {
            info!(
                restart = restart.as_str(),
                from_offset = previous.as_ref().map_or(0, |p| p.offset),
                "the followed file changed before its committed position: read again from its \
                 first data line; readings stored already with the same values are skipped"
            );
        }
        let id = Uuid::now_v7();
        let previous_id = previous.map(|p| p.ledger_id);
        inc.position.ledger_id = id;
        let attempt = FileAttempt {
            id,
            file_name: name.clone(),
            hash: follow::increment_hash(&name, previous_id, &inc),
            size: inc.end - inc.start,
            started_at,
            profile: ProfileRef {
                name: cx.profile.name.clone(),
                hash: cx.profile.hash.clone(),
            },
            follow: Some(Box::new(FollowMark {
                position: inc.position.clone(),
                previous: previous_id,
            })),
            source_identity: None,
        };
        if let Some(m) = &self.metrics {
            m.bytes_read(attempt.size);
        }
        let job = Job {
            candidate,
            read: inc.identity,
            claim: None,
            attempt,
        };
        let (loaded, compared, report) = {
            let _alone = self.follow_lock.lock().await;
            self.load_increment(&job, &inc, &mut cx).await?
        };
        self.conclude_increment(job, &inc, loaded, compared, report)
            .await
    }

    /// Streams the spooled increment through the reading pass and [`compare`] into the
    /// store, once more in the proven date order when its dates proved it late.
    async fn load_increment(
        &self,
        job: &Job<'_>,
        inc: &Increment,
        cx: &mut ReadContext,
    ) -> Result<(Result<LoadOutcome, SinkError>, Compared, ReadReport), ProcessError> {
        let name = &job.attempt.file_name;
        let read_error = |source| ProcessError::Read {
            file: name.clone(),
            source,
        };
        loop {
            let spool = super::rewound(&inc.spool).map_err(read_error)?;
            let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
            let (to_store, from_compare) = mpsc::channel(BATCHES_IN_FLIGHT);
            let (reader_cx, expected) = (cx.clone(), inc.content.clone());
            let qc = Some(self.qc.with(&cx.profile.qc))
                .filter(|qc| qc.enabled)
                .map(|cfg| QcRun {
                    cfg,
                    store: self.store.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    memory: self.qc_memory.clone(),
                    file_id: job.attempt.id.hyphenated().to_string(),
                });
            let reader = tokio::task::spawn_blocking(move || {
                stream_to_sink(spool, &reader_cx, &expected, &tx, qc)
            });
            let shift = inc.lines_before.saturating_sub(inc.header_lines);
            let comparing = compare(self.store.clone(), rx, to_store, shift);
            let (loaded, compared) =
                tokio::join!(self.store.load(&job.attempt, from_compare), comparing);
            let mut report = reader.await.map_err(|e| internal(name, e))?;
            if let Some(mut e) = report.history_error.take() {
                e.class = crate::sink::ErrorClass::Transient;
                return Err(e.into());
            }
            match (&loaded, report.verdict()) {
                (Ok(LoadOutcome::Aborted), Verdict::Reread(order)) if cx.order.is_none() => {
                    cx.order = Some(order);
                }
                _ => return Ok((loaded, compared, report)),
            }
        }
    }

    /// Ends an increment after its load.
    async fn conclude_increment(
        &self,
        job: Job<'_>,
        inc: &Increment,
        loaded: Result<LoadOutcome, SinkError>,
        compared: Compared,
        mut report: ReadReport,
    ) -> Result<Outcome, ProcessError> {
        let name = job.candidate.name();
        if let Compared::Failed(e) = compared {
            return Err(e.into());
        }
        match loaded {
            Ok(LoadOutcome::Committed { rows }) => {
                self.qc_memory
                    .remember(std::mem::take(&mut report.qc_memories));
                if !report.skipped_lines.is_empty() {
                    self.write_rejects(&job, &report, &inc.spool).await;
                }
                let skipped = match compared {
                    Compared::Passed { skipped } => skipped,
                    _ => 0,
                };
                info!(
                    offset = inc.end,
                    new_bytes = inc.end - inc.start,
                    stored_already = skipped,
                    "increment of the followed file loaded; the file stays where it is"
                );
                Ok(Outcome::Loaded {
                    id: job.attempt.id,
                    rows,
                    archived_as: None,
                })
            }
            // Another attempt committed the same increment first: start from its position.
            Ok(LoadOutcome::AlreadyLoaded(_)) => Err(ProcessError::Changed {
                file: name.to_owned(),
            }),
            Ok(LoadOutcome::Recorded) => Err(internal(name, "a load was answered as a record")),
            Ok(LoadOutcome::Aborted) => {
                if let Compared::Refused(decision) = compared {
                    return self
                        .refuse_increment(job, inc, Refusal::Decision(decision))
                        .await;
                }
                match report.verdict() {
                    Verdict::Invalid => {
                        self.refuse_increment(job, inc, Refusal::Read(&report))
                            .await
                    }
                    Verdict::Unreadable(source) => Err(ProcessError::Read {
                        file: name.to_owned(),
                        source,
                    }),
                    Verdict::Changed => Err(ProcessError::Changed {
                        file: name.to_owned(),
                    }),
                    Verdict::Valid | Verdict::Interrupted | Verdict::Reread(_) => {
                        Err(internal(name, "the increment's load stopped early"))
                    }
                }
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let refusal = Refusal::Database {
                    report: &report,
                    message: e.to_string(),
                };
                self.refuse_increment(job, inc, refusal).await
            }
        }
    }

    /// Refuses an increment: its ledger row and the file's new position commit
    /// together (the followed file goes on from there), then its header and lines are
    /// written to the quarantine beside the report. The followed file is not touched.
    async fn refuse_increment(
        &self,
        job: Job<'_>,
        inc: &Increment,
        refusal: Refusal<'_>,
    ) -> Result<Outcome, ProcessError> {
        let attempt = job.attempt;
        let mut report = refusal.quarantine_report(&attempt);
        // The reader counted lines in the copy; a person looks in the followed file.
        // (A decision's lines, `rewritten_value`'s, are the followed file's already.)
        let copy = CopyLines {
            header_lines: inc.header_lines,
            shift: inc.lines_before.saturating_sub(inc.header_lines),
        };
        if !matches!(refusal, Refusal::Decision(_)) {
            for e in &mut report.errors {
                e.line = e.line.map(|l| copy.in_file(l));
            }
        }
        report.copy_lines = Some(copy);
        if let Some(m) = &self.metrics {
            m.rows_rejected(report.invalid_rows);
            m.quarantined(report.rule);
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
        let reason = report.reason.clone();
        let name = attempt.file_name.clone();
        let spool = super::rewound(&inc.spool).map_err(|source| ProcessError::Read {
            file: name.clone(),
            source,
        })?;
        let (source, hash) = (self.source.clone(), attempt.hash.clone());
        let archived_as = tokio::task::spawn_blocking(move || {
            let write = Box::new(move |out: &mut dyn std::io::Write| {
                let mut spool = spool;
                std::io::copy(&mut spool, out).map(drop)
            });
            source.quarantine_new(&mut report, &hash, write)
        })
        .await
        .map_err(|e| internal(&name, e))??;
        Ok(Outcome::Quarantined {
            id: attempt.id,
            reason,
            archived_as,
        })
    }
}

/// Passes the reader's batches on to the store, each reading's line made the followed
/// file's (`shift` lines more), leaving out readings stored already with the same
/// values and refusing the increment at the first one stored with other values.
async fn compare(
    store: Arc<dyn Store>,
    mut from_reader: mpsc::Receiver<LoadMsg>,
    to_store: mpsc::Sender<LoadMsg>,
    shift: u64,
) -> Compared {
    let mut skipped = 0;
    while let Some(msg) = from_reader.recv().await {
        let LoadMsg::Rows(mut batch) = msg else {
            let _ = to_store.send(msg).await;
            return Compared::Passed { skipped };
        };
        for row in &mut batch {
            row.reading.line += shift;
        }
        // Most batches (a new file, plain growth) hold no stored sensor and time: one
        // range probe per sensor says so, instead of looking up every reading.
        let stored = match store.any_stored_within(&spans_of(&batch)).await {
            Ok(false) => Ok(Vec::new()),
            Ok(true) => store.stored_readings(&keys_of(&batch)).await,
            Err(e) => Err(e),
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                let _ = to_store.send(LoadMsg::Abort).await;
                return Compared::Failed(e);
            }
        };
        let kept = match sift(batch, stored) {
            Ok((kept, same)) => {
                skipped += same;
                kept
            }
            Err(decision) => {
                let _ = to_store.send(LoadMsg::Abort).await;
                return Compared::Refused(decision);
            }
        };
        if !kept.is_empty() && to_store.send(LoadMsg::Rows(kept)).await.is_err() {
            return Compared::Stopped;
        }
    }
    Compared::Stopped
}

/// Each sensor of `batch` with its first and last time there.
fn spans_of(batch: &[EnrichedRow]) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let mut spans: HashMap<&str, (DateTime<Utc>, DateTime<Utc>)> = HashMap::new();
    for r in batch {
        let t = r.reading.timestamp;
        spans
            .entry(r.reading.sensor_id.as_str())
            .and_modify(|(first, last)| {
                *first = (*first).min(t);
                *last = (*last).max(t);
            })
            .or_insert((t, t));
    }
    spans
        .into_iter()
        .map(|(sensor, (first, last))| (sensor.to_owned(), first, last))
        .collect()
}

/// The distinct sensors and times of `batch`.
fn keys_of(batch: &[EnrichedRow]) -> Vec<ReadingKey> {
    let mut keys: Vec<ReadingKey> = batch
        .iter()
        .map(|r| ReadingKey {
            sensor_id: r.reading.sensor_id.clone(),
            ts: r.reading.timestamp,
        })
        .collect();
    keys.sort_by(|a, b| (&a.sensor_id, a.ts).cmp(&(&b.sensor_id, b.ts)));
    keys.dedup();
    keys
}

/// The readings of `batch` not stored yet, and how many were stored with the same
/// values; a reading stored with other values is the increment's refusal.
fn sift(
    batch: Vec<EnrichedRow>,
    stored: Vec<StoredReading>,
) -> Result<(Vec<EnrichedRow>, u64), Decision> {
    if stored.is_empty() {
        return Ok((batch, 0));
    }
    let mut by_key: HashMap<ReadingKey, Vec<StoredReading>> = HashMap::new();
    for s in stored {
        by_key.entry(s.key.clone()).or_default().push(s);
    }
    let mut kept = Vec::with_capacity(batch.len());
    let mut same = 0;
    for row in batch {
        let key = ReadingKey {
            sensor_id: row.reading.sensor_id.clone(),
            ts: row.reading.timestamp,
        };
        match by_key.get(&key) {
            None => kept.push(row),
            Some(list) if list.iter().any(|s| s.same_values(&row)) => same += 1,
            Some(list) => return Err(rewritten(&row, &list[0])),
        }
    }
    Ok((kept, same))
}

/// The refusal of `row`, whose sensor and time hold `stored` already.
fn rewritten(row: &EnrichedRow, stored: &StoredReading) -> Decision {
    let r = &row.reading;
    let values = |t: Option<f64>, h: Option<f64>, p: Option<f64>, extra: &Option<String>| {
        let show = |v: Option<f64>| v.map_or_else(|| "empty".to_owned(), |v| v.to_string());
        let mut s = format!(
            "temperature {}, humidity {}, pressure {}",
            show(t),
            show(h),
            show(p)
        );
        if let Some(extra) = extra {
            s.push_str(&format!(", {extra}"));
        }
        s
    };
    Decision::RewrittenValue {
        line: r.line,
        sensor: r.sensor_id.clone(),
        time: r.timestamp.to_rfc3339(),
        stored: values(
            stored.temperature,
            stored.humidity,
            stored.pressure,
            &stored.extra,
        ),
        new: values(r.temperature, r.humidity, r.pressure, &r.extra),
    }
}
