//! Archiving a followed file that stopped growing (`FOLLOW_ARCHIVE_AFTER`, a profile's
//! `[source] archive_after`): a copy into `processed/`, or a move there, made only
//! when no writer could still append — its last increment committed and read to its
//! end (the offset is its size: no partial last line), not grown for the time asked,
//! and no process holding it open for writing (`/proc`; when that cannot be known,
//! nothing is archived). The agent forgets a moved file's position first, then moves
//! it: the next file of the name is a new file, read from its start.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::archive::{self, ArchiveError, FileIdentity};
pub use crate::profile::{ArchiveIdle, Keep};
use crate::read::ContentHash;
use crate::sink::FollowedFile;
use crate::sys;

/// Whether a followed file may be archived now.
#[derive(Debug)]
pub enum Idle {
    /// Yes: the file as opened (read only), its identity, and the name its copy or
    /// move is given when its own name is taken in `processed/`.
    Ready {
        file: File,
        identity: FileIdentity,
        hash: ContentHash,
    },
    /// Not yet: why.
    Wait(String),
    /// Whether a writer holds it cannot be known: never archived while so.
    Unknown(String),
}

/// Whether the followed file at `path`, at `position`, may be archived at `now` by `rule`.
pub fn idle(
    path: &Path,
    position: &FollowedFile,
    rule: ArchiveIdle,
    now: SystemTime,
) -> io::Result<Idle> {
    use std::os::unix::fs::MetadataExt;
    let file = match crate::intake::open_regular(path)? {
        Ok((file, _)) => file,
        Err(reason) => return Ok(Idle::Wait(reason.to_owned())),
    };
    let meta = file.metadata()?;
    if (meta.dev(), meta.ino()) != (position.device, position.inode) {
        return Ok(Idle::Wait("another file is under its name".to_owned()));
    }
    if meta.len() != position.offset {
        return Ok(Idle::Wait(format!(
            "not read to its end ({} of {} bytes committed)",
            position.offset,
            meta.len()
        )));
    }
    let still = now
        .duration_since(meta.modified()?)
        .unwrap_or(Duration::ZERO);
    if still < rule.after {
        return Ok(Idle::Wait(format!("it grew {} s ago", still.as_secs())));
    }
    match sys::writer_of(meta.dev(), meta.ino()) {
        Ok(Some(pid)) => Ok(Idle::Wait(format!(
            "process {pid} holds it open for writing"
        ))),
        Ok(None) => Ok(Idle::Ready {
            identity: FileIdentity::of(&meta),
            hash: ContentHash::derived(
                "archive",
                &format!(
                    "{}\0{}\0{}\0{}",
                    position.file_name,
                    meta.dev(),
                    meta.ino(),
                    meta.len()
                ),
            ),
            file,
        }),
        Err(e) => Ok(Idle::Unknown(format!(
            "whether a process holds it open for writing cannot be known: {e}"
        ))),
    }
}

/// Copies the ready file into `processed` as `name` (or a free name): the name, and
/// whether it was copied now (`false`: the same copy is there already).
pub fn copy(
    file: &File,
    processed: &Path,
    name: &str,
    hash: &ContentHash,
) -> Result<(String, bool), ArchiveError> {
    archive::copy_into(file, processed, name, hash)
}

/// Moves the ready file at `path` into `processed` as `name` (or a free name); `None`
/// when `path` no longer names it.
pub fn move_away(
    path: &Path,
    identity: FileIdentity,
    processed: &Path,
    name: &str,
    hash: &ContentHash,
) -> Result<Option<String>, ArchiveError> {
    archive::move_into(path, identity, processed, name, hash)
}
