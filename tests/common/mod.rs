//! Shared test helpers: a fresh PostgreSQL database per test, temp folders, and a TCP
//! proxy that can cut the database off.
//!
//! The server is `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it cannot be reached, tests that need it are skipped with a message — unless
//! `CI` or `SENSOR_INGEST_REQUIRE_POSTGRES` is set, in which case they fail.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sensor_ingest::config::{DatabaseSettings, Settings};
use sensor_ingest::pipeline::{Outcome, Pipeline, ProcessError, RetryLimit};
use sensor_ingest::sink::Store;
use sensor_ingest::sink::postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub fn admin_options() -> PgConnectOptions {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a valid URL")
}

fn postgres_required() -> bool {
    ["CI", "SENSOR_INGEST_REQUIRE_POSTGRES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// A database created for one test and dropped afterwards.
pub struct TestDb {
    pub name: String,
    pub settings: DatabaseSettings,
    pub pool: PgPool,
}

impl TestDb {
    /// Creates a fresh database, or returns `None` (test skipped) when no server is
    /// reachable and none is required.
    pub async fn create() -> Option<Self> {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let admin = admin_options();
        let mut conn = match PgConnection::connect_with(&admin).await {
            Ok(c) => c,
            Err(e) if !postgres_required() => {
                eprintln!(
                    "SKIPPED: PostgreSQL not reachable ({e}); set TEST_DATABASE_URL, \
                     or CI=1 to make this a failure"
                );
                return None;
            }
            Err(e) => panic!("PostgreSQL is required (CI is set) but not reachable: {e}"),
        };
        let name = format!("sensor_ingest_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .expect("connect to test database");
        Some(Self {
            name,
            settings: DatabaseSettings::from_options(options),
            pool,
        })
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime is blocked here, so its pool cannot be closed from this
        // thread; FORCE terminates its connections. A thread with its own runtime runs
        // the DROP because Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = admin_options().connect().await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Temp folders plus a fresh database, and settings pointing at both.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub settings: Settings,
}

impl TestEnv {
    pub async fn new() -> Option<Self> {
        Self::with_vars(&[]).await
    }

    /// `vars` override settings as environment variables would.
    pub async fn with_vars(vars: &[(&str, &str)]) -> Option<Self> {
        let db = TestDb::create().await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut map: HashMap<String, String> = HashMap::new();
        for (k, sub) in [
            ("DATA_FOLDER", "data"),
            ("PROCESSED_FOLDER", "processed"),
            ("QUARANTINE_FOLDER", "quarantine"),
        ] {
            let p = dir.path().join(sub);
            std::fs::create_dir_all(&p).unwrap();
            map.insert(k.into(), p.display().to_string());
        }
        map.insert("LOG_DIR".into(), String::new());
        map.insert("SETTLE_MS".into(), "100".into());
        map.insert("RETRY_MAX_DELAY".into(), "400ms".into());
        for (k, v) in vars {
            map.insert((*k).into(), (*v).into());
        }
        let mut settings =
            Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings are valid");
        settings.database = db.settings.clone();
        Some(Self { dir, db, settings })
    }

    pub fn data(&self) -> PathBuf {
        self.settings.data_folder.clone()
    }
    pub fn processed(&self) -> PathBuf {
        self.settings.processed_folder.clone()
    }
    pub fn quarantine(&self) -> PathBuf {
        self.settings.quarantine_folder.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::new(&self.settings.database, 4))
    }

    /// A pipeline on this env's database, with the schema applied.
    pub async fn pipeline(&self) -> Pipeline {
        let store = self.store();
        store.prepare().await.expect("schema applies");
        Pipeline::new(&self.settings, store)
    }

    /// A pipeline that reaches this env's database through `proxy`; the schema is
    /// applied directly first, so only the pipeline's own traffic crosses the proxy.
    pub async fn pipeline_via(&self, proxy: &CutProxy) -> Pipeline {
        self.pipeline().await;
        let store: Arc<dyn Store> = Arc::new(PgStore::new(&proxy.settings_for(&self.db), 2));
        Pipeline::new(&self.settings, store)
    }

    /// Processes `name` in a task, retrying until it reaches an outcome.
    pub fn spawn_process(
        &self,
        pipeline: &Pipeline,
        name: &str,
    ) -> tokio::task::JoinHandle<Result<Outcome, ProcessError>> {
        let (pipeline, path) = (pipeline.clone(), self.data().join(name));
        tokio::spawn(async move {
            pipeline
                .process(&path, RetryLimit::Forever, &CancellationToken::new())
                .await
        })
    }

    /// Writes `content` into the data folder the way a careful producer does: to a
    /// temp name elsewhere, then renamed in.
    pub fn drop_file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let tmp = self.dir.path().join(format!(".{name}.incoming"));
        std::fs::write(&tmp, content).unwrap();
        let dest = self.data().join(name);
        std::fs::rename(&tmp, &dest).unwrap();
        dest
    }

    /// One file through the pipeline, without retries.
    pub async fn process(&self, pipeline: &Pipeline, name: &str) -> Result<Outcome, ProcessError> {
        pipeline
            .process(
                &self.data().join(name),
                RetryLimit::Times(0),
                &CancellationToken::new(),
            )
            .await
    }
}

/// Names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A TCP proxy in front of the test server whose link can be cut: while down, it
/// closes accepted connections at once and resets the ones it was carrying.
pub struct CutProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(up: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let admin = admin_options();
        let target = format!("{}:{}", admin.get_host(), admin.get_port());
        let up_flag = Arc::new(AtomicBool::new(up));
        let (generation, gen_rx) = tokio::sync::watch::channel(0u64);
        let flag = up_flag.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cut = gen_rx.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut c, mut s) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut c, &mut s) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up: up_flag,
            generation,
            task,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// The test database, reached through this proxy.
    pub fn settings_for(&self, db: &TestDb) -> DatabaseSettings {
        DatabaseSettings::from_options(
            admin_options()
                .host("127.0.0.1")
                .port(self.port)
                .database(&db.name),
        )
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
