//! Reading the settings from environment variables: each value is trimmed, parsed and
//! checked, and every problem is collected so that all of them are reported at once.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::profile::ProfileSet;
use crate::qc::{QcConfig, config as qc_config};

use super::database::{DB_VARS, DEFAULT_SQLITE_PATH};
use super::{
    ConfigError, DatabaseSettings, FilePattern, HttpToken, LogFormat, LogSettings,
    PostgresSettings, RETENTION_EXPECTED, Range, Ranges, Retention, Settings, SourceTimezone,
    SqliteSettings, parse_duration, parse_size,
};

/// Reads variables through `get` and collects every problem in `errors`; a bad value is
/// replaced by its default so that reading goes on and later problems are found too.
pub(super) struct Env<'a> {
    pub(super) get: &'a dyn Fn(&str) -> Option<String>,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Env<'_> {
    /// The trimmed value, or `None` when unset or empty.
    pub(super) fn value(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `FOLLOW_ARCHIVE_AFTER` and `FOLLOW_ARCHIVE`: `None` when off.
    fn follow_archive(&mut self) -> Option<crate::source::idle::ArchiveIdle> {
        let after = self.parse(
            "FOLLOW_ARCHIVE_AFTER",
            Duration::ZERO,
            "a duration such as 26h, 90m or 3600 (seconds); 0 for never",
            |v| parse_duration(v, 1000),
        );
        let keep = self.parse(
            "FOLLOW_ARCHIVE",
            crate::source::idle::Keep::Copy,
            "copy (a copy into PROCESSED_FOLDER) or move (moved there, its position forgotten)",
            |v| v.parse().ok(),
        );
        (!after.is_zero()).then_some(crate::source::idle::ArchiveIdle { after, keep })
    }

    pub(super) fn parse<T>(
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

    /// Reads every setting, always in the same order, so that errors come in that order.
    pub(super) fn read(mut self) -> Settings {
        let database = self.database();
        let data_folder = self.path("DATA_FOLDER", "./data");
        let processed_folder = self.path("PROCESSED_FOLDER", "./processed");
        let quarantine_folder = self.path("QUARANTINE_FOLDER", "./quarantine");
        let profiles_dir = self.path("PROFILES_DIR", "./profiles");
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
        let file_pattern = self.file_pattern();
        let workers = self.workers();
        let group_files = self.parse(
            "GROUP_FILES",
            256,
            "a whole number from 1 to 1024 (1: every file in a transaction of its own)",
            |v| v.parse().ok().filter(|n| (1..=1024).contains(n)),
        );
        let group_wait = self.parse(
            "GROUP_WAIT_MS",
            Duration::from_millis(5),
            "a duration in milliseconds from 0 to 1000, such as 5",
            |v| parse_duration(v, 1).filter(|d| *d <= Duration::from_secs(1)),
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
        let max_file_bytes = self.max_file_bytes();
        let log = self.log();
        let http_addr = self.http_addr();
        let http_token = self.http_token();
        let retention = self.retention(&database);
        let agent_id = self.agent_id();
        let qc = self.qc();
        let s3 = self.s3_source(retry_max_delay);
        let source_mode = self.parse(
            "SOURCE_MODE",
            crate::source::Mode::Move,
            "move (load each file once, then move it to PROCESSED_FOLDER) or append (follow \
             each file in place as it grows)",
            |v| v.parse().ok(),
        );
        let follow_archive = self.follow_archive();
        Settings {
            qc,
            s3,
            source_mode,
            follow_archive,
            database,
            data_folder,
            processed_folder,
            quarantine_folder,
            profiles_dir,
            profiles: ProfileSet::default(),
            monitor_interval,
            settle,
            file_pattern,
            workers,
            group_files,
            group_wait,
            ranges,
            source_timezone,
            retry_max_delay,
            max_file_bytes,
            log,
            http_addr,
            http_token,
            retention,
            agent_id,
        }
    }

    /// `HTTP_ADDR`, or its older name `METRICS_ADDR`; both set to different addresses
    /// is an error rather than a silent choice.
    fn http_addr(&mut self) -> Option<std::net::SocketAddr> {
        const EXPECTED: &str =
            "an address and port such as 127.0.0.1:8080 or 0.0.0.0:8080 (empty: no server)";
        let http: Option<std::net::SocketAddr> =
            self.parse("HTTP_ADDR", None, EXPECTED, |v| v.parse().ok().map(Some));
        let metrics: Option<std::net::SocketAddr> =
            self.parse("METRICS_ADDR", None, EXPECTED, |v| v.parse().ok().map(Some));
        match (http, metrics) {
            (Some(h), Some(m)) if h != m => {
                self.errors.push(ConfigError::new(
                    "METRICS_ADDR",
                    &m.to_string(),
                    format!(
                        "unset, or the same address as HTTP_ADDR={h} (it is HTTP_ADDR's older name)"
                    ),
                ));
                Some(h)
            }
            (h, m) => h.or(m),
        }
    }

    /// `HTTP_TOKEN`: not trimmed (like a password), at least 16 characters.
    fn http_token(&mut self) -> Option<HttpToken> {
        let v = (self.get)("HTTP_TOKEN").filter(|v| !v.is_empty())?;
        match HttpToken::new(v) {
            Some(token) => Some(token),
            None => {
                self.errors.push(ConfigError::new(
                    "HTTP_TOKEN",
                    "***",
                    format!(
                        "a secret of at least {} characters (e.g. from `openssl rand -hex 24`)",
                        HttpToken::MIN_LEN
                    ),
                ));
                None
            }
        }
    }

    /// `RETENTION`: off when unset. Readings are dropped a monthly partition at a time,
    /// which only PostgreSQL has: on SQLite the setting is refused rather than ignored.
    fn retention(&mut self, database: &DatabaseSettings) -> Option<Retention> {
        let raw = self.value("RETENTION")?;
        if matches!(database, DatabaseSettings::Mysql(_)) {
            self.errors.push(ConfigError::new(
                "RETENTION",
                &raw,
                "RETENTION unset: it is for PostgreSQL only, where it drops whole monthly \
                 partitions; the MariaDB/MySQL store keeps every reading (delete old ones \
                 yourself, docs/mariadb.md)",
            ));
            return None;
        }
        if matches!(database, DatabaseSettings::Sqlite(_)) {
            self.errors.push(ConfigError::new(
                "RETENTION",
                &raw,
                "RETENTION unset: it is for PostgreSQL only, where it drops whole monthly \
                 partitions; the SQLite store keeps every reading (delete old ones yourself)",
            ));
            return None;
        }
        self.parse("RETENTION", None, RETENTION_EXPECTED, |v| {
            v.parse().ok().map(Some)
        })
    }

    /// `AGENT_ID`: this agent's name in the ledger and its claims; `host:pid` by default.
    /// Printable text up to 200 characters, so that `status` can show it on one line.
    fn agent_id(&mut self) -> String {
        self.parse(
            "AGENT_ID",
            crate::sys::agent_name(),
            "a name of 1 to 200 printable characters, unique among the agents sharing a \
             database, such as ingest-a or the host name",
            |v| {
                (v.chars().count() <= 200 && !v.chars().any(char::is_control)).then(|| v.to_owned())
            },
        )
    }

    /// `FILE_PATTERN`: the error names the faulty item of the list, not just the list.
    fn file_pattern(&mut self) -> FilePattern {
        const DEFAULT: &str = "*.csv";
        let default = || FilePattern::new(DEFAULT).expect("the default pattern is valid");
        let Some(v) = self.value("FILE_PATTERN") else {
            return default();
        };
        FilePattern::new(&v).unwrap_or_else(|e| {
            self.errors.push(ConfigError::new(
                "FILE_PATTERN",
                &v,
                format!(
                    "file-name globs separated by commas, such as *.csv or \
                     *.csv,*.txt,TOA5_*.dat ({e})"
                ),
            ));
            default()
        })
    }

    fn workers(&mut self) -> usize {
        // Small files wait on the database more than on a CPU, hence 4 per CPU; capped
        // because each worker holds a database connection that several agents may share.
        let default_workers =
            std::thread::available_parallelism().map_or(8, |n| (4 * n.get()).min(16));
        self.parse(
            "WORKERS",
            default_workers,
            "a whole number from 1 to 256",
            |v| v.parse().ok().filter(|n| (1..=256).contains(n)),
        )
    }

    fn max_file_bytes(&mut self) -> Option<u64> {
        self.parse(
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
        )
    }

    fn log(&mut self) -> LogSettings {
        LogSettings {
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
        }
    }

    fn database(&mut self) -> DatabaseSettings {
        if let Some(url) = self.value("DATABASE_URL") {
            return super::database_from_url(&url).unwrap_or_else(|e| {
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

    /// `QC` (on or off), `QC_WINDOW`, `QC_HISTORY`, `QC_GAP_FACTOR`, `QC_TIME_TRAVEL`,
    /// and `QC_<MEASURE>_<KEY>` for each threshold.
    fn qc(&mut self) -> QcConfig {
        let mut qc = QcConfig::default();
        qc.enabled = self.parse("QC", true, "on or off", |v| {
            match v.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => Some(true),
                "off" | "false" | "0" | "no" => Some(false),
                _ => None,
            }
        });
        qc.window = self.parse(
            "QC_WINDOW",
            qc.window,
            "a whole number from 2 to 1000",
            |v| qc_config::parse_count(v).ok(),
        );
        qc.history_hours = self.parse(
            "QC_HISTORY",
            qc.history_hours,
            "a span such as 7d, 30 days or 48h, from 1 hour to 366 days",
            |v| qc_config::parse_history(v).ok(),
        );
        qc.gap_factor = self.parse(
            "QC_GAP_FACTOR",
            qc.gap_factor,
            "0 (off) or a number above 1",
            |v| qc_config::parse_gap_factor(v).ok(),
        );
        qc.time_travel = self.parse("QC_TIME_TRAVEL", true, "on or off", |v| {
            match v.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => Some(true),
                "off" | "false" | "0" | "no" => Some(false),
                _ => None,
            }
        });
        for (m, vars) in qc_config::ENV_VARS.iter().enumerate() {
            for (k, var) in vars.iter().enumerate() {
                let Some(v) = self.value(var) else { continue };
                if let Err(expected) = qc.set(m, qc_config::env_key(k), &v) {
                    self.errors.push(ConfigError::new(var, &v, expected));
                }
            }
        }
        qc
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

#[cfg(test)]
mod tests {
    use crate::config::tests::settings;

    #[test]
    fn agent_id_defaults_to_host_and_pid_and_refuses_control_characters() {
        let default = settings(&[]).unwrap().agent_id;
        assert!(
            default.ends_with(&format!(":{}", std::process::id())),
            "{default}"
        );
        assert_eq!(
            settings(&[("AGENT_ID", " ingest-a ")]).unwrap().agent_id,
            "ingest-a"
        );
        let errors = settings(&[("AGENT_ID", "a\tb")]).unwrap_err();
        assert_eq!(errors[0].var, "AGENT_ID");
        let errors = settings(&[("AGENT_ID", &"x".repeat(201))]).unwrap_err();
        assert_eq!(errors[0].var, "AGENT_ID");
    }

    #[test]
    fn http_addr_is_optional_checked_and_takes_its_old_name() {
        assert_eq!(settings(&[]).unwrap().http_addr, None);
        for var in ["HTTP_ADDR", "METRICS_ADDR"] {
            assert_eq!(
                settings(&[(var, "127.0.0.1:9187")]).unwrap().http_addr,
                Some("127.0.0.1:9187".parse().unwrap()),
                "{var}"
            );
            let errors = settings(&[(var, "localhost")]).unwrap_err();
            assert_eq!(errors[0].var, var);
        }
        let same = [
            ("HTTP_ADDR", "127.0.0.1:80"),
            ("METRICS_ADDR", "127.0.0.1:80"),
        ];
        assert!(settings(&same).is_ok());
        let errors = settings(&[
            ("HTTP_ADDR", "127.0.0.1:80"),
            ("METRICS_ADDR", "127.0.0.1:81"),
        ])
        .unwrap_err();
        assert_eq!(errors[0].var, "METRICS_ADDR");
    }

    #[test]
    fn http_token_is_secret_and_must_be_long_enough() {
        assert!(settings(&[]).unwrap().http_token.is_none());
        let s = settings(&[("HTTP_TOKEN", "correct horse battery staple")]).unwrap();
        let token = s.http_token.unwrap();
        assert_eq!(token.expose(), "correct horse battery staple");
        assert!(!format!("{token:?}").contains("horse"));
        let errors = settings(&[("HTTP_TOKEN", "short")]).unwrap_err();
        assert_eq!(errors[0].var, "HTTP_TOKEN");
        assert!(!errors[0].to_string().contains("short"), "{}", errors[0]);
    }

    #[test]
    fn file_pattern_takes_a_list_and_names_a_bad_item() {
        let s = settings(&[("FILE_PATTERN", " *.csv, *.TXT ")]).unwrap();
        assert!(s.file_pattern.matches("a.csv") && s.file_pattern.matches("b.txt"));
        assert!(!s.file_pattern.matches("c.dat"));
        assert_eq!(s.file_pattern.to_string(), "*.csv, *.TXT");
        for (value, named) in [
            ("*.csv,,*.txt", "item 2 of the list is empty"),
            ("*.csv,", "item 2 of the list is empty"),
            ("*.csv,in/*.txt", "\"in/*.txt\" contains '/'"),
        ] {
            let errors = settings(&[("FILE_PATTERN", value)]).unwrap_err();
            assert_eq!(errors.len(), 1, "{value}");
            assert_eq!(errors[0].var, "FILE_PATTERN");
            assert_eq!(errors[0].value, value);
            let msg = errors[0].to_string();
            assert!(msg.contains(named), "{value}: {msg}");
        }
    }

    #[test]
    fn inverted_range_is_rejected() {
        let errors = settings(&[("HUMIDITY_MIN", "50"), ("HUMIDITY_MAX", "10")]).unwrap_err();
        assert_eq!(errors[0].var, "HUMIDITY_MAX");
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
    fn retention_is_off_by_default_checked_and_postgresql_only() {
        use crate::config::Retention;
        let pg = ("DATABASE_URL", "postgres://u@db/sensors");
        assert_eq!(settings(&[pg]).unwrap().retention, None);
        let s = settings(&[pg, ("RETENTION", "400d")]).unwrap();
        assert_eq!(s.retention, Some(Retention::Days(400)));
        let errors = settings(&[pg, ("RETENTION", "18m")]).unwrap_err();
        assert_eq!(errors[0].var, "RETENTION");
        assert!(errors[0].expected.contains("18 months"), "{}", errors[0]);
        let errors = settings(&[("RETENTION", "400d")]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].var, "RETENTION");
        assert!(
            errors[0].expected.contains("PostgreSQL only"),
            "{}",
            errors[0]
        );
        let my = ("DATABASE_URL", "mariadb://u@db/sensors");
        let errors = settings(&[my, ("RETENTION", "400d")]).unwrap_err();
        assert_eq!(errors[0].var, "RETENTION");
        assert!(errors[0].expected.contains("MariaDB"), "{}", errors[0]);
    }
}
