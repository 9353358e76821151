//! The agent: built once from the settings ([`Agent::build`]), it ties the watcher to a
//! bounded pool of workers ([`Agent::run`]), or processes the files present and exits
//! ([`Agent::once`]).
//!
//! The watcher sends the ready files of the data folder, as the source's candidates,
//! into a bounded channel; the dispatcher gives each candidate to a worker when a
//! permit of the `WORKERS` semaphore is free and no other worker has the same one. Small files committed in groups (`GROUP_FILES`) take their permits
//! from a semaphore of their own, `3 × GROUP_FILES`, so that a group fills while the
//! others load and larger files never wait behind them. On shutdown the dispatcher stops taking candidates, workers waiting to
//! retry stop waiting, and files being loaded finish (or roll back) before `run`
//! returns.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::archive;
use crate::config::Settings;
use crate::http::{self, HttpError};
use crate::lock::{self, AgentLocks, LockError};
use crate::metrics::Metrics;
use crate::pipeline::{Outcome, Pipeline, ProcessError, RetryLimit, RetryPolicy, Turn, Turns};
use crate::sink::{self, ErrorClass, SinkError};
use crate::source::s3::{Bucket, discover};
use crate::source::{Candidate, folder};
use crate::watch::{WatchConfig, WatchError};

mod room;

use room::{InFlight, Room};

/// Candidates waiting for a worker.
const QUEUE_CAPACITY: usize = 256;

/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot create folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the database refused the agent ({0}); check DATABASE_URL / DB_* settings")]
    DatabaseRefused(#[source] SinkError),
    #[error("could not prepare the database: {0}")]
    Database(#[source] SinkError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("cannot list the data folder: {0}")]
    Scan(#[source] std::io::Error),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("cannot use the bucket: {0}")]
    Bucket(String),
    #[error(
        "followed files are to be archived by a move (FOLLOW_ARCHIVE=move or a profile's \
         [source] archive = \"move\"), but nothing can be moved out of the data folder {}: \
         {source}; use FOLLOW_ARCHIVE=copy (or archive = \"copy\"), or give the agent write \
         access there", path.display()
    )]
    ArchiveByMove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another agent holds the SQLite store or the data folder: a setup problem, like
    /// a bad setting (the process exits 2).
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// The agent, built once from the settings: the store, the pipeline over it, and the
/// metrics it counts into when `HTTP_ADDR` is set.
#[derive(Debug)]
pub struct Agent {
    settings: Settings,
    pipeline: Pipeline,
    /// The locks taken by [`Agent::prepare`], held until the agent is dropped.
    locks: Mutex<Option<AgentLocks>>,
    /// The bucket files come from (`SOURCE=s3://…`), or why its client could not be
    /// made; `None` for the data folder.
    bucket: Option<Result<Arc<Bucket>, String>>,
    /// Poked by a bucket notification: list the bucket now.
    bucket_hint: Arc<tokio::sync::Notify>,
}

impl Agent {
    /// Opens the store (`WORKERS + 2` connections, and two more to load groups of small
    /// files when `GROUP_FILES` is above 1) and builds the pipeline over it, counting
    /// into fresh metrics when `HTTP_ADDR` is set; logs the database it
    /// starts on. Neither the database nor the folders are touched yet: [`run`] and
    /// [`once`] prepare them first, each with its own patience. Call it inside a Tokio
    /// runtime (the connection pool is created here).
    ///
    /// [`run`]: Agent::run
    /// [`once`]: Agent::once
    pub fn build(settings: &Settings) -> Self {
        // More connections for the groups of small files loaded at once.
        let grouping = if settings.group_files > 1 {
            crate::pipeline::GROUPS_AT_ONCE as u32
        } else {
            0
        };
        let store = sink::open_as(
            &settings.database,
            settings.workers as u32 + 2 + grouping,
            &settings.agent_id,
        );
        if settings.database.is_default() {
            info!(
                version = env!("CARGO_PKG_VERSION"),
                agent = %settings.agent_id,
                database = %store.describe(),
                "sensor-ingest starting on the embedded SQLite store (no DATABASE_URL or DB_* \
                 set; DATABASE_URL=postgres://… selects PostgreSQL)"
            );
        } else {
            info!(version = env!("CARGO_PKG_VERSION"), agent = %settings.agent_id,
                database = %store.describe(), "sensor-ingest starting");
        }
        let mut pipeline = Pipeline::new(settings, store);
        if settings.http_addr.is_some() {
            pipeline = pipeline.with_metrics(Arc::new(Metrics::new()));
        }
        let bucket = settings.s3.as_ref().map(|cfg| {
            Bucket::connect(cfg)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        if let Some(Ok(b)) = &bucket {
            pipeline = pipeline.with_source(b.clone());
        }
        Agent {
            settings: settings.clone(),
            pipeline,
            locks: Mutex::new(None),
            bucket,
            bucket_hint: Arc::default(),
        }
    }

    /// The pipeline every file goes through.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The quarantine the review reads: the bucket's, or the quarantine folder (also
    /// when the bucket's client could not be made: the agent stops on that anyway).
    fn quarantine_area(&self) -> Arc<dyn crate::source::QuarantineArea> {
        match &self.bucket {
            Some(Ok(bucket)) => bucket.clone(),
            _ => Arc::new(crate::source::FolderQuarantine::new(
                &self.settings.quarantine_folder,
                &self.settings.data_folder,
            )),
        }
    }

    /// The bucket files come from, if any.
    fn bucket(&self) -> Result<Option<Arc<Bucket>>, AgentError> {
        match &self.bucket {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b.clone())),
            Some(Err(e)) => Err(AgentError::Bucket(e.clone())),
        }
    }

    /// Lists `bucket` into `out` until `token` is cancelled (the bucket's watcher).
    fn discover(
        &self,
        bucket: Arc<Bucket>,
        out: mpsc::Sender<Candidate>,
        token: CancellationToken,
    ) -> impl Future<Output = Result<(), WatchError>> + use<> {
        let settings = &self.settings;
        let cfg = discover::DiscoverConfig {
            pattern: settings.file_pattern.clone(),
            interval: settings.monitor_interval,
            reconcile: settings
                .s3
                .as_ref()
                .map_or(settings.monitor_interval, |s| s.reconcile),
            hint: self.bucket_hint.clone(),
            metrics: self.pipeline.metrics().cloned(),
            ledger: self.pipeline.store().clone(),
        };
        async move {
            discover::discover(bucket, cfg, out, token).await;
            Ok(())
        }
    }

    /// What the watcher looks for, and where.
    fn watch_config(&self) -> WatchConfig {
        let settings = &self.settings;
        WatchConfig {
            folder: settings.data_folder.clone(),
            pattern: settings.file_pattern.clone(),
            settle: settings.settle,
            rescan_interval: settings.monitor_interval,
        }
    }

    /// Creates the three folders if needed, takes the agent's locks ([`crate::lock`]:
    /// failing at once when another agent holds the SQLite store or the data folder)
    /// and applies the schema, retrying while the database is unreachable (up to
    /// `limit`), but failing at once when it refuses the agent (bad password, missing
    /// database, no privilege).
    pub async fn prepare(
        &self,
        limit: RetryLimit,
        shutdown: &CancellationToken,
    ) -> Result<(), AgentError> {
        use backon::Retryable;
        let (settings, pipeline) = (&self.settings, &self.pipeline);
        for dir in [
            &settings.data_folder,
            &settings.processed_folder,
            &settings.quarantine_folder,
        ] {
            archive::ensure_dir(dir).map_err(|source| AgentError::Folder {
                path: dir.clone(),
                source,
            })?;
        }
        {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.is_none() {
                *locks = Some(lock::take(settings)?);
            }
        }
        // A kill in the middle of writing a report or a cross-filesystem copy leaves a
        // hidden temporary file behind; clear those no running writer holds.
        for dir in [&settings.processed_folder, &settings.quarantine_folder] {
            match archive::remove_orphaned_temps(dir) {
                Ok(0) => {}
                Ok(n) => {
                    info!(folder = %dir.display(), removed = n, "removed temporary files left by an interrupted run")
                }
                Err(e) => {
                    warn!(folder = %dir.display(), error = %e, "could not clear temporary files")
                }
            }
        }
        let store = pipeline.store().clone();
        let retrying = (|| async { store.prepare().await })
            .retry(RetryPolicy::new(settings.retry_max_delay).backoff(limit))
            .when(|e| e.class == ErrorClass::Transient)
            .notify(|e, delay| {
                if let Some(m) = pipeline.metrics() {
                    m.database_retry();
                }
                warn!(error = %e, next_delay_ms = delay.as_millis() as u64,
                database = %store.describe(), "database not reachable yet; retrying");
            });
        let result = tokio::select! {
            result = retrying => result,
            // A stop requested while waiting for the database is a clean stop: nothing was
            // taken yet (an unfinished schema transaction rolls back).
            _ = shutdown.cancelled() => {
                info!("stopped before the database was ready");
                return Ok(());
            }
        };
        match result {
            Ok(()) if pipeline.follows_any() && !store.follows() => Err(AgentError::Database(
                sink::follow::unsupported("following appended files"),
            )),
            Ok(())
                if pipeline.moves_idle_files()
                    && let Err(e) = crate::sys::can_create_in(&self.settings.data_folder) =>
            {
                Err(AgentError::ArchiveByMove {
                    path: self.settings.data_folder.clone(),
                    source: e,
                })
            }
            Ok(()) if pipeline.follows_any() && self.bucket.is_some() => Err(AgentError::Bucket(
                "append mode (SOURCE_MODE=append or a profile's [source] mode = \"append\") \
                 follows growing files of the data folder; a bucket's objects never grow: \
                 read the bucket with SOURCE_MODE=move and no append profile"
                    .into(),
            )),
            Ok(()) => {
                info!(database = %store.describe(), "database ready");
                Ok(())
            }
            Err(e) if e.class == ErrorClass::Refused => Err(AgentError::DatabaseRefused(e)),
            Err(e) => Err(AgentError::Database(e)),
        }
    }

    /// Serves the dashboard and metrics when `HTTP_ADDR` is set, prepares the folders and the
    /// database (waiting for it as long as it takes), then watches the data folder and
    /// processes files until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), AgentError> {
        self.serve_metrics(&shutdown).await?;
        self.prepare(RetryLimit::Forever, &shutdown).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        tokio::spawn(maintain_storage(
            self.pipeline.store().clone(),
            self.settings.retention,
            shutdown.clone(),
        ));
        tokio::spawn(reload_profiles(
            self.pipeline.profiles().clone(),
            self.settings.file_pattern.clone(),
            shutdown.clone(),
        ));
        self.watch_and_dispatch(shutdown).await
    }

    /// Starts the HTTP server (dashboard, `/metrics`) when `HTTP_ADDR` is set; it stops with
    /// `shutdown`, and an error it stops on is logged.
    async fn serve_metrics(&self, shutdown: &CancellationToken) -> Result<(), AgentError> {
        let (Some(addr), Some(counts)) = (self.settings.http_addr, self.pipeline.metrics()) else {
            return Ok(());
        };
        let server = http::serve(
            addr,
            &self.settings,
            self.pipeline.store().clone(),
            counts.clone(),
            self.bucket.as_ref().map(|_| self.bucket_hint.clone()),
            self.quarantine_area(),
            shutdown.clone(),
        )
        .await?;
        tokio::spawn(async move {
            if let Ok(Err(e)) = server.await {
                error!("{e}");
            }
        });
        Ok(())
    }

    /// The watcher feeding a bounded pool of workers, one file per worker and never
    /// the same candidate twice at once, until `shutdown`; then the files in progress
    /// finish.
    async fn watch_and_dispatch(&self, shutdown: CancellationToken) -> Result<(), AgentError> {
        let (settings, pipeline) = (&self.settings, &self.pipeline);
        let (tx, mut rx) = mpsc::channel::<Candidate>(QUEUE_CAPACITY);
        let watcher_token = shutdown.child_token();
        let mut watcher = match self.bucket()? {
            Some(bucket) => tokio::spawn(self.discover(bucket, tx, watcher_token.clone())),
            None => {
                info!(folder = %settings.data_folder.display(), pattern = %settings.file_pattern,
                workers = settings.workers, "watching for files");
                self.start_watchers(self.watch_config(), tx, &watcher_token)
            }
        };

        let room = Room::new(pipeline, settings.workers);
        // Small files reach the group committer in the order taken, as under `once`: a
        // burst dropped into the folder is judged in time order (pipeline::turns).
        let turns = Turns::new();
        let in_flight: Arc<Mutex<HashSet<Candidate>>> = Arc::default();
        let mut workers = JoinSet::new();
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                done = &mut watcher => {
                    // The watcher only returns by itself when it could not start.
                    break match done {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(AgentError::Watch(e)),
                        Err(e) => Err(AgentError::Scan(std::io::Error::other(e.to_string()))),
                    };
                }
                Some(finished) = workers.join_next(), if !workers.is_empty() => {
                    if let Err(e) = finished {
                        error!(error = %e, "a worker stopped unexpectedly");
                    }
                }
                candidate = rx.recv() => {
                    let Some(candidate) = candidate else { break Ok(()) };
                    let Some(claim) = InFlight::claim(&in_flight, &candidate) else { continue };
                    let size = pipeline.source().size_hint(&candidate).unwrap_or(u64::MAX);
                    let grouped = pipeline.groups(size);
                    let permit = tokio::select! {
                        p = room.take(grouped, size) => p,
                        _ = shutdown.cancelled() => break Ok(()),
                    };
                    let (pipeline, token) = (pipeline.clone(), shutdown.clone());
                    let turn = if grouped { turns.take() } else { Turn::none() };
                    workers.spawn(async move {
                        let _claim = claim;
                        let _permit = permit;
                        let outcome =
                            pipeline.process_in_turn(&candidate, turn, RetryLimit::Forever, &token);
                        let _ = outcome.await;
                    });
                }
            }
        };
        watcher_token.cancel();
        if !workers.is_empty() {
            info!(
                in_flight = workers.len(),
                "shutting down; letting files in progress finish"
            );
        }
        while let Some(finished) = workers.join_next().await {
            if let Err(e) = finished {
                error!(error = %e, "a worker stopped unexpectedly");
            }
        }
        if !watcher.is_finished() {
            let _ = watcher.await;
        }
        info!("stopped");
        result
    }

    /// Starts the data folder's watchers, sending on `tx` until `token`: the watcher of
    /// whole files (unless `SOURCE_MODE=append`) and, when files are followed in place,
    /// the watcher of followed files. The handle ends when one of them could not start.
    fn start_watchers(
        &self,
        cfg: WatchConfig,
        tx: mpsc::Sender<Candidate>,
        token: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<(), WatchError>> {
        let pipeline = &self.pipeline;
        if !pipeline.follows_any() {
            return tokio::spawn(folder::watch(cfg, tx, token.clone()));
        }
        let p = pipeline.clone();
        let followed = move |name: &str| p.follows(name);
        info!(
            all = pipeline.follows_all(),
            "following appended files in place"
        );
        let follow = folder::follow(cfg.clone(), followed, tx.clone(), token.clone());
        if pipeline.follows_all() {
            return tokio::spawn(follow);
        }
        let whole = folder::watch(cfg, tx, token.clone());
        tokio::spawn(async move { tokio::try_join!(follow, whole).map(drop) })
    }

    /// Prepares the folders and the database (waiting `retries` times for one that is
    /// unreachable), processes every settled file in the data folder with up to
    /// `WORKERS` in parallel, reporting progress (files, rows, bytes) to `progress`, then
    /// returns. Transient failures are retried `retries` times per file.
    pub async fn once(
        &self,
        retries: usize,
        shutdown: CancellationToken,
        progress: &dyn OnceProgress,
    ) -> Result<Summary, AgentError> {
        let (settings, pipeline) = (&self.settings, &self.pipeline);
        let limit = RetryLimit::Times(retries);
        self.prepare(limit, &shutdown).await?;
        if shutdown.is_cancelled() {
            return Ok(Summary::default());
        }
        maintain_once(pipeline.store().as_ref(), settings.retention).await;
        let files = match self.bucket()? {
            Some(bucket) => discover::present(
                &bucket,
                &settings.file_pattern,
                pipeline.store().clone(),
                pipeline.metrics().map(|m| m.as_ref()),
            )
            .await
            .map_err(|e| AgentError::Bucket(e.to_string()))?,
            None => folder::settled(&self.watch_config())
                .await
                .map_err(AgentError::Scan)?,
        };
        info!(files = files.len(), folder = %settings.data_folder.display(), "processing files present");
        let sizes: Vec<u64> = files
            .iter()
            .map(|c| pipeline.source().size_hint(c).unwrap_or(0))
            .collect();
        progress.start(files.len(), sizes.iter().sum());
        let room = Room::new(pipeline, settings.workers);
        // Small files reach the group committer in the order taken (pipeline::turns).
        let turns = Turns::new();
        let mut workers = JoinSet::new();
        let mut summary = Summary::default();
        let mut record =
            |done: Result<(u64, Result<Outcome, ProcessError>), tokio::task::JoinError>| match done
            {
                Ok((size, result)) => {
                    progress.file_done(size, &result);
                    summary.add(&result);
                }
                Err(e) => {
                    error!(error = %e, "a worker stopped unexpectedly");
                    summary.failed += 1;
                }
            };
        'spawn: for (candidate, size) in files.into_iter().zip(sizes) {
            let grouped = pipeline.groups(size);
            let permit = loop {
                tokio::select! {
                    p = room.take(grouped, size) => break p,
                    // Count files as they finish, so progress moves while others wait.
                    Some(done) = workers.join_next(), if !workers.is_empty() => record(done),
                    _ = shutdown.cancelled() => break 'spawn,
                }
            };
            let (pipeline, token) = (pipeline.clone(), shutdown.clone());
            let turn = if grouped { turns.take() } else { Turn::none() };
            workers.spawn(async move {
                let _permit = permit;
                let outcome = pipeline.process_in_turn(&candidate, turn, limit, &token);
                (size, outcome.await)
            });
        }
        while let Some(done) = workers.join_next().await {
            record(done);
        }
        progress.finish();
        info!(
            loaded = summary.loaded,
            rows = summary.rows,
            duplicates = summary.duplicates,
            recovered = summary.recovered,
            quarantined = summary.quarantined,
            failed = summary.failed,
            "done"
        );
        Ok(summary)
    }
}

/// What `once` reports while it works through a backlog: the command line draws it as a
/// bar or as progress lines (`cli::progress`).
pub trait OnceProgress: Sync {
    /// The backlog is `files` files of `bytes` bytes in all.
    fn start(&self, files: usize, bytes: u64);
    /// One file of `bytes` bytes is done with `result`.
    fn file_done(&self, bytes: u64, result: &Result<Outcome, ProcessError>);
    /// The backlog is done (or abandoned).
    fn finish(&self);
}

/// What `once` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub loaded: usize,
    pub rows: u64,
    pub duplicates: usize,
    pub recovered: usize,
    pub quarantined: usize,
    pub skipped: usize,
    /// Files left in the data folder because they could not be processed.
    pub failed: usize,
}

impl Summary {
    /// True when every file was loaded, recognised as already loaded, or skipped.
    pub fn all_loaded(&self) -> bool {
        self.quarantined == 0 && self.failed == 0
    }

    fn add(&mut self, result: &Result<Outcome, ProcessError>) {
        match result {
            Ok(Outcome::Loaded { rows, .. }) => {
                self.loaded += 1;
                self.rows += rows;
            }
            Ok(Outcome::Duplicate { .. }) => self.duplicates += 1,
            Ok(Outcome::Recovered { .. }) => self.recovered += 1,
            Ok(Outcome::Quarantined { .. }) => self.quarantined += 1,
            Ok(Outcome::Skipped { .. }) => self.skipped += 1,
            Err(_) => self.failed += 1,
        }
    }
}

/// How often the profiles folder is looked at for edits.
const PROFILE_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Reloads the source profiles when their folder changes, until `shutdown`. An invalid
/// edit is logged as an error and the previous profiles stay in force.
/// How often the running agent creates the coming months' partitions and applies
/// `RETENTION`.
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Storage housekeeping ([`sink::Store::maintain`]) now and every
/// [`MAINTENANCE_INTERVAL`] until `shutdown`; a failure is logged and tried again at the
/// next round.
async fn maintain_storage(
    store: Arc<dyn sink::Store>,
    retention: Option<crate::config::Retention>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = maintain_once(store.as_ref(), retention) => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn maintain_once(store: &dyn sink::Store, retention: Option<crate::config::Retention>) {
    if let Err(e) = store.maintain(retention).await {
        warn!(error = %e, "storage housekeeping (partitions, retention) failed; \
            it is tried again within the hour");
    }
}

async fn reload_profiles(
    profiles: crate::profile::Profiles,
    pattern: crate::config::FilePattern,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROFILE_RELOAD_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
        let checked = {
            let profiles = profiles.clone();
            tokio::task::spawn_blocking(move || profiles.reload_if_changed()).await
        };
        match checked {
            Ok(Ok(true)) => {
                let set = profiles.current();
                // The watcher's pattern is a clone sharing these globs.
                pattern.set_profile_globs(
                    set.profiles()
                        .iter()
                        .flat_map(|p| p.globs().map(|(_, text)| text)),
                );
                let names: Vec<&str> = set.profiles().iter().map(|p| p.name.as_str()).collect();
                info!(profiles = ?names, "source profiles reloaded");
            }
            Ok(Ok(false)) => {}
            Ok(Err(problems)) => {
                for p in problems {
                    error!(file = %p.file.display(), key = %p.key, problem = %p.message,
                        "an edited profile is invalid; the previous profiles stay in force");
                }
            }
            Err(e) => error!(error = %e, "checking the profiles folder failed"),
        }
    }
}
