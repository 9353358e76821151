//! The browser dashboard `run` serves at `/` beside `/metrics` when `HTTP_ADDR` is set.
//!
//! Pages (server-rendered HTML, no script; charts are SVG drawn here):
//! `/` health, last hour and day, files and rows per minute, recent files;
//! `/files` (paged) and `/files/{id}` (ledger history, column metrics, and for a
//! quarantined file its report with the offending lines quoted); `/followed` (files
//! followed in place: offset, size, lag, last growth); `/quarantine`;
//! `/sensors` (last reading, silent sensors marked) and `/sensor?id=` (temperature,
//! humidity and pressure over a range, averaged in time buckets on the server).
//!
//! Layout: `pages` the handlers (a file per page), `views` the templates (in `templates/`), `chart` the
//! SVG charts, `range` the time ranges and the silence rule, `auth` the token, session
//! and CSRF checks for the one write action (retry a quarantined file). Pages read the
//! database through [`DashboardQueries`] on a pool of their own that cannot write.
//!
//! Every response carries a Content-Security-Policy that allows no script at all,
//! `nosniff`, `Referrer-Policy: same-origin` and `X-Frame-Options: DENY`.

mod auth;
mod chart;
mod pages;
mod range;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use tracing::warn;

pub use auth::Auth;
pub use chart::{Series, time_chart};

use crate::config::{FilePattern, Settings};
use crate::sink::dashboard::DashboardQueries;
use crate::source::QuarantineArea;

/// Connections of the dashboard's read-only pool.
const CONNECTIONS: u32 = 2;

/// The policy: nothing but our stylesheet and images (the SVG charts are inline).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
    img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages need; cheap to clone.
#[derive(Clone, Debug)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<dyn DashboardQueries>,
    database: String,
    data_folder: PathBuf,
    /// The source's quarantine: the folder's, or the bucket's quarantine prefix.
    quarantine: Arc<dyn QuarantineArea>,
    pattern: FilePattern,
    auth: Option<Auth>,
}

impl Dashboard {
    /// The dashboard for `settings`, with its own read-only connections (opened on
    /// first use); its quarantine page reviews `quarantine`.
    pub fn new(settings: &Settings, quarantine: Arc<dyn QuarantineArea>) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: crate::sink::open_read_only(&settings.database, CONNECTIONS),
                database: settings.database.to_string(),
                data_folder: settings.data_folder.clone(),
                quarantine,
                pattern: settings.file_pattern.clone(),
                auth: settings.http_token.as_ref().map(Auth::new),
            }),
        }
    }

    /// The dashboard's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(pages::overview))
            .route("/files", get(pages::files))
            .route("/files/{id}", get(pages::file))
            .route("/followed", get(pages::followed))
            .route("/quarantine", get(pages::quarantine))
            .route("/quarantine/retry", post(pages::retry))
            .route("/sensors", get(pages::sensors))
            .route("/sensor", get(pages::sensor))
            .route("/login", get(pages::login_form).post(pages::login))
            .route("/logout", post(pages::logout))
            .route("/static/style.css", get(pages::stylesheet))
            .fallback(pages::not_found)
            .with_state(self)
    }
}

/// Adds the security headers to every response (pages, `/metrics`, health checks).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Warns when the server listens beyond loopback without `HTTP_TOKEN`: anyone who
/// can reach the port reads the dashboard, and nobody can retry a file from it.
pub fn warn_if_exposed(addr: SocketAddr, settings: &Settings) {
    if addr.ip().is_loopback() {
        return;
    }
    if settings.http_token.is_none() {
        warn!(address = %addr, "HTTP_ADDR listens beyond this machine and HTTP_TOKEN is not set: \
              anyone who can reach it reads the dashboard; bind 127.0.0.1 and use an SSH tunnel, \
              or set HTTP_TOKEN and put a TLS proxy in front");
    } else {
        warn!(address = %addr, "HTTP_ADDR listens beyond this machine: put a TLS proxy in front \
              so the token and session cookie never cross the network in clear");
    }
}
