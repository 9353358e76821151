//! sensor-ingest: watches a folder for sensor CSV exports and loads each file into a
//! database exactly once, after checking every row.
//!
//! # Layout
//! A file flows through one module per stage:
//!
//! - [`watch`]: notices files in the data folder (inotify, startup scan, periodic
//!   rescan) and hands over only those that are completely written;
//! - [`read`]: streams the CSV, maps the header, hashes the bytes as they pass;
//! - [`validate`] (with [`timestamp`]): turns a record into a [`validate::Reading`] or
//!   into positioned row errors;
//! - [`enrich`]: Kelvin, range-normalised columns;
//! - [`stats`]: per-column count, nulls, min, max, mean, standard deviation (Welford);
//! - [`sink`]: the database boundary ([`sink::Store`]) and its two backends,
//!   [`sink::sqlite`] (the embedded default) and [`sink::postgres`], each loading ledger
//!   row, readings and metrics in one transaction;
//! - [`archive`] (with [`report`]): moves the file to `processed/`, or to `quarantine/`
//!   beside a JSON report of every problem.
//!
//! [`pipeline`] drives one file through those stages and retries transient database
//! failures; [`agent`] runs the watcher and a bounded pool of workers (`run`) or
//! processes what is present and exits (`once`). [`config`] reads and validates the
//! settings; [`telemetry`] sets up logging.
//!
//! Operator tools, one module each: [`quarantine`] (list, show, retry, purge the
//! quarantine folder), [`status`] (what the agent has been doing, from the ledger and
//! the folders), [`simulate`] (deterministic test data), [`metrics`] (`/metrics`,
//! `/healthz`, `/readyz` for `run`) and [`progress`] (`once`'s progress bar or lines).

pub mod agent;
pub mod archive;
pub mod config;
pub mod enrich;
pub mod intake;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod quarantine;
pub mod read;
pub mod report;
pub mod rule;
pub mod simulate;
pub mod sink;
pub mod stats;
pub mod status;
pub mod telemetry;
pub mod timestamp;
pub mod units;
pub mod validate;
pub mod watch;
