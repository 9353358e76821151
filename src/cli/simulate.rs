//! `sensor-ingest simulate`: write realistic sensor CSV files into the data folder.

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ops::simulate::{self, SimOptions, Simulator, Written};

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub sensors: u32,
    /// Files per round.
    #[arg(long, default_value_t = 10)]
    pub files: u32,
    /// Data rows per file.
    #[arg(long, default_value_t = 1000)]
    pub rows: u32,
    /// Time between rounds: 5s, 500ms, 1m.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Share of rows replaced by rows the validator rejects, 0 to 1.
    #[arg(long, default_value_t = 0.01, value_parser = parse_rate)]
    pub bad_rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time between two readings of one sensor.
    #[arg(long, default_value = "1m", value_parser = parse_interval)]
    pub sample_every: Duration,
    /// Time of the first reading (RFC 3339); fixed by default so a seed always
    /// gives the same files.
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// Share of readings that start an injected anomaly (a spike, a step or a flat
    /// line on one measure), 0 to 1; each is labelled in a file of the same name in
    /// the --labels folder.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub anomalies: f64,
    /// Where the anomaly labels go (one CSV per data file: line, timestamp, sensor,
    /// measure, kind).
    #[arg(long, default_value = "anomalies")]
    pub labels: std::path::PathBuf,
    /// Write one round and exit.
    #[arg(long)]
    pub once: bool,
}

fn parse_interval(v: &str) -> Result<Duration, String> {
    crate::config::parse_duration(v, 1000)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{v:?} is not a duration such as 5s, 500ms or 1m"))
}

fn parse_rate(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{v:?} is not a share from 0 to 1 such as 0.01"))
}

/// Writes one round (`--once`) or a round every `--interval` until Ctrl-C, printing
/// each file written or kept.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let dir = settings.data_folder.clone();
    let mut sim = Simulator::new(SimOptions {
        sensors: args.sensors,
        files: args.files,
        rows: args.rows,
        bad_rate: args.bad_rate,
        seed: args.seed,
        start: args.start.unwrap_or_else(simulate::default_start),
        sample_every: args.sample_every,
        ranges: settings.ranges,
        anomalies: args.anomalies,
    })
    .with_labels(args.labels);
    if args.once {
        print_written(&simulate::write_round(&mut sim, &dir)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::block_on(async {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        });
        simulate::run(sim, &dir, args.interval, shutdown, print_written).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_written(written: &[Written]) {
    for w in written {
        if w.created {
            let labels = w.labels.as_ref().map_or(String::new(), |l| {
                format!(", {} anomalous, labels in {}", w.anomalies, l.display())
            });
            println!(
                "wrote {} ({} rows, {} invalid{labels})",
                w.path.display(),
                w.rows,
                w.bad_lines.len()
            );
        } else {
            println!("kept {} (already there)", w.path.display());
        }
    }
}
