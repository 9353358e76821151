//! The functional integration suites, one module each, in one test binary so the shared
//! helpers in `tests/common` compile once. Test names read `MODULE::test`, e.g.
//! `cargo test --test it pipeline::` runs the pipeline suite alone.
//!
//! The crash and outage tests live apart in `tests/soak` (see its header for why).

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod append;
mod append_archive;
mod batched;
mod cli;
mod corpus;
mod dashboard;
mod faults;
mod filesystem;
mod further_qc;
mod grafana;
mod group;
mod left_aside;
mod mariadb;
mod migration;
mod operator;
mod partitions;
mod pipeline;
mod profile_examples;
mod profiles;
mod props;
mod quality;
mod readings_migration;
mod readme;
mod real_corpus;
mod s3;
mod safety;
mod security;
mod styles;
mod suggest;
