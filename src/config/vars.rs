//! The one list of settings: every environment variable the agent reads, with its
//! default and its meaning. `docs/reference/settings.md` is generated from it
//! (`sensor-ingest docs reference`), and reading a variable that is not listed here
//! fails every debug build's tests, so a new setting is one entry here beside the code
//! in `env.rs` that parses it.

/// A variable's default, as the reference shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value that, set explicitly, gives exactly the settings of leaving it unset
    /// (a test holds every literal default to that).
    Literal(&'static str),
    /// A default that depends on the machine or on other variables, described.
    Described(&'static str),
    /// Unset means the feature is off or the value is absent.
    None,
}

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    pub default: DefaultValue,
    /// What it does, in Markdown, for the reference.
    pub meaning: &'static str,
}

use DefaultValue::{Described, Literal, None as Unset};

macro_rules! vars {
    ($($name:literal, $default:expr, $meaning:literal;)*) => {
        /// Every variable, in the order the reference lists them. The per-measure
        /// quality-control thresholds (`QC_<MEASURE>_<KEY>`) are listed by
        /// [`crate::qc::config::ENV_VARS`] and generated beside these.
        pub const VARS: &[Var] = &[$(Var { name: $name, default: $default, meaning: $meaning },)*];
    };
}

vars! {
    "DATABASE_URL", Described("SQLite in `./sensor-ingest.db`"),
        "`postgres://user:password@host:port/db?sslmode=…`, \
         `mysql://user:password@host:port/db` (or `mariadb://…`, see \
         [MariaDB](../mariadb.md)) or `sqlite://PATH` \
         (`sqlite:///var/lib/sensor-ingest/ingest.db` for an absolute path; the folder is \
         created). When unset: PostgreSQL from the `DB_*` variables if any is set, else \
         SQLite in `./sensor-ingest.db`. A password is shown as `***` in every message.";
    "DB_HOST", Literal("localhost"),
        "PostgreSQL server, when `DATABASE_URL` is unset; setting any `DB_*` variable \
         selects PostgreSQL.";
    "DB_PORT", Literal("5432"), "PostgreSQL port (with the other `DB_*` variables).";
    "DB_NAME", Literal("postgres"), "PostgreSQL database (with the other `DB_*` variables).";
    "DB_USER", Literal("postgres"), "PostgreSQL role (with the other `DB_*` variables).";
    "DB_PASSWORD", Unset,
        "PostgreSQL password (with the other `DB_*` variables); never logged, not trimmed.";
    "DB_SSLMODE", Literal("prefer"),
        "`disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full` (with the \
         other `DB_*` variables); TLS is rustls, `verify-full` checks the certificate \
         against the web PKI roots.";
    "DATA_FOLDER", Literal("./data"), "The watched folder (not recursive).";
    "PROCESSED_FOLDER", Literal("./processed"), "Loaded and duplicate files are moved here.";
    "QUARANTINE_FOLDER", Literal("./quarantine"),
        "Refused files are moved here, each beside its JSON report.";
    "SOURCE_MODE", Literal("move"),
        "`move`: each file is loaded once, then moved to `PROCESSED_FOLDER`; `append`: \
         every file of the data folder is followed in place as it grows, never moved or \
         written (a profile's `[source] mode = \"append\"` follows its own files whatever \
         this says). See [append mode](../append.md).";
    "FOLLOW_ARCHIVE_AFTER", Unset,
        "Followed files (append mode) that have not grown for this long (`90m`, `26h`, \
         in seconds without a unit) are archived as `FOLLOW_ARCHIVE` says, and only when no \
         writer could still append: read to their end (no partial last line) and open for \
         writing by no process (`/proc`). Unset or `0`: never (a profile's `[source] \
         archive_after` sets it for its own files). See [append mode](../append.md).";
    "FOLLOW_ARCHIVE", Literal("copy"),
        "With `FOLLOW_ARCHIVE_AFTER`: `copy` puts a copy into `PROCESSED_FOLDER` (the file \
         stays, still followed); `move` moves it there and forgets its position (the next \
         file of that name is a new file). `move` is refused at startup when the data folder \
         is read-only.";
    "SOURCE", Literal("folder"),
        "`folder` reads `DATA_FOLDER`; `s3://bucket/prefix/` reads the objects of a bucket \
         instead (see [S3](../s3.md)).";
    "S3_ENDPOINT", Unset,
        "With an `s3://` `SOURCE`: the server's URL for an S3-compatible store \
         (`http://127.0.0.1:9000`), addressed path-style; unset: AWS.";
    "AWS_REGION", Described("`AWS_DEFAULT_REGION`, else `us-east-1`"),
        "With an `s3://` `SOURCE`: the bucket's region.";
    "AWS_DEFAULT_REGION", Unset, "Read when `AWS_REGION` is unset.";
    "AWS_ACCESS_KEY_ID", Unset, "With an `s3://` `SOURCE`: the access key.";
    "AWS_SECRET_ACCESS_KEY", Unset,
        "With an `s3://` `SOURCE`: the secret key; never logged.";
    "S3_AFTER", Literal("move"),
        "With an `s3://` `SOURCE`: `move` copies a loaded object under \
         `S3_PROCESSED_PREFIX` and deletes it; `keep` leaves it in place, loaded once: \
         the ledger records it, and it is not read again.";
    "S3_RECONCILE", Literal("1h"),
        "With an `s3://` `SOURCE`: how often a full listing finds what the per-folder \
         listings after their watermarks missed (`15m`, `30s`).";
    "S3_PROCESSED_PREFIX", Literal("processed/"),
        "With an `s3://` `SOURCE`: where loaded objects go, under the bucket.";
    "S3_QUARANTINE_PREFIX", Literal("quarantine/"),
        "With an `s3://` `SOURCE`: where refused objects go, each beside its JSON report.";
    "S3_SPOOL_DIR", Described("the system's temporary folder"),
        "With an `s3://` `SOURCE`: where an object being read is spooled (an unnamed \
         file, gone when closed).";
    "PROFILES_DIR", Literal("./profiles"),
        "Source profiles (`*.toml`), see [profiles](../profiles.md); a folder that does \
         not exist holds none.";
    "MONITOR_INTERVAL", Literal("5"),
        "Seconds between safety-net rescans of the data folder (also `500ms`, `2m`).";
    "SETTLE_MS", Literal("500"),
        "A file found only by a scan is taken once its size and mtime have not changed \
         for this many milliseconds (also `2s`).";
    "FILE_PATTERN", Literal("*.csv"),
        "Case-insensitive globs on file names, separated by commas: \
         `*.csv,*.txt,TOA5_*.dat`; a profile's `match` globs are added. Hidden and \
         temporary names (`.x`, `*.tmp`, `*.part`, `*.partial`, `*~`) are never taken; \
         any other file matching no glob is left aside (named once in the log, counted by \
         `status`).";
    "WORKERS", Described("4 per CPU, at most 16"),
        "Files processed in parallel, 1 to 256 (small files mostly wait on the database; \
         each worker holds a database connection).";
    "GROUP_FILES", Literal("256"),
        "Small files (at most 256 KiB and 2,048 rows) ready together are committed in one \
         transaction, up to this many (or 50,000 rows) per group, each file still \
         all-or-nothing; `1` commits every file by itself (1 to 1024). See \
         [group commit](../how-it-works.md#group-commit-small-files-several-to-a-transaction).";
    "GROUP_WAIT_MS", Literal("5"),
        "A group closes this many milliseconds after its first file was ready, if it has \
         not filled before (0 to 1000).";
    "TEMPERATURE_MIN", Literal("-50"),
        "Lowest accepted temperature in °C, inclusive; also the lower bound of \
         `temperature_norm`.";
    "TEMPERATURE_MAX", Literal("60"), "Highest accepted temperature in °C, inclusive.";
    "HUMIDITY_MIN", Literal("0"), "Lowest accepted relative humidity in %RH, inclusive.";
    "HUMIDITY_MAX", Literal("100"), "Highest accepted relative humidity in %RH, inclusive.";
    "PRESSURE_MIN", Literal("800"), "Lowest accepted pressure in hPa, inclusive.";
    "PRESSURE_MAX", Literal("1100"), "Highest accepted pressure in hPa, inclusive.";
    "SOURCE_TIMEZONE", Literal("UTC"),
        "Zone of timestamps without an offset: `UTC`, `+02:00`, `Europe/Berlin`.";
    "RETRY_MAX_DELAY", Literal("30"),
        "Longest wait between database retries, jitter included, in seconds (also \
         `500ms`, `2m`).";
    "MAX_FILE_BYTES", Literal("off"),
        "Larger files are quarantined unread (rule `file_too_large`): `500MB`, `2GiB` or \
         plain bytes.";
    "RETENTION", Unset,
        "PostgreSQL only: keep readings this long, dropping whole monthly partitions once \
         all they can hold is older: `400d`, `400 days` or `18 months` (`18m` is refused \
         as ambiguous). Refused with SQLite. See [partitions](../partitions.md).";
    "LOG_DIR", Literal("./logs"),
        "Daily-rotated log files (`sensor-ingest.YYYY-MM-DD.log`); set it empty for the \
         console only.";
    "LOG_MAX_FILES", Literal("14"), "Daily log files kept.";
    "LOG_LEVEL", Literal("info"),
        "`error`…`trace`, or a filter such as `sensor_ingest=debug,sqlx=warn`.";
    "LOG_FORMAT", Literal("text"), "`text` or `json` (console and file).";
    "HTTP_ADDR", Unset,
        "`run` serves the [dashboard](../dashboard.md) at `/`, and `/metrics`, `/healthz` \
         and `/readyz`, on this address, e.g. `127.0.0.1:8080`; unset or empty: no \
         server. A non-loopback address logs a warning at startup.";
    "METRICS_ADDR", Unset,
        "The older name of `HTTP_ADDR`, still read; both set to different addresses is an \
         error.";
    "HTTP_TOKEN", Unset,
        "A secret of at least 16 characters; with it, a browser signed in with the token \
         may retry quarantined files from the dashboard. Without it the dashboard is \
         read-only. Never logged.";
    "AGENT_ID", Described("`HOST:PID`"),
        "This agent's name, written to each ledger row it writes and to its claims on \
         files; `status` shows each agent's share under it. Up to 200 printable \
         characters; give each agent sharing a database its own (see \
         [several agents](../several-agents.md)).";
    "QC", Literal("on"),
        "`off`: no quality flags, no history read (see [quality flags](../quality.md)).";
    "QC_WINDOW", Literal("60"), "Readings in the outlier test's window (2 to 1000).";
    "QC_HISTORY", Literal("7d"),
        "How far back a sensor's readings count for its tests: `48h`, `30 days`, from 1 \
         hour to 366 days.";
    "QC_GAP_FACTOR", Literal("5"),
        "A reading more than this many usual intervals after the sensor's previous one is \
         flagged gap (`0`: off).";
    "QC_TIME_TRAVEL", Literal("on"), "`off`: no time-travel flags.";
}

/// Whether `name` is a variable of [`VARS`] or one of the quality-control thresholds.
pub fn is_listed(name: &str) -> bool {
    VARS.iter().any(|v| v.name == name)
        || crate::qc::config::ENV_VARS
            .iter()
            .flatten()
            .any(|v| *v == name)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::config::Settings;

    /// The settings read from `vars` alone, printed: two readings that print the same
    /// are the same settings.
    fn read(vars: &[(&str, &str)]) -> String {
        let settings = Settings::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap_or_else(|e| panic!("{vars:?}: {e:?}"));
        format!("{settings:?}")
    }

    #[test]
    fn every_literal_default_is_the_default() {
        for var in VARS {
            let DefaultValue::Literal(default) = var.default else {
                continue;
            };
            // The DB_* defaults apply once PostgreSQL is chosen by its parts.
            let base: &[(&str, &str)] = match var.name {
                "DB_HOST" => &[("DB_PORT", "5432")],
                n if n.starts_with("S3_") => &[("SOURCE", "s3://bucket/x/")],
                n if n.starts_with("DB_") => &[("DB_HOST", "localhost")],
                _ => &[],
            };
            let mut with = base.to_vec();
            with.push((var.name, default));
            assert_eq!(
                read(&with),
                read(base),
                "{}={default} is not what leaving it unset gives",
                var.name
            );
        }
    }

    #[test]
    fn every_variable_read_is_listed_and_every_listed_one_is_read() {
        let asked = RefCell::new(Vec::new());
        for env in [
            &[][..],
            &[("DB_HOST", "localhost")][..],
            &[("SOURCE", "s3://bucket/x/")][..],
        ] {
            let _ = Settings::from_lookup(|k| {
                asked.borrow_mut().push(k.to_owned());
                env.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| (*v).to_owned())
            });
        }
        let asked = asked.into_inner();
        for name in &asked {
            assert!(is_listed(name), "{name} is read but not listed");
        }
        let names = VARS.iter().map(|v| v.name);
        let qc = crate::qc::config::ENV_VARS.iter().flatten().copied();
        for name in names.chain(qc) {
            assert!(
                asked.iter().any(|a| a == name),
                "{name} is listed but never read"
            );
        }
    }

    #[test]
    fn env_example_names_every_variable() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
        let text = std::fs::read_to_string(&path).unwrap();
        for var in VARS {
            assert!(
                text.contains(&format!("{}=", var.name)),
                ".env.example does not show {}",
                var.name
            );
            if let DefaultValue::Literal(default) = var.default {
                for line in text.lines().map(|l| l.trim_start_matches("# ")) {
                    if let Some(value) = line.strip_prefix(&format!("{}=", var.name)) {
                        assert!(
                            value == default || value.is_empty() || var.name == "DATABASE_URL",
                            ".env.example: {}={value}, but the default is {default}",
                            var.name
                        );
                    }
                }
            }
        }
    }
}
