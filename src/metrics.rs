//! Metrics and health over HTTP, for `run` with `HTTP_ADDR` (or its older name
//! `METRICS_ADDR`) set, on the server that also serves the [`crate::dashboard`].
//!
//! - `/metrics`: Prometheus (OpenMetrics text) — files by outcome, rows loaded and
//!   rejected, database retries, bytes read, drop-to-commit latency, and, measured at
//!   each scrape, files waiting in the data folder and the age of the oldest.
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 when the database answers and the three folders are writable,
//!   503 otherwise; the body names each check.
//!
//! The pipeline records into [`Metrics`] where outcomes are known (see
//! [`crate::pipeline::Pipeline::with_metrics`]); exposition is `prometheus-client`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{FilePattern, Settings};
use crate::sink::Store;
use crate::watch;

/// The metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen on HTTP_ADDR={addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// Upper bounds of the drop-to-commit latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

type OutcomeLabel = Vec<(&'static str, &'static str)>;

/// The agent's counters, gauges and histogram. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    files: Family<OutcomeLabel, Counter>,
    quarantined: Family<OutcomeLabel, Counter>,
    rows_loaded: Counter,
    rows_rejected: Counter,
    database_retries: Counter,
    bytes_read: Counter,
    files_waiting: Gauge,
    oldest_waiting_age: Gauge<f64, AtomicU64>,
    drop_to_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sensor_ingest");
        let files = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "files",
            "Files processed, by outcome (loaded, duplicate, recovered, quarantined, skipped, failed)",
            files.clone(),
        );
        let quarantined = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "files_quarantined",
            "Files quarantined, by rule (the report's rule: not_a_number, missing_column, …)",
            quarantined.clone(),
        );
        let rows_loaded = Counter::default();
        registry.register(
            "rows_loaded",
            "Rows committed to the database",
            rows_loaded.clone(),
        );
        let rows_rejected = Counter::default();
        registry.register(
            "rows_rejected",
            "Invalid rows found in quarantined files, and bad rows left out of partial loads",
            rows_rejected.clone(),
        );
        let database_retries = Counter::default();
        registry.register(
            "database_retries",
            "Attempts retried because the database was unreachable or busy",
            database_retries.clone(),
        );
        let bytes_read = Counter::default();
        registry.register_with_unit(
            "read",
            "Bytes of data files read",
            Unit::Bytes,
            bytes_read.clone(),
        );
        let files_waiting = Gauge::default();
        registry.register(
            "files_waiting",
            "Data files in the data folder (waiting or in progress), at scrape time",
            files_waiting.clone(),
        );
        let oldest_waiting_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "oldest_waiting_age",
            "Age of the oldest data file in the data folder (by modification time), 0 when none",
            Unit::Seconds,
            oldest_waiting_age.clone(),
        );
        let drop_to_commit = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "drop_to_commit",
            "Time from a file's arrival in the data folder to its commit",
            Unit::Seconds,
            drop_to_commit.clone(),
        );
        Self {
            registry,
            files,
            quarantined,
            rows_loaded,
            rows_rejected,
            database_retries,
            bytes_read,
            files_waiting,
            oldest_waiting_age,
            drop_to_commit,
        }
    }

    /// One file reached `outcome` (`loaded`, `duplicate`, `recovered`, `quarantined`,
    /// `skipped` or `failed`).
    pub fn file(&self, outcome: &'static str) {
        self.files.get_or_create(&vec![("outcome", outcome)]).inc();
    }

    /// One file was quarantined under `rule`.
    pub fn quarantined(&self, rule: crate::rule::Rule) {
        self.quarantined
            .get_or_create(&vec![("rule", rule.name())])
            .inc();
    }

    pub fn rows_loaded(&self, rows: u64) {
        self.rows_loaded.inc_by(rows);
    }

    pub fn rows_rejected(&self, rows: u64) {
        self.rows_rejected.inc_by(rows);
    }

    pub fn database_retry(&self) {
        self.database_retries.inc();
    }

    pub fn bytes_read(&self, bytes: u64) {
        self.bytes_read.inc_by(bytes);
    }

    /// A file that arrived at `dropped_at` was committed now.
    pub fn committed(&self, dropped_at: SystemTime) {
        let latency = SystemTime::now()
            .duration_since(dropped_at)
            .unwrap_or_default();
        self.drop_to_commit.observe(latency.as_secs_f64());
    }

    /// Sets the waiting-files gauges from a scan of `folder`.
    pub fn observe_waiting(&self, folder: &Path, pattern: &FilePattern) {
        match watch::scan(folder, pattern) {
            Ok(found) => {
                self.files_waiting.set(found.len() as i64);
                let age = found.first().map_or(0.0, |c| {
                    SystemTime::now()
                        .duration_since(c.mtime)
                        .unwrap_or_default()
                        .as_secs_f64()
                });
                self.oldest_waiting_age.set(age);
            }
            Err(e) => warn!(error = %e, "cannot scan the data folder for metrics"),
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// What the HTTP handlers need.
#[derive(Debug, Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    data_folder: PathBuf,
    folders: [PathBuf; 3],
    pattern: FilePattern,
}

/// Listens on `addr` now (so a bad address fails startup), and serves `/metrics`, the
/// health checks and the dashboard until `shutdown` is cancelled in the returned task.
pub async fn serve(
    addr: SocketAddr,
    settings: &Settings,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<(), MetricsError>>, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let state = AppState {
        metrics,
        store,
        data_folder: settings.data_folder.clone(),
        folders: [
            settings.data_folder.clone(),
            settings.processed_folder.clone(),
            settings.quarantine_folder.clone(),
        ],
        pattern: settings.file_pattern.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(crate::dashboard::Dashboard::new(settings).router())
        .layer(axum::middleware::map_response(
            crate::dashboard::security_headers,
        ));
    crate::dashboard::warn_if_exposed(bound, settings);
    info!(address = %bound, retry = settings.http_token.is_some(),
        "serving the dashboard at /, /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(MetricsError::Serve)
    }))
}

async fn metrics_page(State(state): State<AppState>) -> impl IntoResponse {
    let s = state.clone();
    let body = tokio::task::spawn_blocking(move || {
        s.metrics.observe_waiting(&s.data_folder, &s.pattern);
        s.metrics.encode()
    })
    .await
    .unwrap_or_else(|_| state.metrics.encode());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut ready = true;
    let mut body = String::new();
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => body.push_str("database: ok\n"),
        Ok(Err(e)) => {
            ready = false;
            body.push_str(&format!("database: unreachable: {e}\n"));
        }
        Err(_) => {
            ready = false;
            body.push_str("database: no answer within 3 s\n");
        }
    }
    for (label, dir) in ["data folder", "processed folder", "quarantine folder"]
        .iter()
        .zip(&state.folders)
    {
        match writable(dir) {
            Ok(()) => body.push_str(&format!("{label}: ok\n")),
            Err(e) => {
                ready = false;
                body.push_str(&format!("{label}: not writable: {}: {e}\n", dir.display()));
            }
        }
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// Whether this process may create files in `dir` (asked of the kernel, which also
/// answers for read-only mounts), without creating one.
fn writable(dir: &Path) -> std::io::Result<()> {
    crate::sys::can_create_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family() {
        let m = Metrics::new();
        m.file("loaded");
        m.quarantined(crate::rule::Rule::OutOfRange);
        m.rows_loaded(10);
        m.bytes_read(100);
        m.committed(SystemTime::now() - Duration::from_millis(300));
        let text = m.encode();
        for needle in [
            "sensor_ingest_files_total{outcome=\"loaded\"} 1",
            "sensor_ingest_files_quarantined_total{rule=\"out_of_range\"} 1",
            "sensor_ingest_rows_loaded_total 10",
            "sensor_ingest_rows_rejected_total 0",
            "sensor_ingest_database_retries_total 0",
            "sensor_ingest_read_bytes_total 100",
            "sensor_ingest_drop_to_commit_seconds_bucket{le=\"0.5\"} 1",
            "sensor_ingest_drop_to_commit_seconds_count 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
