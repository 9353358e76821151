//! The bucket's quarantine reviewed as the folder's is: `quarantine list|show|retry|
//! purge` and the dashboard on the quarantine prefix and its report objects, against
//! the same real S3 server as the other bucket tests.

use std::net::TcpListener;
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use rstest::rstest;

use super::{S3Server, SECRET_KEY, count, csv, once, prepared};
use crate::common::binary::{read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually};

/// Runs `sensor-ingest quarantine ARGS` against the bucket; returns its exit code and
/// its output (stdout, then stderr).
fn review(s3: &S3Server, env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["quarantine"];
    all.extend_from_slice(args);
    let out = s3.agent(env, &all).output().expect("quarantine runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(SECRET_KEY), "the secret key leaked:\n{text}");
    (out.status.code(), text)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[case::mariadb(Backend::Mysql)]
#[tokio::test]
async fn a_quarantined_object_is_reviewed_fixed_retried_and_loaded_once(#[case] backend: Backend) {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    let good = csv(1, 4);
    let bad = good.replacen(",1.5,", ",hot,", 1);
    assert_ne!(bad, good);
    s3.put("incoming/site-a/bad.csv", bad.clone()).await;
    once(&s3, &env, true).await;
    assert_eq!(count(&env, "quarantined").await, 1);

    // The review reads the bucket's quarantine prefix, not the local folder.
    let (code, listed) = review(&s3, &env, &["list"]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(
        listed.contains("bad.csv") && listed.contains("not a number"),
        "{listed}"
    );
    let (code, json) = review(&s3, &env, &["list", "--json"]);
    assert_eq!(code, Some(0), "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(rows[0]["file"], "bad.csv", "{json}");
    assert_eq!(rows[0]["attempts"], 1, "{json}");
    assert_eq!(rows[0]["has_file"], true, "{json}");

    let (code, shown) = review(&s3, &env, &["show", "bad.csv", "--json"]);
    assert_eq!(code, Some(0), "{shown}");
    let details: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    let problem = &details["entry"]["report"]["errors"][0];
    assert_eq!(problem["line"], 3, "{shown}");
    assert_eq!(problem["column"], "temperature", "{shown}");
    assert_eq!(problem["value"], "hot", "{shown}");
    assert_eq!(problem["rule"], "not_a_number", "{shown}");
    // The offending line is quoted from the quarantined object itself.
    let line = bad.lines().nth(2).unwrap();
    assert_eq!(details["lines"]["3"], line, "{shown}");
    assert_eq!(details["history"][0]["status"], "quarantined", "{shown}");
    let (_, text) = review(&s3, &env, &["show", "bad.csv"]);
    assert!(
        text.contains("line 3, column temperature") && text.contains(line),
        "{text}"
    );

    // Fixed in the quarantine (the object replaced), then retried: back under the
    // source prefix, its report kept among the attempts.
    s3.put("quarantine/bad.csv", good.clone()).await;
    // Never over an object waiting under the prefix with that name: the entry stays
    // whole.
    s3.put("incoming/bad.csv", "waiting").await;
    let (code, refused) = review(&s3, &env, &["retry", "bad.csv"]);
    assert_eq!(code, Some(1), "{refused}");
    assert!(
        refused.contains("already has an item named \"bad.csv\""),
        "{refused}"
    );
    assert_eq!(
        s3.keys().await,
        [
            "incoming/bad.csv",
            "quarantine/bad.csv",
            "quarantine/bad.csv.error.json"
        ]
    );
    assert_eq!(s3.text("incoming/bad.csv").await, "waiting");
    s3.client()
        .delete(&Key::from("incoming/bad.csv"))
        .await
        .unwrap();
    let (code, retried) = review(&s3, &env, &["retry", "bad.csv"]);
    assert_eq!(code, Some(0), "{retried}");
    assert!(retried.contains("s3://fleet/incoming/bad.csv"), "{retried}");
    assert_eq!(
        s3.keys().await,
        [
            "incoming/bad.csv",
            "quarantine/.attempts/bad.csv.1.error.json"
        ]
    );
    // A second retry finds nothing to put back.
    let (code, again) = review(&s3, &env, &["retry", "bad.csv"]);
    assert_eq!(code, Some(1), "{again}");

    once(&s3, &env, false).await;
    once(&s3, &env, false).await;
    assert_eq!(count(&env, "loaded").await, 1);
    assert_eq!(count(&env, "quarantined").await, 1);
    assert_eq!(count(&env, "duplicate").await, 0);
    let rows = env.db.count("SELECT count(*) FROM sensor_readings").await;
    assert_eq!(rows, 4);
    assert_eq!(s3.text("processed/bad.csv").await, good);
    let (_, listed) = review(&s3, &env, &["list"]);
    assert!(listed.contains("The quarantine is empty."), "{listed}");

    // The earlier report is purged from the bucket like any other.
    let (code, purged) = review(&s3, &env, &["purge", "--older-than", "0", "--yes"]);
    assert_eq!(code, Some(0), "{purged}");
    assert!(purged.contains("Deleted 1 files"), "{purged}");
    assert_eq!(s3.keys().await, ["processed/bad.csv"]);
}

/// The bucket's quarantine in the dashboard, in a real browser: the quarantine page
/// lists the object, its file page quotes the offending line from the bucket, and a
/// signed-in retry puts the fixed object back under the prefix, where it loads once.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[case::mariadb(Backend::Mysql)]
#[tokio::test]
async fn the_dashboard_reviews_and_retries_a_quarantined_object(#[case] backend: Backend) {
    use crate::dashboard::{TOKEN, browser, chromedriver, find, text};
    use fantoccini::Locator;
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let Some((_driver, driver_port)) = chromedriver() else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    let good = csv(7, 4);
    let bad = good.replacen(",1.5,", ",hot,", 1);
    s3.put("incoming/bad.csv", bad.clone()).await;
    prepared(&env).await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = env.dir.path().join("agent.log");
    let mut cmd = s3.agent(&env, &["run"]);
    cmd.env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("HTTP_TOKEN", TOKEN);
    let mut agent = spawn_logged(cmd, &log);
    let refused = eventually(Duration::from_secs(30), async || {
        count(&env, "quarantined").await == 1
    })
    .await;
    assert!(refused, "{}", read_log(&log));

    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    assert!(text(&c, "#quarantine").await.contains("bad.csv"));
    c.goto(&format!("{base}/files")).await.unwrap();
    find(&c, "#files a").await.click().await.unwrap();
    let line = bad.lines().nth(2).unwrap();
    assert!(text(&c, "#quoted").await.contains(line));
    assert!(text(&c, "#problems").await.contains("not_a_number"));

    s3.put("quarantine/bad.csv", good.clone()).await;
    c.goto(&format!("{base}/login")).await.unwrap();
    find(&c, "#token").await.send_keys(TOKEN).await.unwrap();
    find(&c, "#sign-in").await.click().await.unwrap();
    let signed_in = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("logout"))
        .await
        .is_ok();
    assert!(signed_in, "{}", c.source().await.unwrap_or_default());
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    find(&c, ".retry-button").await.click().await.unwrap();
    assert!(
        text(&c, "#message")
            .await
            .contains("is back where it was dropped")
    );
    let loaded = eventually(Duration::from_secs(30), async || {
        count(&env, "loaded").await == 1
    })
    .await;
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    let page = c.source().await.unwrap_or_default();
    c.close().await.unwrap();
    signal(&agent, libc::SIGTERM);
    wait_exit(&mut agent, Duration::from_secs(20)).await;
    assert!(loaded, "the retried object loaded:\n{}", read_log(&log));
    assert!(!page.contains("retry-button"), "{page}");
    assert_eq!(count(&env, "quarantined").await, 1);
    let rows = env.db.count("SELECT count(*) FROM sensor_readings").await;
    assert_eq!(rows, 4);
    let settled = eventually(Duration::from_secs(10), async || {
        s3.keys().await
            == [
                "processed/bad.csv",
                "quarantine/.attempts/bad.csv.1.error.json",
            ]
    })
    .await;
    assert!(settled, "{:?}", s3.keys().await);
}
