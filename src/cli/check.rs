//! `sensor-ingest check`: validate files without loading them and print every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;
use crate::pipeline::{ReadReport, check_file};

/// Flags of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Checks each file in turn; exits 1 if any is invalid or cannot be read.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let json = args.json;
    let mut all_valid = true;
    let mut results = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        match check_file(path, settings.ranges, settings.source_timezone) {
            Ok(report) => {
                all_valid &= report.is_valid();
                if json {
                    results.push(as_json(&shown, &report));
                } else {
                    print_text(&shown, &report);
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

/// One element of `check --json`'s array.
fn as_json(shown: &str, report: &ReadReport) -> serde_json::Value {
    let (reason, rule) = report.reason().unzip();
    serde_json::json!({
        "file": shown,
        "valid": report.is_valid(),
        "rows_read": report.rows_read,
        "invalid_rows": report.invalid_rows,
        "errors_total": report.problems_total(),
        "reason": reason,
        "rule": rule,
        "errors": report.reported_errors(),
    })
}

/// `ok` with the row count, or `INVALID` with the reason and every listed problem.
fn print_text(shown: &str, report: &ReadReport) {
    if report.is_valid() {
        println!("ok       {shown}: {} rows", report.rows_read);
        return;
    }
    let (reason, _) = report.reason().unzip();
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
