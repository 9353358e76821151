//! The `sensor-ingest` command: parses the command line, loads the settings and hands
//! over to the command in `sensor_ingest::cli`; reports what failed and how to exit.
//!
//! Exit codes: 0 done; 1 the command failed (or found invalid or quarantined files);
//! 2 the settings (or `.env`) could not be read, or a question could not be asked.

use std::process::ExitCode;

use clap::Parser;

use sensor_ingest::cli::{self, Cli, Command};
use sensor_ingest::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, None | Some(Command::Run | Command::Once(_))) {
        // A command that only reports ends quietly when its reader goes (`check … |
        // head`); `run` and `once` load data and serve HTTP, where a closed socket is an
        // error to handle, never a reason to stop.
        sensor_ingest::sys::end_quietly_on_a_closed_pipe();
    }
    // The documentation needs no settings: it is made from the code alone.
    if let Some(Command::Docs(cmd)) = cli.command {
        return finish(cli::docs::run(cmd));
    }
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
    finish(match cli.command.unwrap_or(Command::Run) {
        Command::Run => cli::run::run(&settings),
        Command::Once(args) => cli::once::run(&settings, args),
        Command::Check(args) => cli::check::run(&settings, args),
        Command::Status(args) => cli::status::run(&settings, args),
        Command::Simulate(args) => cli::simulate::run(&settings, args),
        Command::Qc(args) => cli::qc::run(&settings, args),
        Command::Quarantine(cmd) => cli::quarantine::run(&settings, cmd),
        Command::Profile(cmd) => cli::profile::run(&settings, cmd),
        Command::Migrate(args) => cli::migrate::run(&settings, args),
        Command::Docs(cmd) => cli::docs::run(cmd),
    })
}

/// The exit code of a command's result, its error reported on stderr.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::report(&e));
            ExitCode::FAILURE
        }
    }
}
