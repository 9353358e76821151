//! The database target: the embedded SQLite file or a PostgreSQL server. The password
//! stays inside [`PostgresSettings`], whose `Debug` and `Display` never show it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::ConfigError;

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
pub(super) const DB_VARS: [&str; 6] = [
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
    pub(super) fn new(path: PathBuf, is_default: bool) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

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
