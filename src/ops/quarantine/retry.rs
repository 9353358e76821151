//! `quarantine retry`: an item back into its source under the name it was dropped
//! with (what putting back means is the source's: `QuarantineArea::put_back`), its
//! report kept among the earlier attempts.

use std::io;

use serde::Serialize;

use super::{ATTEMPTS_DIR, Entry, QuarantineError, REPORT_SUFFIX, io_err};
use crate::source::QuarantineArea;

/// Where a retried item went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Its name in the quarantine.
    pub name: String,
    /// Where it is in the source now: a path in the data folder, or `s3://bucket/key`.
    pub moved_to: String,
    /// Where its report was kept, relative to the quarantine.
    pub report_kept_as: Option<String>,
}

/// Puts a quarantined item back into its source under the name it was dropped with,
/// after moving its report to `.attempts/NAME.N.error.json`. Never overwrites: an item
/// of that name already waiting in the source stops the retry, and the report is put
/// back.
pub fn retry(area: &dyn QuarantineArea, entry: &Entry) -> Result<Retried, QuarantineError> {
    if !entry.has_file {
        return Err(QuarantineError::NoFile {
            name: entry.name.clone(),
        });
    }
    let name_taken = || QuarantineError::NameTaken {
        name: entry.original_name.clone(),
    };
    if area
        .is_waiting(&entry.original_name)
        .map_err(io_err(area, ""))?
    {
        return Err(name_taken());
    }
    let report = format!("{}{REPORT_SUFFIX}", entry.name);
    let kept = if area.stat(&report).map_err(io_err(area, &report))?.is_some() {
        Some(keep_report(area, &report, &entry.original_name)?)
    } else {
        None
    };
    let moved_to = match area.put_back(&entry.name, &entry.original_name) {
        Ok(to) => to,
        Err(e) => {
            if let Some(kept) = &kept {
                // Put the report back so the entry stays whole; the error says why.
                let _ = area.rename(kept, &report);
            }
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                name_taken()
            } else {
                io_err(area, &entry.name)(e)
            });
        }
    };
    Ok(Retried {
        name: entry.name.clone(),
        moved_to,
        report_kept_as: kept,
    })
}

/// Moves `report` to the first free `.attempts/NAME.N.error.json`; returns its name
/// relative to the quarantine.
fn keep_report(
    area: &dyn QuarantineArea,
    report: &str,
    original_name: &str,
) -> Result<String, QuarantineError> {
    for n in 1..100_000u64 {
        let kept = format!("{ATTEMPTS_DIR}/{original_name}.{n}{REPORT_SUFFIX}");
        match area.rename(report, &kept) {
            Ok(()) => return Ok(kept),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(area, report)(e)),
        }
    }
    Err(io_err(area, ATTEMPTS_DIR)(io::Error::other(
        "no free attempt number",
    )))
}
