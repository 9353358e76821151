//! Every system call the agent makes itself, as safe functions: file locks, renames
//! that never replace, opens that never follow a symlink or block on a FIFO, write-lease
//! probes, and a few queries. Elsewhere the crate is safe code (`#![deny(unsafe_code)]`);
//! this module and the SQLite sink's C-API writer are the two exceptions.
//!
//! `rustix` makes the calls where it offers them, which needs no `unsafe` here; file
//! leases (`F_SETLEASE`) are not in rustix, so they go through `libc`.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{Access, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Takes an exclusive `flock` on `file` without waiting: fails (with `WouldBlock`) when
/// another open file description holds a lock on it. The lock lasts until every
/// descriptor of this open file is closed; the kernel drops it when the process exits,
/// even on SIGKILL.
pub fn try_lock_exclusive(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive)?;
    Ok(())
}

/// Takes a shared `flock` on `file` without waiting: fails (with `WouldBlock`) when
/// another open file description holds an exclusive lock on it. Shared locks coexist;
/// an exclusive one excludes them all. Released like [`try_lock_exclusive`]'s.
pub fn try_lock_shared(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockShared)?;
    Ok(())
}

/// Whether `file` lives on a network filesystem (NFS, SMB/CIFS), where `flock` is
/// mapped to the server's byte-range locks: those need a regular file, and an exclusive
/// one needs it open for writing, so a directory cannot be locked there.
pub fn on_network_filesystem(file: &File) -> io::Result<bool> {
    /// `SMB2_MAGIC_NUMBER` and `CIFS_SUPER_MAGIC` (linux/magic.h); rustix names NFS's.
    const SMB2: u64 = 0xfe53_4d42;
    const CIFS: u64 = 0xff53_4d42;
    let kind = rustix::fs::fstatfs(file)?.f_type as u64;
    Ok(kind == rustix::fs::NFS_SUPER_MAGIC as u64 || kind == SMB2 || kind == CIFS)
}

/// Renames `src` to `dst` (`renameat2` with `RENAME_NOREPLACE`), failing with
/// `AlreadyExists` instead of replacing `dst`. See [`is_noreplace_unsupported`] and
/// [`crosses_devices`] for the two failures a caller can work around.
pub fn rename_noreplace(src: &Path, dst: &Path) -> io::Result<()> {
    use rustix::fs::CWD;
    rustix::fs::renameat_with(CWD, src, CWD, dst, RenameFlags::NOREPLACE)?;
    Ok(())
}

/// Whether `e`, from [`rename_noreplace`], says the filesystem or kernel has no
/// `RENAME_NOREPLACE` (`EINVAL`, `ENOSYS`).
pub fn is_noreplace_unsupported(e: &io::Error) -> bool {
    matches!(Errno::from_io_error(e), Some(Errno::INVAL | Errno::NOSYS))
}

/// Whether `e`, from [`rename_noreplace`], says source and destination are on different
/// filesystems (`EXDEV`).
pub fn crosses_devices(e: &io::Error) -> bool {
    Errno::from_io_error(e) == Some(Errno::XDEV)
}

/// Opens `path` for reading without following a symlink in its last component
/// (`O_NOFOLLOW`): a symlink fails with the error [`is_symlink_loop`] recognises.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    open_read_with(path, OFlags::NOFOLLOW)
}

/// Opens `path` for reading without following a symlink in its last component
/// (`O_NOFOLLOW`) and without blocking when it is a FIFO with no writer
/// (`O_NONBLOCK`). A symlink fails with the error [`is_symlink_loop`] recognises; a FIFO
/// or device opens, so check the metadata before reading.
pub fn open_nofollow_nonblock(path: &Path) -> io::Result<File> {
    open_read_with(path, OFlags::NOFOLLOW | OFlags::NONBLOCK)
}

fn open_read_with(path: &Path, flags: OFlags) -> io::Result<File> {
    // The flags are small positive constants; std adds O_RDONLY and O_CLOEXEC.
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

/// Whether `e`, from [`open_nofollow`] or [`open_nofollow_nonblock`], says the path is a
/// symbolic link (`ELOOP`).
pub fn is_symlink_loop(e: &io::Error) -> bool {
    Errno::from_io_error(e) == Some(Errno::LOOP)
}

/// True when another process has `file` open for writing, as far as the kernel can
/// tell us: a read lease cannot be taken on a file open for writing (`EAGAIN`). This
/// catches writers the watcher never saw, such as one that was already writing when
/// the agent started. Where leases are unavailable (not the owner and no
/// CAP_LEASE, or a filesystem without leases) it answers false and the settle rule
/// alone applies.
pub fn open_for_writing_elsewhere(file: &File) -> bool {
    try_read_lease(file).is_err_and(|e| e.raw_os_error() == Some(libc::EAGAIN))
}

/// Takes a read lease on `file` and releases it at once.
fn try_read_lease(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor `file` owns, alive for the call; F_SETLEASE
    // takes an int argument.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if rc == 0 {
        // Release at once: holding it would make a writer's open() wait for us.
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

/// A process that holds the file (`device`, `inode`) open for writing (`O_WRONLY` or
/// `O_RDWR`), found in `/proc/*/fd` and the flags of `/proc/*/fdinfo`: its pid, or
/// `None`. An error when that cannot be known for every process: `/proc` unreadable,
/// mounted with `hidepid` (other processes hidden), or a process's descriptors not
/// readable by this user. Processes that end during the scan are passed over.
pub fn writer_of(device: u64, inode: u64) -> io::Result<Option<u32>> {
    use std::os::unix::fs::MetadataExt;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    if mounts.lines().any(|l| {
        l.split(" - ").nth(1).is_some_and(|fs| {
            fs.starts_with("proc ")
                && fs.contains("hidepid=")
                && !fs.contains("hidepid=0")
                && !fs.contains("hidepid=off")
        })
    }) {
        return Err(io::Error::other(
            "/proc is mounted with hidepid: other processes are hidden",
        ));
    }
    let gone = |e: &io::Error| {
        e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
    };
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) if gone(&e) => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("the open files of process {pid} cannot be read: {e}"),
                ));
            }
        };
        for fd in fds {
            let Ok(fd) = fd else { continue };
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            if (meta.dev(), meta.ino()) != (device, inode) {
                continue;
            }
            let info = entry.path().join("fdinfo").join(fd.file_name());
            let flags = match std::fs::read_to_string(&info) {
                Ok(text) => text
                    .lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok()),
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let Some(flags) = flags else {
                return Err(io::Error::other(format!(
                    "{} has no flags line",
                    info.display()
                )));
            };
            let access = flags & libc::O_ACCMODE as u32;
            if access == libc::O_WRONLY as u32 || access == libc::O_RDWR as u32 {
                return Ok(Some(pid));
            }
        }
    }
    Ok(None)
}

/// Creates a FIFO (named pipe) at `path` with permission bits `mode` (less the umask).
pub fn make_fifo(path: &Path, mode: u32) -> io::Result<()> {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Succeeds when this process may create files in the directory `dir` (write and
/// search permission, `access(W_OK | X_OK)`), as the kernel answers it — which covers
/// read-only mounts too — without creating one.
pub fn can_create_in(dir: &Path) -> io::Result<()> {
    rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK)?;
    Ok(())
}

/// This machine's host name (`uname`'s node name).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// `host:pid`: the default agent name (`AGENT_ID`), recorded with every ledger row.
pub fn agent_name() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// Sets SIGPIPE back to its default (the process ends when its reader goes), for the
/// commands that only print: Rust starts with it ignored, so `println!` into a closed
/// pipe (`check … | head`) panics instead. Call it first thing in `main`, before any
/// thread starts.
pub fn end_quietly_on_a_closed_pipe() {
    // SAFETY: SIG_DFL is a valid disposition for SIGPIPE, and no thread runs yet that
    // could be changing signal dispositions at the same time.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_is_found_in_proc_and_a_reader_is_not() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "x\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let _reader = File::open(&path).unwrap();
        assert_eq!(writer_of(meta.dev(), meta.ino()).unwrap(), None);
        let writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        assert_eq!(
            writer_of(meta.dev(), meta.ino()).unwrap(),
            Some(std::process::id())
        );
        drop(writer);
        assert_eq!(writer_of(meta.dev(), meta.ino()).unwrap(), None);
    }
    use std::io::Write;

    #[test]
    fn a_local_folder_is_not_on_a_network_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::open(dir.path()).unwrap();
        assert!(!on_network_filesystem(&file).unwrap());
    }

    #[test]
    fn an_exclusive_lock_excludes_a_second_open_file_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked");
        let first = File::create(&path).unwrap();
        try_lock_exclusive(&first).unwrap();
        let second = File::open(&path).unwrap();
        let e = try_lock_exclusive(&second).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        drop(first);
        try_lock_exclusive(&second).unwrap();
    }

    #[test]
    fn rename_noreplace_moves_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        match rename_noreplace(&a, &b) {
            Err(e) if is_noreplace_unsupported(&e) => {
                eprintln!("skipped: no RENAME_NOREPLACE here ({e})");
                return;
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}"),
            Ok(()) => panic!("replaced an existing file"),
        }
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        rename_noreplace(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "a");
        assert!(!crosses_devices(&io::Error::other("x")));
        assert!(crosses_devices(&Errno::XDEV.into()));
    }

    #[test]
    fn symlinks_fail_to_open_with_the_loop_error_and_fifos_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t.csv");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("l.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for open in [open_nofollow, open_nofollow_nonblock] {
            let e = open(&link).unwrap_err();
            assert!(is_symlink_loop(&e), "{e}");
            assert!(open(&target).unwrap().metadata().unwrap().is_file());
            let e = open(&dir.path().join("gone")).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert!(!is_symlink_loop(&e));
        }

        let fifo = dir.path().join("f.csv");
        make_fifo(&fifo, 0o600).unwrap();
        let meta = std::fs::symlink_metadata(&fifo).unwrap();
        assert!(!meta.is_file());
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
        // No writer: a blocking open would hang here.
        let opened = open_nofollow_nonblock(&fifo).unwrap();
        assert!(!opened.metadata().unwrap().is_file());
        assert_eq!(
            make_fifo(&fifo, 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn a_file_open_for_writing_elsewhere_is_seen_where_leases_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        std::fs::write(&path, "a,b\n").unwrap();
        let reader = File::open(&path).unwrap();
        if let Err(e) = try_read_lease(&reader) {
            // Not the owner without CAP_LEASE, or a filesystem without leases.
            assert!(!open_for_writing_elsewhere(&reader));
            eprintln!("skipped: no file leases here ({e})");
            return;
        }
        assert!(!open_for_writing_elsewhere(&reader));
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        assert!(open_for_writing_elsewhere(&reader));
        writer.write_all(b"1,2\n").unwrap();
        drop(writer);
        assert!(!open_for_writing_elsewhere(&reader));
    }

    #[test]
    fn can_create_in_agrees_with_creating_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        can_create_in(dir.path()).unwrap();
        let e = can_create_in(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        let answer = can_create_in(dir.path());
        let created = File::create(dir.path().join("x")).is_ok();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // Root may create files anyway: the answer must match what creating does.
        assert_eq!(answer.is_ok(), created, "{answer:?}");
        if let Err(e) = answer {
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        }
    }

    #[test]
    fn the_host_name_is_not_empty() {
        let name = hostname();
        assert!(!name.is_empty());
        assert!(!name.contains('\0'));
    }
}
