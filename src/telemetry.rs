//! Telemetry: `tracing` to the console and, when `LOG_DIR` is set, to a daily-rotated
//! file written by a non-blocking background writer; old files are pruned.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Keeps the background log writer alive; drop it last so buffered lines are flushed.
#[must_use = "dropping the guard stops the file writer"]
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot write logs to {dir}: {source}")]
    LogDir {
        dir: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("invalid LOG_LEVEL: {0}")]
    Filter(String),
    #[error("a global tracing subscriber is already set")]
    AlreadySet,
}

/// Installs the global subscriber. Console lines go to `console` (the commands pass a
/// writer to stderr, so that command output such as `check`'s stays alone on stdout).
pub fn init<W>(settings: &LogSettings, console: W) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_new(&settings.level).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let (file_writer, guard) = match &settings.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| TelemetryError::LogDir {
                dir: dir.display().to_string(),
                source: Box::new(e),
            })?;
            let appender = RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix("sensor-ingest")
                .filename_suffix("log")
                .max_log_files(settings.max_files)
                .build(dir)
                .map_err(|e| TelemetryError::LogDir {
                    dir: dir.display().to_string(),
                    source: Box::new(e),
                })?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(writer), Some(guard))
        }
        None => (None, None),
    };
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    let result = match (settings.format, file_writer) {
        (LogFormat::Text, None) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(console),
            )
            .try_init(),
        (LogFormat::Text, Some(file)) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(console),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(file),
            )
            .try_init(),
        (LogFormat::Json, None) => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(console))
            .try_init(),
        (LogFormat::Json, Some(file)) => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(console))
            .with(tracing_subscriber::fmt::layer().json().with_writer(file))
            .try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadySet)?;
    Ok(TelemetryGuard { _file: guard })
}
