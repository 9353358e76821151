//! `sensor-ingest docs reference [--check]`: writes the reference pages of
//! `docs/reference/` from the code's own lists, or checks that they are current.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::ops::reference;

/// The `docs` commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the settings, rules, units, profile keys and metrics reference pages from
    /// the lists the code uses; with --check, write nothing and exit 1 if a page
    /// differs.
    #[command(after_help = "Examples:\n  \
        sensor-ingest docs reference            # rewrite docs/reference/*.md\n  \
        sensor-ingest docs reference --check    # exit 1 if a page is out of date")]
    Reference(ReferenceArgs),
}

/// Flags of `docs reference`.
#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    /// The folder of the pages.
    #[arg(long, default_value = "docs/reference")]
    pub dir: PathBuf,
    /// Compare instead of writing: exit 1 and name the pages that differ.
    #[arg(long)]
    pub check: bool,
}

/// Writes or checks the pages; needs no settings.
pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Reference(args) = cmd;
    if args.check {
        let stale = reference::stale(&args.dir);
        if stale.is_empty() {
            println!("{}: up to date", args.dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        for name in stale {
            println!(
                "{}: differs from the code; run `sensor-ingest docs reference`",
                args.dir.join(name).display()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    let written = reference::write(&args.dir)
        .map_err(|e| anyhow::anyhow!("writing the reference into {}: {e}", args.dir.display()))?;
    for name in written {
        println!("wrote {}", args.dir.join(name).display());
    }
    Ok(ExitCode::SUCCESS)
}
