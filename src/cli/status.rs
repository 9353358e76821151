//! `sensor-ingest status`: what the agent has been doing, from the ledger and the
//! folders.

use std::process::ExitCode;

use crate::config::Settings;
use crate::ops::status;

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the status; fails (exit 1) when the ledger cannot be opened.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    super::block_on(async {
        let store = super::open_ledger(settings).await?;
        let s = status::collect(settings, store.as_ref(), chrono::Utc::now()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            print!("{}", status::format(&s));
        }
        Ok(ExitCode::SUCCESS)
    })
}
