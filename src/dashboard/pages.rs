//! The page handlers: each asks the database (read-only) and the folders, then fills a
//! template from [`super::views`]. A failed query shows as a sentence on the page,
//! never as a panic or a blank page.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tracing::{info, warn};
use uuid::Uuid;

use super::Dashboard;
use super::auth::{self, Auth};
use super::chart::{Series, time_chart};
use super::range;
use super::views::{
    self, CountLine, FileLine, Layout, MetricLine, Problem, QuarantineLine, QuarantineView,
    RetryForm, SensorLine,
};
use crate::ops::quarantine as q;
use crate::ops::status::{count, human_age};
use crate::sink::dashboard::SeriesPoint;
use crate::sink::{Activity, EntryStatus, LedgerQueries, SinkError};

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

pub async fn overview(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let inner = &d.inner;
    let db = inner.db.as_ref();
    let (db_ok, db_state) = match ask(db.ping()).await {
        Ok(()) => (true, "reachable".to_owned()),
        Err(e) => (false, e),
    };
    let (folder, pattern) = (inner.data_folder.clone(), inner.pattern.clone());
    let listing = tokio::task::spawn_blocking(move || crate::watch::list(&folder, &pattern)).await;
    let (waiting, waiting_stale) = match listing {
        Ok(Ok(l)) if l.candidates.is_empty() => ("none".to_owned(), false),
        Ok(Ok(l)) => {
            let age = l.candidates.first().map_or(0.0, |c| {
                std::time::SystemTime::now()
                    .duration_since(c.mtime)
                    .map_or(0.0, |a| a.as_secs_f64())
            });
            (
                format!(
                    "{}, oldest {} old",
                    count(l.candidates.len() as u64, "file"),
                    human_age(age)
                ),
                age > 300.0,
            )
        }
        Ok(Err(e)) => (format!("cannot list the data folder: {e}"), true),
        Err(e) => (format!("cannot list the data folder: {e}"), true),
    };
    let qdir = inner.quarantine_folder.clone();
    let quarantine = match blocking(move || q::entries(&qdir)).await {
        Ok(e) if e.is_empty() => "empty".to_owned(),
        Ok(e) => count(e.len() as u64, "file"),
        Err(e) => e,
    };
    let mut page = views::Overview {
        layout: d.layout(&headers, now),
        db_ok,
        db_state,
        waiting,
        waiting_stale,
        agents: String::new(),
        quarantine,
        error: None,
        counts: Vec::new(),
        files_chart: String::new(),
        rows_chart: String::new(),
        files: Vec::new(),
    };
    let day_start = now - TimeDelta::days(1);
    let gathered = async {
        let agents = ask(db.agents_since(now - TimeDelta::hours(1))).await?;
        let hour = ask(db.activity_since(now - TimeDelta::hours(1))).await?;
        let day = ask(db.activity_since(day_start)).await?;
        let minutes = ask(db.per_minute(day_start, now)).await?;
        let recent = ask(db.recent_files(RECENT, 0)).await?;
        Ok::<_, String>((agents, hour, day, minutes, recent))
    };
    // With the database down, each query would wait out its own time limit.
    let gathered = if db_ok {
        gathered.await
    } else {
        Err("The ledger's figures need the database.".to_owned())
    };
    match gathered {
        Ok((agents, hour, day, minutes, recent)) => {
            page.agents = if agents.is_empty() {
                "none".to_owned()
            } else {
                format!("{}: {}", agents.len(), agents.join(", "))
            };
            page.counts = count_lines(&hour, &day);
            let first = day_start
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(day_start)
                .timestamp();
            let by_minute: HashMap<i64, (u64, u64)> = minutes
                .iter()
                .map(|m| (m.minute.timestamp(), (m.files, m.rows)))
                .collect();
            let (mut files, mut rows) = (Vec::new(), Vec::new());
            let mut t = first;
            while t <= now.timestamp() {
                let (f, r) = by_minute.get(&t).copied().unwrap_or_default();
                files.push((t, f as f64));
                rows.push((t, r as f64));
                t += 60;
            }
            let one = |label: &str, color, points| {
                [Series {
                    label: label.to_owned(),
                    color,
                    points,
                    band: Vec::new(),
                }]
            };
            let (from, to) = (day_start.timestamp(), now.timestamp());
            page.files_chart = time_chart(
                "Files finished per minute",
                "files/min",
                from,
                to,
                120,
                &one("files", "#1f5fbf", files),
            );
            page.rows_chart = time_chart(
                "Rows loaded per minute",
                "rows/min",
                from,
                to,
                120,
                &one("rows", "#2e9b57", rows),
            );
            page.files = recent.iter().map(FileLine::from).collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

fn count_lines(hour: &Activity, day: &Activity) -> Vec<CountLine> {
    [
        (EntryStatus::Loaded, hour.loaded, day.loaded),
        (EntryStatus::Partial, hour.partial, day.partial),
        (EntryStatus::Quarantined, hour.quarantined, day.quarantined),
        (EntryStatus::Duplicate, hour.duplicate, day.duplicate),
    ]
    .into_iter()
    .map(|(status, h, d)| CountLine {
        status: status.as_str(),
        hour_files: h.files,
        hour_rows: h.rows,
        day_files: d.files,
        day_rows: d.rows,
    })
    .collect()
}

pub async fn files(State(d): State<Dashboard>, headers: HeaderMap, Query(p): Params) -> Response {
    let page_no = p
        .get("page")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
        .min(1_000_000);
    let offset = (page_no - 1) * u64::from(PAGE_SIZE);
    let mut page = views::Files {
        layout: d.layout(&headers, Utc::now()),
        error: None,
        files: Vec::new(),
        page: page_no,
        prev: (page_no > 1).then(|| format!("/files?page={}", page_no - 1)),
        next: None,
    };
    // One more than a page tells whether there is a next one.
    match ask(d.inner.db.recent_files(PAGE_SIZE + 1, offset)).await {
        Ok(rows) => {
            if rows.len() > PAGE_SIZE as usize {
                page.next = Some(format!("/files?page={}", page_no + 1));
            }
            page.files = rows
                .iter()
                .take(PAGE_SIZE as usize)
                .map(FileLine::from)
                .collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

pub async fn file(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found(State(d), headers).await;
    };
    let db = d.inner.db.as_ref();
    let row = match ask(db.file(id)).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(State(d), headers).await,
        Err(e) => {
            return d.message(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                e,
            );
        }
    };
    let history = ask(db.file_history(&row.content_hash, &row.file_name)).await;
    let metrics = ask(db.file_metrics(id)).await;
    let (quarantine, report_note) = if row.status == EntryStatus::Quarantined {
        quarantine_view(&d, &headers, id, row.archived_as.clone()).await
    } else {
        (None, None)
    };
    let mut note = report_note;
    let page = views::FilePage {
        layout: d.layout(&headers, Utc::now()),
        file: FileLine::from(&row),
        size: count(row.size_bytes, "byte"),
        started: views::time(row.started_at),
        agent: row.agent.clone(),
        hash: row.content_hash.clone(),
        summary: row.error_summary.clone(),
        quarantine,
        metrics: metrics
            .unwrap_or_else(|e| {
                note.get_or_insert(e);
                Vec::new()
            })
            .into_iter()
            .map(|m| MetricLine {
                column: m.column,
                values: m.values,
                nulls: m.nulls,
                min: views::number(m.min),
                max: views::number(m.max),
                mean: views::number(m.mean),
                stddev: views::number(m.stddev),
                unit: m.source_unit.unwrap_or_default(),
            })
            .collect(),
        history: history
            .unwrap_or_else(|e| {
                note.get_or_insert(e);
                Vec::new()
            })
            .iter()
            .map(FileLine::from)
            .collect(),
        report_note: note,
    };
    render(&page)
}

/// The report of quarantined ledger row `id` from the quarantine folder, with the lines
/// it points at (as `quarantine show` reads them), or why there is none.
async fn quarantine_view(
    d: &Dashboard,
    headers: &HeaderMap,
    id: Uuid,
    archived_as: Option<String>,
) -> (Option<QuarantineView>, Option<String>) {
    let Some(name) = archived_as else {
        return (
            None,
            Some(
                "The file was not moved to the quarantine folder (see the agent's log).".to_owned(),
            ),
        );
    };
    let dir = d.inner.quarantine_folder.clone();
    let lookup = name.clone();
    let found = blocking(move || {
        let entry = q::find(&dir, &lookup)?;
        if entry.report.as_ref().is_some_and(|r| r.ledger_id == id) {
            q::details(&dir, entry).map(Some)
        } else {
            Ok(None)
        }
    })
    .await;
    let details = match found {
        Ok(Some(details)) => details,
        Ok(None) | Err(_) => {
            return (
                None,
                Some(format!(
                    "Its report is no longer in the quarantine folder as {name} (retried or purged since)."
                )),
            );
        }
    };
    let Some(report) = details.entry.report.as_ref() else {
        return (None, None);
    };
    let view = QuarantineView {
        reason: report.reason.clone(),
        retry: details
            .entry
            .has_file
            .then(|| d.retry_form(headers, &details.entry.name))
            .flatten(),
        advice: details
            .advice
            .iter()
            .map(|a| (a.rule.name(), a.advice))
            .collect(),
        problems: report
            .errors
            .iter()
            .map(|e| Problem {
                line: e.line.map_or_else(String::new, |l| l.to_string()),
                column: e.column.clone(),
                value: e.value.clone(),
                rule: e.rule.name(),
                message: e.message.clone(),
            })
            .collect(),
        more: report
            .errors_total
            .saturating_sub(report.errors.len() as u64),
        lines: details
            .header
            .iter()
            .map(|h| (1, h.clone()))
            .chain(details.lines.into_iter().filter(|(n, _)| *n != 1))
            .collect(),
    };
    (Some(view), None)
}

pub async fn quarantine(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let dir = d.inner.quarantine_folder.clone();
    let mut page = views::Quarantine {
        layout: d.layout(&headers, Utc::now()),
        message: p.get("retried").map(|name| {
            format!("{name} is back in the data folder; the agent will take it again.")
        }),
        error: None,
        entries: Vec::new(),
        signed_in: d.signed_in(&headers),
        token_set: d.inner.auth.is_some(),
    };
    let entries = match blocking(move || q::entries(&dir)).await {
        Ok(entries) => entries,
        Err(e) => {
            page.error = Some(e);
            return render(&page);
        }
    };
    let ledger: &dyn LedgerQueries = d.inner.db.as_ref();
    for entry in entries {
        let attempts = match &page.error {
            None => match tokio::time::timeout(DB_TIMEOUT, q::attempts(ledger, &entry)).await {
                Ok(Ok(n)) => n.to_string(),
                Ok(Err(e)) => {
                    page.error = Some(format!("Attempts are not shown: {e}"));
                    String::new()
                }
                Err(_) => {
                    page.error =
                        Some("Attempts are not shown: the database did not answer.".to_owned());
                    String::new()
                }
            },
            Some(_) => String::new(),
        };
        let report = entry.report.as_ref();
        page.entries.push(QuarantineLine {
            at: views::time(entry.quarantined_at),
            name: entry.original_name.clone(),
            href: report.map(|r| format!("/files/{}", r.ledger_id)),
            reason: entry.short_reason(),
            rule: report.map_or_else(String::new, |r| r.rule.name().to_owned()),
            bad_rows: entry
                .invalid_rows()
                .map_or_else(String::new, |n| n.to_string()),
            attempts,
            retry: entry
                .has_file
                .then(|| d.retry_form(&headers, &entry.name))
                .flatten(),
        });
    }
    render(&page)
}

pub async fn sensors(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let mut page = views::Sensors {
        layout: d.layout(&headers, now),
        error: None,
        sensors: Vec::new(),
    };
    match ask(d.inner.db.sensors(now)).await {
        Ok(list) => {
            page.sensors = list
                .iter()
                .map(|s| SensorLine {
                    id: s.sensor_id.clone(),
                    href: format!("/sensor?id={}", encode(&s.sensor_id)),
                    last: views::time(s.last_reading),
                    ago: human_age((now - s.last_reading).num_seconds() as f64),
                    day_readings: s.day_readings,
                    interval: s
                        .usual_interval_seconds()
                        .map_or_else(String::new, human_age),
                    silent: range::silent(s, now),
                })
                .collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

pub async fn sensor(State(d): State<Dashboard>, headers: HeaderMap, Query(p): Params) -> Response {
    let Some(id) = p.get("id").filter(|id| !id.is_empty()) else {
        return d.message(
            &headers,
            StatusCode::NOT_FOUND,
            "No sensor",
            "Pick a sensor on the sensors page.".to_owned(),
        );
    };
    let now = Utc::now();
    let (span, mut error) = range::parse(
        p.get("range").map(String::as_str),
        p.get("from").map(String::as_str),
        p.get("to").map(String::as_str),
        now,
    );
    let bucket = span.bucket_seconds();
    let points = match ask(d.inner.db.series(id, span.from, span.to, bucket)).await {
        Ok(points) => points,
        Err(e) => {
            error = Some(e);
            Vec::new()
        }
    };
    let readings = points.iter().map(|p| p.readings).sum();
    // Join points no further apart than three buckets or three usual spacings.
    let mut steps: Vec<i64> = points
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect();
    steps.sort_unstable();
    let usual = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let gap = 3 * usual.max(i64::from(bucket));
    let chart = |title: &str,
                 unit: &str,
                 color: &'static str,
                 pick: fn(&SeriesPoint) -> Option<crate::sink::dashboard::Band>| {
        let bands: Vec<(i64, crate::sink::dashboard::Band)> = points
            .iter()
            .filter_map(|p| pick(p).map(|b| (p.at.timestamp(), b)))
            .collect();
        let series = Series {
            label: if bucket > 1 {
                "mean (band: min–max)".to_owned()
            } else {
                title.to_owned()
            },
            color,
            points: bands.iter().map(|(t, b)| (*t, b.mean)).collect(),
            band: if bucket > 1 {
                bands.iter().map(|(t, b)| (*t, b.min, b.max)).collect()
            } else {
                Vec::new()
            },
        };
        time_chart(
            title,
            unit,
            span.from.timestamp(),
            span.to.timestamp(),
            gap,
            &[series],
        )
    };
    let ranges = range::NAMED
        .iter()
        .map(|(name, _)| {
            (
                *name,
                format!("/sensor?id={}&range={name}", encode(id)),
                span.named == Some(*name),
            )
        })
        .collect();
    let input = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let page = views::Sensor {
        layout: d.layout(&headers, now),
        id: id.clone(),
        ranges,
        from_input: input(span.from),
        to_input: input(span.to),
        from: views::time(span.from),
        to: views::time(span.to),
        error,
        readings,
        bucket_note: if bucket > 1 {
            format!("averaged over {} buckets", human_age(f64::from(bucket)))
        } else {
            String::new()
        },
        temperature: chart("Temperature", "°C", "#c8343a", |p| p.temperature),
        humidity: chart("Humidity", "%RH", "#1f5fbf", |p| p.humidity),
        pressure: chart("Pressure", "hPa", "#6b4bb5", |p| p.pressure),
    };
    render(&page)
}

pub async fn login_form(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if d.inner.auth.is_none() {
        return read_only(&d, &headers);
    }
    render(&views::Login {
        layout: d.layout(&headers, Utc::now()),
        error: None,
    })
}

fn read_only(d: &Dashboard, headers: &HeaderMap) -> Response {
    d.message(
        headers,
        StatusCode::FORBIDDEN,
        "Read-only",
        "This dashboard is read-only: the agent runs without HTTP_TOKEN, so files cannot be retried from here.".to_owned(),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(auth) = d.inner.auth.as_ref() else {
        return read_only(&d, &headers);
    };
    if !auth::same_origin(&headers) {
        return cross_site(&d, &headers);
    }
    if !auth.token_matches(&form.token) {
        // Slows guessing down; the token itself is long.
        tokio::time::sleep(Duration::from_millis(500)).await;
        warn!("a dashboard sign-in with a wrong token was refused");
        let page = views::Login {
            layout: d.layout(&headers, Utc::now()),
            error: Some("That is not the token.".to_owned()),
        };
        return (StatusCode::FORBIDDEN, render(&page)).into_response();
    }
    info!("a browser signed in to the dashboard");
    redirect("/", Some(auth.session_cookie(auth::behind_tls(&headers))))
}

pub async fn logout(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if !auth::same_origin(&headers) {
        return cross_site(&d, &headers);
    }
    redirect("/", Some(auth::cleared_cookie()))
}

fn cross_site(d: &Dashboard, headers: &HeaderMap) -> Response {
    d.message(
        headers,
        StatusCode::FORBIDDEN,
        "Refused",
        "This request did not come from a page of this dashboard.".to_owned(),
    )
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

#[derive(Deserialize)]
pub struct RetryRequest {
    name: String,
    csrf: String,
}

/// Moves a quarantined file back into the data folder (`quarantine retry`), for a
/// signed-in browser posting a form of this site.
pub async fn retry(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Form(form): Form<RetryRequest>,
) -> Response {
    let Some(auth) = d.inner.auth.as_ref() else {
        return read_only(&d, &headers);
    };
    if let Some(why) = refusal(auth, &headers, &form.csrf) {
        warn!(file = %form.name, reason = why, "a dashboard retry was refused");
        return d.message(
            &headers,
            StatusCode::FORBIDDEN,
            "Refused",
            format!("Retry refused: {why}."),
        );
    }
    let (dir, data) = (
        d.inner.quarantine_folder.clone(),
        d.inner.data_folder.clone(),
    );
    let name = form.name.clone();
    match blocking(move || {
        let entry = q::find(&dir, &name)?;
        q::retry(&dir, &data, &entry)
    })
    .await
    {
        Ok(done) => {
            info!(file = %done.name, moved_to = %done.moved_to.display(), "retried from the dashboard");
            redirect(&format!("/quarantine?retried={}", encode(&done.name)), None)
        }
        Err(e) => d.message(&headers, StatusCode::CONFLICT, "Not retried", e),
    }
}

/// Why a retry request is refused, if it is.
fn refusal(auth: &Auth, headers: &HeaderMap, csrf: &str) -> Option<&'static str> {
    if !auth::same_origin(headers) {
        Some("it did not come from a page of this dashboard")
    } else if !auth.has_session(headers) {
        Some("sign in with the token first")
    } else if !auth.form_token_matches(csrf) {
        Some("the form is not one this dashboard issued")
    } else {
        None
    }
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
}

pub async fn not_found(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    d.message(
        &headers,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page or file.".to_owned(),
    )
}
