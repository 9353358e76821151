//! The `sensor-ingest` command: parses the command line, loads settings, sets up
//! logging and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use sensor_ingest::config::{LogSettings, Settings};
use sensor_ingest::pipeline::check_file;
use sensor_ingest::report::ReportedError;
use sensor_ingest::sink;
use sensor_ingest::{agent, telemetry};

/// Watches a folder for sensor CSV exports, validates and enriches every row, and
/// loads each file into PostgreSQL exactly once.
///
/// Settings come from the environment and from a `.env` file in the working
/// directory (see .env.example); the environment wins.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch DATA_FOLDER until SIGINT/SIGTERM (the default).
    Run,
    /// Process every file present in DATA_FOLDER, then exit. Exits 1 if any file was
    /// quarantined or could not be loaded.
    Once {
        /// Retries per file while the database is unreachable, before giving up on it.
        #[arg(long, default_value_t = 5)]
        retries: usize,
    },
    /// Validate files without loading them; print every problem. Exits 1 if any is
    /// invalid.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("error: cannot read .env: {e}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Check { files, json } => check(&settings, &files, json),
        Command::Run => serve(settings, Mode::Run),
        Command::Once { retries } => serve(settings, Mode::Once { retries }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// already contains (most of ours and the driver's include their cause).
fn report(e: &anyhow::Error) -> String {
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

enum Mode {
    Run,
    Once { retries: usize },
}

fn serve(settings: Settings, mode: Mode) -> anyhow::Result<ExitCode> {
    let _guard = telemetry::init(&settings.log)?;
    // From here on, failures go through the log (console and file), once.
    serve_logged(settings, mode).or_else(|e| {
        error!("{}", report(&e));
        Ok(ExitCode::FAILURE)
    })
}

fn serve_logged(settings: Settings, mode: Mode) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        let store = sink::open(&settings.database, settings.workers as u32 + 2);
        if settings.database.is_default() {
            info!(
                version = env!("CARGO_PKG_VERSION"),
                database = %store.describe(),
                "sensor-ingest starting on the embedded SQLite store (no DATABASE_URL or DB_* \
                 set; DATABASE_URL=postgres://… selects PostgreSQL)"
            );
        } else {
            info!(version = env!("CARGO_PKG_VERSION"), database = %store.describe(), "sensor-ingest starting");
        }
        match mode {
            Mode::Run => {
                agent::run(&settings, store, shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            Mode::Once { retries } => {
                let summary = agent::once(&settings, store, retries, shutdown).await?;
                Ok(if summary.all_loaded() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        }
    })
}

/// First SIGINT/SIGTERM: stop taking files and let those in progress finish. Second:
/// exit at once (open transactions roll back on the server).
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot listen for signals; stop the agent with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    info!("shutdown requested; finishing files in progress (signal again to stop at once)");
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal; exiting now, transactions in progress roll back");
    std::process::exit(130);
}

fn check(settings: &Settings, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let _guard = telemetry::init(&LogSettings {
        dir: None,
        level: "warn".to_owned(),
        ..settings.log.clone()
    })?;
    let mut all_valid = true;
    let mut results = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        match check_file(path, settings.ranges, settings.source_timezone) {
            Ok(report) => {
                all_valid &= report.is_valid();
                let (reason, rule) = report.reason();
                if json {
                    let mut errors: Vec<ReportedError> = Vec::new();
                    if let Some(e) = &report.file_error {
                        errors.push(ReportedError {
                            line: e.line(),
                            column: String::new(),
                            value: String::new(),
                            rule: e.rule().to_owned(),
                            message: e.to_string(),
                        });
                    }
                    errors.extend(report.errors.iter().map(ReportedError::from));
                    results.push(serde_json::json!({
                        "file": shown,
                        "valid": report.is_valid(),
                        "rows_read": report.rows_read,
                        "invalid_rows": report.invalid_rows,
                        "errors_total": report.errors_total + u64::from(report.file_error.is_some()),
                        "reason": if report.is_valid() { None } else { Some(reason) },
                        "rule": if report.is_valid() { None } else { Some(rule) },
                        "errors": errors,
                    }));
                } else if report.is_valid() {
                    println!("ok       {shown}: {} rows", report.rows_read);
                } else {
                    println!("INVALID  {shown}: {reason}");
                    for e in &report.errors {
                        let column = if e.column.is_empty() { "-" } else { &e.column };
                        println!(
                            "  line {:>6}  {column:<12} {:<24} {}: {}",
                            e.line,
                            format!("{:?}", e.value),
                            e.rule.as_str(),
                            e.message
                        );
                    }
                    if report.errors_total > report.errors.len() as u64 {
                        println!(
                            "  … {} more problems not listed",
                            report.errors_total - report.errors.len() as u64
                        );
                    }
                }
            }
            Err(e) => {
                all_valid = false;
                if json {
                    results.push(serde_json::json!({ "file": shown, "valid": false, "error": e.to_string() }));
                } else {
                    println!("ERROR    {shown}: cannot read: {e}");
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
