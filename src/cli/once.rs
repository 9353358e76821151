//! `sensor-ingest once`: process every file present in the data folder, then exit.

use std::process::ExitCode;

use crate::cli::progress::Progress;
use crate::config::Settings;

/// Flags of `once`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Retries per file while the database is unreachable, before giving up on it.
    #[arg(long, default_value_t = 5)]
    pub retries: usize,
}

/// Processes the backlog with a progress bar (or progress lines); exits 1 if any file
/// was quarantined or could not be loaded.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    super::run::serve(settings, async |agent, shutdown| {
        let progress = Progress::auto();
        let summary = agent.once(args.retries, shutdown, &progress).await?;
        Ok(if summary.all_loaded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
