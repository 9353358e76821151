//! Progress of `once` over a backlog: a bar on a terminal (files, rows, rate, ETA by
//! bytes), plain `progress` log lines every few seconds otherwise.
//!
//! While a bar is shown, console log lines are printed above it instead of through it
//! ([`console_writer`] is the console writer [`crate::telemetry`] uses).

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::agent::OnceProgress;
use crate::pipeline::{Outcome, ProcessError};

/// Time between two plain progress lines.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The bar being drawn, if any, so log lines can be printed above it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How progress is shown.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    state: Mutex<Counts>,
}

#[derive(Debug)]
enum Mode {
    Off,
    Bar(ProgressBar),
    Log,
}

#[derive(Debug, Clone)]
struct Counts {
    files_total: usize,
    bytes_total: u64,
    files_done: usize,
    bytes_done: u64,
    rows: u64,
    started: Instant,
    last_log: Instant,
}

impl Counts {
    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// Seconds left, by bytes processed so far.
    fn eta_s(&self) -> Option<u64> {
        if self.bytes_done == 0 {
            return None;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = self.bytes_total.saturating_sub(self.bytes_done) as f64;
        Some((elapsed * left / self.bytes_done as f64).round() as u64)
    }

    fn message(&self) -> String {
        format!(
            "{}/{} files, {} rows, {:.0} rows/s",
            self.files_done,
            self.files_total,
            self.rows,
            self.rows_per_s()
        )
    }
}

impl Progress {
    /// Shows nothing.
    pub fn off() -> Self {
        Self::new(Mode::Off)
    }

    /// A bar when stderr is a terminal a bar can be drawn on, log lines otherwise
    /// (indicatif also declines a terminal without `TERM` or with `TERM=dumb`).
    pub fn auto() -> Self {
        if io::stderr().is_terminal() && !ProgressDrawTarget::stderr().is_hidden() {
            Self::new(Mode::Bar(ProgressBar::hidden()))
        } else {
            Self::new(Mode::Log)
        }
    }

    /// Plain log lines whatever stderr is.
    pub fn log_lines() -> Self {
        Self::new(Mode::Log)
    }

    fn new(mode: Mode) -> Self {
        let now = Instant::now();
        Self {
            mode,
            state: Mutex::new(Counts {
                files_total: 0,
                bytes_total: 0,
                files_done: 0,
                bytes_done: 0,
                rows: 0,
                started: now,
                last_log: now,
            }),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OnceProgress for Progress {
    /// The backlog is `files` files of `bytes` bytes in all.
    fn start(&self, files: usize, bytes: u64) {
        let mut c = self.counts();
        c.files_total = files;
        c.bytes_total = bytes;
        c.started = Instant::now();
        c.last_log = c.started;
        if let Mode::Bar(bar) = &self.mode {
            bar.set_length(bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(c.message());
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
            *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        }
    }

    /// One file of `bytes` bytes is done with `result`.
    fn file_done(&self, bytes: u64, result: &Result<Outcome, ProcessError>) {
        let mut c = self.counts();
        c.files_done += 1;
        c.bytes_done += bytes;
        if let Ok(Outcome::Loaded { rows, .. }) = result {
            c.rows += rows;
        }
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => {
                bar.set_position(c.bytes_done);
                bar.set_message(c.message());
            }
            Mode::Log => {
                if c.last_log.elapsed() >= LOG_EVERY && c.files_done < c.files_total {
                    c.last_log = Instant::now();
                    log_line(&c);
                }
            }
        }
    }

    /// The backlog is done (or abandoned): removes the bar.
    fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).take();
            bar.finish_and_clear();
        }
        if let Mode::Log = &self.mode {
            let c = self.counts();
            if c.files_total > 0 {
                log_line(&c);
            }
        }
    }
}

fn log_line(c: &Counts) {
    info!(
        files_done = c.files_done,
        files_total = c.files_total,
        rows = c.rows,
        rows_per_s = c.rows_per_s().round() as u64,
        eta_s = c.eta_s(),
        "progress"
    );
}

/// Writes console log lines to stderr, above the progress bar when one is shown.
pub struct ConsoleWriter;

/// The console writer the commands hand to [`crate::telemetry::init`].
pub fn console_writer() -> ConsoleWriter {
    ConsoleWriter
}

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().write_all(buf))?,
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_rate_and_eta_by_bytes() {
        let p = Progress::off();
        p.start(4, 400);
        let loaded = Ok(Outcome::Loaded {
            id: uuid::Uuid::nil(),
            rows: 50,
            archived_as: None,
        });
        p.file_done(100, &loaded);
        p.file_done(100, &Err(ProcessError::Changed { file: "x".into() }));
        let c = p.counts().clone();
        assert_eq!((c.files_done, c.bytes_done, c.rows), (2, 200, 50));
        assert!(c.message().starts_with("2/4 files, 50 rows"));
        assert!(c.eta_s().is_some());
        p.finish();
    }
}
