//! The page handlers, one file per page (`overview`, `files` with a file's own page,
//! `followed`, `quarantine` with the retry action, `sensors`, `login`), and what they share here.
//! Each asks the database (read-only) and the folders, then fills a template from
//! [`super::views`]. A failed query shows as a sentence on the page, never as a panic
//! or a blank page.

mod files;
mod followed;
mod login;
mod overview;
mod quarantine;
mod sensors;

pub use files::{file, files};
pub use followed::followed;
pub use login::{login, login_form, logout};
pub use overview::overview;
pub use quarantine::{quarantine, retry};
pub use sensors::{sensor, sensors};

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tracing::warn;

use super::Dashboard;
use super::views::{self, Layout, RetryForm};
use crate::ops::quarantine as q;
use crate::sink::SinkError;

/// How long a page waits for the database's first answer.
const DB_TIMEOUT: Duration = Duration::from_secs(3);
/// Files per page of `/files`.
const PAGE_SIZE: u32 = 50;
/// Recent files on the overview.
const RECENT: u32 = 10;

type Params = Query<HashMap<String, String>>;

impl Dashboard {
    fn layout(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Layout {
        Layout {
            database: self.inner.database.clone(),
            now: views::time(now),
            token_set: self.inner.auth.is_some(),
            signed_in: self.signed_in(headers),
        }
    }

    fn signed_in(&self, headers: &HeaderMap) -> bool {
        self.inner
            .auth
            .as_ref()
            .is_some_and(|a| a.has_session(headers))
    }

    /// The retry form for quarantine entry `name`, when this browser may retry.
    fn retry_form(&self, headers: &HeaderMap, name: &str) -> Option<RetryForm> {
        let auth = self.inner.auth.as_ref()?;
        auth.has_session(headers).then(|| RetryForm {
            name: name.to_owned(),
            csrf: auth.form_token(),
        })
    }

    fn message(
        &self,
        headers: &HeaderMap,
        code: StatusCode,
        title: &str,
        text: String,
    ) -> Response {
        let page = views::Message {
            layout: self.layout(headers, Utc::now()),
            title: title.to_owned(),
            text,
        };
        (code, render(&page)).into_response()
    }
}

/// The template as an HTML response (a 500 if it could not render).
fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            warn!(error = %e, "a dashboard page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// Percent-encodes a query or path value.
fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// A database call with a time limit.
async fn ask<T>(f: impl Future<Output = Result<T, SinkError>>) -> Result<T, String> {
    match tokio::time::timeout(DB_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("The database did not answer: {e}")),
        Err(_) => Err("The database did not answer within 3 s.".to_owned()),
    }
}

/// Runs a folder operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, q::QuarantineError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the folder could not be read: {e}")),
    }
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, v);
    }
    response
}

/// `/static/style.css`, compiled into the binary.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../style.css"),
    )
}

/// Any other path: a 404 page.
pub async fn not_found(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    d.message(
        &headers,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page or file.".to_owned(),
    )
}
