//! `/`: health, the last hour and day, files and rows per minute, the latest files.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{Dashboard, RECENT, ask, blocking, render};
use crate::dashboard::chart::{Series, time_chart};
use crate::dashboard::views::{self, CountLine, FileLine};
use crate::ops::quarantine as q;
use crate::ops::status::{count, human_age};
use crate::sink::dashboard::MinuteCount;
use crate::sink::{Activity, AgentShare, EntryStatus};

/// `/`: health first (answered even when the database is down), then the ledger's figures.
pub async fn overview(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let db = d.inner.db.as_ref();
    let (db_ok, db_state) = match ask(db.ping()).await {
        Ok(()) => (true, "reachable".to_owned()),
        Err(e) => (false, e),
    };
    let (waiting, waiting_stale) = waiting(&d).await;
    let quarantine = quarantine(&d).await;
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
            page.agents = agents_line(&agents);
            page.counts = count_lines(&hour, &day);
            (page.files_chart, page.rows_chart) = per_minute_charts(&minutes, day_start, now);
            page.files = recent.iter().map(FileLine::from).collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

/// The files waiting in the data folder, and whether the oldest has waited over five
/// minutes (or the folder cannot be listed).
async fn waiting(d: &Dashboard) -> (String, bool) {
    let (folder, pattern) = (d.inner.data_folder.clone(), d.inner.pattern.clone());
    let listing = tokio::task::spawn_blocking(move || crate::watch::list(&folder, &pattern)).await;
    match listing {
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
    }
}

/// How many files the quarantine folder holds.
async fn quarantine(d: &Dashboard) -> String {
    let area = d.inner.quarantine.clone();
    match blocking(move || q::entries(area.as_ref())).await {
        Ok(e) if e.is_empty() => "empty".to_owned(),
        Ok(e) => count(e.len() as u64, "file"),
        Err(e) => e,
    }
}

/// The agents of the last hour, each with its files.
fn agents_line(agents: &[AgentShare]) -> String {
    if agents.is_empty() {
        return "none".to_owned();
    }
    let shares: Vec<String> = agents
        .iter()
        .map(|a| format!("{} ({})", a.agent, count(a.files, "file")))
        .collect();
    format!("{}: {}", agents.len(), shares.join(", "))
}

/// The files and rows charts, one point per minute since `day_start`.
fn per_minute_charts(
    minutes: &[MinuteCount],
    day_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (String, String) {
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
            flagged: Vec::new(),
        }]
    };
    let (from, to) = (day_start.timestamp(), now.timestamp());
    let files_chart = time_chart(
        "Files finished per minute",
        "files/min",
        from,
        to,
        120,
        &one("files", "#1f5fbf", files),
    );
    let rows_chart = time_chart(
        "Rows loaded per minute",
        "rows/min",
        from,
        to,
        120,
        &one("rows", "#2e9b57", rows),
    );
    (files_chart, rows_chart)
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
