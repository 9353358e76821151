//! The data folder as a source: its files are found by the watcher ([`watch`],
//! [`settled`]), taken and read by `intake` (the one place that decides what a data
//! file is), and moved by `archive` into `processed/` or `quarantine/` once their
//! outcome is committed.
//!
//! A file's identity is its device, inode, size, modification time and status-change
//! time (ctime): a file dropped again under the same name is a new inode (or a new
//! size or time), and a file moved back into the folder (`quarantine retry`, or by
//! hand) keeps its inode and mtime but a rename sets its ctime, so it is new too.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Archived, Candidate, Held, Identity, Location, Opened, Source, Taken, WriteNew};
use crate::archive::{self, ArchiveError, FileIdentity};
use crate::intake::{self, Hashed};
use crate::read::ContentHash;
use crate::report::QuarantineReport;
use crate::watch::{self, WatchConfig, WatchError};

/// A file's identity in the data folder (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    file: FileIdentity,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let mtime_ns = match meta.modified() {
            Ok(t) => match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
            },
            Err(_) => meta.mtime().saturating_mul(1_000_000_000),
        };
        Self {
            file: FileIdentity::of(meta),
            size: meta.len(),
            mtime_ns,
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
        }
    }

    pub fn inode(&self) -> u64 {
        self.file.inode()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Modification time, nanoseconds since the Unix epoch (negative before it).
    pub fn mtime_ns(&self) -> i64 {
        self.mtime_ns
    }

    /// Status-change time, likewise: a rename into the folder sets it.
    pub fn ctime_ns(&self) -> i64 {
        self.ctime_ns
    }
}

/// The data folder's files, and the folders they go to once their outcome is committed.
#[derive(Debug, Clone)]
pub struct Folder {
    processed: PathBuf,
    quarantine: PathBuf,
}

impl Folder {
    /// Files loaded (or found loaded already) go to `processed`, refused ones to
    /// `quarantine` beside their report.
    pub fn new(processed: PathBuf, quarantine: PathBuf) -> Self {
        Self {
            processed,
            quarantine,
        }
    }
}

/// Watches the folder `cfg` names until `shutdown` and sends each completely written
/// data file on `out` as a candidate (see [`watch::watch`]).
pub async fn watch(
    cfg: WatchConfig,
    out: mpsc::Sender<Candidate>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    watch::watch(cfg, out, shutdown).await
}

/// Watches the folder `cfg` names until `shutdown` and sends each followed file (append
/// mode: every file `followed` names) on `out` as a candidate whenever it may have grown
/// (see [`watch::follow::follow`]).
pub async fn follow(
    cfg: WatchConfig,
    followed: impl Fn(&str) -> bool + Send + Sync + 'static,
    out: mpsc::Sender<Candidate>,
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    watch::follow::follow(cfg, followed, out, shutdown).await
}

/// The data files in the folder `cfg` names once they have settled, in scan order (see
/// [`watch::settled_files`]).
pub async fn settled(cfg: &WatchConfig) -> io::Result<Vec<Candidate>> {
    let files = watch::settled_files(cfg).await?;
    Ok(files.into_iter().map(Candidate::in_folder).collect())
}

/// Whether a file called `name` waits in the data folder `data` (a link or anything
/// else under that name counts: a retry never overwrites it).
pub fn is_waiting(data: &Path, name: &str) -> bool {
    data.join(name).symlink_metadata().is_ok()
}

/// What a quarantine retry means for the folder: the quarantined file `from` goes back
/// into the data folder `data` under `name`, the name it was dropped with, never
/// overwriting (`AlreadyExists` when a file of that name waits there). Returns the
/// candidate the agent will take in its turn; the rename sets its ctime, so its
/// identity is new and it can be claimed afresh.
pub fn put_back(from: &Path, data: &Path, name: &str) -> io::Result<Candidate> {
    let target = data.join(name);
    archive::move_no_clobber(from, &target)?;
    Ok(Candidate::in_folder(target))
}

/// The path a folder candidate names (an empty path, where nothing is, for a
/// candidate of another source).
pub fn path_of(c: &Candidate) -> &Path {
    match c.location() {
        Location::Folder(path) => path,
        _ => Path::new(""),
    }
}

/// The file (device and inode) an identity names; `None` for another source's.
fn file_of(read: Identity) -> Option<FileIdentity> {
    match read {
        Identity::File(id) => Some(id.file),
        _ => None,
    }
}

/// An identity from another source, given to the folder.
fn foreign(c: &Candidate) -> ArchiveError {
    ArchiveError {
        file: c.name().to_owned(),
        dir: PathBuf::new(),
        source: io::Error::other("not a file of the data folder"),
    }
}

impl Source for Folder {
    /// Looks at the path before opening it: archiving renames a file, which sets its
    /// ctime, so an identity read from a file opened after another agent archived it
    /// would differ from that agent's (and its claim be granted).
    fn take(&self, c: &Candidate) -> io::Result<Result<Taken, &'static str>> {
        let path = path_of(c);
        let Ok(seen) = std::fs::symlink_metadata(path) else {
            return Ok(Err(intake::VANISHED));
        };
        Ok(match intake::open_unwritten(path)? {
            Ok((file, meta)) if FileIdentity::of(&seen) == FileIdentity::of(&meta) => Ok(Taken {
                identity: Identity::File(FileId::of(&seen)),
                held: Held::File { file, meta },
            }),
            // Replaced between the look and the open: the newcomer's own event (or the
            // next rescan) brings it back.
            Ok(_) => Err(intake::VANISHED),
            Err(reason) => Err(reason),
        })
    }

    fn read(&self, taken: Taken, max_bytes: Option<u64>) -> io::Result<Opened> {
        let Taken { identity, held } = taken;
        let Held::File { file, meta } = held else {
            return Err(io::Error::other("not a file of the data folder"));
        };
        Ok(match intake::hash_opened(file, &meta, max_bytes)? {
            Hashed::File { file, hash, size } => Opened::File {
                file,
                hash,
                size,
                identity,
            },
            Hashed::TooLarge { size, limit } => Opened::TooLarge {
                size,
                limit,
                identity,
            },
        })
    }

    /// Opens without looking first: nothing is claimed, so nothing depends on the
    /// identity matching another agent's.
    fn open(&self, c: &Candidate, max_bytes: Option<u64>) -> io::Result<Opened> {
        match intake::open_unwritten(path_of(c))? {
            Ok((file, meta)) => {
                let identity = Identity::File(FileId::of(&meta));
                let held = Held::File { file, meta };
                self.read(Taken { identity, held }, max_bytes)
            }
            Err(reason) => Ok(Opened::Skip(reason)),
        }
    }

    fn archive(
        &self,
        c: &Candidate,
        read: Identity,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError> {
        let read = file_of(read).ok_or_else(|| foreign(c))?;
        archive::move_into(path_of(c), read, &self.processed, c.name(), hash)
    }

    fn quarantine(
        &self,
        c: &Candidate,
        read: Identity,
        report: &mut QuarantineReport,
        hash: &ContentHash,
    ) -> Result<Archived, ArchiveError> {
        let read = file_of(read).ok_or_else(|| foreign(c))?;
        archive::quarantine(path_of(c), read, &self.quarantine, report, hash)
    }

    fn quarantine_new(
        &self,
        report: &mut QuarantineReport,
        hash: &ContentHash,
        write: WriteNew<'_>,
    ) -> Result<Archived, ArchiveError> {
        archive::quarantine_new(&self.quarantine, report, hash, |file| write(file))
    }

    /// By the file's ctime, which a rename into the folder sets.
    fn arrived_before(&self, c: &Candidate, read: Identity, at: DateTime<Utc>) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::symlink_metadata(path_of(c)) else {
            return false;
        };
        if Some(FileIdentity::of(&meta)) != file_of(read) {
            return false;
        }
        DateTime::from_timestamp(meta.ctime(), meta.ctime_nsec() as u32)
            .is_some_and(|ctime| ctime <= at)
    }

    /// As far as its inode tells: a rename into the folder sets ctime, a write sets both.
    fn arrival_time(&self, c: &Candidate) -> Option<SystemTime> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path_of(c)).ok()?;
        let secs = u64::try_from(meta.ctime()).ok()?;
        let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
        Some(std::time::UNIX_EPOCH + Duration::new(secs, nanos))
    }

    fn size_hint(&self, c: &Candidate) -> Option<u64> {
        std::fs::metadata(path_of(c)).ok().map(|m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_identity_is_its_inode_size_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ts,id,t\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let id = FileId::of(&meta);
        assert_eq!(id.size(), 8);
        assert!(id.mtime_ns() > 0);
        // Archived (renamed away), then dropped again under the same name with the same
        // bytes: another file, another identity.
        std::fs::rename(&path, dir.path().join("archived.csv")).unwrap();
        std::fs::write(&path, "ts,id,t\n").unwrap();
        let again = FileId::of(&std::fs::metadata(&path).unwrap());
        assert_ne!(id, again);
        assert_eq!(id, FileId::of(&meta));
        // Moved back into the folder (a quarantine retry): the same inode, size and
        // mtime, but the rename set its ctime, so it is new.
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::rename(dir.path().join("archived.csv"), &path).unwrap();
        let back = FileId::of(&std::fs::metadata(&path).unwrap());
        assert_eq!(
            (back.inode(), back.size(), back.mtime_ns()),
            (id.inode(), id.size(), id.mtime_ns())
        );
        assert_ne!(back, id);
    }

    #[test]
    fn a_file_taken_is_read_and_archived_only_while_its_name_still_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let (processed, quarantine) = (dir.path().join("processed"), dir.path().join("q"));
        std::fs::create_dir(&processed).unwrap();
        std::fs::create_dir(&quarantine).unwrap();
        let folder = Folder::new(processed.clone(), quarantine);
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ts,id,t\n").unwrap();
        let c = Candidate::in_folder(&path);
        assert_eq!(c.name(), "a.csv");
        let taken = folder.take(&c).unwrap().unwrap();
        let read = taken.identity();
        let Opened::File { hash, size, .. } = folder.read(taken, None).unwrap() else {
            panic!("a regular file is read");
        };
        assert_eq!(size, 8);
        // Another file renamed over the name meanwhile is not the one read: left alone.
        let newcomer = dir.path().join("new.csv");
        std::fs::write(&newcomer, "ts,id,t\n1,2,3\n").unwrap();
        std::fs::rename(&newcomer, &path).unwrap();
        assert_eq!(folder.archive(&c, read, &hash).unwrap(), None);
        assert!(path.exists());
        // The newcomer, taken in turn, is archived under its name.
        let Opened::File { identity, hash, .. } = folder.open(&c, None).unwrap() else {
            panic!("a regular file is opened");
        };
        assert_eq!(
            folder.archive(&c, identity, &hash).unwrap().as_deref(),
            Some("a.csv")
        );
        assert!(processed.join("a.csv").exists() && !path.exists());
        assert!(matches!(folder.take(&c).unwrap(), Err(intake::VANISHED)));
    }
}
