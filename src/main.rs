//! The `sensor-ingest` command: parses the command line, loads settings, sets up
//! logging and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use sensor_ingest::config::{LogSettings, Settings};
use sensor_ingest::metrics::Metrics;
use sensor_ingest::pipeline::check_file;
use sensor_ingest::sink;
use sensor_ingest::{agent, telemetry};

/// Watches a folder for sensor CSV exports, validates and enriches every row, and
/// loads each file exactly once into a database: an embedded SQLite file by default,
/// or PostgreSQL.
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
    /// What the agent has been doing: files waiting, loaded, quarantined, duplicates in
    /// the last hour and day, last file loaded, throughput, and the database.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write realistic sensor CSV files into DATA_FOLDER (atomically), the same for a
    /// given seed: a round of --files files every --interval until Ctrl-C, or one
    /// round with --once.
    Simulate {
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        sensors: u32,
        /// Files per round.
        #[arg(long, default_value_t = 10)]
        files: u32,
        /// Data rows per file.
        #[arg(long, default_value_t = 1000)]
        rows: u32,
        /// Time between rounds: 5s, 500ms, 1m.
        #[arg(long, default_value = "5s", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Share of rows replaced by rows the validator rejects, 0 to 1.
        #[arg(long, default_value_t = 0.01, value_parser = parse_rate)]
        bad_rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Time between two readings of one sensor.
        #[arg(long, default_value = "1m", value_parser = parse_interval)]
        sample_every: std::time::Duration,
        /// Time of the first reading (RFC 3339); fixed by default so a seed always
        /// gives the same files.
        #[arg(long)]
        start: Option<chrono::DateTime<chrono::Utc>>,
        /// Write one round and exit.
        #[arg(long)]
        once: bool,
    },
    /// Review the quarantine folder: list, show, retry, purge.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// Quarantined files, newest first: when, why, bad rows, attempts so far.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A file's full report, the offending lines quoted from it, and what to do.
    Show {
        /// Its name in the quarantine folder (or a path to it, or its report).
        file: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move files back into DATA_FOLDER under the name they were dropped with; each
    /// report is kept in QUARANTINE_FOLDER/.attempts/.
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
    Purge {
        /// An age: 30d, 2w, 12h (a bare number is days).
        #[arg(long, value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_interval(v: &str) -> Result<std::time::Duration, String> {
    sensor_ingest::config::parse_duration(v, 1000)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{v:?} is not a duration such as 5s, 500ms or 1m"))
}

fn parse_rate(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{v:?} is not a share from 0 to 1 such as 0.01"))
}

fn parse_age(v: &str) -> Result<std::time::Duration, String> {
    sensor_ingest::ops::quarantine::parse_age(v)
        .ok_or_else(|| format!("{v:?} is not an age such as 30d, 2w or 12h"))
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
        Command::Quarantine(cmd) => quarantine(&settings, cmd),
        Command::Status { json } => status(&settings, json),
        Command::Simulate {
            sensors,
            files,
            rows,
            interval,
            bad_rate,
            seed,
            sample_every,
            start,
            once,
        } => simulate(
            &settings,
            sensor_ingest::ops::simulate::SimOptions {
                sensors,
                files,
                rows,
                bad_rate,
                seed,
                start: start.unwrap_or_else(sensor_ingest::ops::simulate::default_start),
                sample_every,
                ranges: settings.ranges,
            },
            interval,
            once,
        ),
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
                let metrics = match settings.metrics_addr {
                    Some(addr) => {
                        let metrics = Arc::new(Metrics::new());
                        let server = sensor_ingest::metrics::serve(
                            addr,
                            &settings,
                            store.clone(),
                            metrics.clone(),
                            shutdown.clone(),
                        )
                        .await?;
                        tokio::spawn(async move {
                            if let Ok(Err(e)) = server.await {
                                error!("{e}");
                            }
                        });
                        Some(metrics)
                    }
                    None => None,
                };
                agent::run_with_metrics(&settings, store, shutdown, metrics).await?;
                Ok(ExitCode::SUCCESS)
            }
            Mode::Once { retries } => {
                let progress = sensor_ingest::ops::progress::Progress::auto();
                let summary =
                    agent::once_with_progress(&settings, store, retries, shutdown, &progress)
                        .await?;
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
                let (reason, rule) = report.reason().unzip();
                if json {
                    results.push(serde_json::json!({
                        "file": shown,
                        "valid": report.is_valid(),
                        "rows_read": report.rows_read,
                        "invalid_rows": report.invalid_rows,
                        "errors_total": report.problems_total(),
                        "reason": reason,
                        "rule": rule,
                        "errors": report.reported_errors(),
                    }));
                } else if report.is_valid() {
                    println!("ok       {shown}: {} rows", report.rows_read);
                } else {
                    println!("INVALID  {shown}: {}", reason.unwrap_or_default());
                    for e in &report.errors {
                        let column = if e.column.is_empty() { "-" } else { &e.column };
                        println!(
                            "  line {:>6}  {column:<12} {:<24} {}: {}",
                            e.line,
                            format!("{:?}", e.value),
                            e.rule.name(),
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

/// Logging for the operator commands: warnings and errors on the console only, so
/// their output stays readable.
fn quiet_logs(settings: &Settings) -> anyhow::Result<telemetry::TelemetryGuard> {
    Ok(telemetry::init(&LogSettings {
        dir: None,
        level: "warn".to_owned(),
        ..settings.log.clone()
    })?)
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// The ledger, schema applied, for the operator commands.
async fn open_store(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn sink::Store>> {
    let store = sink::open(&settings.database, 2);
    store
        .prepare()
        .await
        .with_context(|| format!("opening the database {}", store.describe()))?;
    Ok(store)
}

fn quarantine(settings: &Settings, cmd: QuarantineCommand) -> anyhow::Result<ExitCode> {
    use sensor_ingest::ops::quarantine as q;
    let _guard = quiet_logs(settings)?;
    let dir = &settings.quarantine_folder;
    match cmd {
        QuarantineCommand::List { json } => block_on(async {
            let store = open_store(settings).await;
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
        }),
        QuarantineCommand::Show { file, json } => block_on(async {
            let entry = q::find(dir, &file)?;
            let mut details = q::details(dir, entry)?;
            if let Some(r) = &details.entry.report {
                match open_store(settings).await {
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
        }),
        QuarantineCommand::Retry { files, all } => {
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
                match q::retry(dir, &settings.data_folder, entry) {
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
        QuarantineCommand::Purge { older_than, yes } => {
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
    }
}

fn status(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    use sensor_ingest::ops::status;
    let _guard = quiet_logs(settings)?;
    block_on(async {
        let store = open_store(settings).await?;
        let s = status::collect(settings, store.as_ref(), chrono::Utc::now()).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            print!("{}", status::format(&s));
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn simulate(
    settings: &Settings,
    options: sensor_ingest::ops::simulate::SimOptions,
    interval: std::time::Duration,
    once: bool,
) -> anyhow::Result<ExitCode> {
    use sensor_ingest::ops::simulate::{self, Simulator, Written};
    let _guard = quiet_logs(settings)?;
    let dir = settings.data_folder.clone();
    let report = |written: &[Written]| {
        for w in written {
            if w.created {
                println!(
                    "wrote {} ({} rows, {} invalid)",
                    w.path.display(),
                    w.rows,
                    w.bad_lines.len()
                );
            } else {
                println!("kept {} (already there)", w.path.display());
            }
        }
    };
    let mut sim = Simulator::new(options);
    if once {
        report(&simulate::write_round(&mut sim, &dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    block_on(async {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        });
        simulate::run(sim, &dir, interval, shutdown, report).await?;
        Ok(ExitCode::SUCCESS)
    })
}
