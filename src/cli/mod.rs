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
#[command(version, about)]
pub struct Cli {
    // `run` when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands, one file each in this folder.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch DATA_FOLDER until SIGINT/SIGTERM (the default).
    Run,
    /// Process every file present in DATA_FOLDER, then exit. Exits 1 if any file was
    /// quarantined or could not be loaded.
    Once(once::Args),
    /// Validate files without loading them; print every problem. Exits 1 if any is
    /// invalid.
    Check(check::Args),
    /// What the agent has been doing: files waiting, loaded, quarantined, duplicates in
    /// the last hour and day, last file loaded, throughput, and the database.
    Status(status::Args),
    /// Write realistic sensor CSV files into DATA_FOLDER (atomically), the same for a
    /// given seed: a round of --files files every --interval until Ctrl-C, or one
    /// round with --once.
    Simulate(simulate::Args),
    /// List a sensor's readings that carry quality flags (spike, step, flat line,
    /// outlier), with the values before and after each.
    Qc(qc::Args),
    /// Review the quarantine folder: list, show, retry, purge.
    #[command(subcommand)]
    Quarantine(quarantine::Command),
    /// Work with source profiles: `suggest` infers one from a sample of an export.
    #[command(subcommand)]
    Profile(profile::Command),
    /// PostgreSQL: move the readings of a database from before monthly partitions into
    /// the partitioned table, in batches (resumable after a stop), then swap the tables
    /// in one short transaction. Agents may keep running.
    Migrate(migrate::Args),
    /// The documentation made from the code: `reference` writes docs/reference/*.md.
    #[command(subcommand)]
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
