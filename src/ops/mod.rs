//! Operator tools: what a person runs beside the agent to see what it did and to help
//! it along. They read the folders and the ledger; only `quarantine retry` and `purge`
//! move or delete files.
//!
//! - [`quarantine`]: list, show, retry, purge the quarantine folder (one file per verb);
//! - [`status`]: what the agent has been doing, from the ledger and the folders;
//!   [`followed`]: the followed files (append mode) with their offsets and lag;
//! - [`qc`]: a sensor's readings that carry quality flags, with the values around them;
//! - [`simulate`]: deterministic, realistic test data written into the data folder;
//! - [`suggest`]: a profile inferred from a sample (`sensor-ingest profile suggest`);
//! - [`reference`](mod@reference): the reference pages of `docs/reference/`, made from the code.

pub mod followed;
pub mod qc;
pub mod quarantine;
pub mod reference;
pub mod simulate;
pub mod status;
pub mod suggest;
