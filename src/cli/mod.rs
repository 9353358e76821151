//! The command line: one file per command, each with its flags (`Args`) and a `run`
//! that does the work and says how the process exits. `main` only parses, loads the
//! settings and reports what failed; `anyhow` is used here and in `main`, nowhere else.
//!
//! A new command is a new file here and a variant of [`Command`].

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{LogSettings, Settings};
use crate::sink::{self, Store};
use crate::telemetry;

pub mod check;
pub mod docs;
pub mod migrate;
pub mod once;
pub mod profile;
pub mod progress;
pub mod qc;
pub mod quarantine;
pub mod run;
pub mod simulate;
pub mod status;
pub mod summary;

/// Watches a folder for sensor CSV exports, validates and enriches every row, and
/// loads each file exactly once into a database: an embedded SQLite file by default,
/// or PostgreSQL.
///
/// Settings come from the environment and from a `.env` file in the working
/// directory (see .env.example); the environment wins.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  \
    sensor-ingest                        # watch ./data, store in ./sensor-ingest.db\n  \
    sensor-ingest check data/first.csv   # what a file would store; nothing loaded\n\n\
    The guide: docs/README.md; every setting: docs/reference/settings.md"
)]
pub struct Cli {
    // `run` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands, one file each in this folder.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch DATA_FOLDER until SIGINT/SIGTERM (the default).
    #[command(after_help = "Examples:\n  \
        sensor-ingest run                           # the same as sensor-ingest alone\n  \
        HTTP_ADDR=127.0.0.1:8080 sensor-ingest run  # with the dashboard and /metrics")]
    Run,
    /// Process every file present in DATA_FOLDER, then exit. Exits 1 if any file was
    /// quarantined or could not be loaded.
    #[command(after_help = "Examples:\n  \
        sensor-ingest once\n  \
        sensor-ingest once --retries 10   # wait longer for a database that is down")]
    Once(once::Args),
    /// Validate files without loading them; print every problem. Exits 1 if any is
    /// invalid.
    #[command(after_help = "Examples:\n  \
        sensor-ingest check data/*.csv\n  \
        sensor-ingest check --profile pond-logger --show 5 TOA5_pond.dat")]
    Check(check::Args),
    /// What the agent has been doing: files waiting, loaded, quarantined, duplicates in
    /// the last hour and day, last file loaded, throughput, and the database.
    #[command(after_help = "Examples:\n  \
        sensor-ingest status\n  \
        sensor-ingest status --json")]
    Status(status::Args),
    /// Write realistic sensor CSV files into DATA_FOLDER (atomically), the same for a
    /// given seed: a round of --files files every --interval until Ctrl-C, or one
    /// round with --once.
    #[command(after_help = "Examples:\n  \
        sensor-ingest simulate --once --sensors 5 --files 3 --rows 100\n  \
        sensor-ingest simulate --bad-rate 0.05 --interval 10s   # until Ctrl-C")]
    Simulate(simulate::Args),
    /// List a sensor's readings that carry quality flags (spike, step, flat line,
    /// outlier), with the values before and after each.
    #[command(after_help = "Examples:\n  \
        sensor-ingest qc s-1\n  \
        sensor-ingest qc s-1 --since 7d --json")]
    Qc(qc::Args),
    /// Review the quarantine folder: list, show, retry, purge.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  \
        sensor-ingest quarantine list\n  \
        sensor-ingest quarantine retry --all")]
    Quarantine(quarantine::Command),
    /// Work with source profiles: `suggest` infers one from a sample of an export.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  \
        sensor-ingest profile suggest data/export.csv --write")]
    Profile(profile::Command),
    /// PostgreSQL: move the readings of a database from before monthly partitions into
    /// the partitioned table, in batches (resumable after a stop), then swap the tables
    /// in one short transaction. Agents may keep running.
    #[command(after_help = "Examples:\n  \
        sensor-ingest migrate\n  \
        sensor-ingest migrate --batches 20   # copy 20 batches now, the rest later")]
    Migrate(migrate::Args),
    /// The documentation made from the code: `reference` writes docs/reference/*.md.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  \
        sensor-ingest docs reference --check")]
    Docs(docs::Command),
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// already contains (most of ours and the driver's include their cause).
pub fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// Logging for the operator commands: warnings and errors on the console only, so
/// their output stays readable.
fn quiet_logs(settings: &Settings) -> anyhow::Result<telemetry::TelemetryGuard> {
    Ok(telemetry::init(
        &LogSettings {
            dir: None,
            level: "warn".to_owned(),
            ..settings.log.clone()
        },
        progress::console_writer,
    )?)
}

/// Runs `f` to completion on a runtime of its own, for the short operator commands.
fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// The ledger, schema applied, for the operator commands: two connections, no
/// retries, and no folders created (that is the agent's job).
async fn open_ledger(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = sink::open_as(&settings.database, 2, &settings.agent_id);
    store
        .prepare()
        .await
        .with_context(|| format!("opening the database {}", store.describe()))?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// Every command (and the program itself) ends its `--help` with examples, and each
    /// example parses as a command line of this program.
    #[test]
    fn every_help_ends_with_examples_that_parse() {
        fn visit(cmd: &mut clap::Command, path: &str, seen: &mut usize) {
            let help = cmd.render_long_help().to_string();
            let examples = help
                .split_once("Examples:\n")
                .unwrap_or_else(|| panic!("`{path} --help` has no examples:\n{help}"))
                .1;
            let lines: Vec<&str> = examples
                .lines()
                .take_while(|l| l.starts_with("  "))
                .collect();
            assert!(!lines.is_empty(), "`{path} --help`: no example lines");
            for line in lines {
                let code = line.split(" #").next().unwrap_or("");
                let words: Vec<&str> = code
                    .split_whitespace()
                    .skip_while(|w| w.contains('='))
                    .collect();
                assert_eq!(words.first(), Some(&"sensor-ingest"), "{path}: {line}");
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("`{path} --help`: the example `{line}` does not parse: {e}");
                }
            }
            *seen += 1;
            // clap's own `help` subcommand is not one of ours.
            for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
                let name = format!("{path} {}", sub.get_name());
                visit(sub, &name, seen);
            }
        }
        let mut seen = 0;
        visit(&mut Cli::command(), "sensor-ingest", &mut seen);
        assert!(seen >= 16, "only {seen} commands visited");
    }
}
