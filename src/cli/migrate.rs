//! `sensor-ingest migrate`: moves the readings of a database from before partitions
//! into the monthly-partitioned table, in batches, resumably.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::{DatabaseSettings, Settings};
use crate::sink::Store;
use crate::sink::postgres::PgStore;
use crate::sink::postgres::migrate::{self, MigrateOptions, Migrated, Progress};

/// Flags of `migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Readings copied per batch (each batch is one transaction; a file larger than
    /// this is a batch of its own).
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_rows: u64,
    /// Stop after this many batches; run `migrate` again to go on from there.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batches: Option<u64>,
    /// Keep the old table, renamed sensor_readings_unpartitioned, after the swap.
    #[arg(long)]
    pub keep_old: bool,
}

/// Migrates, printing progress after every batch; exit 0 when done, stopped by
/// `--batches`, or with nothing to do.
pub fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let _guard = super::quiet_logs(settings)?;
    let pg = match &settings.database {
        DatabaseSettings::Postgres(pg) => pg,
        DatabaseSettings::Sqlite(_) => {
            println!("nothing to migrate: the SQLite store has no partitions");
            return Ok(ExitCode::SUCCESS);
        }
        DatabaseSettings::Mysql(_) => {
            println!("nothing to migrate: the MariaDB/MySQL store has no partitions");
            return Ok(ExitCode::SUCCESS);
        }
    };
    super::block_on(async {
        let store = PgStore::new(pg, 2, &settings.agent_id);
        store
            .prepare()
            .await
            .with_context(|| format!("opening the database {}", store.describe()))?;
        let options = MigrateOptions {
            batch_rows: args.batch_rows,
            max_batches: args.batches,
            keep_old: args.keep_old,
        };
        let done = migrate::migrate(&store, options, |p| println!("{}", progress_line(p)))
            .await
            .context("migrating sensor_readings")?;
        match done {
            Migrated::AlreadyPartitioned => {
                println!("nothing to migrate: sensor_readings is partitioned by month already")
            }
            Migrated::Stopped(p) => println!(
                "stopped after {} batches as asked ({}); run `sensor-ingest migrate` again to \
                 continue",
                args.batches.unwrap_or_default(),
                progress_line(&p)
            ),
            Migrated::Done { rows, swap_ms } => println!(
                "migrated: {rows} readings now in monthly partitions (the swap held loads for \
                 {swap_ms} ms){}",
                if args.keep_old {
                    "; the old table is kept as sensor_readings_unpartitioned"
                } else {
                    ""
                }
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `copied 1500000 of 20000000 readings (7.5%) from 1234 files in 3 batches`.
pub fn progress_line(p: &Progress) -> String {
    let share = if p.rows_total > 0 {
        format!(" ({:.1}%)", 100.0 * p.rows as f64 / p.rows_total as f64)
    } else {
        String::new()
    };
    format!(
        "copied {} of {} readings{share} from {} files in {} batches",
        p.rows, p.rows_total, p.files, p.batches
    )
}
