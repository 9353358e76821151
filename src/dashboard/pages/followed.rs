//! `/followed`: the files followed in place (append mode), each with its committed
//! offset, its size now, the lines before the offset, the bytes not loaded yet (lag),
//! its last growth and the ledger status of its last increment.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;

use super::{Dashboard, ask, render};
use crate::dashboard::views::{self, FollowedLine};
use crate::ops::status::human_age;
use crate::sink::dashboard::FollowedSummary;

/// `/followed`: the followed files by name.
pub async fn followed(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let mut page = views::Followed {
        layout: d.layout(&headers, now),
        error: None,
        files: Vec::new(),
    };
    match ask(d.inner.db.followed()).await {
        Ok(files) => {
            let sizes = sizes_now(d.inner.data_folder.clone(), &files).await;
            page.files = files
                .iter()
                .zip(sizes)
                .map(|(f, size)| line(f, size, now))
                .collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

/// Each file's size in the data folder now (`None`: no longer there), read off the
/// async threads.
async fn sizes_now(folder: PathBuf, files: &[FollowedSummary]) -> Vec<Option<u64>> {
    let names: Vec<String> = files.iter().map(|f| f.position.file_name.clone()).collect();
    let count = names.len();
    tokio::task::spawn_blocking(move || {
        names
            .iter()
            .map(|n| std::fs::metadata(folder.join(n)).ok().map(|m| m.len()))
            .collect()
    })
    .await
    .unwrap_or_else(|_| vec![None; count])
}

fn line(f: &FollowedSummary, size: Option<u64>, now: chrono::DateTime<Utc>) -> FollowedLine {
    let p = &f.position;
    let age = (now - p.grown_at).num_milliseconds().max(0) as f64 / 1000.0;
    FollowedLine {
        name: p.file_name.clone(),
        offset: p.offset,
        lines: p.lines,
        size: size.map_or_else(|| "gone".to_owned(), |s| s.to_string()),
        lag: size.map_or_else(String::new, |s| s.saturating_sub(p.offset).to_string()),
        last_growth: views::time(p.grown_at),
        ago: human_age(age),
        status: f.last_status.map_or("", |s| s.as_str()),
        href: format!("/files/{}", p.ledger_id),
    }
}
