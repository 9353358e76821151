//! The database target the sink opens: the embedded SQLite file, a PostgreSQL server or
//! a MariaDB/MySQL server. The password stays inside [`PostgresSettings`] and
//! [`MysqlSettings`], whose `Debug` and `Display` never show it. The configuration
//! parses them (`DATABASE_URL`, `DB_*`).

use std::fmt;
use std::path::{Path, PathBuf};

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Where the agent stores what it loads: the embedded SQLite file by default, a
/// PostgreSQL server, or a MariaDB/MySQL server.
#[derive(Debug, Clone)]
pub enum DatabaseSettings {
    Postgres(Box<PostgresSettings>),
    Sqlite(SqliteSettings),
    Mysql(Box<MysqlSettings>),
}

impl DatabaseSettings {
    /// PostgreSQL reached with these options.
    pub fn postgres(options: PgConnectOptions) -> Self {
        Self::Postgres(Box::new(PostgresSettings::from_options(options)))
    }

    /// MariaDB or MySQL reached with these options.
    pub fn mysql(options: MySqlConnectOptions) -> Self {
        Self::Mysql(Box::new(MysqlSettings::from_options(options)))
    }

    /// An SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::Sqlite(SqliteSettings::new(path.into(), false))
    }

    /// True when nothing was configured and the settings fell back to their default
    /// SQLite file.
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Sqlite(s) if s.is_default)
    }
}

impl fmt::Display for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(p) => p.fmt(f),
            Self::Sqlite(s) => s.fmt(f),
            Self::Mysql(m) => m.fmt(f),
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
    /// The file at `path`; `is_default` when the settings named no database and fell
    /// back to this one.
    pub fn new(path: PathBuf, is_default: bool) -> Self {
        Self { path, is_default }
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

/// How to reach MariaDB or MySQL. `Debug` and `Display` show the target
/// (`mysql://user@host:port/db?ssl-mode=…`) without the password; the options
/// themselves are only handed to the database driver.
#[derive(Clone)]
pub struct MysqlSettings {
    options: MySqlConnectOptions,
    redacted: String,
}

impl MysqlSettings {
    pub fn from_options(options: MySqlConnectOptions) -> Self {
        let ssl = match options.get_ssl_mode() {
            MySqlSslMode::Disabled => "disabled",
            MySqlSslMode::Preferred => "preferred",
            MySqlSslMode::Required => "required",
            MySqlSslMode::VerifyCa => "verify_ca",
            MySqlSslMode::VerifyIdentity => "verify_identity",
        };
        let redacted = format!(
            "mysql://{}@{}:{}/{}?ssl-mode={ssl}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default(),
        );
        Self { options, redacted }
    }

    pub fn connect_options(&self) -> &MySqlConnectOptions {
        &self.options
    }

    /// The database name (the agent needs one: it creates its tables there).
    pub fn database(&self) -> Option<&str> {
        self.options.get_database()
    }

    /// The same target with another database name: tests use it to create theirs.
    pub fn with_database(&self, name: &str) -> Self {
        Self::from_options(self.options.clone().database(name))
    }
}

impl fmt::Debug for MysqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MysqlSettings")
            .field(&self.redacted)
            .finish()
    }
}

impl fmt::Display for MysqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}
