//! Configuration: one typed [`Settings`] struct, read once at startup from the
//! environment (after `.env` has been loaded), validated whole.
//!
//! Every problem names the variable, the value it had and what was expected, so the
//! agent can stop with exit code 2 before touching any file. The database password is
//! kept inside [`DatabaseSettings`], whose `Debug` and `Display` never show it.
//!
//! Where things are: `env` reads the variables and collects the errors; `database` parses
//! the database target (SQLite file or PostgreSQL server, password redacted);
//! `size_duration` parses sizes and durations. The typed values live with the stage that
//! uses them, re-exported here: the measurement ranges in [`crate::units`],
//! `SOURCE_TIMEZONE` in [`crate::timestamp`], `FILE_PATTERN` in [`crate::pattern`], the
//! database target and `RETENTION` in [`crate::sink`]; what the pipeline takes is
//! [`crate::pipeline::PipelineSettings`], built from [`Settings`]. No stage imports this
//! module (`scripts/layers` checks it).

use std::path::PathBuf;

use crate::profile::ProfileSet;
use std::time::Duration;

mod database;
mod env;
mod s3;
mod size_duration;
mod vars;

pub use crate::pattern::{FilePattern, glob_matches};
pub use crate::sink::{DatabaseSettings, PostgresSettings, SqliteSettings};
pub use crate::sink::{RETENTION_EXPECTED, Retention};
pub use crate::timestamp::SourceTimezone;
pub use crate::units::{Range, Ranges};
pub use database::{
    DEFAULT_SQLITE_PATH, database_from_url, postgres_from_url, redact_url, sqlite_from_url,
};
pub use size_duration::{parse_duration, parse_size};
pub use vars::{DefaultValue, VARS, Var, is_listed};

use env::Env;

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}={value:?}: expected {expected}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// Its value, with any password replaced by `***`.
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl ConfigError {
    fn new(var: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            var,
            value: value.to_owned(),
            expected: expected.into(),
        }
    }
}

/// Everything the agent needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub data_folder: PathBuf,
    pub processed_folder: PathBuf,
    pub quarantine_folder: PathBuf,
    /// Where source profiles are read from (`PROFILES_DIR`).
    pub profiles_dir: PathBuf,
    /// The profiles found there at startup, checked.
    pub profiles: ProfileSet,
    /// How often the data folder is rescanned as a safety net for missed events.
    pub monitor_interval: Duration,
    /// How long a file seen only by a scan must keep its size and mtime before it is taken.
    pub settle: Duration,
    pub file_pattern: FilePattern,
    /// Files processed in parallel.
    pub workers: usize,
    /// Small files committed together in one transaction, at most (`GROUP_FILES`,
    /// default 256; 1 commits every file by itself).
    pub group_files: usize,
    /// How long a group waits for more files after its first is ready
    /// (`GROUP_WAIT_MS`, default 5 ms).
    pub group_wait: Duration,
    pub ranges: Ranges,
    pub source_timezone: SourceTimezone,
    /// Upper bound of the exponential backoff between database retries.
    pub retry_max_delay: Duration,
    /// Files larger than this are quarantined without being read; `None`: no limit.
    pub max_file_bytes: Option<u64>,
    pub log: LogSettings,
    /// Where `run` serves the dashboard, `/metrics`, `/healthz` and `/readyz`
    /// (`HTTP_ADDR`, or its older name `METRICS_ADDR`); `None` serves nothing.
    pub http_addr: Option<std::net::SocketAddr>,
    /// The dashboard's one write action (retry a quarantined file) exists only with
    /// this token (`HTTP_TOKEN`), and asks for it.
    pub http_token: Option<HttpToken>,
    /// How long readings are kept (`RETENTION`, PostgreSQL only); `None` keeps them all.
    pub retention: Option<Retention>,
    /// This agent's name (`AGENT_ID`, default `host:pid`): written to each ledger row it
    /// writes and to its claims on files.
    pub agent_id: String,
    /// Quality control: `QC=off` turns it off; `QC_WINDOW` and `QC_<MEASURE>_<KEY>`
    /// override the defaults (a profile's `[qc]` overrides these for its files).
    pub qc: crate::qc::QcConfig,
    /// The bucket objects are read from (`SOURCE=s3://bucket/prefix/`); `None` reads
    /// the data folder.
    pub s3: Option<crate::source::s3::S3Config>,
    /// How the data folder's files are taken (`SOURCE_MODE`): `move` (the default:
    /// loaded once, then moved to `processed/`) or `append` (every file followed in
    /// place as it grows, never moved or written; `docs/append.md`). A profile's
    /// `[source] mode = "append"` follows its own files whatever this says.
    pub source_mode: crate::source::Mode,
    /// Archiving followed files that stopped growing (`FOLLOW_ARCHIVE_AFTER`,
    /// `FOLLOW_ARCHIVE`); `None`: never.
    pub follow_archive: Option<crate::source::idle::ArchiveIdle>,
}

/// The dashboard's secret (`HTTP_TOKEN`). `Debug` never shows it; only
/// [`expose`](Self::expose) does, for the code that derives keys from it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpToken(String);

impl HttpToken {
    /// The shortest token accepted: guessing must not be practical.
    pub const MIN_LEN: usize = 16;

    /// `None` when shorter than [`Self::MIN_LEN`] characters.
    pub fn new(token: String) -> Option<Self> {
        (token.chars().count() >= Self::MIN_LEN).then_some(Self(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HttpToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpToken(***)")
    }
}

/// Logging destinations and format.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Folder for the daily-rotated log file; `None` logs to the console only.
    pub dir: Option<PathBuf>,
    /// A `tracing` filter directive such as `info` or `sensor_ingest=debug,sqlx=warn`.
    pub level: String,
    pub format: LogFormat,
    /// Daily files kept in `dir`; older ones are deleted.
    pub max_files: usize,
}

/// How log lines are written (`LOG_FORMAT`): readable text, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<&Settings> for crate::pipeline::PipelineSettings {
    fn from(s: &Settings) -> Self {
        Self {
            ranges: s.ranges,
            source_timezone: s.source_timezone,
            processed_folder: s.processed_folder.clone(),
            quarantine_folder: s.quarantine_folder.clone(),
            retry_max_delay: s.retry_max_delay,
            max_file_bytes: s.max_file_bytes,
            profiles: s.profiles.clone(),
            qc: s.qc.clone(),
            group_files: s.group_files,
            group_wait: s.group_wait,
            source_mode: s.source_mode,
            follow_archive: s.follow_archive,
        }
    }
}

impl Settings {
    /// Reads the settings from the process environment. Call `dotenvy::dotenv()` first
    /// to let a `.env` file provide defaults that the environment overrides.
    pub fn from_env() -> Result<Self, Vec<ConfigError>> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get`, returning every problem found, not just the first.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<ConfigError>> {
        // Every variable read is one of the documented list (the reference is made from it).
        let get = |name: &str| {
            debug_assert!(
                is_listed(name),
                "{name} is read but not listed in config::vars::VARS"
            );
            get(name)
        };
        let mut errors = Vec::new();
        let env = Env {
            get: &get,
            errors: &mut errors,
        };
        let mut settings = env.read();
        match ProfileSet::load(&settings.profiles_dir) {
            Ok(profiles) => {
                let globs: Vec<String> = profiles
                    .profiles()
                    .iter()
                    .flat_map(|p| p.globs().map(|(_, text)| text.to_owned()))
                    .collect();
                settings
                    .file_pattern
                    .set_profile_globs(globs.iter().map(String::as_str));
                settings.profiles = profiles;
            }
            Err(problems) => errors.extend(problems.into_iter().map(|p| ConfigError {
                var: "PROFILES_DIR",
                value: p.file.display().to_string(),
                expected: if p.key.is_empty() {
                    format!("a valid profile: {}", p.message)
                } else {
                    format!("a valid profile: {}: {}", p.key, p.message)
                },
            })),
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The settings read from `vars` alone, as `from_lookup` would.
    pub(super) fn settings(vars: &[(&str, &str)]) -> Result<Settings, Vec<ConfigError>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.data_folder, PathBuf::from("./data"));
        assert_eq!(s.processed_folder, PathBuf::from("./processed"));
        assert_eq!(s.quarantine_folder, PathBuf::from("./quarantine"));
        assert_eq!(s.monitor_interval, Duration::from_secs(5));
        assert_eq!(s.settle, Duration::from_millis(500));
        assert_eq!(s.retry_max_delay, Duration::from_secs(30));
        assert_eq!(s.ranges, Ranges::default());
        assert_eq!(s.log.format, LogFormat::Text);
        assert_eq!(s.log.dir, Some(PathBuf::from("./logs")));
        assert!(s.workers >= 1);
        assert!(s.file_pattern.matches("a.csv"));
    }

    #[test]
    fn a_bad_value_names_variable_value_and_expectation() {
        let errors = settings(&[("WORKERS", "many"), ("SETTLE_MS", "-3")]).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].var, "SETTLE_MS");
        assert_eq!(errors[1].var, "WORKERS");
        let msg = errors[1].to_string();
        assert!(
            msg.contains("WORKERS") && msg.contains("\"many\"") && msg.contains("whole number")
        );
    }
}
