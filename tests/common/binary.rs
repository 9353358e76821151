//! Driving the real `sensor-ingest` binary from tests: its environment, its logs,
//! and signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{TestDb, TestEnv, TestStore};

/// A password the trust-auth test server ignores, put into every URL the binary gets
/// so tests can check it never leaks.
pub const PASSWORD: &str = "Sw0rdfish-Leak-Canary";

/// The admin URL (`TEST_DATABASE_URL`) pointed at `db`, at `host:port` if given, with
/// [`PASSWORD`] in the userinfo unless the URL already carries one.
pub fn database_url(db: &TestDb, host_port: Option<(&str, u16)>) -> String {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = base.rsplit_once('/').expect("URL has a database path");
    let (scheme, rest) = server.split_once("://").expect("URL has a scheme");
    let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let userinfo = if userinfo.contains(':') {
        userinfo.to_owned()
    } else {
        format!("{userinfo}:{PASSWORD}")
    };
    let host = match host_port {
        Some((h, p)) => format!("{h}:{p}"),
        None => host.to_owned(),
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{scheme}://{userinfo}@{host}/{}{query}", db.name)
}

/// What the agent is given as `DATABASE_URL` for `env`: the SQLite file, or the
/// PostgreSQL database with [`PASSWORD`] in it.
pub fn agent_database_url(env: &TestEnv) -> String {
    match &env.db {
        TestStore::Sqlite(db) => format!("sqlite://{}", db.path.display()),
        TestStore::Postgres(db) => database_url(db, None),
        // The test server's root has no password, and MariaDB refuses a wrong one: this
        // URL carries none.
        TestStore::Mysql(db) => format!(
            "mysql://{}@{}:{}/{}",
            db.options.get_username(),
            db.options.get_host(),
            db.options.get_port(),
            db.name
        ),
    }
}

/// The binary with a clean environment pointing at `env`'s folders and database.
/// Console logs only (LOG_DIR empty), fast settle and rescan, short retry cap.
pub fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sensor-ingest"));
    cmd.args(args)
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", agent_database_url(env))
        .env("DATA_FOLDER", env.data())
        .env("PROCESSED_FOLDER", env.processed())
        .env("QUARANTINE_FOLDER", env.quarantine())
        .env("PROFILES_DIR", env.profiles())
        .env("LOG_DIR", "")
        .env("SETTLE_MS", "100")
        .env("MONITOR_INTERVAL", "1")
        .env("RETRY_MAX_DELAY", "1")
        .env("WORKERS", "2")
        .stdin(Stdio::null());
    cmd
}

/// Starts `cmd`, appending its stderr to `log` (created if missing).
pub fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    cmd.stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("the agent starts")
}

pub fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process, which has not been reaped.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "signal delivered");
}

/// Waits for the child to exit, killing it (and failing) after `timeout`.
pub async fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the agent did not exit within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every entry of `dir` (names, sorted), hidden ones included.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes `content` outside the data folder, then renames it in under `name` without
/// replacing anything (as a careful producer does). Returns false (nothing delivered)
/// when `name` is taken.
pub fn deliver(staging: &Path, data: &Path, name: &str, content: &[u8]) -> bool {
    std::fs::create_dir_all(staging).unwrap();
    let tmp: PathBuf = staging.join(format!("incoming-{}", uuid::Uuid::now_v7().simple()));
    std::fs::write(&tmp, content).unwrap();
    match sensor_ingest::archive::move_no_clobber(&tmp, &data.join(name)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp).unwrap();
            false
        }
        Err(e) => panic!("delivering {name}: {e}"),
    }
}
