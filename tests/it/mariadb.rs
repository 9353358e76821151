//! What only the MariaDB/MySQL store has to show: its errors, provoked on a real
//! server, land in the right class (retried, quarantined or fatal), and its settings
//! never show the password.

use std::time::Duration;

use sensor_ingest::config::DatabaseSettings;
use sensor_ingest::sink::mysql::classify;
use sensor_ingest::sink::{self, ErrorClass};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Connection, Executor, MySqlConnection};

use crate::common::{Backend, TestEnv, TestStore, env_or_skip};

#[tokio::test]
async fn real_mariadb_failures_are_classified() {
    let env = env_or_skip!(TestEnv::new(Backend::Mysql));
    let TestStore::Mysql(db) = &env.db else {
        unreachable!()
    };
    let store = env.store();
    store.prepare().await.expect("schema applies");
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect_with(db.options.clone())
        .await
        .unwrap();

    // The file's data: a sensor id longer than the column, a duplicate key.
    let too_long = sqlx::query(
        "INSERT INTO sensor_readings (file_id, line, ts, sensor_id, ingested_at) \
         VALUES ('f', 1, NOW(6), REPEAT('x', 300), NOW(6))",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(classify(&too_long), ErrorClass::Data, "{too_long}");
    let insert = "INSERT INTO sensor_readings (file_id, line, ts, sensor_id, ingested_at) \
                  VALUES ('f', 2, NOW(6), 's', NOW(6))";
    sqlx::query(insert).execute(&pool).await.unwrap();
    let duplicate = sqlx::query(insert).execute(&pool).await.unwrap_err();
    assert_eq!(classify(&duplicate), ErrorClass::Data, "{duplicate}");

    // A lock wait timeout (1205): another transaction holds the row.
    let mut holder = MySqlConnection::connect_with(&db.options).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute("UPDATE sensor_readings SET qc_flags = 1 WHERE file_id = 'f' AND line = 2")
        .await
        .unwrap();
    let mut waiter = MySqlConnection::connect_with(&db.options).await.unwrap();
    waiter
        .execute("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let timeout = waiter
        .execute("UPDATE sensor_readings SET qc_flags = 2 WHERE file_id = 'f' AND line = 2")
        .await
        .unwrap_err();
    assert_eq!(classify(&timeout), ErrorClass::Transient, "{timeout}");
    holder.execute("ROLLBACK").await.unwrap();

    // A connection the server killed (as a restart does): lost, not the file's fault.
    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut waiter)
        .await
        .unwrap();
    sqlx::query("KILL CONNECTION ?")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lost = sqlx::query("SELECT 1")
        .execute(&mut waiter)
        .await
        .unwrap_err();
    assert_eq!(classify(&lost), ErrorClass::Transient, "{lost}");

    // A wrong password refuses the agent itself, and is never shown.
    let DatabaseSettings::Mysql(settings) = &env.settings.database else {
        unreachable!()
    };
    let wrong = DatabaseSettings::mysql(
        settings
            .connect_options()
            .clone()
            .password("Sw0rdfish-Leak-Canary"),
    );
    let e = sink::open(&wrong, 1).prepare().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Refused, "{e}");
    for shown in [e.to_string(), wrong.to_string(), format!("{wrong:?}")] {
        assert!(!shown.contains("Sw0rdfish"), "{shown}");
    }
}
