//! `quarantine retry`: a file back into the data folder under the name it was dropped
//! with (what putting back means is the folder source's, `source::folder::put_back`),
//! its report kept among the earlier attempts.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ATTEMPTS_DIR, Entry, QuarantineError, REPORT_SUFFIX, io_err};
use crate::archive;
use crate::source::folder;

/// Where a retried file went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retried {
    /// Its name in the quarantine folder.
    pub name: String,
    /// Its path in the data folder.
    pub moved_to: PathBuf,
    /// Where its report was kept, relative to the quarantine folder.
    pub report_kept_as: Option<String>,
}

/// Moves a quarantined file back into `data_dir` under the name it was dropped with,
/// after moving its report to `.attempts/NAME.N.error.json`. Never overwrites: a file
/// of that name already waiting in the data folder stops the retry, and the report is
/// put back.
pub fn retry(dir: &Path, data_dir: &Path, entry: &Entry) -> Result<Retried, QuarantineError> {
    if !entry.has_file {
        return Err(QuarantineError::NoFile {
            name: entry.name.clone(),
        });
    }
    archive::ensure_dir(data_dir).map_err(io_err(data_dir))?;
    if folder::is_waiting(data_dir, &entry.original_name) {
        return Err(QuarantineError::NameTaken {
            name: entry.original_name.clone(),
        });
    }
    let report_path = dir.join(format!("{}{REPORT_SUFFIX}", entry.name));
    let kept = if report_path.is_file() {
        let attempts = dir.join(ATTEMPTS_DIR);
        archive::ensure_dir(&attempts).map_err(io_err(&attempts))?;
        Some(keep_report(&report_path, &attempts, &entry.original_name)?)
    } else {
        None
    };
    let src = dir.join(&entry.name);
    let back = match folder::put_back(&src, data_dir, &entry.original_name) {
        Ok(candidate) => candidate,
        Err(e) => {
            if let Some(kept) = &kept {
                // Put the report back so the entry stays whole; the error says why.
                let _ = archive::move_no_clobber(&dir.join(kept), &report_path);
            }
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                QuarantineError::NameTaken {
                    name: entry.original_name.clone(),
                }
            } else {
                io_err(&src)(e)
            });
        }
    };
    Ok(Retried {
        name: entry.name.clone(),
        moved_to: folder::path_of(&back).to_owned(),
        report_kept_as: kept,
    })
}

/// Moves `report` to the first free `attempts/NAME.N.error.json`; returns its name
/// relative to the quarantine folder.
fn keep_report(
    report: &Path,
    attempts: &Path,
    original_name: &str,
) -> Result<String, QuarantineError> {
    for n in 1..100_000u64 {
        let name = format!("{original_name}.{n}{REPORT_SUFFIX}");
        match archive::move_no_clobber(report, &attempts.join(&name)) {
            Ok(()) => return Ok(format!("{ATTEMPTS_DIR}/{name}")),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(report)(e)),
        }
    }
    Err(io_err(attempts)(io::Error::other("no free attempt number")))
}
