//! `sensor-ingest qc SENSOR`: a sensor's readings that carry quality flags.

use std::process::ExitCode;

use crate::config::Settings;
use crate::ops::qc;

/// Flags of `qc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sensor id.
    pub sensor: String,
    /// From how long ago (24h, 90m, 7d) or from a time (RFC 3339).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// At most this many readings.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the flagged readings; fails (exit 1) on a bad --since or an unreadable ledger.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let since = qc::parse_since(&args.since, chrono::Utc::now()).ok_or_else(|| {
        anyhow::anyhow!(
            "--since {:?}: expected a duration such as 24h, 90m or 7d, or an RFC 3339 time",
            args.since
        )
    })?;
    super::block_on(async {
        let store = super::open_ledger(settings).await?;
        let report = qc::collect(store.as_ref(), &args.sensor, since, args.limit).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", qc::format(&report));
        }
        Ok(ExitCode::SUCCESS)
    })
}
