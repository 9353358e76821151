//! sensor-ingest: watches a folder for sensor CSV exports and loads each file into a
//! database exactly once, after checking every row.
//!
//! # Layout
//! A file flows through one module per stage; [`source`] is the seam in front of them
//! (where files come from: a [`source::Candidate`] with an identity that is not a path,
//! opened, archived and quarantined by its [`source::Source`]; the data folder,
//! [`source::folder`], wraps `watch`, `intake` and `archive`), and `docs/ARCHITECTURE.md`
//! draws the layers:
//!
//! - [`watch`]: notices files in the data folder (`watcher`: inotify and the event loop;
//!   `tracker`: the no-I/O state machine that decides when a file is ready; `scan`:
//!   startup scan and periodic rescan) and hands over only completely written files;
//! - [`intake`]: opens a regular file (never a link or a FIFO), probes for a writer,
//!   hashes it — the one place that decides what a data file is;
//! - [`read`]: streams the CSV (preamble, header, comment lines, encodings) and hashes
//!   the bytes as they pass;
//! - [`profile`]: which source profile reads a file (`spec`, `check`) and what each of
//!   its columns means (`plan`: the time, the sensor id, the measures and their units);
//! - [`validate`] (with [`timestamp`] for times and date orders, [`units`] for units and
//!   physical limits): turns a record into a [`validate::Reading`] in the stored units,
//!   or into positioned row errors; decides at the end what only the whole file can
//!   say (the date order, a sensor column that is a row id, and `validate/safety`'s
//!   rules that hold under every profile: sensor ids that are times, two values at one
//!   instant, the repeated autumn hour, humidity as a fraction);
//! - [`enrich`]: Kelvin, range-normalised columns;
//! - [`stats`]: per-column count, nulls, min, max, mean, standard deviation (Welford);
//! - [`qc`]: quality flags (step, spike, flat line, outlier) per reading and measure,
//!   continuing each sensor from its last stored readings; no I/O (the pipeline's
//!   reading pass runs it, the sinks fetch the history and store the flags);
//! - [`sink`]: the database boundary — [`sink::Store`] (the write path) and
//!   [`sink::LedgerQueries`] (read-only ledger queries) — and its two backends,
//!   [`sink::sqlite`] (the embedded default) and [`sink::postgres`], each a folder with
//!   `load` (ledger row, readings and metrics in one transaction), `ledger` (queries),
//!   `dashboard` (the dashboard's read-only queries) and its low-level writer;
//!   PostgreSQL's readings are partitioned by month
//!   (`postgres/partitions`: created ahead and on demand, dropped by `RETENTION`;
//!   `postgres/migrate`: `sensor-ingest migrate` from a plain table); `sink/batched`
//!   coalesces the statements made once per file outside a load (claims, their
//!   releases, archive names) through `sink/coalesce`, so that files finishing together
//!   share one statement;
//! - [`archive`] (with [`report`]): moves the file to `processed/`, or to `quarantine/`
//!   beside a JSON report of every problem.
//!
//! [`pipeline`] drives one file through those stages: `pipeline/mod.rs` the attempt,
//! `outcome` the handlers that end it, `inspect` the reading pass, `group` the committer
//! that loads small files several to a transaction (`Store::load_group`), `refusal` why
//! a file is quarantined, `retry` the backoff, `observe` its log line and metrics.
//! [`agent`] builds the store and pipeline once from the settings, then runs the
//! watcher and a bounded pool of workers (`run`) or processes what is present and exits
//! (`once`). Several agents can share a data folder and a PostgreSQL database: before
//! reading a file an agent claims it ([`sink::claim`]: a lease in the database, renewed
//! by `pipeline/claim.rs` while the file is worked on); on SQLite, [`lock`] keeps the
//! store and its folder to one agent. [`config`] reads and validates the settings (`env`, `database`, `size_duration`;
//! `vars`, the one list of variables with their defaults and meanings) into
//! the typed values of the stages that use them ([`units::Ranges`],
//! [`timestamp::SourceTimezone`], [`pattern::FilePattern`], [`sink::DatabaseSettings`],
//! [`pipeline::PipelineSettings`]): no stage imports `config`, and `scripts/layers`
//! checks the layers; [`telemetry`] sets up logging.
//!
//! [`rule`] names every rule once, with its short reason and advice: a new reading rule
//! is a variant there plus the check in [`read`] or [`profile::plan`] (whole file) or
//! [`validate`] (a row). A new unit is one entry of the `units!` table in [`units`]
//! (its spellings, quantity, conversion and help). A new input format is a profile key: [`profile::spec`] (the
//! TOML) and its line in [`profile::keys`], [`profile::check`] (its checks), then [`read`] or
//! [`profile::plan`]. A new setting is read in `config/env.rs` and listed in `config/vars.rs`.
//! `docs/reference/` is generated from these lists ([`ops::reference`]: `sensor-ingest docs
//! reference`).
//!
//! [`cli`] holds one file per command (`main.rs` only parses, loads settings and
//! reports errors): a new command is a file there. Operator tools live in [`ops`]:
//! [`ops::quarantine`] (one file per verb), [`ops::status`], [`ops::simulate`] and
//! [`ops::suggest`] (a profile inferred from a sample: `sensor-ingest profile
//! suggest`), [`ops::reference`] (the reference pages). [`http`] serves `/metrics`, `/healthz` and `/readyz` for `run`, beside the
//! browser [`dashboard`] (pages, SVG charts, the token-guarded retry), whose SQL lives in
//! each backend's `dashboard.rs` behind [`sink::dashboard::DashboardQueries`];
//! [`metrics`] is the registry the pipeline writes to.
//!
//! Unsafe code is denied everywhere but in two modules: [`sys`] (every system call:
//! leases, `renameat2`, `flock`, `O_NOFOLLOW` opens) and the SQLite sink's C-API writer.
//! A new database backend is a new folder under [`sink`] implementing both traits.

#![deny(unsafe_code)]

pub mod agent;
pub mod archive;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod enrich;
pub mod http;
pub mod intake;
pub mod lock;
pub mod metrics;
pub mod ops;
pub mod pattern;
pub mod pipeline;
pub mod profile;
pub mod qc;
pub mod read;
pub mod report;
pub mod rule;
pub mod sink;
pub mod source;
pub mod stats;
pub mod sys;
pub mod telemetry;
pub mod timestamp;
pub mod units;
pub mod validate;
pub mod watch;
