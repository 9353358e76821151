//! Archive stage: moves a finished file out of the data folder, never overwriting
//! anything, and writes the quarantine report next to a quarantined file.
//!
//! Moves are one atomic `renameat2(RENAME_NOREPLACE)` on the same filesystem. Across
//! filesystems the file is copied to a hidden temporary name, fsynced, linked into
//! place without overwriting, and only then removed from the data folder.
//!
//! Directory entries are not fsynced after a same-filesystem rename: if a power cut
//! undoes the rename, the file reappears in the data folder, is recognised by its
//! content hash (already committed) and archived again, so nothing is lost or doubled.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::read::ContentHash;
use crate::report::QuarantineReport;
use crate::sys;

/// A file could not be archived; it stays where it was.
#[derive(Debug, thiserror::Error)]
#[error("could not move {file} into {}: {source}", dir.display())]
pub struct ArchiveError {
    pub file: String,
    pub dir: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Which file a path named when it was opened (device and inode). The pipeline reads
/// through its open descriptor, so before moving a path it checks that the path still
/// names the file it read: a producer may have renamed a new file over the old name
/// meanwhile, and that file must wait for its own turn, not be archived unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    pub fn inode(self) -> u64 {
        self.ino
    }

    /// True when `path` still names this file.
    pub fn is_at(self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Self::of(&meta) == self),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Creates `dir` (and parents) if missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Moves `src` into `dir` as `name`, or as `stem.HASH.ext` (then `stem.HASH.N.ext`)
/// when that name is taken. Returns the name used, or `None` (nothing moved) when
/// `src` no longer names the file `read`.
pub fn move_into(
    src: &Path,
    read: FileIdentity,
    dir: &Path,
    name: &str,
    hash: &ContentHash,
) -> Result<Option<String>, ArchiveError> {
    let fail = |source| ArchiveError {
        file: name.to_owned(),
        dir: dir.to_owned(),
        source,
    };
    if !read.is_at(src).map_err(fail)? {
        return Ok(None);
    }
    for candidate in candidates(name, hash, NAME_MAX) {
        match move_no_clobber(src, &dir.join(&candidate)) {
            Ok(()) => return Ok(Some(candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(io::Error::other("no free name left")))
}

/// Copies the first `size` bytes of `src` (opened) into `dir` as `name`, or as
/// `stem.HASH.ext` (then `stem.HASH.N.ext`) when that name is taken by another file,
/// never overwriting; the copy keeps `src`'s modification time. A copy already there
/// (the same size and modification time) is not made again. Returns the name, and
/// whether it was copied now.
pub fn copy_into(
    src: &File,
    dir: &Path,
    name: &str,
    hash: &ContentHash,
) -> Result<(String, bool), ArchiveError> {
    let fail = |source| ArchiveError {
        file: name.to_owned(),
        dir: dir.to_owned(),
        source,
    };
    let meta = src.metadata().map_err(fail)?;
    let mtime = meta.modified().map_err(fail)?;
    for candidate in candidates(name, hash, NAME_MAX) {
        let target = dir.join(&candidate);
        match fs::symlink_metadata(&target) {
            Ok(there) if there.len() == meta.len() && there.modified().ok() == Some(mtime) => {
                return Ok((candidate, false));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
        }
        let (tmp, mut to) = create_temp(dir).map_err(fail)?;
        let copied = (|| {
            let mut from = src.try_clone()?;
            io::Seek::rewind(&mut from)?;
            io::copy(&mut io::Read::take(from, meta.len()), &mut to)?;
            to.set_modified(mtime)?;
            to.sync_all()?;
            fs::hard_link(&tmp, &target)
        })();
        let _ = fs::remove_file(&tmp);
        match copied {
            Ok(()) => {
                File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
                return Ok((candidate, true));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(io::Error::other("no free name left")))
}

/// Writes `report` as `NAME.error.json`, then moves `src` to `NAME`, with `NAME` chosen
/// so that neither overwrites anything. Returns the name used, or `None` (nothing
/// written or moved) when `src` no longer names the file `read`.
pub fn quarantine(
    src: &Path,
    read: FileIdentity,
    dir: &Path,
    report: &mut QuarantineReport,
    hash: &ContentHash,
) -> Result<Option<String>, ArchiveError> {
    let fail = |source| ArchiveError {
        file: report.file.clone(),
        dir: dir.to_owned(),
        source,
    };
    if !read.is_at(src).map_err(fail)? {
        return Ok(None);
    }
    for candidate in candidates(&report.file, hash, NAME_MAX - REPORT_SUFFIX.len()) {
        let report_path = dir.join(format!("{candidate}{REPORT_SUFFIX}"));
        let target = dir.join(&candidate);
        if target.symlink_metadata().is_ok() {
            continue;
        }
        report.quarantined_as = candidate.clone();
        let json = serde_json::to_vec_pretty(&*report).map_err(|e| fail(e.into()))?;
        match write_new(&report_path, &json) {
            Ok(()) => {}
            // A report without its file is what an attempt interrupted between writing
            // the report and moving the file leaves behind: this attempt takes its place.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                replace(&report_path, &json).map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
        }
        match move_no_clobber(src, &target) {
            Ok(()) => return Ok(Some(candidate)),
            Err(e) => {
                let _ = fs::remove_file(&report_path);
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(fail(e));
                }
            }
        }
    }
    Err(fail(io::Error::other("no free name left")))
}

/// Longest file name (in bytes) that Linux filesystems accept.
/// Writes a new file into the quarantine folder `dir` under `report.file` (never
/// overwriting), beside its report: the rejected rows of a partial load. `write` fills
/// a hidden temporary file first, so a kill leaves no half-written file in view.
pub fn quarantine_new(
    dir: &Path,
    report: &mut QuarantineReport,
    hash: &ContentHash,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<Option<String>, ArchiveError> {
    let fail = |source| ArchiveError {
        file: report.file.clone(),
        dir: dir.to_owned(),
        source,
    };
    let (temp, mut file) = create_temp(dir).map_err(fail)?;
    let written = write(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| file.metadata());
    let meta = match written {
        Ok(meta) => meta,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(fail(e));
        }
    };
    let result = quarantine(&temp, FileIdentity::of(&meta), dir, report, hash);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

const NAME_MAX: usize = 255;
/// Appended to a quarantined file's name for its report.
pub const REPORT_SUFFIX: &str = ".error.json";

/// `name`, then `stem.HASH12.ext`, then `stem.HASH12.2.ext` … up to a bound. Every
/// candidate fits in `max_len` bytes: when it would not, the stem is shortened (at a
/// character boundary), so a name near the filesystem's limit still gets its hash
/// suffix, or its `.error.json` report.
pub fn candidates<'a>(
    name: &'a str,
    hash: &'a ContentHash,
    max_len: usize,
) -> impl Iterator<Item = String> + 'a {
    let (stem, ext) = match name.rfind('.') {
        // A long "extension" is part of the name, not a type.
        Some(i) if i > 0 && name.len() - i <= 16 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let fit = move |tail: String| {
        let room = max_len.saturating_sub(tail.len());
        let mut cut = stem.len().min(room);
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{tail}", &stem[..cut])
    };
    std::iter::once(fit(ext.to_owned()))
        .chain(std::iter::once(fit(format!(".{}{ext}", hash.short()))))
        .chain((2..1000).map(move |n| fit(format!(".{}.{n}{ext}", hash.short()))))
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Prefix and suffix of the hidden temporary files the agent writes in `processed/` and
/// `quarantine/` before renaming them into place.
const TEMP_PREFIX: &str = ".sensor-ingest-";
const TEMP_SUFFIX: &str = ".tmp";

/// Creates a hidden temporary file in `dir` and locks it (`flock`) for as long as the
/// returned `File` is open. The lock tells [`remove_orphaned_temps`] that its writer is
/// alive; the kernel drops it when the writer exits, even on SIGKILL.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File)> {
    let path = dir.join(format!(
        "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
        uuid::Uuid::now_v7()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    sys::try_lock_exclusive(&file)?;
    Ok((path, file))
}

/// Deletes the temporary files that an agent killed mid-write left in `dir`: those
/// whose lock nobody holds. A temporary file another running agent is writing is
/// locked, and kept. Returns how many were deleted.
pub fn remove_orphaned_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = sys::open_nofollow(&path) else {
            continue;
        };
        if sys::try_lock_exclusive(&file).is_ok() {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to a hidden temporary file beside `path`, then renames it over `path`,
/// so `path` is never seen half written.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tmp, mut file) = create_temp(dir)?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    drop(file);
    result
}

/// Renames `src` to `dst`, failing with `AlreadyExists` instead of replacing `dst`.
pub fn move_no_clobber(src: &Path, dst: &Path) -> io::Result<()> {
    match sys::rename_noreplace(src, dst) {
        Ok(()) => Ok(()),
        // The filesystem has no RENAME_NOREPLACE: a hard link is just as exclusive.
        Err(e) if sys::is_noreplace_unsupported(&e) => {
            fs::hard_link(src, dst)?;
            fs::remove_file(src)
        }
        Err(e) if sys::crosses_devices(&e) => copy_across(src, dst),
        Err(e) => Err(e),
    }
}

/// Copy to a hidden temporary file beside `dst`, fsync, link into place, then delete
/// the temporary and the source.
fn copy_across(src: &Path, dst: &Path) -> io::Result<()> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    let (tmp, mut to) = create_temp(dir)?;
    let result = (|| {
        let mut from = File::open(src)?;
        io::copy(&mut from, &mut to)?;
        to.sync_all()?;
        fs::hard_link(&tmp, dst)?;
        File::open(dir)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    drop(to);
    result?;
    fs::remove_file(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str) -> ContentHash {
        ContentHash::of_reader(text.as_bytes()).unwrap().0
    }

    #[test]
    fn a_taken_name_gets_the_hash_then_a_counter() {
        let dir = tempfile::tempdir().unwrap();
        let (src_dir, dst) = (dir.path().join("in"), dir.path().join("out"));
        ensure_dir(&src_dir).unwrap();
        ensure_dir(&dst).unwrap();
        let h = hash("x");
        let mut names = Vec::new();
        for content in ["one", "two", "three"] {
            let src = src_dir.join("a.csv");
            fs::write(&src, content).unwrap();
            let id = FileIdentity::of(&fs::metadata(&src).unwrap());
            names.push(move_into(&src, id, &dst, "a.csv", &h).unwrap().unwrap());
            assert!(!src.exists());
        }
        let short = h.short();
        assert_eq!(
            names,
            vec![
                "a.csv".to_owned(),
                format!("a.{short}.csv"),
                format!("a.{short}.2.csv")
            ]
        );
        assert_eq!(fs::read_to_string(dst.join("a.csv")).unwrap(), "one");
        assert_eq!(fs::read_to_string(dst.join(&names[2])).unwrap(), "three");
    }

    #[test]
    fn a_file_replaced_under_the_same_name_is_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.csv");
        fs::write(&src, "read").unwrap();
        let read = FileIdentity::of(&fs::metadata(&src).unwrap());
        let newer = dir.path().join("incoming");
        fs::write(&newer, "newer").unwrap();
        fs::rename(&newer, &src).unwrap();
        let out = dir.path().join("out");
        ensure_dir(&out).unwrap();
        assert_eq!(
            move_into(&src, read, &out, "a.csv", &hash("read")).unwrap(),
            None
        );
        assert_eq!(
            fs::read_to_string(&src).unwrap(),
            "newer",
            "left for its own turn"
        );
        assert!(fs::read_dir(&out).unwrap().next().is_none());
    }

    #[test]
    fn a_report_left_without_its_file_is_replaced_not_orphaned() {
        let dir = tempfile::tempdir().unwrap();
        let (data, q) = (dir.path().join("data"), dir.path().join("q"));
        ensure_dir(&data).unwrap();
        ensure_dir(&q).unwrap();
        // An earlier attempt wrote the report (here: half of it) and died before the move.
        fs::write(q.join("bad.csv.error.json"), "{\"file\": \"bad.cs").unwrap();
        let src = data.join("bad.csv");
        fs::write(&src, "bytes").unwrap();
        let read = FileIdentity::of(&fs::metadata(&src).unwrap());
        let mut report = QuarantineReport {
            file: "bad.csv".into(),
            quarantined_as: String::new(),
            content_hash: hash("bytes").to_string(),
            size_bytes: 5,
            quarantined_at: chrono::Utc::now(),
            ledger_id: uuid::Uuid::now_v7(),
            reason: "r".into(),
            rule: crate::rule::Rule::EmptyFile,
            rows_read: 0,
            invalid_rows: 0,
            errors_total: 1,
            errors_truncated: false,
            errors: Vec::new(),
            copy_lines: None,
        };
        let name = quarantine(&src, read, &q, &mut report, &hash("bytes")).unwrap();
        assert_eq!(name.as_deref(), Some("bad.csv"));
        let written: QuarantineReport =
            serde_json::from_slice(&fs::read(q.join("bad.csv.error.json")).unwrap()).unwrap();
        assert_eq!(written, report);
        let mut names: Vec<_> = fs::read_dir(&q)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["bad.csv", "bad.csv.error.json"]);
    }

    #[test]
    fn names_near_the_limit_still_get_a_suffix_and_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let (data, out) = (dir.path().join("data"), dir.path().join("out"));
        ensure_dir(&data).unwrap();
        ensure_dir(&out).unwrap();
        // 251 bytes: 'é' is two bytes, so a cut must respect character boundaries.
        let name = format!("{}.csv", "é".repeat(123) + "a");
        assert_eq!(name.len(), 251);
        let h = hash("x");
        let mut moved = Vec::new();
        for _ in 0..3 {
            let src = data.join(&name);
            fs::write(&src, "content").unwrap();
            let id = FileIdentity::of(&fs::metadata(&src).unwrap());
            moved.push(move_into(&src, id, &out, &name, &h).unwrap().unwrap());
        }
        assert_eq!(moved[0], name, "a name that fits is kept as it is");
        for m in &moved {
            assert!(m.len() <= NAME_MAX && m.ends_with(".csv"), "{m}");
            assert!(out.join(m).exists());
        }
        assert!(moved[1].contains(h.short()) && moved[2].ends_with(".2.csv"));
        let q: Vec<String> = candidates(&name, &h, NAME_MAX - REPORT_SUFFIX.len())
            .take(3)
            .collect();
        assert!(q.iter().all(|c| c.len() + REPORT_SUFFIX.len() <= NAME_MAX));
        assert!(q.iter().all(|c| c.ends_with(".csv")));
        let long_ext = format!("a.{}", "x".repeat(253));
        assert!(candidates(&long_ext, &h, NAME_MAX).all(|c| c.len() <= NAME_MAX));
    }

    #[test]
    fn move_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        let e = move_no_clobber(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&b).unwrap(), "b");
        assert!(a.exists());
    }

    #[test]
    fn copy_across_keeps_bytes_and_removes_source() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"\x00\xffdata").unwrap();
        copy_across(&a, &b).unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"\x00\xffdata");
        assert!(!a.exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn only_unlocked_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // One left by a killed writer (no lock), one being written (locked), and
        // files that are not ours.
        let orphan = dir.path().join(".sensor-ingest-0000.tmp");
        std::fs::write(&orphan, b"half a report").unwrap();
        let (live, _held) = create_temp(dir.path()).unwrap();
        for other in [".other.tmp", "x.csv", ".sensor-ingest-x.csv"] {
            std::fs::write(dir.path().join(other), b"keep").unwrap();
        }
        assert_eq!(remove_orphaned_temps(dir.path()).unwrap(), 1);
        assert!(!orphan.exists());
        assert!(live.exists(), "a temp file whose writer is alive is kept");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}
