//! What a pipeline takes from the settings, as plain values: whoever read the settings
//! (the agent, a command, a test) hands them down; the pipeline never reads them itself.

use std::path::PathBuf;
use std::time::Duration;

use crate::profile::ProfileSet;
use crate::qc::QcConfig;
use crate::timestamp::SourceTimezone;
use crate::units::Ranges;

/// The values a [`Pipeline`](super::Pipeline) is built from.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// The accepted ranges of the canonical measurements.
    pub ranges: Ranges,
    /// How timestamps without an offset are read.
    pub source_timezone: SourceTimezone,
    pub processed_folder: PathBuf,
    pub quarantine_folder: PathBuf,
    /// Upper bound of the exponential backoff between database retries.
    pub retry_max_delay: Duration,
    /// Files larger than this are quarantined without being read; `None`: no limit.
    pub max_file_bytes: Option<u64>,
    /// The profiles in force at start.
    pub profiles: ProfileSet,
    /// Quality-control thresholds (a profile's `[qc]` applies over them).
    pub qc: QcConfig,
    /// Small files committed together in one transaction, at most.
    pub group_files: usize,
    /// How long a group waits for more files after its first is ready.
    pub group_wait: Duration,
    /// Whether every file is followed in place (`append`) or moved once loaded.
    pub source_mode: crate::source::Mode,
    /// Archiving followed files that stopped growing; `None`: never (a profile's
    /// `[source] archive_after` still applies to its own files).
    pub follow_archive: Option<crate::source::idle::ArchiveIdle>,
}
