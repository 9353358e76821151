//! Helpers shared by the watcher's tests: settings, files with a chosen age, a FIFO.

use std::fs::{File, FileTimes};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::WatchConfig;
use crate::intake::display_name;
use crate::pattern::FilePattern;

pub(super) const WAIT: Duration = Duration::from_secs(5);
pub(super) const SETTLE: Duration = Duration::from_millis(200);
pub(super) const SLOW_RESCAN: Duration = Duration::from_secs(60);
pub(super) const FAST_RESCAN: Duration = Duration::from_millis(100);
/// A file present before each watch test starts; its arrival proves the watch is live.
pub(super) const SYNC: &str = "000-sync.csv";

pub(super) fn csv_pattern() -> FilePattern {
    FilePattern::new("*.csv").expect("*.csv is a valid pattern")
}

pub(super) fn config(folder: &Path, settle: Duration, rescan_interval: Duration) -> WatchConfig {
    WatchConfig {
        folder: folder.to_path_buf(),
        pattern: csv_pattern(),
        settle,
        rescan_interval,
    }
}

pub(super) fn write_file(path: &Path, content: &[u8]) {
    let mut f = File::create(path).expect("create test file");
    f.write_all(content).expect("write test file");
}

pub(super) fn write_aged(path: &Path, content: &[u8], age: Duration) {
    write_file(path, content);
    set_mtime(path, SystemTime::now() - age);
}

pub(super) fn set_mtime(path: &Path, mtime: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_times(FileTimes::new().set_modified(mtime)))
        .expect("set mtime");
}

pub(super) fn mkfifo(path: &Path) {
    crate::sys::make_fifo(path, 0o644).expect("mkfifo");
}

pub(super) fn name_of(path: &Path) -> String {
    display_name(path)
}
