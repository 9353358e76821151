//! `sensor-ingest quarantine list|show|retry|purge`: review the quarantine folder.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use super::{block_on, open_ledger, quiet_logs, report};
use crate::config::Settings;
use crate::ops::quarantine as q;

/// The verbs of `quarantine`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quarantined files, newest first: when, why, bad rows, attempts so far.
    #[command(after_help = "Examples:\n  \
        sensor-ingest quarantine list\n  \
        sensor-ingest quarantine list --json")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A file's full report, the offending lines quoted from it, and what to do.
    #[command(after_help = "Examples:\n  \
        sensor-ingest quarantine show bad.csv")]
    Show {
        /// Its name in the quarantine folder (or a path to it, or its report).
        file: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move files back into DATA_FOLDER under the name they were dropped with; each
    /// report is kept in QUARANTINE_FOLDER/.attempts/.
    #[command(after_help = "Examples:\n  \
        sensor-ingest quarantine retry bad.csv\n  \
        sensor-ingest quarantine retry --all")]
    Retry {
        /// Names in the quarantine folder.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        files: Vec<String>,
        /// Every quarantined file.
        #[arg(long)]
        all: bool,
    },
    /// Delete files quarantined longer ago than --older-than, with their reports and
    /// earlier reports. Asks first on a terminal; otherwise needs --yes.
    #[command(after_help = "Examples:\n  \
        sensor-ingest quarantine purge --older-than 30d\n  \
        sensor-ingest quarantine purge --older-than 2w --yes   # from cron")]
    Purge {
        /// An age: 30d, 2w, 12h (a bare number is days).
        #[arg(long, value_parser = parse_age)]
        older_than: Duration,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_age(v: &str) -> Result<Duration, String> {
    q::parse_age(v).ok_or_else(|| format!("{v:?} is not an age such as 30d, 2w or 12h"))
}

/// Runs one verb on `QUARANTINE_FOLDER`.
pub fn run(settings: &Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    let _guard = quiet_logs(settings)?;
    let dir = &settings.quarantine_folder;
    match cmd {
        Command::List { json } => block_on(list(settings, json)),
        Command::Show { file, json } => block_on(show(settings, &file, json)),
        Command::Retry { files, all } => retry(dir, &settings.data_folder, &files, all),
        Command::Purge { older_than, yes } => purge(dir, older_than, yes),
    }
}

/// The table (or JSON); attempts are left unknown, with a warning, when the ledger
/// cannot be read.
async fn list(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let dir = &settings.quarantine_folder;
    let store = open_ledger(settings).await;
    let (rows, ledger_error) = match &store {
        Ok(store) => q::list(dir, Some(store.as_ref())).await?,
        Err(_) => q::list(dir, None).await?,
    };
    if let Err(e) = &store {
        eprintln!("warning: attempts unknown: {}", report(e));
    } else if let Some(e) = ledger_error {
        eprintln!("warning: attempts unknown: {e}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", q::format_list(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry in full, with its ledger history when the ledger can be read.
async fn show(settings: &Settings, file: &str, json: bool) -> anyhow::Result<ExitCode> {
    let dir = &settings.quarantine_folder;
    let entry = q::find(dir, file)?;
    let mut details = q::details(dir, entry)?;
    if let Some(r) = &details.entry.report {
        match open_ledger(settings).await {
            Ok(store) => details.history = store.history(&r.content_hash, &r.file).await?,
            Err(e) => eprintln!("warning: no ledger history: {}", report(&e)),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&details)?);
    } else {
        print!("{}", q::format_details(&details));
    }
    Ok(ExitCode::SUCCESS)
}

/// Moves the named files (or all) back into the data folder; exits 1 if any could not
/// be moved, after trying the others.
fn retry(dir: &Path, data_dir: &Path, files: &[String], all: bool) -> anyhow::Result<ExitCode> {
    let entries = if all {
        q::entries(dir)?
            .into_iter()
            .filter(|e| e.has_file)
            .collect()
    } else {
        files
            .iter()
            .map(|f| q::find(dir, f))
            .collect::<Result<Vec<_>, _>>()?
    };
    if entries.is_empty() {
        println!("Nothing to retry: the quarantine folder has no files.");
    }
    let mut failed = false;
    for entry in &entries {
        match q::retry(dir, data_dir, entry) {
            Ok(done) => {
                let kept = done
                    .report_kept_as
                    .map(|r| format!("; report kept as {}", dir.join(r).display()))
                    .unwrap_or_default();
                println!(
                    "retrying {} as {}{kept}",
                    done.name,
                    done.moved_to.display()
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", entry.name);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Lists what is older than `older_than`, asks (or needs `--yes`), then deletes it.
/// Exits 2 when it cannot ask, 1 when the answer is no.
fn purge(dir: &Path, older_than: Duration, yes: bool) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, IsTerminal, Write};
    let age = chrono::Duration::from_std(older_than).context("age out of range")?;
    let plan = q::purge_plan(dir, chrono::Utc::now() - age)?;
    if plan.is_empty() {
        println!("Nothing quarantined before that; nothing to purge.");
        return Ok(ExitCode::SUCCESS);
    }
    for e in &plan.entries {
        println!(
            "  {}  {}",
            e.quarantined_at.format("%Y-%m-%d %H:%M"),
            e.name
        );
    }
    if !plan.earlier_reports.is_empty() {
        println!("  and {} earlier reports", plan.earlier_reports.len());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: refusing to purge without confirmation: stdin is not a \
                 terminal; add --yes"
            );
            return Ok(ExitCode::from(2));
        }
        print!(
            "Delete these {} quarantined files and their reports? [y/N] ",
            plan.entries.len()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("Nothing deleted.");
            return Ok(ExitCode::FAILURE);
        }
    }
    let removed = q::purge(dir, &plan)?;
    println!("Deleted {removed} files. The ledger keeps their history.");
    Ok(ExitCode::SUCCESS)
}
