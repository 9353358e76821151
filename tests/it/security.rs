//! Security promises: the database password appears nowhere an operator or attacker
//! could read it; reports name files by their own name only, whatever the name; and
//! MAX_FILE_BYTES quarantines an oversized file without reading it.

use std::process::Stdio;

use crate::common::binary::{PASSWORD, command, deliver, entries};
use crate::common::{Backend, TestEnv, files_in};
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::report::QuarantineReport;

const GOOD: &str = "timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,s-1,21.5\n";
const BAD: &str = "timestamp,sensor_id,temperature\n2024-05-01T12:00:00Z,s-1,hot\n";

fn report(env: &TestEnv, quarantined_as: &str) -> QuarantineReport {
    let path = env
        .quarantine()
        .join(format!("{quarantined_as}.error.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn an_oversized_file_is_quarantined_unread_with_a_clear_reason() {
    let Some(env) = TestEnv::with_vars(Backend::Postgres, &[("MAX_FILE_BYTES", "1KiB")]).await
    else {
        return;
    };
    let pipeline = env.pipeline().await;
    let rows: String = (0..60)
        .map(|i| format!("2024-05-01T12:{:02}:00Z,s-1,21.5\n", i % 60))
        .collect();
    let big = format!("timestamp,sensor_id,temperature\n{rows}");
    assert!(big.len() > 1024);
    let at_limit = format!("{GOOD}{}", "\n".repeat(1024 - GOOD.len()));
    assert_eq!(at_limit.len(), 1024);
    env.drop_file("big.csv", &big);
    env.drop_file("at-limit.csv", &at_limit);

    let outcome = env.process(&pipeline, "big.csv").await.unwrap();
    assert!(
        matches!(&outcome, Outcome::Quarantined { reason, .. } if reason.contains("MAX_FILE_BYTES")),
        "{outcome:?}"
    );
    let r = report(&env, "big.csv");
    assert_eq!(r.rule, "file_too_large");
    assert_eq!(r.size_bytes, big.len() as u64);
    assert_eq!(r.rows_read, 0);
    assert!(r.reason.contains("not read"), "{}", r.reason);
    assert!(
        r.content_hash.starts_with("unread-"),
        "no hash is claimed for bytes never read: {}",
        r.content_hash
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        (r.errors[0].line, r.errors[0].rule.name()),
        (None, "file_too_large")
    );
    assert_eq!(
        std::fs::read(env.quarantine().join("big.csv")).unwrap(),
        big.as_bytes()
    );
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'quarantined' AND error_summary LIKE '%MAX_FILE_BYTES%'")
            .await,
        1
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        0
    );

    // A file of exactly the limit is read and loaded as usual.
    let outcome = env.process(&pipeline, "at-limit.csv").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Loaded { rows: 1, .. }),
        "{outcome:?}"
    );

    // The same oversized bytes again: quarantined again, beside the first, nothing
    // overwritten.
    env.drop_file("big.csv", &big);
    let outcome = env.process(&pipeline, "big.csv").await.unwrap();
    let Outcome::Quarantined {
        archived_as: Some(second),
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_ne!(second, "big.csv");
    assert_eq!(report(&env, &second).rule, "file_too_large");
}

/// Names an attacker or a careless producer might choose. None can hold `/`, so none
/// can leave the folders; each must come out under its own name (or that name with a
/// suffix) in the right folder, with a report naming it and nothing else.
fn hostile_names() -> Vec<String> {
    vec![
        "-rf.csv".into(),
        "--help.csv".into(),
        " spaced  name .csv".into(),
        "ünïcødé-東京-🌡.csv".into(),
        "..csv".into(),
        "..\\..\\etc\\passwd.csv".into(),
        "%2e%2e%2fescape.csv".into(),
        "line\nbreak.csv".into(),
        "$(touch pwned).csv".into(),
        "quote\"and'.csv".into(),
        format!("{}.csv", "é".repeat(125)),
        format!("{}.csv", "n".repeat(251)),
    ]
}

#[tokio::test]
async fn hostile_file_names_are_archived_and_reported_by_their_own_name() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    let pipeline = env.pipeline().await;
    for (i, name) in hostile_names().iter().enumerate() {
        assert!(name.len() <= 255, "{name}");
        // Valid content, then the same name with bad content.
        let good = GOOD.replace("s-1", &format!("s-{i}"));
        let staging = env.dir.path().join(".staging");
        assert!(deliver(&staging, &env.data(), name, good.as_bytes()));
        let outcome = env.process(&pipeline, name).await.unwrap();
        assert!(
            matches!(&outcome, Outcome::Loaded { archived_as: Some(a), .. } if a == name),
            "{name:?}: {outcome:?}"
        );
        assert_eq!(
            std::fs::read(env.processed().join(name)).unwrap(),
            good.as_bytes()
        );

        let bad = BAD.replace("s-1", &format!("s-{i}"));
        assert!(deliver(&staging, &env.data(), name, bad.as_bytes()));
        let outcome = env.process(&pipeline, name).await.unwrap();
        let Outcome::Quarantined {
            archived_as: Some(as_name),
            ..
        } = outcome
        else {
            panic!("{name:?}: {outcome:?}")
        };
        assert!(!as_name.contains('/'));
        assert!(as_name.len() + ".error.json".len() <= 255, "{as_name}");
        assert_eq!(
            std::fs::read(env.quarantine().join(&as_name)).unwrap(),
            bad.as_bytes()
        );
        let r = report(&env, &as_name);
        assert_eq!(r.file, *name, "the report names the file as it was dropped");
        assert_eq!(r.quarantined_as, as_name);
        assert_eq!(r.rule, "not_a_number");
    }
    assert!(files_in(&env.data()).is_empty());
    // Nothing was created anywhere but in the two folders (`profiles` is the test's own,
    // empty PROFILES_DIR).
    let mut top = entries(env.dir.path());
    top.retain(|n| !n.starts_with('.'));
    assert_eq!(top, vec!["data", "processed", "profiles", "quarantine"]);
    assert!(entries(&env.profiles()).is_empty());
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE file_name LIKE '%/%'")
            .await,
        0
    );
}

/// The password given as DB_PASSWORD (not in a URL) stays out of every output: logs
/// in both formats at trace level, errors of a failed connection, reports, every
/// `--help`, and what the agent wrote into the database.
#[tokio::test]
async fn the_db_password_variable_never_leaks() {
    let Some(env) = TestEnv::new(Backend::Postgres).await else {
        return;
    };
    // A role whose password is the canary, so the password is really used whether the
    // server trusts local connections or checks passwords (as on a fresh CI server).
    let role = format!("canary_{}", uuid::Uuid::now_v7().simple());
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&env.db.pg().pool)
            .await
            .unwrap();
    }
    let admin = crate::common::admin_options();
    let db_vars = |cmd: &mut std::process::Command, port: u16| {
        cmd.env_remove("DATABASE_URL")
            .env("DB_HOST", admin.get_host())
            .env("DB_PORT", port.to_string())
            .env("DB_NAME", &env.db.pg().name)
            .env("DB_USER", &role)
            .env("DB_PASSWORD", PASSWORD);
    };
    let mut everything = String::new();
    let mut run = |mut cmd: std::process::Command| {
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        everything.push_str(&String::from_utf8_lossy(&out.stdout));
        everything.push_str(&String::from_utf8_lossy(&out.stderr));
        out.status.code()
    };

    env.drop_file("good.csv", GOOD);
    env.drop_file("bad.csv", BAD);
    env.drop_file("big.csv", GOOD.repeat(40));
    for format in ["json", "text"] {
        let mut cmd = command(&env, &["once"]);
        db_vars(&mut cmd, admin.get_port());
        cmd.env("LOG_LEVEL", "trace")
            .env("LOG_FORMAT", format)
            .env("MAX_FILE_BYTES", "500B")
            .env("LOG_DIR", env.dir.path().join("logs"));
        run(cmd);
    }
    assert_eq!(files_in(&env.processed()), vec!["good.csv"]);
    // A server that is not there: connection errors, retries, the final error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.drop_file("waiting.csv", GOOD.replace("s-1", "s-2"));
    let mut cmd = command(&env, &["once", "--retries", "1"]);
    db_vars(&mut cmd, closed);
    cmd.env("LOG_LEVEL", "trace");
    assert_eq!(run(cmd), Some(1));
    // A bad setting next to the password: the error names the bad variable only.
    let mut cmd = command(&env, &["once"]);
    db_vars(&mut cmd, admin.get_port());
    cmd.env("DB_SSLMODE", "sometimes");
    assert_eq!(run(cmd), Some(2));
    for args in [
        &["--help"][..],
        &["help"],
        &["run", "--help"],
        &["once", "--help"],
        &["check", "--help"],
        &["--version"],
    ] {
        let mut cmd = command(&env, args);
        db_vars(&mut cmd, admin.get_port());
        assert_eq!(run(cmd), Some(0), "{args:?}");
    }
    let mut cmd = command(&env, &["check", "--json"]);
    cmd.arg(env.quarantine().join("bad.csv"));
    db_vars(&mut cmd, admin.get_port());
    run(cmd);

    for dir in [env.quarantine(), env.dir.path().join("logs")] {
        for name in entries(&dir) {
            everything.push_str(&String::from_utf8_lossy(
                &std::fs::read(dir.join(&name)).unwrap(),
            ));
        }
    }
    assert_eq!(
        env.db
            .count("SELECT count(*) FROM ingest_files WHERE status = 'loaded'")
            .await,
        1,
        "the agent really worked with the canary password"
    );
    let ledger: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', file_name, error_summary, archived_as, agent) FROM ingest_files",
    )
    .fetch_all(&env.db.pg().pool)
    .await
    .unwrap();
    everything.push_str(&ledger.join("\n"));

    // The outputs were really captured: each of these is in there.
    for expected in [
        "good.csv",
        "file_too_large",
        "not_a_number",
        "DB_SSLMODE",
        "Usage",
        "\"level\":\"TRACE\"",
        &closed.to_string(),
    ] {
        assert!(everything.contains(expected), "{expected} missing");
    }
    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&env.db.pg().pool)
            .await
            .unwrap();
    }
    assert!(
        !everything.contains(PASSWORD),
        "the password leaked:\n{}",
        everything
            .lines()
            .filter(|l| l.contains(PASSWORD))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
