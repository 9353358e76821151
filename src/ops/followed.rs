//! Followed files (append mode) as `status` and `/metrics` show them: each file's
//! committed offset, its size now, the bytes not loaded yet (lag) and its last growth.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sink::{SinkError, Store};

/// One followed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Followed {
    pub file_name: String,
    /// Bytes loaded (or refused) so far.
    pub offset: u64,
    /// Lines before the offset.
    pub lines: u64,
    /// Its size now; `None` when it is no longer in the data folder.
    pub size: Option<u64>,
    /// Bytes after the offset (a partial last line included): not loaded yet.
    pub lag_bytes: u64,
    /// Its modification time when its last increment was read.
    pub last_growth: DateTime<Utc>,
    pub last_growth_age_seconds: f64,
}

/// Every followed file of the store, with its size in `folder` now.
pub async fn collect(
    folder: &Path,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Vec<Followed>, SinkError> {
    let files = store.followed_files().await?;
    Ok(files
        .into_iter()
        .map(|f| {
            let size = std::fs::metadata(folder.join(&f.file_name))
                .ok()
                .map(|m| m.len());
            Followed {
                lag_bytes: size.map_or(0, |s| s.saturating_sub(f.offset)),
                offset: f.offset,
                lines: f.lines,
                size,
                last_growth_age_seconds: (now - f.grown_at).num_milliseconds().max(0) as f64
                    / 1000.0,
                last_growth: f.grown_at,
                file_name: f.file_name,
            }
        })
        .collect())
}
