//! Listing and statting the data folder: the only place the watcher looks at files
//! itself. `regular_file` and `is_regular_file` decide what counts as a data file on
//! disk (a regular file, never followed through a symlink).

use std::io;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use super::Seen;
use crate::intake::{self, Found, display_name};
use crate::pattern::FilePattern;

/// Lists the regular files directly in `folder` whose names match `pattern`, oldest mtime
/// first (ties by name). Directories, FIFOs, sockets and symlinks are skipped without being
/// opened; names that are not valid UTF-8 are skipped with a warning. Fails only when the
/// folder itself cannot be listed.
pub fn scan(folder: &Path, pattern: &FilePattern) -> io::Result<Vec<Seen>> {
    walk(folder, pattern, false).map(|listing| listing.candidates)
}

/// What one listing of the data folder found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The data files, as [`scan`] returns them (oldest first).
    pub candidates: Vec<Seen>,
    /// Names of the regular files left aside by the pattern
    /// ([`FilePattern::leaves_aside`]: not hidden, not temporary, matching no glob),
    /// sorted by name. They are not statted beyond their file type.
    pub left_aside: Vec<String>,
}

/// Like [`scan`], and also lists the regular files that the pattern leaves aside.
pub fn list(folder: &Path, pattern: &FilePattern) -> io::Result<Listing> {
    walk(folder, pattern, true)
}

fn walk(folder: &Path, pattern: &FilePattern, with_left_aside: bool) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(folder)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warn!(folder = %folder.display(), error = %e, "could not read a folder entry; skipping it");
                continue;
            }
        };
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            warn!(folder = %folder.display(), name = ?os_name, "skipping a file whose name is not valid UTF-8");
            continue;
        };
        if pattern.matches(name) {
            listing.candidates.extend(regular_file(folder.join(name)));
        } else if with_left_aside
            && pattern.leaves_aside(name)
            // The type from the directory entry: no stat on most filesystems, and a
            // symlink is not followed.
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            listing.left_aside.push(name.to_owned());
        }
    }
    sort_oldest_first(&mut listing.candidates);
    listing.left_aside.sort_unstable();
    Ok(listing)
}

/// Stats `path` without following symlinks; `Some` only for a regular file.
pub(super) fn regular_file(path: PathBuf) -> Option<Seen> {
    match intake::look(&path) {
        Ok(Found::Regular(meta)) => match meta.modified() {
            Ok(mtime) => Some(Seen {
                size: meta.len(),
                mtime,
                path,
            }),
            Err(e) => {
                warn!(file = %display_name(&path), error = %e, "cannot read the modification time; skipping the file");
                None
            }
        },
        Ok(Found::NotRegular | Found::Gone) => None,
        Err(e) => {
            warn!(file = %display_name(&path), error = %e, "cannot read file metadata; skipping the file");
            None
        }
    }
}

/// True when `path` is still a regular file, not followed through a symlink; logs why not.
pub(super) async fn is_regular_file(path: &Path) -> bool {
    let owned = path.to_owned();
    let found = tokio::task::spawn_blocking(move || intake::look(&owned))
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
    match found {
        Ok(Found::Regular(_)) => true,
        Ok(Found::NotRegular) => {
            debug!(file = %display_name(path), "not a regular file; ignoring it");
            false
        }
        Ok(Found::Gone) => {
            debug!(file = %display_name(path), "file is gone before it could be sent");
            false
        }
        Err(e) => {
            warn!(file = %display_name(path), error = %e, "cannot read file metadata; skipping the file");
            false
        }
    }
}

/// Oldest mtime first, ties by path: the order in which files are offered.
pub(super) fn sort_oldest_first(files: &mut [Seen]) {
    files.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.path.cmp(&b.path)));
}

/// Runs `list` on the blocking pool: listing a folder on a network share can stall.
pub(super) async fn list_in_background(
    folder: &Path,
    pattern: &FilePattern,
) -> io::Result<Listing> {
    let (folder, pattern) = (folder.to_path_buf(), pattern.clone());
    tokio::task::spawn_blocking(move || list(&folder, &pattern))
        .await
        .map_err(io::Error::other)?
}

/// Stats `paths` on the blocking pool, keeping the regular files still present.
pub(super) async fn stat_in_background(paths: Vec<PathBuf>) -> io::Result<Vec<Seen>> {
    tokio::task::spawn_blocking(move || paths.into_iter().filter_map(regular_file).collect())
        .await
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::watch::test_support::{
        csv_pattern, mkfifo, name_of, set_mtime, write_aged, write_file,
    };

    #[test]
    fn scan_lists_regular_matching_files_by_mtime_then_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let base = SystemTime::now() - Duration::from_secs(3600);
        for (name, secs, content) in [
            ("a.csv", 30, &b"aaa"[..]),
            ("b.csv", 0, b"b"),
            ("d.csv", 60, b"dd"),
            ("C.CSV", 60, b"c"),
            ("e.txt", 0, b"e"),
            (".f.csv", 0, b"f"),
        ] {
            write_file(&d.join(name), content);
            set_mtime(&d.join(name), base + Duration::from_secs(secs));
        }
        fs::create_dir(d.join("g.csv")).expect("mkdir");
        mkfifo(&d.join("h.csv"));
        write_aged(
            &elsewhere.path().join("t.csv"),
            b"t",
            Duration::from_secs(7200),
        );
        std::os::unix::fs::symlink(elsewhere.path().join("t.csv"), d.join("i.csv"))
            .expect("symlink");

        let found = scan(d, &csv_pattern()).expect("scan");
        let names: Vec<String> = found.iter().map(|c| name_of(&c.path)).collect();
        assert_eq!(names, ["b.csv", "a.csv", "C.CSV", "d.csv"]);
        assert_eq!(found[1].size, 3);
        assert_eq!(found[1].path, d.join("a.csv"));
        assert_eq!(found[1].mtime, base + Duration::from_secs(30));
    }

    #[test]
    fn list_also_names_regular_files_left_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for name in [
            "a.csv",
            "readme.txt",
            "export.XLSX",
            ".hidden.txt",
            "b.txt.part",
        ] {
            write_aged(&d.join(name), b"x", Duration::from_secs(60));
        }
        fs::create_dir(d.join("sub.txt")).expect("mkdir");
        mkfifo(&d.join("f.txt"));
        write_file(&elsewhere.path().join("t.txt"), b"t");
        std::os::unix::fs::symlink(elsewhere.path().join("t.txt"), d.join("l.txt"))
            .expect("symlink");

        let listing = list(d, &csv_pattern()).expect("list");
        let names: Vec<String> = listing
            .candidates
            .iter()
            .map(|c| name_of(&c.path))
            .collect();
        assert_eq!(names, ["a.csv"]);
        assert_eq!(listing.left_aside, ["export.XLSX", "readme.txt"]);
        assert_eq!(scan(d, &csv_pattern()).expect("scan"), listing.candidates);
    }

    #[test]
    fn scan_of_missing_folder_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = scan(&dir.path().join("nope"), &csv_pattern()).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
