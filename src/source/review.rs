//! The quarantine as a source keeps it, for the review (`ops::quarantine`, the
//! dashboard's quarantine page): a flat set of named items (each refused item beside
//! its `NAME.error.json` report) and a hidden `.attempts/` area for the reports of
//! earlier attempts, with the few operations the review needs. The folder keeps them
//! in `QUARANTINE_FOLDER` ([`FolderQuarantine`]); a bucket under its quarantine prefix
//! (`s3::Bucket`). What a retry means (back into the data folder, or back under the
//! bucket's prefix) is the source's too.
//!
//! Every method does blocking I/O: call them off the async threads.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::archive;

/// The hidden area of the quarantine where reports of earlier attempts are kept.
pub const ATTEMPTS: &str = ".attempts";

/// An item of the quarantine as listed: its name (relative to the quarantine; inside
/// [`ATTEMPTS`] it starts with `.attempts/`) and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub modified: DateTime<Utc>,
}

/// Where refused items and their reports are kept, as the review sees it.
pub trait QuarantineArea: Send + Sync + std::fmt::Debug {
    /// Where the quarantine is, for messages (a folder path, `s3://bucket/prefix/`).
    fn describe(&self) -> String;

    /// The items directly in the quarantine (`attempts`: in its [`ATTEMPTS`] area
    /// instead), never hidden names nor sub-folders. A quarantine not created yet has
    /// none.
    fn list(&self, attempts: bool) -> io::Result<Vec<Stored>>;

    /// The item `name`, or `None` when there is no such item.
    fn stat(&self, name: &str) -> io::Result<Option<Stored>>;

    /// The bytes of the item `name`, from its start.
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;

    /// Renames an item within the quarantine, never overwriting (`AlreadyExists`).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Deletes an item; one already gone is not an error.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Whether an item named `original` is already waiting in the source.
    fn is_waiting(&self, original: &str) -> io::Result<bool>;

    /// Puts the quarantined item `name` back into the source as `original` (the name
    /// it was dropped with), never overwriting (`AlreadyExists`), so that it is taken
    /// as a new arrival. Returns where it went, for messages.
    fn put_back(&self, name: &str, original: &str) -> io::Result<String>;
}

/// The quarantine folder of the folder source, and the data folder a retry puts files
/// back into.
#[derive(Debug, Clone)]
pub struct FolderQuarantine {
    dir: PathBuf,
    data: PathBuf,
}

impl FolderQuarantine {
    pub fn new(dir: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            data: data.into(),
        }
    }

    /// The path of an item (names are never paths of their own: see [`plain`]).
    fn path(&self, name: &str) -> io::Result<PathBuf> {
        Ok(self.dir.join(plain(name)?))
    }
}

/// `name` as a relative path of at most two parts (`.attempts/NAME`), none of them
/// empty, `.` or `..`: the review never reaches outside the quarantine.
pub(super) fn plain(name: &str) -> io::Result<&Path> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = parts.len() <= 2
        && (parts.len() == 1 || parts[0] == ATTEMPTS)
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    if ok {
        Ok(Path::new(name))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a name in the quarantine"),
        ))
    }
}

fn stored(name: String, meta: &fs::Metadata) -> Stored {
    Stored {
        name,
        modified: meta
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or_default(),
    }
}

impl QuarantineArea for FolderQuarantine {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn list(&self, attempts: bool) -> io::Result<Vec<Stored>> {
        let (dir, prefix) = if attempts {
            (self.dir.join(ATTEMPTS), format!("{ATTEMPTS}/"))
        } else {
            (self.dir.clone(), String::new())
        };
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for item in listing {
            let item = item?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let meta = item.metadata()?;
            if name.starts_with('.') || !meta.is_file() {
                continue;
            }
            out.push(stored(format!("{prefix}{name}"), &meta));
        }
        Ok(out)
    }

    fn stat(&self, name: &str) -> io::Result<Option<Stored>> {
        match fs::metadata(self.path(name)?) {
            Ok(meta) if meta.is_file() => Ok(Some(stored(name.to_owned(), &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(fs::File::open(self.path(name)?)?))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let to = self.path(to)?;
        if let Some(parent) = to.parent() {
            archive::ensure_dir(parent)?;
        }
        archive::move_no_clobber(&self.path(from)?, &to)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn is_waiting(&self, original: &str) -> io::Result<bool> {
        Ok(super::folder::is_waiting(&self.data, original))
    }

    fn put_back(&self, name: &str, original: &str) -> io::Result<String> {
        archive::ensure_dir(&self.data)?;
        let back = super::folder::put_back(&self.path(name)?, &self.data, original)?;
        Ok(super::folder::path_of(&back).display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_reach_outside_the_quarantine() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "/etc/passwd",
            ".attempts/../x",
            "x/",
        ] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
        for good in [
            "bad.csv",
            "bad.csv.error.json",
            ".attempts/bad.csv.1.error.json",
        ] {
            assert!(plain(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_folder_lists_its_files_and_its_attempts_apart() {
        let q = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let area = FolderQuarantine::new(q.path(), data.path());
        assert!(area.list(false).unwrap().is_empty(), "not created yet");
        fs::write(q.path().join("a.csv"), "x").unwrap();
        fs::write(q.path().join("a.csv.error.json"), "{}").unwrap();
        area.rename("a.csv.error.json", ".attempts/a.csv.1.error.json")
            .unwrap();
        let names = |attempts| -> Vec<String> {
            let mut n: Vec<String> = area
                .list(attempts)
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(false), ["a.csv"]);
        assert_eq!(names(true), [".attempts/a.csv.1.error.json"]);
        let moved = area.put_back("a.csv", "a.csv").unwrap();
        assert_eq!(moved, data.path().join("a.csv").display().to_string());
        assert!(area.stat("a.csv").unwrap().is_none());
        assert!(area.is_waiting("a.csv").unwrap());
    }
}
