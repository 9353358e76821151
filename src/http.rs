//! The agent's HTTP server, for `run` with `HTTP_ADDR` (or its older name
//! `METRICS_ADDR`) set: the browser [`crate::dashboard`] at `/`, and beside it
//!
//! - `/metrics`: Prometheus (OpenMetrics text) from the [`crate::metrics`] registry,
//!   with the files waiting in the data folder and the age of the oldest measured at
//!   each scrape;
//! - `/healthz`: 200 while the process serves requests;
//! - `/readyz`: 200 when the database answers and the three folders are writable,
//!   503 otherwise; the body names each check;
//! - `POST /s3/notify`, with a bucket source only: a bucket notification (an
//!   S3-compatible server's webhook). Its body is not read: it only wakes the next
//!   listing of the bucket early, and listings stay the source of truth.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{FilePattern, Settings};
use crate::metrics::Metrics;
use crate::sink::Store;
use crate::watch;

/// The HTTP server could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on HTTP_ADDR={addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

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
/// health checks and the dashboard until `shutdown` is cancelled in the returned task;
/// with `bucket_hint`, `POST /s3/notify` pokes it.
pub async fn serve(
    addr: SocketAddr,
    settings: &Settings,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    bucket_hint: Option<Arc<Notify>>,
    quarantine: Arc<dyn crate::source::QuarantineArea>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<(), HttpError>>, HttpError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
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
    let mut app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    if let Some(hint) = bucket_hint {
        app = app.route(
            "/s3/notify",
            post(move || async move {
                // Wakes the listing; many notifications at once wake it once.
                hint.notify_one();
                StatusCode::NO_CONTENT
            }),
        );
    }
    let app = app
        .merge(crate::dashboard::Dashboard::new(settings, quarantine).router())
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
            .map_err(HttpError::Serve)
    }))
}

async fn metrics_page(State(state): State<AppState>) -> impl IntoResponse {
    let followed =
        crate::ops::followed::collect(&state.data_folder, state.store.as_ref(), chrono::Utc::now())
            .await;
    match followed {
        Ok(files) => state
            .metrics
            .set_followed(files.len(), files.iter().map(|f| f.lag_bytes).sum()),
        Err(e) => warn!(error = %e, "cannot read the followed files for metrics"),
    }
    let s = state.clone();
    let body = tokio::task::spawn_blocking(move || {
        observe_waiting(&s.metrics, &s.data_folder, &s.pattern);
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

/// Sets the waiting-files gauges from a scan of `folder`.
fn observe_waiting(metrics: &Metrics, folder: &Path, pattern: &FilePattern) {
    match watch::scan(folder, pattern) {
        Ok(found) => {
            let oldest = found.first().map_or(Duration::ZERO, |c| {
                SystemTime::now()
                    .duration_since(c.mtime)
                    .unwrap_or_default()
            });
            metrics.set_waiting(found.len(), oldest);
        }
        Err(e) => warn!(error = %e, "cannot scan the data folder for metrics"),
    }
}
