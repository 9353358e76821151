//! One agent per SQLite store: the locks an agent (`run`, `once`) takes before it
//! touches a file, so that a second agent on the same SQLite database or the same data
//! folder refuses to start instead of racing the first.
//!
//! Two `flock`s, held for the agent's life and dropped by the kernel when it exits
//! (even on SIGKILL), so a crash never leaves a stale lock behind:
//!
//! - `DATABASE.lock` beside an SQLite database: exclusive. SQLite has no claims (see
//!   [`crate::sink::claim`]) and its one writer makes a second agent pointless anyway.
//! - the data folder itself: exclusive for an agent on SQLite, shared for one on
//!   PostgreSQL. Agents on one PostgreSQL database share a folder (claims split the
//!   files), but an SQLite agent and anyone else on one folder would load its files
//!   into two stores. The lock is on the directory, so nothing is written into the
//!   folder; on a network filesystem, which cannot lock a directory (NFS and SMB map
//!   `flock` to byte-range locks, which need a file), a hidden `.sensor-ingest.lock` in
//!   it is locked instead.
//!
//! The read-only commands (`status`, `check`, `quarantine list`) take no lock and work
//! beside a running agent. On NFS, Linux maps `flock` to the server's byte-range locks,
//! so the locks hold across hosts too.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{DatabaseSettings, Settings};
use crate::sys;

/// The lock file's name in a data folder on a network filesystem, where the folder
/// itself cannot be locked (hidden: the watcher never takes it).
pub const FOLDER_LOCK: &str = ".sensor-ingest.lock";

/// Another agent holds a lock this one needs, or a lock file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another agent is already running on the SQLite database {} (it holds {}); \
         an SQLite store takes one agent: stop the other one, or use PostgreSQL \
         (DATABASE_URL) to run several agents", database.display(), lock.display()
    )]
    Database { database: PathBuf, lock: PathBuf },
    #[error(
        "another agent is already running on the data folder {} (it holds a lock on {}); {}",
        folder.display(), lock.display(), if *sqlite {
            "an agent on SQLite needs the folder to itself: stop the other one, or give \
             each agent its own DATA_FOLDER"
        } else {
            "it is an agent on SQLite, which needs the folder to itself: stop it, or give \
             this agent another DATA_FOLDER"
        }
    )]
    Folder {
        folder: PathBuf,
        lock: PathBuf,
        /// Whether this agent is the one on SQLite.
        sqlite: bool,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The locks an agent holds while it runs; dropping this releases them.
#[derive(Debug)]
pub struct AgentLocks {
    _files: Vec<File>,
}

/// Takes the locks an agent on `settings` needs (see the module doc), without waiting.
/// The data folder must exist; an SQLite database's folder is created if missing.
pub fn take(settings: &Settings) -> Result<AgentLocks, LockError> {
    let mut files = Vec::with_capacity(2);
    let sqlite = match &settings.database {
        DatabaseSettings::Sqlite(s) => Some(s.path()),
        DatabaseSettings::Postgres(_) | DatabaseSettings::Mysql(_) => None,
    };
    if let Some(database) = sqlite {
        let lock = database_lock_path(database);
        if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
                path: lock.clone(),
                source,
            })?;
        }
        let file = open(&lock)?;
        match sys::try_lock_exclusive(&file) {
            Ok(()) => files.push(file),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(LockError::Database {
                    database: database.to_owned(),
                    lock,
                });
            }
            Err(source) => return Err(LockError::Io { path: lock, source }),
        }
    }
    let folder = &settings.data_folder;
    let exclusive = sqlite.is_some();
    let refused = |lock: PathBuf| LockError::Folder {
        folder: folder.clone(),
        lock,
        sqlite: exclusive,
    };
    let dir = File::open(folder).map_err(|source| LockError::Io {
        path: folder.clone(),
        source,
    })?;
    let network = sys::on_network_filesystem(&dir).map_err(|source| LockError::Io {
        path: folder.clone(),
        source,
    })?;
    // Every agent on one filesystem decides alike, so they all lock the same thing.
    let (file, lock) = if network {
        let lock = folder.join(FOLDER_LOCK);
        (open(&lock)?, lock)
    } else {
        (dir, folder.clone())
    };
    match lock_file(&file, exclusive) {
        Ok(()) => files.push(file),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(refused(lock)),
        Err(source) => return Err(LockError::Io { path: lock, source }),
    }
    Ok(AgentLocks { _files: files })
}

fn lock_file(file: &File, exclusive: bool) -> io::Result<()> {
    if exclusive {
        sys::try_lock_exclusive(file)
    } else {
        sys::try_lock_shared(file)
    }
}

/// `ingest.db` → `ingest.db.lock`, beside it.
fn database_lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, Vec<crate::config::ConfigError>> {
        Settings::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    fn settings_in(dir: &Path, database: Option<&str>, data: &str) -> Settings {
        let data = dir.join(data);
        std::fs::create_dir_all(&data).unwrap();
        let db = dir.join("db").join("ingest.db");
        let url = match database {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", db.display()),
        };
        settings(&[
            ("DATABASE_URL", url.as_str()),
            ("DATA_FOLDER", data.to_str().unwrap()),
        ])
        .unwrap()
    }

    #[test]
    fn a_second_sqlite_agent_on_the_same_database_or_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = take(&settings_in(dir.path(), None, "data")).unwrap();
        // Same database, another folder.
        let e = take(&settings_in(dir.path(), None, "other")).unwrap_err();
        assert!(matches!(e, LockError::Database { .. }), "{e}");
        assert!(e.to_string().contains("ingest.db"), "{e}");
        // Same folder, another database.
        let other_db = format!("sqlite://{}", dir.path().join("b.db").display());
        let e = take(&settings_in(dir.path(), Some(&other_db), "data")).unwrap_err();
        assert!(matches!(e, LockError::Folder { sqlite: true, .. }), "{e}");
        // A PostgreSQL agent cannot join an SQLite agent's folder either.
        let pg = "postgres://postgres@127.0.0.1:5432/x";
        let e = take(&settings_in(dir.path(), Some(pg), "data")).unwrap_err();
        assert!(matches!(e, LockError::Folder { sqlite: false, .. }), "{e}");
        drop(first);
        take(&settings_in(dir.path(), None, "data")).expect("free once the first stopped");
    }

    #[test]
    fn agents_on_postgresql_share_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let pg = "postgres://postgres@127.0.0.1:5432/x";
        let _a = take(&settings_in(dir.path(), Some(pg), "data")).unwrap();
        let _b = take(&settings_in(dir.path(), Some(pg), "data")).unwrap();
        let e = take(&settings_in(dir.path(), None, "data")).unwrap_err();
        assert!(matches!(e, LockError::Folder { sqlite: true, .. }), "{e}");
    }
}
