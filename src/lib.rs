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
//! failures; [`agent`] builds the store and pipeline once from the settings, then runs
//! the watcher and a bounded pool of workers (`run`) or processes what is present and
//! exits (`once`). [`config`] reads and validates the settings; [`telemetry`] sets up
//! logging; [`rule`] names every rule once.
//!
//! [`cli`] holds one file per command (`main.rs` only parses, loads settings and
//! reports errors). Operator tools live in [`ops`]: [`ops::quarantine`] (list, show,
//! retry, purge; one file per verb), [`ops::status`], [`ops::simulate`] and
//! [`ops::progress`] (`once`'s progress bar or lines). [`metrics`] serves `/metrics`,
//! `/healthz` and `/readyz` for `run`.

#![deny(unsafe_code)]

pub mod agent;
pub mod archive;
pub mod cli;
pub mod config;
pub mod enrich;
pub mod intake;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod read;
pub mod report;
pub mod rule;
pub mod sink;
pub mod stats;
pub mod sys;
pub mod telemetry;
pub mod timestamp;
pub mod validate;
pub mod watch;
