//! `sensor-ingest quarantine list|show|retry|purge`: review the quarantine (the
//! folder, or with `SOURCE=s3://…` the bucket's quarantine prefix).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use super::{open_ledger, quiet_logs, report};
use crate::config::Settings;
use crate::ops::quarantine as q;
use crate::source::{FolderQuarantine, QuarantineArea};

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

/// Runs one verb on the quarantine of the source `settings` name.
pub fn run(settings: &Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    let _guard = quiet_logs(settings)?;
    // Several threads: a bucket's requests are driven from this thread while the
    // runtime's own threads run the I/O.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let area = area(settings, &runtime)?;
    let area = area.as_ref();
    match cmd {
        Command::List { json } => list(settings, &runtime, area, json),
        Command::Show { file, json } => show(settings, &runtime, area, &file, json),
        Command::Retry { files, all } => retry(area, &files, all),
        Command::Purge { older_than, yes } => purge(area, older_than, yes),
    }
}

/// The quarantine of the source: the bucket's with `SOURCE=s3://…`, else the folder.
fn area(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<dyn QuarantineArea>> {
    Ok(match &settings.s3 {
        Some(cfg) => {
            let _inside = runtime.enter();
            Arc::new(crate::source::s3::Bucket::connect(cfg)?)
        }
        None => Arc::new(FolderQuarantine::new(
            &settings.quarantine_folder,
            &settings.data_folder,
        )),
    })
}

/// The table (or JSON); attempts are left unknown, with a warning, when the ledger
/// cannot be read.
fn list(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    area: &dyn QuarantineArea,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let entries = q::entries(area)?;
    let (rows, ledger_error, store_error) = runtime.block_on(async {
        let store = open_ledger(settings).await;
        let (rows, ledger_error) = match &store {
            Ok(store) => q::list(entries, Some(store.as_ref())).await?,
            Err(_) => q::list(entries, None).await?,
        };
        anyhow::Ok((rows, ledger_error, store.err()))
    })?;
    if let Some(e) = &store_error {
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
fn show(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    area: &dyn QuarantineArea,
    file: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let entry = q::find(area, file)?;
    let mut details = q::details(area, entry)?;
    if let Some(r) = &details.entry.report {
        details.history = runtime.block_on(async {
            match open_ledger(settings).await {
                Ok(store) => Ok(store.history(&r.content_hash, &r.file).await?),
                Err(e) => {
                    eprintln!("warning: no ledger history: {}", report(&e));
                    anyhow::Ok(Vec::new())
                }
            }
        })?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&details)?);
    } else {
        print!("{}", q::format_details(&details));
    }
    Ok(ExitCode::SUCCESS)
}

/// Puts the named items (or all) back into the source; exits 1 if any could not be
/// put back, after trying the others.
fn retry(area: &dyn QuarantineArea, files: &[String], all: bool) -> anyhow::Result<ExitCode> {
    let entries = if all {
        q::entries(area)?
            .into_iter()
            .filter(|e| e.has_file)
            .collect()
    } else {
        files
            .iter()
            .map(|f| q::find(area, f))
            .collect::<Result<Vec<_>, _>>()?
    };
    if entries.is_empty() {
        println!("Nothing to retry: the quarantine holds no files.");
    }
    let quarantine = area.describe();
    let mut failed = false;
    for entry in &entries {
        match q::retry(area, entry) {
            Ok(done) => {
                let kept = done
                    .report_kept_as
                    .map(|r| format!("; report kept as {}/{r}", quarantine.trim_end_matches('/')))
                    .unwrap_or_default();
                println!("retrying {} as {}{kept}", done.name, done.moved_to);
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
fn purge(area: &dyn QuarantineArea, older_than: Duration, yes: bool) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, IsTerminal, Write};
    let age = chrono::Duration::from_std(older_than).context("age out of range")?;
    let plan = q::purge_plan(area, chrono::Utc::now() - age)?;
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
    let removed = q::purge(area, &plan)?;
    println!("Deleted {removed} files. The ledger keeps their history.");
    Ok(ExitCode::SUCCESS)
}
