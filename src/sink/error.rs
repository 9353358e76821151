//! Database errors, classified once for both backends: transient (retried), refused
//! (the agent itself; fatal at startup) or data (the file is quarantined).

/// Whether a failed database call may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The database is unreachable, overloaded, restarting, or the transaction lost a
    /// race (serialization failure, deadlock): retry with backoff; never quarantine.
    Transient,
    /// The database refused the agent itself (authentication, missing database, no
    /// privilege): fatal at startup; while running, retried like `Transient` because
    /// the file is not at fault.
    Refused,
    /// The database refused the file's data (bad value, constraint): quarantine.
    Data,
}

/// A database failure, classified. Cloned when one failed statement answers several
/// callers (a group, a batch of claims).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {detail}")]
pub struct SinkError {
    pub class: ErrorClass,
    /// What the sink was doing, e.g. "copying readings".
    pub context: &'static str,
    /// The driver's or the server's message (with its SQLSTATE when there is one).
    pub detail: String,
}

impl SinkError {
    pub fn is_transient(&self) -> bool {
        self.class != ErrorClass::Data
    }
}

/// A driver error as a [`SinkError`] of `class`: the database's own message with its
/// code (`code_name` says which kind: "SQLSTATE", "SQLite code"), the driver's message
/// otherwise. sqlx's display adds wrapper text and the server's C source line.
pub(crate) fn sink_error(
    e: &sqlx::Error,
    class: ErrorClass,
    context: &'static str,
    code_name: &str,
) -> SinkError {
    SinkError {
        class,
        context,
        detail: describe_sqlx(e, code_name),
    }
}

/// See [`sink_error`].
pub(crate) fn describe_sqlx(e: &sqlx::Error, code_name: &str) -> String {
    match e {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} ({code_name} {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}
