//! A followed file (append mode): a file in the data folder that a logger keeps
//! appending to. It is never moved, renamed or written; each growth is an *increment*,
//! the complete new lines after the position its last increment committed, read with
//! the file's own header lines in front (re-read from the start, bounded) into an
//! unnamed temporary file, so the reading pass sees a small file of its usual shape.
//!
//! [`snapshot`] decides where an increment starts: after the committed position while
//! the file is the one read (same device and inode, no shorter, the same header lines
//! and the same last bytes before the position), else from the first data line again
//! ([`Restart`]). It stops at the last newline: a trailing line without its newline is
//! left for the next growth.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::intake;
use crate::read::{ContentHash, TextLayout};
use crate::sink::FollowedFile;

/// How the data folder's files are taken (`SOURCE_MODE`, a profile's `[source] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Loaded once, whole, then moved to `processed/` (or `quarantine/`).
    #[default]
    Move,
    /// Followed in place: every growth loads its complete new lines.
    Append,
}

impl FromStr for Mode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "move" => Ok(Mode::Move),
            "append" => Ok(Mode::Append),
            _ => Err(()),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Move => "move",
            Mode::Append => "append",
        })
    }
}

/// The header lines (preamble, header, unit rows) are re-read for every increment, up
/// to this many bytes: more is refused rather than read without bound.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The bytes before the committed position whose hash tells a rewritten file.
pub const TAIL_BYTES: u64 = 4096;

/// Blocks read at a time when looking for the last newline and copying.
const BLOCK: usize = 64 * 1024;

/// Why an increment reads the file from its first data line again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never followed before.
    New,
    /// Another file (device, inode) under the name: rotated by rename and recreate.
    Rotated,
    /// Shorter than the position committed.
    Truncated,
    /// The header lines changed.
    HeaderChanged,
    /// The bytes before the position changed.
    Rewritten,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::New => "new",
            Restart::Rotated => "rotated",
            Restart::Truncated => "truncated",
            Restart::HeaderChanged => "header changed",
            Restart::Rewritten => "rewritten",
        }
    }
}

/// The complete new lines of a followed file, ready to read.
#[derive(Debug)]
pub struct Increment {
    /// The header lines, then the new lines: at its start.
    pub spool: File,
    /// BLAKE3 of the spool's bytes (what the reading pass hashes).
    pub content: ContentHash,
    /// The spool's size.
    pub size: u64,
    /// The byte range of the followed file the new lines are.
    pub start: u64,
    pub end: u64,
    /// Header lines at the top of the spool.
    pub header_lines: u64,
    /// Physical lines of the followed file before `start`: a spool line `l` after the
    /// header is line `l - header_lines + lines_before` of the file.
    pub lines_before: u64,
    /// The position this increment commits (its `ledger_id` is set by the pipeline).
    pub position: FollowedFile,
    /// Why it starts over, when it does.
    pub restart: Option<Restart>,
    /// The followed file as read (for the rows a profile skips, written beside it).
    pub identity: super::Identity,
}

/// What [`snapshot`] found.
#[derive(Debug)]
pub enum Snapshot {
    /// Nothing to load now: why.
    Nothing(&'static str),
    Increment(Box<Increment>),
}

/// The lines before the data of a file read with `layout`: its preamble, the header
/// (unless the profile names the columns) and the lines after the header.
pub fn header_lines(layout: &TextLayout) -> u64 {
    u64::from(layout.preamble)
        + u64::from(layout.names.is_none())
        + u64::from(layout.skip_after_header)
}

/// The increment of the file at `path` (known as `name`) after `previous`, with
/// `header_lines` lines before its data.
pub fn snapshot(
    path: &Path,
    name: &str,
    previous: Option<&FollowedFile>,
    header_lines: u64,
) -> io::Result<Snapshot> {
    let file = match intake::open_regular(path)? {
        Ok((file, _)) => file,
        Err(reason) => return Ok(Snapshot::Nothing(reason)),
    };
    let meta = file.metadata()?;
    let Some(header) = read_header(&file, header_lines)? else {
        return Ok(Snapshot::Nothing("its header lines are not complete yet"));
    };
    let header_len = header.len() as u64;
    let header_hash = blake3::hash(&header).to_hex().to_string();
    let size = meta.len();
    let restart = restart_of(&file, &meta, &header, previous)?;
    let (start, lines_before) = match (restart, previous) {
        (None, Some(p)) => (p.offset, p.lines),
        _ => (header_len, header_lines),
    };
    let Some(end) = last_newline_end(&file, start, size)? else {
        return Ok(Snapshot::Nothing("no complete new line"));
    };
    let (spool, content, new_lines, copied) = spool(&file, &header, start, end)?;
    // A writer that rewrote the file while it was copied (a truncate and write, an
    // editor's save) may have put other lines at these offsets: read again later.
    let still_before = match (restart, previous) {
        (None, Some(p)) => tail_hash(&file, header_len, p.offset)? == p.tail_hash,
        _ => true,
    };
    if !still_before
        || read_header(&file, header_lines)?.as_deref() != Some(&header[..])
        || hash_range(&file, start, end)? != copied
    {
        return Ok(Snapshot::Nothing("it changed while it was read"));
    }
    let grown_at: DateTime<Utc> = meta
        .modified()
        .map(DateTime::from)
        .unwrap_or_else(|_| Utc::now());
    let position = FollowedFile {
        file_name: name.to_owned(),
        device: meta.dev(),
        inode: meta.ino(),
        offset: end,
        lines: lines_before + new_lines,
        header_hash,
        tail_hash: tail_hash(&file, header_len, end)?,
        grown_at,
        ledger_id: Uuid::nil(),
    };
    Ok(Snapshot::Increment(Box::new(Increment {
        spool,
        content,
        size: header_len + (end - start),
        start,
        end,
        header_lines,
        lines_before,
        position,
        restart,
        identity: super::Identity::File(super::FileId::of(&meta)),
    })))
}

/// Why the file (opened as `file`, with `header` its header lines) is read from its
/// first data line again rather than after `previous`; `None`: it goes on from there.
fn restart_of(
    file: &File,
    meta: &std::fs::Metadata,
    header: &[u8],
    previous: Option<&FollowedFile>,
) -> io::Result<Option<Restart>> {
    let header_len = header.len() as u64;
    Ok(match previous {
        None => Some(Restart::New),
        Some(p) if (p.device, p.inode) != (meta.dev(), meta.ino()) => Some(Restart::Rotated),
        Some(p) if meta.len() < p.offset || p.offset < header_len => Some(Restart::Truncated),
        Some(p) if p.header_hash != blake3::hash(header).to_hex().to_string() => {
            Some(Restart::HeaderChanged)
        }
        Some(p) if tail_hash(file, header_len, p.offset)? != p.tail_hash => {
            Some(Restart::Rewritten)
        }
        Some(_) => None,
    })
}

/// Where a followed file stands against its stored position, read without loading
/// anything (`check`): what its next increment would read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Its size now.
    pub size: u64,
    /// Why it would be read from its first data line again; `None`: the bytes before
    /// the stored offset still match, it goes on after them.
    pub restart: Option<Restart>,
    /// Where the next increment starts.
    pub start: u64,
    /// Complete lines after `start`: what the next increment would read.
    pub pending_lines: u64,
    /// Bytes after the last newline: a partial line held back until its newline.
    pub partial_bytes: u64,
    /// Its modification time: its last growth.
    pub modified: DateTime<Utc>,
}

/// Where the file at `path`, with `header_lines` lines before its data, stands after
/// `previous` (`None`: never followed); `Err` with why when it cannot be followed now
/// (not a regular file, header lines not complete). Reads the pending bytes once,
/// a block at a time, to count their lines.
pub fn standing(
    path: &Path,
    previous: Option<&FollowedFile>,
    header_lines: u64,
) -> io::Result<Result<Standing, &'static str>> {
    let file = match intake::open_regular(path)? {
        Ok((file, _)) => file,
        Err(reason) => return Ok(Err(reason)),
    };
    let meta = file.metadata()?;
    let Some(header) = read_header(&file, header_lines)? else {
        return Ok(Err("its header lines are not complete yet"));
    };
    let restart = restart_of(&file, &meta, &header, previous)?;
    let start = match (restart, previous) {
        (None, Some(p)) => p.offset,
        _ => header.len() as u64,
    };
    let size = meta.len();
    let end = last_newline_end(&file, start, size)?.unwrap_or(start);
    Ok(Ok(Standing {
        size,
        restart,
        start,
        pending_lines: count_newlines(&file, start, end)?,
        partial_bytes: size - end,
        modified: meta
            .modified()
            .map(DateTime::from)
            .unwrap_or_else(|_| Utc::now()),
    }))
}

/// The newlines among the bytes `start..end` of `file`.
fn count_newlines(file: &File, start: u64, end: u64) -> io::Result<u64> {
    let mut buf = vec![0; BLOCK];
    let (mut at, mut lines) = (start, 0u64);
    while at < end {
        let n = BLOCK.min((end - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        at += n as u64;
    }
    Ok(lines)
}

/// The first `lines` lines of `file`, each with its newline; `None` while they are
/// not all there. Over [`MAX_HEADER_BYTES`] is an error.
fn read_header(file: &File, lines: u64) -> io::Result<Option<Vec<u8>>> {
    let mut reader = io::BufReader::new(file.try_clone()?);
    reader.rewind()?;
    let mut limited = reader.take(MAX_HEADER_BYTES + 1);
    let mut header = Vec::new();
    for _ in 0..lines {
        let before = header.len();
        limited.read_until(b'\n', &mut header)?;
        if header.len() as u64 > MAX_HEADER_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the header lines are longer than {MAX_HEADER_BYTES} bytes"),
            ));
        }
        if header.len() == before || header.last() != Some(&b'\n') {
            return Ok(None);
        }
    }
    Ok(Some(header))
}

/// BLAKE3 (hex) of the last [`TAIL_BYTES`] before `end`, not reaching into the header.
fn tail_hash(file: &File, header_len: u64, end: u64) -> io::Result<String> {
    let from = end.saturating_sub(TAIL_BYTES).max(header_len).min(end);
    let mut buf = vec![0; (end - from) as usize];
    file.read_exact_at(&mut buf, from)?;
    Ok(blake3::hash(&buf).to_hex().to_string())
}

/// The offset just after the last newline in `start..size`, if there is one: read
/// backwards block by block, so a long file costs only its unfinished last line.
fn last_newline_end(file: &File, start: u64, size: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0; BLOCK];
    let mut to = size;
    while to > start {
        let from = to.saturating_sub(BLOCK as u64).max(start);
        let block = &mut buf[..(to - from) as usize];
        file.read_exact_at(block, from)?;
        if let Some(i) = block.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(from + i as u64 + 1));
        }
        to = from;
    }
    Ok(None)
}

/// BLAKE3 of the bytes `start..end` of `file`.
fn hash_range(file: &File, start: u64, end: u64) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; BLOCK];
    let mut at = start;
    while at < end {
        let n = BLOCK.min((end - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize())
}

/// Writes `header` and the bytes `start..end` of `file` into an unnamed temporary file:
/// it, the BLAKE3 of what was written, the newlines among the new bytes, and the
/// BLAKE3 of the new bytes alone.
fn spool(
    file: &File,
    header: &[u8],
    start: u64,
    end: u64,
) -> io::Result<(File, ContentHash, u64, blake3::Hash)> {
    let mut out = io::BufWriter::new(tempfile::tempfile()?);
    let mut hasher = blake3::Hasher::new();
    let mut copied = blake3::Hasher::new();
    out.write_all(header)?;
    hasher.update(header);
    let mut buf = vec![0; BLOCK];
    let (mut at, mut lines) = (start, 0u64);
    while at < end {
        let n = BLOCK.min((end - at) as usize);
        let block = &mut buf[..n];
        file.read_exact_at(block, at)?;
        lines += block.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(block)?;
        hasher.update(block);
        copied.update(block);
        at += n as u64;
    }
    let mut spool = out.into_inner().map_err(|e| e.into_error())?;
    spool.rewind()?;
    Ok((
        spool,
        ContentHash::from_hasher(&hasher),
        lines,
        copied.finalize(),
    ))
}

/// The ledger's identity for an increment: the file's name, the increment it follows,
/// its byte range and its content. Never a content hash (it starts `append-`), so no
/// whole file's content and no other increment can take its place.
pub fn increment_hash(name: &str, previous: Option<Uuid>, inc: &Increment) -> ContentHash {
    let previous = previous.map(|id| id.to_string()).unwrap_or_default();
    ContentHash::derived(
        "append",
        &format!(
            "{name}\0{previous}\0{}\0{}\0{}\0{}",
            inc.position.inode, inc.start, inc.end, inc.content
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(s: Snapshot) -> Box<Increment> {
        match s {
            Snapshot::Increment(i) => i,
            Snapshot::Nothing(why) => panic!("nothing: {why}"),
        }
    }

    fn spooled(inc: &mut Increment) -> String {
        let mut s = String::new();
        inc.spool.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn increments_hold_the_header_and_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ts,id,t\n1,a,2\n2,a,3").unwrap();
        let mut first = position(snapshot(&path, "a.csv", None, 1).unwrap());
        assert_eq!(first.restart, Some(Restart::New));
        assert_eq!(spooled(&mut first), "ts,id,t\n1,a,2\n");
        assert_eq!((first.start, first.end, first.position.lines), (8, 14, 2));
        // The partial line is held back until its newline comes.
        let p = first.position.clone();
        assert!(matches!(
            snapshot(&path, "a.csv", Some(&p), 1).unwrap(),
            Snapshot::Nothing(_)
        ));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"\n3,a,4\n").unwrap();
        let mut next = position(snapshot(&path, "a.csv", Some(&p), 1).unwrap());
        assert_eq!(next.restart, None);
        assert_eq!(spooled(&mut next), "ts,id,t\n2,a,3\n3,a,4\n");
        assert_eq!((next.lines_before, next.position.lines), (2, 4));
    }

    #[test]
    fn rewrites_truncation_and_rotation_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ts,id,t\n1,a,2\n2,a,3\n").unwrap();
        let p = position(snapshot(&path, "a.csv", None, 1).unwrap()).position;
        std::fs::write(&path, "ts,id,t\n1,a,9\n2,a,3\n4,a,5\n").unwrap();
        let again = position(snapshot(&path, "a.csv", Some(&p), 1).unwrap());
        assert_eq!(again.restart, Some(Restart::Rewritten));
        std::fs::write(&path, "ts,id,t\n1,a,2\n").unwrap();
        let again = position(snapshot(&path, "a.csv", Some(&p), 1).unwrap());
        assert_eq!(again.restart, Some(Restart::Truncated));
        std::fs::rename(&path, dir.path().join("a.csv.1")).unwrap();
        std::fs::write(&path, "ts,id,t\n1,a,2\n2,a,3\n").unwrap();
        let again = position(snapshot(&path, "a.csv", Some(&p), 1).unwrap());
        assert_eq!(again.restart, Some(Restart::Rotated));
        assert_eq!(again.start, 8);
    }

    #[test]
    fn standing_counts_pending_lines_and_the_partial_one_and_sees_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ts,id,t\n1,a,2\n").unwrap();
        let fresh = standing(&path, None, 1).unwrap().unwrap();
        assert_eq!(
            (
                fresh.restart,
                fresh.start,
                fresh.pending_lines,
                fresh.partial_bytes
            ),
            (Some(Restart::New), 8, 1, 0)
        );
        let p = position(snapshot(&path, "a.csv", None, 1).unwrap()).position;
        std::fs::write(&path, "ts,id,t\n1,a,2\n2,a,3\n3,a,4\n4,a").unwrap();
        let s = standing(&path, Some(&p), 1).unwrap().unwrap();
        assert_eq!(
            (s.restart, s.start, s.pending_lines, s.partial_bytes, s.size),
            (None, 14, 2, 3, 29)
        );
        std::fs::write(&path, "ts,id,t\n1,a,9\n2,a,3\n").unwrap();
        let s = standing(&path, Some(&p), 1).unwrap().unwrap();
        assert_eq!(
            (s.restart, s.start, s.pending_lines),
            (Some(Restart::Rewritten), 8, 2)
        );
    }

    #[test]
    fn the_header_lines_must_be_complete_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.dat");
        std::fs::write(&path, "\"TOA5\",\"pond\"\nts,id").unwrap();
        assert!(matches!(
            snapshot(&path, "a.dat", None, 2).unwrap(),
            Snapshot::Nothing(_)
        ));
        std::fs::write(&path, vec![b'x'; (MAX_HEADER_BYTES + 10) as usize]).unwrap();
        assert!(snapshot(&path, "a.dat", None, 1).is_err());
    }
}
