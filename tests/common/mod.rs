//! Shared test helpers: a fresh database per test on either backend, temp folders, and
//! a TCP proxy that can cut PostgreSQL off.
//!
//! Tests that hold for both backends take a [`Backend`] (see `rstest`'s `#[values]` in
//! the test files) and read the database back through [`TestStore`], which decodes
//! both schemas into the same plain rows.
//!
//! SQLite needs nothing: each test gets a file in its temp folder. The PostgreSQL server
//! is `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); each
//! test creates its own database there. When the server cannot be reached, PostgreSQL
//! tests are skipped with a message — unless `CI` or `SENSOR_INGEST_REQUIRE_POSTGRES` is
//! set, in which case they fail.
//!
//! [`binary`] drives the real `sensor-ingest` executable. Both test binaries, `tests/it`
//! and `tests/soak`, include this folder; `tests/it` uses every helper in it.

pub mod binary;
pub mod mysql;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sensor_ingest::config::{DatabaseSettings, Settings};
use sensor_ingest::pipeline::{Outcome, Pipeline, ProcessError, RetryLimit};
use sensor_ingest::sink::{self, Store};
use sensor_ingest::source::Candidate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The test's environment, or `return` (test skipped) when its database cannot be had:
/// `let env = env_or_skip!(TestEnv::new(backend));`.
macro_rules! env_or_skip {
    ($e:expr) => {
        match $e.await {
            Some(env) => env,
            None => return,
        }
    };
}
pub(crate) use env_or_skip;

pub fn admin_options() -> PgConnectOptions {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a valid URL")
}

/// Whether `var` is set to something other than empty, `0` or `false`.
fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Whether a test that cannot reach PostgreSQL (or its `psql`) must fail rather than
/// skip: under CI, or with `SENSOR_INGEST_REQUIRE_POSTGRES`.
pub fn postgres_required() -> bool {
    flag("CI") || flag("SENSOR_INGEST_REQUIRE_POSTGRES")
}

/// Whether a test that needs a tool missing here (`sqlite3`) must fail rather than skip:
/// under CI, which installs it.
pub fn in_ci() -> bool {
    flag("CI")
}

/// A database created for one test and dropped afterwards.
pub struct TestDb {
    pub name: String,
    pub options: PgConnectOptions,
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
            settings: DatabaseSettings::postgres(options.clone()),
            options,
            pool,
        })
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
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

/// The database behind a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
    /// MariaDB or MySQL: `TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).
    Mysql,
}

/// A fresh SQLite file in the test's temp folder.
pub struct TestSqlite {
    pub path: PathBuf,
    pub pool: SqlitePool,
}

/// The test's database, on either backend, read back independently of the code under
/// test.
pub enum TestStore {
    Postgres(Box<TestDb>),
    Sqlite(TestSqlite),
    Mysql(Box<mysql::TestMysql>),
}

/// One row of `sensor_readings`, decoded the same way from either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    pub file_id: Uuid,
    pub line: i64,
    pub ts: DateTime<Utc>,
    pub sensor_id: String,
    pub temperature: Option<f64>,
    pub humidity: Option<f64>,
    pub pressure: Option<f64>,
    pub temperature_k: Option<f64>,
    pub temperature_norm: Option<f64>,
    pub humidity_norm: Option<f64>,
    pub pressure_norm: Option<f64>,
    pub extra: Option<serde_json::Value>,
    pub ingested_at: DateTime<Utc>,
    /// Quality flags (`sensor_ingest::qc::Flags`).
    pub qc_flags: u16,
}

/// One row of `ingest_files`.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub id: Uuid,
    pub file_name: String,
    pub content_hash: String,
    pub size_bytes: i64,
    pub status: String,
    pub row_count: i64,
    pub rejected_rows: i64,
    pub error_summary: Option<String>,
    pub duplicate_of: Option<Uuid>,
    pub first_timestamp: Option<DateTime<Utc>>,
    pub last_timestamp: Option<DateTime<Utc>>,
    pub archived_as: Option<String>,
}

/// One row of `file_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub file_id: Uuid,
    pub column_name: String,
    pub value_count: i64,
    pub null_count: i64,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub mean_value: Option<f64>,
    pub stddev_value: Option<f64>,
}

pub(crate) const READINGS: &str = "SELECT file_id, line, ts, sensor_id, temperature, humidity, pressure, \
    temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, ingested_at, \
    qc_flags FROM sensor_readings ORDER BY ingested_at, file_id, line";
pub(crate) const LEDGER: &str = "SELECT id, file_name, content_hash, size_bytes, status, row_count, \
    rejected_rows, error_summary, duplicate_of, first_timestamp, last_timestamp, archived_as \
    FROM ingest_files ORDER BY started_at, id";
pub(crate) const METRICS: &str = "SELECT file_id, column_name, value_count, null_count, min_value, \
    max_value, mean_value, stddev_value FROM file_metrics ORDER BY file_id, column_name";

fn sqlite_time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .unwrap_or_else(|e| panic!("SQLite time {t:?} is not RFC 3339: {e}"))
            .to_utc()
    })
}

fn sqlite_uuid(text: Option<String>) -> Option<Uuid> {
    text.map(|t| Uuid::parse_str(&t).unwrap_or_else(|e| panic!("{t:?} is not a UUID: {e}")))
}

impl TestStore {
    pub async fn create(backend: Backend, dir: &Path) -> Option<Self> {
        match backend {
            Backend::Postgres => TestDb::create()
                .await
                .map(|db| Self::Postgres(Box::new(db))),
            Backend::Mysql => mysql::TestMysql::create()
                .await
                .map(|db| Self::Mysql(Box::new(db))),
            Backend::Sqlite => {
                let path = dir.join("sensor-ingest.db");
                let pool = SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_lazy_with(SqliteConnectOptions::new().filename(&path));
                Some(Self::Sqlite(TestSqlite { path, pool }))
            }
        }
    }

    /// What the agent is configured with to reach this database.
    pub fn settings(&self) -> DatabaseSettings {
        match self {
            Self::Postgres(db) => db.settings.clone(),
            Self::Sqlite(db) => DatabaseSettings::sqlite(&db.path),
            Self::Mysql(db) => db.settings.clone(),
        }
    }

    /// The PostgreSQL database, for tests that only make sense there.
    pub fn pg(&self) -> &TestDb {
        match self {
            Self::Postgres(db) => db,
            _ => panic!("this test needs the PostgreSQL backend"),
        }
    }

    /// The single integer `sql` returns; `sql` must be valid on both backends.
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Postgres(db) => db.count(sql).await,
            Self::Mysql(db) => db.count(sql).await,
            Self::Sqlite(db) => sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
                .fetch_one(&db.pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// The single text `sql` returns (NULL: `None`); `sql` must be valid on both backends.
    pub async fn text(&self, sql: &str) -> Option<String> {
        match self {
            Self::Mysql(db) => db.text(sql).await,
            Self::Postgres(db) => {
                sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&db.pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Self::Sqlite(db) => {
                sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&db.pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// Every reading, in load order then line order.
    pub async fn readings(&self) -> Vec<ReadingRow> {
        match self {
            Self::Mysql(db) => db.readings(READINGS).await,
            Self::Postgres(db) => {
                let rows: Vec<PgRow> = sqlx::query(READINGS).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| ReadingRow {
                        file_id: r.get("file_id"),
                        line: r.get("line"),
                        ts: r.get("ts"),
                        sensor_id: r.get("sensor_id"),
                        temperature: r.get("temperature"),
                        humidity: r.get("humidity"),
                        pressure: r.get("pressure"),
                        temperature_k: r.get("temperature_k"),
                        temperature_norm: r.get("temperature_norm"),
                        humidity_norm: r.get("humidity_norm"),
                        pressure_norm: r.get("pressure_norm"),
                        extra: r.get("extra"),
                        ingested_at: r.get("ingested_at"),
                        qc_flags: r.get::<i16, _>("qc_flags") as u16,
                    })
                    .collect()
            }
            Self::Sqlite(db) => {
                let rows: Vec<SqliteRow> = sqlx::query(READINGS).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| ReadingRow {
                        file_id: sqlite_uuid(r.get("file_id")).unwrap(),
                        line: r.get("line"),
                        ts: sqlite_time(r.get("ts")).unwrap(),
                        sensor_id: r.get("sensor_id"),
                        temperature: r.get("temperature"),
                        humidity: r.get("humidity"),
                        pressure: r.get("pressure"),
                        temperature_k: r.get("temperature_k"),
                        temperature_norm: r.get("temperature_norm"),
                        humidity_norm: r.get("humidity_norm"),
                        pressure_norm: r.get("pressure_norm"),
                        extra: r
                            .get::<Option<String>, _>("extra")
                            .map(|j| serde_json::from_str(&j).expect("extra is JSON")),
                        ingested_at: sqlite_time(r.get("ingested_at")).unwrap(),
                        qc_flags: r.get::<i64, _>("qc_flags") as u16,
                    })
                    .collect()
            }
        }
    }

    /// Every ledger row, oldest attempt first.
    pub async fn ledger(&self) -> Vec<LedgerRow> {
        match self {
            Self::Mysql(db) => db.ledger(LEDGER).await,
            Self::Postgres(db) => {
                let rows: Vec<PgRow> = sqlx::query(LEDGER).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| LedgerRow {
                        id: r.get("id"),
                        file_name: r.get("file_name"),
                        content_hash: r.get("content_hash"),
                        size_bytes: r.get("size_bytes"),
                        status: r.get("status"),
                        row_count: r.get("row_count"),
                        rejected_rows: r.get("rejected_rows"),
                        error_summary: r.get("error_summary"),
                        duplicate_of: r.get("duplicate_of"),
                        first_timestamp: r.get("first_timestamp"),
                        last_timestamp: r.get("last_timestamp"),
                        archived_as: r.get("archived_as"),
                    })
                    .collect()
            }
            Self::Sqlite(db) => {
                let rows: Vec<SqliteRow> = sqlx::query(LEDGER).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| LedgerRow {
                        id: sqlite_uuid(r.get("id")).unwrap(),
                        file_name: r.get("file_name"),
                        content_hash: r.get("content_hash"),
                        size_bytes: r.get("size_bytes"),
                        status: r.get("status"),
                        row_count: r.get("row_count"),
                        rejected_rows: r.get("rejected_rows"),
                        error_summary: r.get("error_summary"),
                        duplicate_of: sqlite_uuid(r.get("duplicate_of")),
                        first_timestamp: sqlite_time(r.get("first_timestamp")),
                        last_timestamp: sqlite_time(r.get("last_timestamp")),
                        archived_as: r.get("archived_as"),
                    })
                    .collect()
            }
        }
    }

    /// Every metrics row.
    pub async fn metrics(&self) -> Vec<MetricRow> {
        match self {
            Self::Mysql(db) => db.metrics(METRICS).await,
            Self::Postgres(db) => {
                let rows: Vec<PgRow> = sqlx::query(METRICS).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| MetricRow {
                        file_id: r.get("file_id"),
                        column_name: r.get("column_name"),
                        value_count: r.get("value_count"),
                        null_count: r.get("null_count"),
                        min_value: r.get("min_value"),
                        max_value: r.get("max_value"),
                        mean_value: r.get("mean_value"),
                        stddev_value: r.get("stddev_value"),
                    })
                    .collect()
            }
            Self::Sqlite(db) => {
                let rows: Vec<SqliteRow> = sqlx::query(METRICS).fetch_all(&db.pool).await.unwrap();
                rows.iter()
                    .map(|r| MetricRow {
                        file_id: sqlite_uuid(r.get("file_id")).unwrap(),
                        column_name: r.get("column_name"),
                        value_count: r.get("value_count"),
                        null_count: r.get("null_count"),
                        min_value: r.get("min_value"),
                        max_value: r.get("max_value"),
                        mean_value: r.get("mean_value"),
                        stddev_value: r.get("stddev_value"),
                    })
                    .collect()
            }
        }
    }
}

/// Temp folders plus a fresh database, and settings pointing at both.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db: TestStore,
    pub settings: Settings,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Option<Self> {
        Self::with_vars(backend, &[]).await
    }

    /// `vars` override settings as environment variables would.
    pub async fn with_vars(backend: Backend, vars: &[(&str, &str)]) -> Option<Self> {
        Self::with_profiles(backend, &[], vars).await
    }

    /// Like [`TestEnv::with_vars`], with these source profiles (`(file name, TOML)`) in
    /// the env's own `PROFILES_DIR` (`profiles/` in its temp folder).
    pub async fn with_profiles(
        backend: Backend,
        profiles: &[(&str, &str)],
        vars: &[(&str, &str)],
    ) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let profiles_dir = dir.path().join("profiles");
        std::fs::create_dir_all(&profiles_dir).unwrap();
        for (name, text) in profiles {
            std::fs::write(profiles_dir.join(name), text).unwrap();
        }
        let db = TestStore::create(backend, dir.path()).await?;
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
        map.insert("PROFILES_DIR".into(), profiles_dir.display().to_string());
        map.insert("SETTLE_MS".into(), "100".into());
        map.insert("RETRY_MAX_DELAY".into(), "400ms".into());
        for (k, v) in vars {
            map.insert((*k).into(), (*v).into());
        }
        let mut settings =
            Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings are valid");
        settings.database = db.settings();
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
    pub fn profiles(&self) -> PathBuf {
        self.settings.profiles_dir.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        sink::open(&self.settings.database, 4)
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
        let store = sink::open(&proxy.settings_for(self.db.pg()), 2);
        Pipeline::new(&self.settings, store)
    }

    /// Processes `name` in a task, retrying until it reaches an outcome.
    pub fn spawn_process(
        &self,
        pipeline: &Pipeline,
        name: &str,
    ) -> tokio::task::JoinHandle<Result<Outcome, ProcessError>> {
        let (pipeline, file) = (
            pipeline.clone(),
            Candidate::in_folder(self.data().join(name)),
        );
        tokio::spawn(async move {
            pipeline
                .process(&file, RetryLimit::Forever, &CancellationToken::new())
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
                &Candidate::in_folder(self.data().join(name)),
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
        DatabaseSettings::postgres(
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

/// A hook run by [`HookedStore`] around a load.
pub type LoadHook = Box<dyn Fn() + Send + Sync>;

/// A store that runs hooks just before and just after each load and otherwise passes
/// every call to `inner`: how tests make a producer act at the worst moment.
pub struct HookedStore {
    pub inner: Arc<dyn Store>,
    pub before_load: LoadHook,
    pub after_load: LoadHook,
}

impl HookedStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            before_load: Box::new(|| {}),
            after_load: Box::new(|| {}),
        }
    }
}

impl std::fmt::Debug for HookedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HookedStore").field(&self.inner).finish()
    }
}

#[async_trait::async_trait]
impl Store for HookedStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn prepare(&self) -> Result<(), sink::SinkError> {
        self.inner.prepare().await
    }
    fn claims(&self) -> Option<&dyn sink::Claims> {
        self.inner.claims()
    }
    async fn find_loaded(
        &self,
        hash: &sensor_ingest::read::ContentHash,
    ) -> Result<Option<sink::LoadedFile>, sink::SinkError> {
        self.inner.find_loaded(hash).await
    }
    async fn known_sources(&self, identities: &[String]) -> Result<Vec<String>, sink::SinkError> {
        self.inner.known_sources(identities).await
    }
    async fn recent_readings(
        &self,
        queries: &[sensor_ingest::qc::HistoryQuery],
        limit: u32,
    ) -> Result<Vec<Vec<sensor_ingest::qc::HistoryReading>>, sink::SinkError> {
        self.inner.recent_readings(queries, limit).await
    }
    async fn load(
        &self,
        attempt: &sink::FileAttempt,
        rows: tokio::sync::mpsc::Receiver<sink::LoadMsg>,
    ) -> Result<sink::LoadOutcome, sink::SinkError> {
        (self.before_load)();
        let outcome = self.inner.load(attempt, rows).await;
        (self.after_load)();
        outcome
    }
    async fn record(&self, entry: &sink::LedgerEntry) -> Result<(), sink::SinkError> {
        self.inner.record(entry).await
    }
    async fn mark_archived_all(&self, names: &[sink::ArchiveName]) -> Result<(), sink::SinkError> {
        self.inner.mark_archived_all(names).await
    }
}

#[async_trait::async_trait]
impl sink::LedgerQueries for HookedStore {
    async fn flagged_readings(
        &self,
        sensor: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<sensor_ingest::qc::FlaggedReading>, sink::SinkError> {
        self.inner.flagged_readings(sensor, since, limit).await
    }
    async fn ping(&self) -> Result<(), sink::SinkError> {
        self.inner.ping().await
    }
    async fn activity_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<sink::Activity, sink::SinkError> {
        self.inner.activity_since(since).await
    }
    async fn agents_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<sink::AgentShare>, sink::SinkError> {
        self.inner.agents_since(since).await
    }
    async fn last_loaded(&self) -> Result<Option<sink::LedgerRecord>, sink::SinkError> {
        self.inner.last_loaded().await
    }
    async fn history(
        &self,
        content_hash: &str,
        file_name: &str,
    ) -> Result<Vec<sink::LedgerRecord>, sink::SinkError> {
        self.inner.history(content_hash, file_name).await
    }
}

/// A role name for one test, dropped (if created) when this guard goes. Declare it
/// before the test's [`TestEnv`]: guards drop in reverse order, so the test database
/// and the role's privileges in it are gone by then, even when the test failed.
pub struct TempRole {
    pub name: String,
}

impl TempRole {
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}_{}", Uuid::now_v7().simple()),
        }
    }
}

impl Drop for TempRole {
    fn drop(&mut self) {
        let sql = format!("DROP ROLE IF EXISTS {}", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = admin_options().connect().await
                    && let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await
                {
                    eprintln!("could not drop a test role: {e}");
                }
            });
        })
        .join();
    }
}
