//! Intake: how the agent takes hold of a file in the data folder before anything is
//! read. Only regular files are opened, never through a symbolic link and never
//! blocking on a FIFO; a file someone still has open for writing is left for later;
//! the content hash is taken here, before the claim in the ledger.
//!
//! The watcher looks with [`look`] before it hands a path over, and the folder source
//! (`source::folder`) opens with [`open_unwritten`] and hashes with [`hash_opened`], so
//! both agree on what a data file is.

use std::fs::{File, Metadata};
use std::io::{self, Seek};
use std::path::Path;

use crate::archive::FileIdentity;
use crate::read::ContentHash;
use crate::sys;

/// The file's own name, for logs, reports and the ledger.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// What is at a path in the data folder, looked at without following a symbolic link.
#[derive(Debug)]
pub enum Found {
    Regular(Metadata),
    /// A directory, a link, a FIFO, a socket or a device: never data.
    NotRegular,
    Gone,
}

/// Looks at `path` without opening it or following a link.
pub fn look(path: &Path) -> io::Result<Found> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Found::Regular(meta)),
        Ok(_) => Ok(Found::NotRegular),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Gone),
        Err(e) => Err(e),
    }
}

/// What [`hash_opened`] made of an open data file.
#[derive(Debug)]
pub enum Hashed {
    /// Hashed, positioned at its start.
    File {
        file: File,
        hash: ContentHash,
        size: u64,
    },
    /// Over `MAX_FILE_BYTES`: not read at all.
    TooLarge { size: u64, limit: u64 },
}

/// Why a path is skipped when nothing is there any more (archived by another agent,
/// or removed by someone).
pub const VANISHED: &str = "file vanished";

/// Opens a regular file without following symlinks or blocking on a FIFO. `Ok(Err)`
/// says why the path is not a data file.
pub fn open_regular(path: &Path) -> io::Result<Result<(File, FileIdentity), &'static str>> {
    let file = match sys::open_nofollow_nonblock(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(VANISHED)),
        Err(e) if sys::is_symlink_loop(&e) => return Ok(Err("symbolic link")),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Err("not a regular file"));
    }
    Ok(Ok((file, FileIdentity::of(&meta))))
}

/// Opens a data file that no one is still writing, without reading it (a caller that
/// must claim the file reads it afterwards, with [`hash_opened`]). `Ok(Err)` says why
/// the path is not (yet) a data file to take.
pub fn open_unwritten(path: &Path) -> io::Result<Result<(File, Metadata), &'static str>> {
    let (file, _) = match open_regular(path)? {
        Ok(opened) => opened,
        Err(reason) => return Ok(Err(reason)),
    };
    if sys::open_for_writing_elsewhere(&file) {
        // Its close will fire an event (or the next rescan will find it).
        return Ok(Err("still open for writing by another process"));
    }
    let meta = file.metadata()?;
    Ok(Ok((file, meta)))
}

/// Hashes a file opened by [`open_unwritten`] (`meta` its metadata then) unless it is
/// larger than `max_bytes`.
pub fn hash_opened(mut file: File, meta: &Metadata, max_bytes: Option<u64>) -> io::Result<Hashed> {
    let size = meta.len();
    if let Some(limit) = max_bytes.filter(|limit| size > *limit) {
        return Ok(Hashed::TooLarge { size, limit });
    }
    let (hash, size) = ContentHash::of_reader(&file)?;
    file.rewind()?;
    Ok(Hashed::File { file, hash, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Opened and hashed, or why not.
    fn open_and_hash(path: &Path, max_bytes: Option<u64>) -> Result<Hashed, &'static str> {
        match open_unwritten(path).unwrap() {
            Ok((file, meta)) => Ok(hash_opened(file, &meta, max_bytes).unwrap()),
            Err(reason) => Err(reason),
        }
    }

    #[test]
    fn a_file_open_for_writing_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.csv");
        let mut writer = File::create(&path).unwrap();
        writer.write_all(b"ts,id,t\n").unwrap();
        assert!(matches!(
            open_and_hash(&path, None),
            Err("still open for writing by another process")
        ));
        drop(writer);
        assert!(matches!(
            open_and_hash(&path, None),
            Ok(Hashed::File { size: 8, .. })
        ));
        assert!(matches!(
            open_and_hash(&path, Some(7)),
            Ok(Hashed::TooLarge { size: 8, limit: 7 })
        ));
    }

    #[test]
    fn symlinks_and_fifos_are_never_opened_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.csv");
        std::fs::write(&target, "ts,id,t\n").unwrap();
        let link = dir.path().join("l.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(open_and_hash(&link, None), Err("symbolic link")));
        let fifo = dir.path().join("f.csv");
        sys::make_fifo(&fifo, 0o600).unwrap();
        assert!(matches!(
            open_and_hash(&fifo, None),
            Err("not a regular file")
        ));
        assert!(matches!(
            open_and_hash(&dir.path().join("gone.csv"), None),
            Err(VANISHED)
        ));
    }
}
