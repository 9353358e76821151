//! `/quarantine` and the one write action, `POST /quarantine/retry`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use tracing::{info, warn};

use super::login::read_only;
use super::{DB_TIMEOUT, Dashboard, Params, blocking, encode, redirect, render};
use crate::dashboard::auth::{self, Auth};
use crate::dashboard::views::{self, QuarantineLine};
use crate::ops::quarantine as q;
use crate::sink::LedgerQueries;

/// `/quarantine`: every entry of the quarantine folder, with retry forms for a
/// signed-in browser.
pub async fn quarantine(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let area = d.inner.quarantine.clone();
    let mut page = views::Quarantine {
        layout: d.layout(&headers, Utc::now()),
        message: p.get("retried").map(|name| {
            format!("{name} is back where it was dropped; the agent will take it again.")
        }),
        error: None,
        entries: Vec::new(),
        signed_in: d.signed_in(&headers),
        token_set: d.inner.auth.is_some(),
    };
    let entries = match blocking(move || q::entries(area.as_ref())).await {
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

#[derive(Deserialize)]
pub struct RetryRequest {
    name: String,
    csrf: String,
}

/// Puts a quarantined item back into its source (`quarantine retry`), for a
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
    let area = d.inner.quarantine.clone();
    let name = form.name.clone();
    match blocking(move || {
        let entry = q::find(area.as_ref(), &name)?;
        q::retry(area.as_ref(), &entry)
    })
    .await
    {
        Ok(done) => {
            info!(file = %done.name, moved_to = %done.moved_to, "retried from the dashboard");
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
