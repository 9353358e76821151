//! `/files` (paged) and `/files/{id}`: a ledger row, its history and metrics, and a
//! quarantined file's report with the offending lines quoted.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use uuid::Uuid;

use super::{Dashboard, PAGE_SIZE, Params, ask, blocking, not_found, render};
use crate::dashboard::views::{self, FileLine, MetricLine, Problem, QuarantineView};
use crate::ops::quarantine as q;
use crate::ops::status::count;
use crate::sink::EntryStatus;

/// `/files?page=N`: ledger rows, newest first, a page at a time.
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

/// `/files/{id}`: one ledger row; 404 for an unknown or malformed id.
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
    let history = ask(db.history(&row.content_hash, &row.file_name)).await;
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
    let area = d.inner.quarantine.clone();
    let lookup = name.clone();
    let found = blocking(move || {
        let entry = q::find(area.as_ref(), &lookup)?;
        if entry.report.as_ref().is_some_and(|r| r.ledger_id == id) {
            q::details(area.as_ref(), entry).map(Some)
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
