//! Configuration: one typed [`Settings`] struct, read once at startup from the
//! environment (after `.env` has been loaded), validated whole.
//!
//! Every problem names the variable, the value it had and what was expected, so the
//! agent can stop with exit code 2 before touching any file. The database password is
//! kept inside [`DatabaseSettings`], whose `Debug` and `Display` never show it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

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
    /// How often the data folder is rescanned as a safety net for missed events.
    pub monitor_interval: Duration,
    /// How long a file seen only by a scan must keep its size and mtime before it is taken.
    pub settle: Duration,
    pub file_pattern: FilePattern,
    /// Files processed in parallel.
    pub workers: usize,
    pub ranges: Ranges,
    pub source_timezone: SourceTimezone,
    /// Upper bound of the exponential backoff between database retries.
    pub retry_max_delay: Duration,
    /// Files larger than this are quarantined without being read; `None`: no limit.
    pub max_file_bytes: Option<u64>,
    pub log: LogSettings,
    /// Where `run` serves `/metrics`, `/healthz` and `/readyz`; `None` serves nothing.
    pub metrics_addr: Option<std::net::SocketAddr>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Accepted range of one measurement; values outside it make the row invalid, and
/// `*_norm` columns are `(value - min) / (max - min)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    pub fn contains(&self, v: f64) -> bool {
        v >= self.min && v <= self.max
    }

    pub fn normalize(&self, v: f64) -> f64 {
        (v - self.min) / (self.max - self.min)
    }
}

/// Accepted ranges of the three canonical measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranges {
    pub temperature: Range,
    pub humidity: Range,
    pub pressure: Range,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            temperature: Range {
                min: -50.0,
                max: 60.0,
            },
            humidity: Range {
                min: 0.0,
                max: 100.0,
            },
            pressure: Range {
                min: 800.0,
                max: 1100.0,
            },
        }
    }
}

/// The time zone in which timestamps without an offset are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceTimezone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Default for SourceTimezone {
    fn default() -> Self {
        SourceTimezone::Fixed(FixedOffset::east_opt(0).expect("zero offset is valid"))
    }
}

impl FromStr for SourceTimezone {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("z") {
            return Ok(Self::default());
        }
        if let Some(offset) = parse_fixed_offset(s) {
            return Ok(SourceTimezone::Fixed(offset));
        }
        s.parse::<chrono_tz::Tz>()
            .map(SourceTimezone::Named)
            .map_err(|_| ())
    }
}

/// `+02:00`, `-0530`, `+02`, optionally prefixed by `UTC`.
fn parse_fixed_offset(s: &str) -> Option<FixedOffset> {
    let s = s
        .strip_prefix("UTC")
        .or_else(|| s.strip_prefix("utc"))
        .unwrap_or(s);
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Which files in the data folder are taken: a case-insensitive glob on the file name.
/// Hidden and temporary names are never taken, whatever the pattern.
#[derive(Debug, Clone)]
pub struct FilePattern {
    pattern: glob::Pattern,
}

impl FilePattern {
    pub fn new(pattern: &str) -> Option<Self> {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern.contains('/') {
            return None;
        }
        glob::Pattern::new(pattern)
            .ok()
            .map(|pattern| Self { pattern })
    }

    /// True when `name` is a data file this agent should take.
    pub fn matches(&self, name: &str) -> bool {
        const TEMP_SUFFIXES: [&str; 4] = [".tmp", ".part", ".partial", "~"];
        if name.starts_with('.') {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        if TEMP_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            return false;
        }
        let options = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.pattern.matches_with(name, options)
    }
}

impl fmt::Display for FilePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pattern.as_str())
    }
}

/// Where the agent stores what it loads: the embedded SQLite file by default, or a
/// PostgreSQL server.
#[derive(Debug, Clone)]
pub enum DatabaseSettings {
    Postgres(Box<PostgresSettings>),
    Sqlite(SqliteSettings),
}

/// The SQLite file used when no database is configured.
pub const DEFAULT_SQLITE_PATH: &str = "./sensor-ingest.db";

/// Variables that, when any is set, select PostgreSQL without a `DATABASE_URL`.
const DB_VARS: [&str; 6] = [
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_SSLMODE",
];

impl DatabaseSettings {
    /// Parses `DATABASE_URL`: `postgres://…`, `postgresql://…`, `sqlite://PATH` or
    /// `sqlite:PATH`. Errors never repeat the password.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("sqlite:") {
            SqliteSettings::from_url(url).map(Self::Sqlite)
        } else {
            PostgresSettings::from_url(url).map(|p| Self::Postgres(Box::new(p)))
        }
    }

    /// PostgreSQL reached with these options.
    pub fn postgres(options: PgConnectOptions) -> Self {
        Self::Postgres(Box::new(PostgresSettings::from_options(options)))
    }

    /// An SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::Sqlite(SqliteSettings::new(path.into(), false))
    }

    /// True when nothing was configured and the agent fell back to
    /// [`DEFAULT_SQLITE_PATH`].
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Sqlite(s) if s.is_default)
    }
}

impl fmt::Display for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(p) => p.fmt(f),
            Self::Sqlite(s) => s.fmt(f),
        }
    }
}

/// An SQLite database file. Displayed as `sqlite://PATH`.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    path: PathBuf,
    is_default: bool,
}

impl SqliteSettings {
    fn new(path: PathBuf, is_default: bool) -> Self {
        Self { path, is_default }
    }

    /// Accepts `sqlite://PATH` and `sqlite:PATH` (`sqlite:///abs/path` for an absolute
    /// one). In-memory databases are refused: every load would vanish at exit.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let expected = "sqlite://PATH such as sqlite://./sensor-ingest.db or \
                        sqlite:///var/lib/sensor-ingest/ingest.db";
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or_default();
        if rest.contains('?') {
            return Err(ConfigError::new(
                "DATABASE_URL",
                url,
                format!(
                    "{expected}, without ?parameters (the agent sets WAL, synchronous=FULL and a busy timeout itself)"
                ),
            ));
        }
        if rest.is_empty() || rest == ":memory:" {
            return Err(ConfigError::new(
                "DATABASE_URL",
                url,
                format!("{expected} (a file: an in-memory database would lose every load at exit)"),
            ));
        }
        Ok(Self::new(PathBuf::from(rest), false))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for SqliteSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite://{}", self.path.display())
    }
}

/// How to reach PostgreSQL. `Debug` and `Display` show the target with the password
/// redacted; the options themselves are only handed to the database driver.
#[derive(Clone)]
pub struct PostgresSettings {
    options: PgConnectOptions,
    redacted: String,
}

impl PostgresSettings {
    /// Parses a `postgres://` URL. Errors never repeat the password.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let redacted_input = redact_url(url);
        let expected = "a URL such as postgres://user:password@host:5432/dbname?sslmode=require \
                        or sqlite://./sensor-ingest.db";
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::new("DATABASE_URL", &redacted_input, expected));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| ConfigError::new("DATABASE_URL", &redacted_input, expected))?;
        Ok(Self::from_options(options))
    }

    pub fn from_options(options: PgConnectOptions) -> Self {
        let ssl = match options.get_ssl_mode() {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        };
        let redacted = format!(
            "postgres://{}@{}:{}/{}?sslmode={ssl}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username()),
        );
        Self { options, redacted }
    }

    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// The same target with another database name: tests use it to create theirs.
    pub fn with_database(&self, name: &str) -> Self {
        Self::from_options(self.options.clone().database(name))
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresSettings")
            .field(&self.redacted)
            .finish()
    }
}

impl fmt::Display for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Replaces the password of a connection URL (userinfo or `password=` parameter) by
/// `***`, so the URL can be shown in messages.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

impl Settings {
    /// Reads the settings from the process environment. Call `dotenvy::dotenv()` first
    /// to let a `.env` file provide defaults that the environment overrides.
    pub fn from_env() -> Result<Self, Vec<ConfigError>> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get`, returning every problem found, not just the first.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let env = Env {
            get: &get,
            errors: &mut errors,
        };
        let settings = env.read();
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    errors: &'a mut Vec<ConfigError>,
}

impl Env<'_> {
    /// The trimmed value, or `None` when unset or empty.
    fn value(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &mut self,
        var: &'static str,
        default: T,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        match self.value(var) {
            None => default,
            Some(v) => parse(&v).unwrap_or_else(|| {
                self.errors.push(ConfigError::new(var, &v, expected));
                default
            }),
        }
    }

    fn path(&mut self, var: &'static str, default: &str) -> PathBuf {
        PathBuf::from(self.value(var).unwrap_or_else(|| default.to_owned()))
    }

    fn read(mut self) -> Settings {
        let database = self.database();
        let data_folder = self.path("DATA_FOLDER", "./data");
        let processed_folder = self.path("PROCESSED_FOLDER", "./processed");
        let quarantine_folder = self.path("QUARANTINE_FOLDER", "./quarantine");
        let monitor_interval = self.parse(
            "MONITOR_INTERVAL",
            Duration::from_secs(5),
            "a positive duration in seconds such as 5, 0.5 or 500ms",
            |v| parse_duration(v, 1000).filter(|d| !d.is_zero()),
        );
        let settle = self.parse(
            "SETTLE_MS",
            Duration::from_millis(500),
            "a duration in milliseconds such as 500, or 2s",
            |v| parse_duration(v, 1),
        );
        let file_pattern = self.parse(
            "FILE_PATTERN",
            FilePattern::new("*.csv").expect("default pattern is valid"),
            "a file-name glob such as *.csv or sensors_*.csv",
            FilePattern::new,
        );
        // A small file spends most of its time waiting on the database (round trips, the
        // commit's fsync), not on a CPU: 4 per CPU keeps both busy. bench/run, 2,000
        // files of 100 rows on 2 CPUs: 312 files/s with 2 workers, 534 with 8. Capped
        // because each worker holds a PostgreSQL connection, and several agents may
        // share one server.
        let default_workers =
            std::thread::available_parallelism().map_or(8, |n| (4 * n.get()).min(16));
        let workers = self.parse(
            "WORKERS",
            default_workers,
            "a whole number from 1 to 256",
            |v| v.parse().ok().filter(|n| (1..=256).contains(n)),
        );
        let ranges = self.ranges();
        let source_timezone = self.parse(
            "SOURCE_TIMEZONE",
            SourceTimezone::default(),
            "UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Berlin",
            |v| v.parse().ok(),
        );
        let retry_max_delay = self.parse(
            "RETRY_MAX_DELAY",
            Duration::from_secs(30),
            "a positive duration in seconds such as 30, or 500ms, 2m",
            |v| parse_duration(v, 1000).filter(|d| !d.is_zero()),
        );
        let max_file_bytes = self.parse(
            "MAX_FILE_BYTES",
            None,
            "a size such as 104857600, 500MB or 2GiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, \
             TiB), or off",
            |v| {
                if v.eq_ignore_ascii_case("off") {
                    Some(None)
                } else {
                    parse_size(v).filter(|n| *n > 0).map(Some)
                }
            },
        );
        let log = LogSettings {
            // An explicitly empty LOG_DIR turns the log file off.
            dir: match (self.get)("LOG_DIR") {
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(PathBuf::from(v.trim())),
                None => Some(PathBuf::from("./logs")),
            },
            level: self.parse(
                "LOG_LEVEL",
                "info".to_owned(),
                "a level (error, warn, info, debug, trace) or a tracing filter such as sensor_ingest=debug,sqlx=warn",
                |v| {
                    tracing_subscriber::EnvFilter::try_new(v)
                        .ok()
                        .map(|_| v.to_owned())
                },
            ),
            format: self.parse("LOG_FORMAT", LogFormat::Text, "text or json", |v| {
                match v.to_ascii_lowercase().as_str() {
                    "text" => Some(LogFormat::Text),
                    "json" => Some(LogFormat::Json),
                    _ => None,
                }
            }),
            max_files: self.parse(
                "LOG_MAX_FILES",
                14,
                "a whole number of daily log files to keep, at least 1",
                |v| v.parse().ok().filter(|n| *n >= 1),
            ),
        };
        let metrics_addr = self.parse(
            "METRICS_ADDR",
            None,
            "an address and port such as 127.0.0.1:9187 or 0.0.0.0:9187 (empty: no endpoint)",
            |v| v.parse().ok().map(Some),
        );
        Settings {
            database,
            data_folder,
            processed_folder,
            quarantine_folder,
            monitor_interval,
            settle,
            file_pattern,
            workers,
            ranges,
            source_timezone,
            retry_max_delay,
            max_file_bytes,
            log,
            metrics_addr,
        }
    }

    fn database(&mut self) -> DatabaseSettings {
        if let Some(url) = self.value("DATABASE_URL") {
            return DatabaseSettings::from_url(&url).unwrap_or_else(|e| {
                self.errors.push(e);
                DatabaseSettings::sqlite(DEFAULT_SQLITE_PATH)
            });
        }
        if DB_VARS
            .iter()
            .any(|v| (self.get)(v).is_some_and(|v| !v.is_empty()))
        {
            return DatabaseSettings::Postgres(Box::new(self.postgres_parts()));
        }
        DatabaseSettings::Sqlite(SqliteSettings::new(DEFAULT_SQLITE_PATH.into(), true))
    }

    /// PostgreSQL from the seed projects' `DB_*` variables; unset ones fall back to a
    /// local server.
    fn postgres_parts(&mut self) -> PostgresSettings {
        let host = self
            .value("DB_HOST")
            .unwrap_or_else(|| "localhost".to_owned());
        let port = self.parse("DB_PORT", 5432u16, "a TCP port from 1 to 65535", |v| {
            v.parse().ok().filter(|p| *p > 0)
        });
        let name = self
            .value("DB_NAME")
            .unwrap_or_else(|| "postgres".to_owned());
        let user = self
            .value("DB_USER")
            .unwrap_or_else(|| "postgres".to_owned());
        let ssl_mode = self.parse(
            "DB_SSLMODE",
            PgSslMode::Prefer,
            "disable, allow, prefer, require, verify-ca or verify-full",
            |v| v.parse().ok(),
        );
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&host)
            .port(port)
            .database(&name)
            .username(&user)
            .ssl_mode(ssl_mode);
        // Not trimmed: a password may legitimately start or end with a space.
        if let Some(password) = (self.get)("DB_PASSWORD").filter(|p| !p.is_empty()) {
            options = options.password(&password);
        }
        PostgresSettings::from_options(options)
    }

    fn ranges(&mut self) -> Ranges {
        let d = Ranges::default();
        let mut range = |min_var: &'static str, max_var: &'static str, default: Range| {
            let expected = "a finite number";
            let number = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite());
            let min = self.parse(min_var, default.min, expected, number);
            let max = self.parse(max_var, default.max, expected, number);
            if min >= max {
                self.errors.push(ConfigError::new(
                    max_var,
                    &max.to_string(),
                    format!("a number greater than {min_var}={min}"),
                ));
            }
            Range { min, max }
        };
        Ranges {
            temperature: range("TEMPERATURE_MIN", "TEMPERATURE_MAX", d.temperature),
            humidity: range("HUMIDITY_MIN", "HUMIDITY_MAX", d.humidity),
            pressure: range("PRESSURE_MIN", "PRESSURE_MAX", d.pressure),
        }
    }
}

/// A duration as a number in `default_unit_ms` units, or with a suffix `ms`, `s`, `m`, `h`.
/// A byte count: plain digits, or digits and a unit (`KB`, `MB`, `GB`, `TB` are powers of
/// 1000; `KiB`, `MiB`, `GiB`, `TiB` powers of 1024; `B` is bytes), case-insensitive, an
/// optional space between.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

pub fn parse_duration(v: &str, default_unit_ms: u64) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit_ms = match unit.trim() {
        "" => default_unit_ms as f64,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    let ms = number * unit_ms;
    (0.0..1e12)
        .contains(&ms)
        .then(|| Duration::from_micros((ms * 1000.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Vec<ConfigError>> {
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

    #[test]
    fn metrics_addr_is_optional_and_checked() {
        assert_eq!(settings(&[]).unwrap().metrics_addr, None);
        assert_eq!(
            settings(&[("METRICS_ADDR", "127.0.0.1:9187")])
                .unwrap()
                .metrics_addr,
            Some("127.0.0.1:9187".parse().unwrap())
        );
        let errors = settings(&[("METRICS_ADDR", "localhost")]).unwrap_err();
        assert_eq!(errors[0].var, "METRICS_ADDR");
    }

    #[test]
    fn inverted_range_is_rejected() {
        let errors = settings(&[("HUMIDITY_MIN", "50"), ("HUMIDITY_MAX", "10")]).unwrap_err();
        assert_eq!(errors[0].var, "HUMIDITY_MAX");
    }

    #[test]
    fn password_never_shows_in_errors_or_debug() {
        let errors = settings(&[("DATABASE_URL", "mysql://u:s3cret@h/db")]).unwrap_err();
        let msg = errors[0].to_string();
        assert!(!msg.contains("s3cret"), "{msg}");
        assert!(msg.contains("u:***@h"), "{msg}");

        let s = settings(&[(
            "DATABASE_URL",
            "postgres://u:s3cret@h:5433/db?sslmode=require",
        )])
        .unwrap();
        for shown in [format!("{:?}", s), s.database.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert_eq!(
            s.database.to_string(),
            "postgres://u@h:5433/db?sslmode=require"
        );

        let s = settings(&[("DB_PASSWORD", "s3cret"), ("DB_HOST", "db.example")]).unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(s.database.to_string().contains("db.example"));
    }

    #[test]
    fn redact_url_handles_userinfo_and_query() {
        assert_eq!(redact_url("postgres://a:b@h/d"), "postgres://a:***@h/d");
        assert_eq!(redact_url("postgres://a@h/d"), "postgres://a@h/d");
        assert_eq!(
            redact_url("postgres://h/d?user=a&password=b&sslmode=require"),
            "postgres://h/d?user=a&password=***&sslmode=require"
        );
    }

    #[test]
    fn timezones_fixed_and_named() {
        assert_eq!(
            "+02:00".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Fixed(FixedOffset::east_opt(7200).unwrap()))
        );
        assert_eq!(
            "UTC-0530".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Fixed(
                FixedOffset::west_opt(5 * 3600 + 1800).unwrap()
            ))
        );
        assert_eq!(
            "Europe/Berlin".parse::<SourceTimezone>(),
            Ok(SourceTimezone::Named(chrono_tz::Europe::Berlin))
        );
        assert!("Mars/Olympus".parse::<SourceTimezone>().is_err());
        assert!("+25:00".parse::<SourceTimezone>().is_err());
    }

    #[test]
    fn file_pattern_is_case_insensitive_and_skips_temp_names() {
        let p = FilePattern::new("*.csv").unwrap();
        assert!(p.matches("readings.CSV"));
        assert!(p.matches("with space.csv"));
        for name in [
            ".hidden.csv",
            "a.csv.tmp",
            "a.csv.part",
            "a.csv.partial",
            "a.csv~",
            "a.txt",
        ] {
            assert!(!p.matches(name), "{name}");
        }
        assert!(FilePattern::new("a/*.csv").is_none());
    }

    #[test]
    fn max_file_bytes_is_off_by_default_and_takes_sizes() {
        assert_eq!(settings(&[]).unwrap().max_file_bytes, None);
        for (value, bytes) in [
            ("1048576", Some(1_048_576)),
            ("100MB", Some(100_000_000)),
            ("100 mb", Some(100_000_000)),
            ("1GiB", Some(1 << 30)),
            ("2kib", Some(2048)),
            ("512B", Some(512)),
            ("off", None),
        ] {
            let s = settings(&[("MAX_FILE_BYTES", value)]).unwrap();
            assert_eq!(s.max_file_bytes, bytes, "{value}");
        }
        for bad in ["0", "-1", "1.5GB", "10 parsecs", "MB", "99999999999TB"] {
            let errors = settings(&[("MAX_FILE_BYTES", bad)]).unwrap_err();
            assert_eq!(errors[0].var, "MAX_FILE_BYTES", "{bad}");
            assert!(errors[0].expected.contains("GiB"));
        }
    }

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration("5", 1000), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("0.5", 1000),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("250ms", 1000),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("2m", 1), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon", 1), None);
    }

    #[test]
    fn no_database_settings_mean_the_embedded_sqlite_file() {
        let s = settings(&[]).unwrap();
        assert!(s.database.is_default());
        assert_eq!(s.database.to_string(), "sqlite://./sensor-ingest.db");
    }

    #[test]
    fn any_db_variable_selects_postgres() {
        for var in DB_VARS {
            let value = if var == "DB_PORT" { "5433" } else { "x" };
            let value = if var == "DB_SSLMODE" {
                "require"
            } else {
                value
            };
            let s = settings(&[(var, value)]).unwrap();
            assert!(
                matches!(s.database, DatabaseSettings::Postgres(_)),
                "{var}: {}",
                s.database
            );
        }
        // Set but empty counts as unset, as everywhere else.
        assert!(settings(&[("DB_HOST", "")]).unwrap().database.is_default());
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        for (url, shown) in [
            ("sqlite://./x.db", "sqlite://./x.db"),
            ("sqlite://data/x.db", "sqlite://data/x.db"),
            ("sqlite:///var/lib/x.db", "sqlite:///var/lib/x.db"),
            ("sqlite:x.db", "sqlite://x.db"),
        ] {
            let s = settings(&[("DATABASE_URL", url)]).unwrap();
            assert!(!s.database.is_default(), "{url}");
            assert_eq!(s.database.to_string(), shown);
        }
        for url in ["sqlite::memory:", "sqlite://", "sqlite://x.db?mode=ro"] {
            let errors = settings(&[("DATABASE_URL", url)]).unwrap_err();
            assert_eq!(errors[0].var, "DATABASE_URL", "{url}");
        }
        // DATABASE_URL wins over DB_* variables.
        let s = settings(&[("DATABASE_URL", "sqlite://y.db"), ("DB_HOST", "h")]).unwrap();
        assert_eq!(s.database.to_string(), "sqlite://y.db");
    }
}
