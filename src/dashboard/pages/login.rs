//! `/login` and `/logout`: the session that the retry action needs.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use tracing::{info, warn};

use super::{Dashboard, redirect, render};
use crate::dashboard::auth;
use crate::dashboard::views;

/// `GET /login`: the token form (403 when no `HTTP_TOKEN` is set).
pub async fn login_form(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if d.inner.auth.is_none() {
        return read_only(&d, &headers);
    }
    render(&views::Login {
        layout: d.layout(&headers, Utc::now()),
        error: None,
    })
}

pub(super) fn read_only(d: &Dashboard, headers: &HeaderMap) -> Response {
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

/// `POST /login`: opens a session for the right token, from a page of this site only.
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

/// `POST /logout`: ends the session.
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
