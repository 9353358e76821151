//! A fresh MariaDB/MySQL database per test: `CREATE DATABASE sensor_ingest_test_<uuid>`
//! on the server of `TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`),
//! dropped afterwards; and its rows decoded into the same plain rows as the other
//! backends'. Without a server the test is skipped with a message, unless `CI` or
//! `SENSOR_INGEST_REQUIRE_MYSQL` is set, when it fails.

use std::str::FromStr;

use sensor_ingest::config::DatabaseSettings;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlConnection, Row};
use uuid::Uuid;

use super::{LedgerRow, MetricRow, ReadingRow, flag};

/// The server tests create their databases on.
pub fn admin_options() -> MySqlConnectOptions {
    let url = std::env::var("TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    MySqlConnectOptions::from_str(&url).expect("TEST_MYSQL_URL is a valid URL")
}

/// Whether a test that cannot reach MariaDB must fail rather than skip.
pub fn mysql_required() -> bool {
    flag("CI") || flag("SENSOR_INGEST_REQUIRE_MYSQL")
}

/// A database created for one test and dropped afterwards.
pub struct TestMysql {
    pub name: String,
    pub options: MySqlConnectOptions,
    pub settings: DatabaseSettings,
    pub pool: MySqlPool,
}

impl TestMysql {
    /// Creates a fresh database, or returns `None` (test skipped) when no server is
    /// reachable and none is required.
    pub async fn create() -> Option<Self> {
        let admin = admin_options();
        let mut conn = match MySqlConnection::connect_with(&admin).await {
            Ok(c) => c,
            Err(e) if !mysql_required() => {
                eprintln!(
                    "SKIPPED: MariaDB not reachable ({e}); set TEST_MYSQL_URL, or CI=1 to \
                     make this a failure"
                );
                return None;
            }
            Err(e) => panic!("MariaDB is required (CI is set) but not reachable: {e}"),
        };
        let name = format!("sensor_ingest_test_{}", Uuid::now_v7().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let options = admin.clone().database(&name);
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options.clone());
        Some(Self {
            name,
            settings: DatabaseSettings::mysql(options.clone()),
            options,
            pool,
        })
    }

    /// The single integer `sql` returns; a DECIMAL (a `sum`) is cast to an integer.
    /// The tests' shared SQL casts with PostgreSQL's `AS BIGINT`, which MariaDB spells
    /// `AS SIGNED`.
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = &sql.replace(" AS BIGINT)", " AS SIGNED)");
        let row: MySqlRow = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if let Ok(n) = row.try_get::<Option<i64>, _>(0) {
            return n.unwrap_or(0);
        }
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT CAST(({sql}) AS SIGNED)")))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The single text `sql` returns (NULL: `None`); other types are cast to text.
    pub async fn text(&self, sql: &str) -> Option<String> {
        let row: MySqlRow = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if let Ok(t) = row.try_get::<Option<String>, _>(0) {
            return t;
        }
        sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(format!(
            "SELECT CAST(({sql}) AS CHAR)"
        )))
        .fetch_one(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn readings(&self, sql: &str) -> Vec<ReadingRow> {
        let rows: Vec<MySqlRow> = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| ReadingRow {
                file_id: uuid(r.get("file_id")).unwrap(),
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
                extra: r
                    .get::<Option<String>, _>("extra")
                    .map(|j| serde_json::from_str(&j).expect("extra is JSON")),
                ingested_at: r.get("ingested_at"),
                qc_flags: r.get::<i64, _>("qc_flags") as u16,
            })
            .collect()
    }

    pub async fn ledger(&self, sql: &str) -> Vec<LedgerRow> {
        let rows: Vec<MySqlRow> = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| LedgerRow {
                id: uuid(r.get("id")).unwrap(),
                file_name: r.get("file_name"),
                content_hash: r.get("content_hash"),
                size_bytes: r.get("size_bytes"),
                status: r.get("status"),
                row_count: r.get("row_count"),
                rejected_rows: r.get("rejected_rows"),
                error_summary: r.get("error_summary"),
                duplicate_of: uuid(r.get("duplicate_of")),
                first_timestamp: r.get("first_timestamp"),
                last_timestamp: r.get("last_timestamp"),
                archived_as: r.get("archived_as"),
            })
            .collect()
    }

    pub async fn metrics(&self, sql: &str) -> Vec<MetricRow> {
        let rows: Vec<MySqlRow> = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| MetricRow {
                file_id: uuid(r.get("file_id")).unwrap(),
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

fn uuid(text: Option<String>) -> Option<Uuid> {
    text.map(|t| Uuid::parse_str(&t).unwrap_or_else(|e| panic!("{t:?} is not a UUID: {e}")))
}

impl Drop for TestMysql {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime is blocked here: a thread with its
        // own runtime drops the database (the server ends its sessions' use of it).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = admin_options().connect().await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
