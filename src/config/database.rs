//! Parsing the database target (`DATABASE_URL`, `DB_*`) into the sink's
//! [`DatabaseSettings`]. Errors never repeat the password.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;

use super::ConfigError;
use crate::sink::{DatabaseSettings, MysqlSettings, PostgresSettings, SqliteSettings};

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

/// Parses `DATABASE_URL`: `postgres://…`, `postgresql://…`, `mysql://…`,
/// `mariadb://…`, `sqlite://PATH` or `sqlite:PATH`. Errors never repeat the password.
pub fn database_from_url(url: &str) -> Result<DatabaseSettings, ConfigError> {
    if url.starts_with("sqlite:") {
        sqlite_from_url(url).map(DatabaseSettings::Sqlite)
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        mysql_from_url(url).map(|m| DatabaseSettings::Mysql(Box::new(m)))
    } else {
        postgres_from_url(url).map(|p| DatabaseSettings::Postgres(Box::new(p)))
    }
}

/// Accepts `sqlite://PATH` and `sqlite:PATH` (`sqlite:///abs/path` for an absolute
/// one). In-memory databases are refused: every load would vanish at exit.
pub fn sqlite_from_url(url: &str) -> Result<SqliteSettings, ConfigError> {
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
    Ok(SqliteSettings::new(PathBuf::from(rest), false))
}

/// Parses a `postgres://` URL. Errors never repeat the password.
pub fn postgres_from_url(url: &str) -> Result<PostgresSettings, ConfigError> {
    let redacted_input = redact_url(url);
    let expected = "a URL such as postgres://user:password@host:5432/dbname?sslmode=require \
                        or sqlite://./sensor-ingest.db";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::new("DATABASE_URL", &redacted_input, expected));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| ConfigError::new("DATABASE_URL", &redacted_input, expected))?;
    Ok(PostgresSettings::from_options(options))
}

/// Parses a `mysql://` or `mariadb://` URL (the same driver serves both); it must name
/// a database, where the agent creates its tables. Errors never repeat the password.
pub fn mysql_from_url(url: &str) -> Result<MysqlSettings, ConfigError> {
    let redacted_input = redact_url(url);
    let expected = "a URL such as mysql://user:password@host:3306/dbname or \
                    mariadb://user:password@host:3306/dbname?ssl-mode=required";
    let Some(rest) = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
    else {
        return Err(ConfigError::new("DATABASE_URL", &redacted_input, expected));
    };
    let options = MySqlConnectOptions::from_str(&format!("mysql://{rest}"))
        .map_err(|_| ConfigError::new("DATABASE_URL", &redacted_input, expected))?;
    if options.get_database().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            "DATABASE_URL",
            &redacted_input,
            format!("{expected} (with a database name: the agent creates its tables there)"),
        ));
    }
    Ok(MysqlSettings::from_options(options))
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
        let errors = settings(&[("DATABASE_URL", "mongodb://u:s3cret@h/db")]).unwrap_err();
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
    fn mysql_and_mariadb_urls_select_the_mysql_driver_without_showing_the_password() {
        for url in [
            "mysql://u:s3cret@db.example:3307/plant",
            "mariadb://u:s3cret@db.example:3307/plant",
        ] {
            let s = settings(&[("DATABASE_URL", url)]).unwrap();
            assert!(matches!(s.database, DatabaseSettings::Mysql(_)), "{url}");
            for shown in [format!("{s:?}"), s.database.to_string()] {
                assert!(!shown.contains("s3cret"), "{shown}");
            }
            assert_eq!(
                s.database.to_string(),
                "mysql://u@db.example:3307/plant?ssl-mode=preferred"
            );
        }
        for url in ["mysql://u:s3cret@h:3306", "mariadb://u:s3cret@h:3306/"] {
            let errors = settings(&[("DATABASE_URL", url)]).unwrap_err();
            assert_eq!(errors[0].var, "DATABASE_URL", "{url}");
            let msg = errors[0].to_string();
            assert!(
                !msg.contains("s3cret") && msg.contains("database name"),
                "{msg}"
            );
        }
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
