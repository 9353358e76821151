//! `sensor-ingest check`: validate files without loading them and print every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::config::Settings;
use crate::pipeline::{ReadContext, ReadReport, check_file};
use crate::profile::Selection;

/// Flags of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read the files with this profile (a file stem in PROFILES_DIR, or `default`)
    /// instead of the one their names match.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// Checks each file in turn; exits 1 if any is invalid or cannot be read.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let json = args.json;
    let forced = match &args.profile {
        Some(name) => match settings.profiles.by_name(name) {
            Some(profile) => Some(Selection {
                profile,
                glob: None,
                forced: true,
            }),
            None => bail!(
                "no profile {name:?} in {} (profiles: {})",
                settings.profiles_dir.display(),
                profile_names(settings)
            ),
        },
        None => None,
    };
    let mut all_valid = true;
    let mut results = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let name = crate::intake::display_name(path);
        let selection = forced
            .clone()
            .unwrap_or_else(|| settings.profiles.select(&name));
        let cx = ReadContext {
            profile: selection.profile.clone(),
            file_name: name,
            ranges: settings.ranges,
            tz: settings.source_timezone,
            order: None,
        };
        match check_file(path, &cx) {
            Ok(report) => {
                all_valid &= report.is_valid();
                if json {
                    results.push(as_json(&shown, &selection, &report));
                } else {
                    print_text(&shown, &selection, &report);
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

/// The loaded profiles' names, for a message.
fn profile_names(settings: &Settings) -> String {
    let mut names: Vec<&str> = settings
        .profiles
        .profiles()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    names.push(crate::profile::DEFAULT_NAME);
    names.join(", ")
}

/// One element of `check --json`'s array.
fn as_json(shown: &str, selection: &Selection, report: &ReadReport) -> serde_json::Value {
    let (reason, rule) = report.reason().unzip();
    serde_json::json!({
        "file": shown,
        "profile": selection.profile.name,
        "profile_reason": selection.to_string(),
        "valid": report.is_valid(),
        "partial": report.is_valid() && !report.skipped_lines.is_empty(),
        "rows_read": report.rows_read,
        "invalid_rows": report.invalid_rows,
        "readings": report.readings,
        "unmapped_rows": report.unmapped_rows,
        "missing_values": report.missing_values,
        "errors_total": report.problems_total(),
        "reason": reason,
        "rule": rule,
        "errors": report.reported_errors(),
    })
}

/// `ok` with the row count, or `INVALID` with the reason and every listed problem.
fn print_text(shown: &str, selection: &Selection, report: &ReadReport) {
    let profile = format!("read with {selection}");
    if report.is_valid() && report.skipped_lines.is_empty() {
        let long = if selection.profile.is_long() {
            format!(
                " → {} readings ({} rows of unmapped metrics or entities skipped, {} without a value)",
                report.readings, report.unmapped_rows, report.missing_values
            )
        } else {
            String::new()
        };
        println!(
            "ok       {shown}: {} rows{long}; {profile}",
            report.rows_read
        );
        return;
    }
    if report.is_valid() {
        println!(
            "PARTIAL  {shown}: {} of {} rows load, {} bad rows would go to the rejects file; {profile}",
            report.rows_read - report.invalid_rows - report.blank_rows,
            report.rows_read,
            report.skipped_lines.len()
        );
    } else {
        let (reason, _) = report.reason().unzip();
        println!(
            "INVALID  {shown}: {}; {profile}",
            reason.unwrap_or_default()
        );
    }
    for e in report
        .file_errors
        .iter()
        .skip(usize::from(!report.is_valid()))
    {
        let line = e.line().map_or_else(|| "-".to_owned(), |l| l.to_string());
        println!(
            "  line {line:>6}  {:<12} {:<24} {}: {e}",
            "-",
            "",
            e.rule().name()
        );
    }
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
