//! `sensor-ingest profile`: work with source profiles. `suggest` infers one from a
//! sample of an export and prints it, or saves it into `PROFILES_DIR` with `--write`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Settings;
use crate::ops::suggest::{Sample, suggest};

/// The `profile` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Infer a profile from the first 64 KiB (at most 2,000 lines) of FILE and print it
    /// as commented TOML; lines marked FILL IN or ASSUMED need a person's check. Exits 1
    /// when nothing usable can be inferred.
    #[command(after_help = "Examples:\n  \
        sensor-ingest profile suggest data/TOA5_pond.dat\n  \
        sensor-ingest profile suggest data/TOA5_pond.dat --name pond-logger --write")]
    Suggest(SuggestArgs),
}

/// Flags of `profile suggest`.
#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    pub file: PathBuf,
    /// The profile name (the file stem in PROFILES_DIR); default: from the file name.
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,
    /// Save the profile as PROFILES_DIR/NAME.toml (never overwriting) instead of
    /// printing it.
    #[arg(long)]
    pub write: bool,
}

fn parse_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 100
        && s != "default"
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(s.to_owned())
    } else {
        Err("letters, digits, `_` and `-` only (and not `default`)".to_owned())
    }
}

/// Runs a `profile` subcommand.
pub fn run(settings: &Settings, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Suggest(args) => run_suggest(settings, args),
    }
}

fn run_suggest(settings: &Settings, args: SuggestArgs) -> anyhow::Result<ExitCode> {
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("{} is a folder, not a file", args.file.display());
    }
    let file_name = crate::intake::display_name(&args.file);
    let suggestion =
        Sample::read_file(file).and_then(|s| suggest(&s, &file_name, args.name.as_deref()));
    let suggestion = match suggestion {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    // What the profile would store from the sample, as TOML comments.
    let summary: String =
        super::summary::of_suggestion(settings, &args.file, &suggestion.name, &suggestion.text)
            .iter()
            .map(|line| format!("#   {line}\n"))
            .collect();
    if !args.write {
        print!("{}\n{summary}", suggestion.text);
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&settings.profiles_dir)
        .with_context(|| format!("creating {}", settings.profiles_dir.display()))?;
    let path = settings
        .profiles_dir
        .join(format!("{}.toml", suggestion.name));
    let mut out = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} exists: not overwritten (choose another --name, or edit it)",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    out.write_all(suggestion.text.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}
