//! `sensor-ingest run` (the default): watch the data folder until SIGINT/SIGTERM. Also
//! the setup every long-running command shares: logging to the console and `LOG_DIR`,
//! a multi-threaded runtime, the signals, and the agent built once.

use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::report;
use crate::agent::{Agent, AgentError};
use crate::config::Settings;
use crate::telemetry;

/// Watches the data folder until a signal asks to stop; exits 0 after a clean stop.
pub fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    serve(settings, async |agent, shutdown| {
        agent.run(shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Sets up logging, then runs `work` with the agent built from `settings` and a token
/// cancelled by the first SIGINT/SIGTERM. From the moment logging is set up, a failure
/// is logged (console and file) once and the process exits 1 (2 when another agent holds
/// the SQLite store or the data folder).
pub(super) fn serve(
    settings: &Settings,
    work: impl AsyncFnOnce(Agent, CancellationToken) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let _guard = telemetry::init(&settings.log, super::progress::console_writer)?;
    serve_logged(settings, work).or_else(|e| {
        error!("{}", report(&e));
        // Another agent on the same SQLite store or folder is a setup problem, as a
        // bad setting is.
        let locked = matches!(e.downcast_ref(), Some(AgentError::Locked(_)));
        Ok(if locked {
            ExitCode::from(2)
        } else {
            ExitCode::FAILURE
        })
    })
}

fn serve_logged(
    settings: &Settings,
    work: impl AsyncFnOnce(Agent, CancellationToken) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        work(Agent::build(settings), shutdown).await
    })
}

/// First SIGINT/SIGTERM: stop taking files and let those in progress finish. Second:
/// exit at once (open transactions roll back on the server).
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot listen for signals; stop the agent with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    info!("shutdown requested; finishing files in progress (signal again to stop at once)");
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal; exiting now, transactions in progress roll back");
    std::process::exit(130);
}
