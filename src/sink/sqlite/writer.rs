//! The low-level SQLite writer: readings go in through SQLite's C API on the
//! connection sqlx locked for the transaction. The only module of the sink that calls
//! the C API, and so the only one with `unsafe` code; [`insert_readings`] is its safe
//! entry point.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr;

use libsqlite3_sys as ffi;
use sqlx::SqliteConnection;

use super::{classify_code, err};
use crate::enrich::EnrichedRow;
use crate::sink::SinkError;

/// Readings per INSERT statement: one statement of this many `VALUES` tuples opens its
/// cursors (the table and its three indexes) and runs its program once for all of
/// them; a single-row statement takes the rest of a batch.
const ROWS_PER_INSERT: usize = 32;
/// Parameters per reading.
const READING_PARAMS: usize = 14;

/// `INSERT INTO sensor_readings … VALUES (…), (…)` for `rows` readings.
fn insert_readings_sql(rows: usize) -> CString {
    let mut sql = String::from(
        "INSERT OR FAIL INTO sensor_readings (file_id, line, ts, sensor_id, temperature, humidity, \
         pressure, temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, \
         ingested_at, qc_flags) VALUES ",
    );
    let tuple = format!("({})", vec!["?"; READING_PARAMS].join(", "));
    sql.push_str(&vec![tuple; rows].join(", "));
    CString::new(sql).expect("no NUL in SQL")
}

/// Inserts one batch of readings inside the open transaction on `conn`, through
/// SQLite's C API rather than sqlx.
///
/// Hand-written for speed: through sqlx every bound value is boxed in an `Arc` and
/// each statement crosses to sqlx's worker thread. Here prepared statements of
/// [`ROWS_PER_INSERT`] rows are bound with borrowed values (`SQLITE_STATIC`), stepped
/// and reset, on the connection sqlx locked for us — the same transaction.
///
/// `INSERT OR FAIL`, not the default `OR ABORT`: to undo just the failing statement,
/// `OR ABORT` journals every page a multi-row statement touches, and a failure rolls
/// back the whole file's transaction anyway. Figures: docs/performance.md.
pub(super) async fn insert_readings(
    conn: &mut SqliteConnection,
    file_id: &str,
    ingested_at: &str,
    rows: &[EnrichedRow],
) -> Result<u64, SinkError> {
    insert_files_readings(conn, ingested_at, &[(file_id, rows)]).await
}

/// [`insert_readings`] for the readings of several files at once (a group commit):
/// the statements are prepared once for all of them, and tuples of different files
/// share a statement.
pub(super) async fn insert_files_readings(
    conn: &mut SqliteConnection,
    ingested_at: &str,
    files: &[(&str, &[EnrichedRow])],
) -> Result<u64, SinkError> {
    let rows: Vec<(&str, &EnrichedRow)> = files
        .iter()
        .flat_map(|(id, rows)| rows.iter().map(move |r| (*id, r)))
        .collect();
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(err("inserting readings"))?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `handle` guarantees that sqlx's worker makes no call on this connection
    // until it is dropped, after the insert; `db` is valid for that long.
    let insert = || unsafe { insert_raw(db, ingested_at, &rows) };
    // A batch takes a few milliseconds of CPU: let the runtime move other tasks off
    // this thread while it runs (not possible on a current-thread runtime, as in tests).
    if matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread
    ) {
        tokio::task::block_in_place(insert)
    } else {
        insert()
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(*mut ffi::sqlite3_stmt);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful sqlite3_prepare_v2 and is
        // finalized once.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

/// The error SQLite reports for its last call on `db`, classified like sqlx's.
///
/// # Safety
/// `db` must be a valid, open connection.
unsafe fn last_error(db: *mut ffi::sqlite3, context: &'static str) -> SinkError {
    // SAFETY: `db` is valid (caller); errmsg returns a NUL-terminated string owned by
    // SQLite, copied before any further call.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db);
        let message = CStr::from_ptr(ffi::sqlite3_errmsg(db))
            .to_string_lossy()
            .into_owned();
        (code, message)
    };
    SinkError {
        class: classify_code(code),
        context,
        detail: format!("{message} (SQLite code {code})"),
    }
}

/// Prepares `sql` on `db`.
///
/// # Safety
/// `db` must be a valid connection that no other thread uses during the call.
unsafe fn prepare(db: *mut ffi::sqlite3, sql: &CStr) -> Result<Statement, SinkError> {
    let mut raw = ptr::null_mut();
    // SAFETY: valid db (caller), NUL-terminated SQL, out-pointer to a local.
    let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut raw, ptr::null_mut()) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: valid db.
        return Err(unsafe { last_error(db, "inserting readings") });
    }
    Ok(Statement(raw))
}

/// # Safety
/// `db` must be a valid connection that no other thread uses during the call.
unsafe fn insert_raw(
    db: *mut ffi::sqlite3,
    ingested_at: &str,
    rows: &[(&str, &EnrichedRow)],
) -> Result<u64, SinkError> {
    let (grouped, rest) = rows.split_at(rows.len() - rows.len() % ROWS_PER_INSERT);
    // One timestamp buffer per tuple: text is bound in place (SQLITE_STATIC), so each
    // must stay unchanged until its statement has stepped.
    let mut ts: Vec<Vec<u8>> = (0..ROWS_PER_INSERT)
        .map(|_| Vec::with_capacity(32))
        .collect();
    let mut insert = |sql: CString, chunks: std::slice::Chunks<'_, (&str, &EnrichedRow)>| {
        // SAFETY: valid db, used by this thread only (caller).
        let stmt = unsafe { prepare(db, &sql)? };
        for chunk in chunks {
            // SAFETY: `stmt` is a live statement of `db` with `chunk.len()` tuples; every
            // bound buffer (the file ids, `ts`, the rows' strings, `ingested_at`)
            // outlives the step, and `bind_and_step` resets the statement before
            // returning.
            unsafe { bind_and_step(db, &stmt, chunk, ingested_at, &mut ts)? };
        }
        Ok::<_, SinkError>(())
    };
    if !grouped.is_empty() {
        insert(
            insert_readings_sql(ROWS_PER_INSERT),
            grouped.chunks(ROWS_PER_INSERT),
        )?;
    }
    if !rest.is_empty() {
        insert(insert_readings_sql(1), rest.chunks(1))?;
    }
    Ok(rows.len() as u64)
}

/// Binds `rows` (each with its file's id) to the tuples of `stmt`, steps it once and
/// resets it.
///
/// # Safety
/// `db` must be a valid connection that no other thread uses during the call, and
/// `stmt` a live statement of it with `rows.len()` reading tuples.
unsafe fn bind_and_step(
    db: *mut ffi::sqlite3,
    stmt: &Statement,
    rows: &[(&str, &EnrichedRow)],
    ingested_at: &str,
    ts: &mut [Vec<u8>],
) -> Result<(), SinkError> {
    let s = stmt.0;
    // SAFETY (the binds below): `s` is live (caller). Text is bound in place
    // (SQLITE_STATIC): the file ids, `ingested_at` and the rows' strings are borrowed for
    // the whole call, each tuple has its own `ts` buffer, and the reset before returning
    // drops every binding. Lengths fit in i32: records are at most 1 MiB.
    let text = |i: i32, v: &[u8]| unsafe {
        ffi::sqlite3_bind_text(
            s,
            i,
            v.as_ptr().cast(),
            v.len() as i32,
            ffi::SQLITE_STATIC(),
        )
    };
    let real = |i: i32, v: Option<f64>| unsafe {
        match v {
            Some(v) => ffi::sqlite3_bind_double(s, i, v),
            None => ffi::sqlite3_bind_null(s, i),
        }
    };
    for (j, ((file_id, row), ts)) in rows.iter().zip(ts.iter_mut()).enumerate() {
        let r = &row.reading;
        ts.clear();
        crate::timestamp::write_utc(ts, r.timestamp);
        let at = (j * READING_PARAMS) as i32;
        let binds = [
            text(at + 1, file_id.as_bytes()),
            unsafe { ffi::sqlite3_bind_int64(s, at + 2, r.line as i64) },
            text(at + 3, ts),
            text(at + 4, r.sensor_id.as_bytes()),
            real(at + 5, r.temperature),
            real(at + 6, r.humidity),
            real(at + 7, r.pressure),
            real(at + 8, row.temperature_k),
            real(at + 9, row.temperature_norm),
            real(at + 10, row.humidity_norm),
            real(at + 11, row.pressure_norm),
            match &r.extra {
                Some(json) => text(at + 12, json.as_bytes()),
                None => unsafe { ffi::sqlite3_bind_null(s, at + 12) },
            },
            text(at + 13, ingested_at.as_bytes()),
            unsafe { ffi::sqlite3_bind_int(s, at + 14, i32::from(row.qc_flags)) },
        ];
        if binds.iter().any(|rc| *rc != ffi::SQLITE_OK) {
            // SAFETY: valid db (caller); the statement's drop releases the bindings.
            return Err(unsafe { last_error(db, "inserting readings") });
        }
    }
    // SAFETY: live statement of a valid db (caller); the error is read before any
    // other call on `db`.
    unsafe {
        let rc = ffi::sqlite3_step(s);
        ffi::sqlite3_reset(s);
        match rc {
            ffi::SQLITE_DONE => Ok(()),
            _ => Err(last_error(db, "inserting readings")),
        }
    }
}
