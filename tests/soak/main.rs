//! The tests that judge the real binary against the wall clock, in a binary of their
//! own and one at a time:
//!
//! - `crash` SIGKILLs the agent at seeded-random moments while 200 files (some of
//!   20,000 rows) arrive, restarting it 21 times, and must see them all drained within
//!   a deadline; `scripts/crash-soak` runs it alone with far larger sizes. It keeps both
//!   cores of a small machine busy while it runs, which would stretch the deadlines of
//!   the functional suites beside it, and theirs its own.
//! - `outage` cuts PostgreSQL off and asserts the agent stays under 10 % of a core over a
//!   6-second window and reaches its fourth retry within a deadline: measurements that
//!   should not depend on what else the machine is doing.
//!
//! - `append` SIGKILLs an agent in append mode 20 times while six files grow (fast,
//!   rewritten, rotated, with a partial last line), on both backends; every complete
//!   line must be stored exactly once (`APPEND_SEED`, `APPEND_KILLS`).
//! - `agents` runs three agents on one folder and one PostgreSQL with over a thousand
//!   files, SIGKILLs one and cuts another off for longer than a claim's lease: about a
//!   minute of three processes busy at once.
//!
//! - `restart` shuts MariaDB down (`mysqladmin shutdown`) while the agent loads and
//!   starts it again (`mysqld_safe`), bringing it back even when the test fails.
//!
//! Cargo runs test binaries one after the other, so nothing from `tests/it` runs beside
//! these; [`one_at_a_time`] keeps the two apart from each other too.
//!
//! `cargo test --test soak crash -- --nocapture` runs the crash harness (its seed is
//! printed); `CRASH_SEED=N` replays one run.

// This binary uses a part of the shared helpers; `tests/it` uses them all, so unused
// ones are still caught there.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod agents;
mod append;
mod crash;
mod outage;
mod restart;

/// Held for the whole of each test in this binary, so they never overlap.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
