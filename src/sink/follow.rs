//! Followed files (append mode) as the store keeps them: the position each file was
//! loaded up to, written in the transaction of the increment it ends (so a kill at any
//! moment loses nothing and loads nothing twice), and the stored readings an increment
//! is compared with (a value read again is skipped, a different value refused).
//!
//! A backend implements [`Store::follows`](super::Store::follows),
//! [`Store::followed_file`](super::Store::followed_file),
//! [`Store::followed_files`](super::Store::followed_files),
//! [`Store::stored_readings`](super::Store::stored_readings), and writes an attempt's
//! [`FollowMark`] with its ledger row: in [`Store::load`](super::Store::load) before the
//! commit, and in [`Store::record`](super::Store::record) in one transaction with it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ErrorClass, SinkError};
use crate::enrich::EnrichedRow;

/// Where a followed file stands: what its last committed increment (loaded, or
/// quarantined) read up to. One per file name in the data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedFile {
    /// The file's name in the data folder (its display name).
    pub file_name: String,
    /// The device and inode the increment was read from: another inode under the name
    /// is a rotated file.
    pub device: u64,
    pub inode: u64,
    /// Bytes read up to (always just after a newline).
    pub offset: u64,
    /// Physical lines before `offset`.
    pub lines: u64,
    /// BLAKE3 (hex) of the header lines, metadata and preamble lines included.
    pub header_hash: String,
    /// BLAKE3 (hex) of the last bytes before `offset` (at most 4 KiB, after the header).
    pub tail_hash: String,
    /// The file's modification time when the increment was read: its last growth seen.
    pub grown_at: DateTime<Utc>,
    /// The ledger row of the increment.
    pub ledger_id: Uuid,
}

/// What an increment's commit writes for its followed file: the new position, and the
/// ledger row of the position it started from (`None`: the file was not followed yet).
/// The write succeeds only while the stored position is still that one, so two
/// attempts that read the same position cannot both advance it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowMark {
    pub position: FollowedFile,
    pub previous: Option<Uuid>,
}

/// A sensor and time an increment's reading has: the stored readings asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadingKey {
    pub sensor_id: String,
    pub ts: DateTime<Utc>,
}

/// A stored reading's values, as compared with a reading read again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    pub key: ReadingKey,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
    /// The further columns, as JSON text (compared as JSON values).
    pub extra: Option<String>,
}

impl StoredReading {
    /// Whether `row` holds exactly these values (its time and sensor being the same).
    pub fn same_values(&self, row: &EnrichedRow) -> bool {
        let r = &row.reading;
        let json = |s: &Option<String>| {
            s.as_deref()
                .map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        };
        self.temperature == r.temperature
            && self.humidity == r.humidity
            && self.pressure == r.pressure
            && json(&self.extra) == json(&r.extra)
    }
}

/// The error of a store that does not keep followed files.
pub fn unsupported(context: &'static str) -> SinkError {
    SinkError {
        class: ErrorClass::Refused,
        context,
        detail: "this database backend does not follow appended files (SOURCE_MODE=append)"
            .to_owned(),
    }
}

/// The error of a position that moved since the increment read it: another attempt
/// committed first. Transient: the next attempt starts from the new position.
pub fn moved_meanwhile() -> SinkError {
    SinkError {
        class: ErrorClass::Transient,
        context: "advancing a followed file's offset",
        detail: "another attempt advanced it first".to_owned(),
    }
}
