//! The dashboard, served by the real agent binary: raw HTTP checks (escaping, headers,
//! the read-only default), and real headless Chromium driven through chromedriver
//! (fantoccini): content, charts, a hostile file name shown as text, and the retry
//! action refused without the token and working with it, on both backends.
//!
//! Without `/usr/bin/chromedriver` the browser tests print SKIPPED and pass, unless
//! CI is set (`.ci/run` installs Debian's `chromium` and `chromium-driver`).
//! Screenshots of the main pages go to `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use rstest::rstest;

use crate::common::binary::{command, read_log, spawn_logged};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, in_ci};

pub(crate) const TOKEN: &str = "dashboard-test-token-0123456789";
const HOSTILE: &str = "<img src=x onerror=alert(1)>.csv";
const HOSTILE_SENSOR: &str = "<i>s2</i>";
const BAD: &str = "timestamp,sensor_id,temperature,humidity\n\
    2024-05-01T12:00:00Z,s-1,21.5,40\n\
    2024-05-01T12:01:00Z,s-1,abc,40\n";

/// Readings every 5 minutes over the last day for `s1` and a sensor with a hostile id,
/// and three from `quiet-1`, silent for two days.
fn good_csv() -> String {
    let now = Utc::now();
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for h in 48..51 {
        let t = (now - TimeDelta::hours(h)).format("%Y-%m-%dT%H:%M:%SZ");
        s.push_str(&format!("{t},quiet-1,20.0,50.0,1000.0\n"));
    }
    for i in 0..288 {
        let t = (now - TimeDelta::minutes(5 * i + 1)).format("%Y-%m-%dT%H:%M:%SZ");
        for sensor in ["s1", HOSTILE_SENSOR] {
            s.push_str(&format!(
                "{t},{sensor},{:.1},{:.1},{:.1}\n",
                20.0 + (i % 12) as f64 * 0.5,
                45.0 + (i % 7) as f64,
                1010.0 + (i % 5) as f64
            ));
        }
    }
    s
}

fn agent_log(env: &TestEnv) -> PathBuf {
    env.dir.path().join("agent.log")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, even by a failed assertion.
pub(crate) struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `run` with `HTTP_ADDR` on a free port of `host` (and `HTTP_TOKEN` if given),
/// logging to `agent.log` in the env's folder; drops a good file and the hostile-named
/// bad one, and waits until both are archived.
async fn agent_with_files(env: &TestEnv, host: &str, token: Option<&str>) -> (Killed, u16) {
    let port = free_port();
    let mut cmd = command(env, &["run"]);
    cmd.env("HTTP_ADDR", format!("{host}:{port}"));
    if let Some(token) = token {
        cmd.env("HTTP_TOKEN", token);
    }
    let agent = Killed(spawn_logged(cmd, &agent_log(env)));
    let up = eventually(Duration::from_secs(30), async || {
        http(port, "GET", "/healthz", &[], "")
            .await
            .is_some_and(|r| r.0 == 200)
    })
    .await;
    assert!(up, "the agent serves HTTP");
    env.drop_file("good.csv", good_csv());
    env.drop_file(HOSTILE, BAD);
    let done = eventually(Duration::from_secs(30), async || {
        env.processed().join("good.csv").exists() && env.quarantine().join(HOSTILE).exists()
    })
    .await;
    assert!(done, "both files archived");
    (agent, port)
}

/// One HTTP/1.1 request: status, headers (lower-cased names), body.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split(' ').nth(1)?.parse().ok()?;
        Some((code, head.to_ascii_lowercase(), body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

fn form_post(port: u16) -> [(&'static str, String); 2] {
    [
        ("Origin", format!("http://127.0.0.1:{port}")),
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ]
}

async fn quarantined_attempts(env: &TestEnv) -> i64 {
    let name = HOSTILE.replace('\'', "''");
    env.db
        .count(&format!(
            "SELECT count(*) FROM ingest_files WHERE file_name = '{name}' AND status = 'quarantined'"
        ))
        .await
}

#[rstest]
#[tokio::test]
async fn without_a_token_the_dashboard_is_read_only_escaped_and_locked_down(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    // Beyond loopback and without a token: served, and warned about.
    let (_agent, port) = agent_with_files(&env, "0.0.0.0", None).await;
    let log = read_log(&agent_log(&env));
    assert!(
        log.contains("listens beyond this machine and HTTP_TOKEN is not set"),
        "{log}"
    );

    let (code, head, body) = http(port, "GET", "/", &[], "").await.expect("/ answers");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("content-security-policy: default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: same-origin"), "{head}");
    assert!(
        body.contains("&#60;img src=x onerror=alert(1)&#62;.csv"),
        "{body}"
    );
    assert!(
        !body.contains("<img"),
        "the hostile name is escaped:\n{body}"
    );
    assert!(body.contains("read-only"));

    let (code, _, body) = http(port, "GET", "/quarantine", &[], "").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("Read-only: set <code>HTTP_TOKEN</code>"),
        "{body}"
    );
    assert!(!body.contains("retry-button"), "{body}");

    let headers = form_post(port);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = format!("name={}&csrf=00", encode(HOSTILE));
    let (code, _, page) = http(port, "POST", "/quarantine/retry", &headers, &body)
        .await
        .unwrap();
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("read-only"), "{page}");
    let (code, _, _) = http(port, "GET", "/login", &[], "").await.unwrap();
    assert_eq!(code, 403, "no sign-in without a token");
    assert!(env.quarantine().join(HOSTILE).exists(), "nothing moved");
    assert_eq!(quarantined_attempts(&env).await, 1);

    // Pages that do not exist, bad ids and bad ranges answer, never crash.
    for (path, want) in [
        ("/files/not-a-uuid", 404),
        ("/files/00000000-0000-0000-0000-000000000000", 404),
        ("/nowhere", 404),
        ("/sensor?id=s1&range=forever", 200),
        ("/sensor?id=s1&from=yesterday", 200),
        ("/files?page=-3", 200),
        ("/static/style.css", 200),
    ] {
        let (code, _, _) = http(port, "GET", path, &[], "").await.unwrap();
        assert_eq!(code, want, "{path}");
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// chromedriver on a free port, or `None` (test skipped) when it is not installed here.
pub(crate) fn chromedriver() -> Option<(Killed, u16)> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !std::path::Path::new(&path).exists() {
        assert!(
            !in_ci(),
            "CI needs chromedriver at {path} (.ci/run installs chromium-driver)"
        );
        eprintln!("SKIPPED: no chromedriver at {path} (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some((Killed(child), port))
}

pub(crate) async fn browser(driver_port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1300,1100"]
        }),
    );
    let url = format!("http://127.0.0.1:{driver_port}");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no browser session: {e}"),
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, backend: Backend, page: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let name = format!("{}-{page}.png", format!("{backend:?}").to_lowercase());
    std::fs::write(screenshots().join(name), png).unwrap();
}

/// Waits (up to 10 s, as a page may still be loading after a click) for `css`.
pub(crate) async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

pub(crate) async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The points of the first line of the chart in `css`.
async fn chart_points(c: &Client, css: &str) -> usize {
    let d = c
        .find(Locator::Css(&format!("{css} svg path.line")))
        .await
        .unwrap_or_else(|e| panic!("{css} has a drawn line: {e}"))
        .attr("d")
        .await
        .unwrap()
        .unwrap_or_default();
    d.matches(['M', 'L']).count()
}

#[rstest]
#[tokio::test]
async fn the_dashboard_in_chromium(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((_driver, driver_port)) = chromedriver() else {
        return;
    };
    let env = env_or_skip!(TestEnv::new(backend));
    let (_agent, port) = agent_with_files(&env, "127.0.0.1", Some(TOKEN)).await;
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");

    // The overview: health, counts, charts, the hostile name as text.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(text(&c, "#db-state").await, "reachable");
    let counts = text(&c, "#counts").await;
    assert!(counts.contains("loaded 1 579 1 579"), "{counts}");
    assert!(counts.contains("quarantined 1"), "{counts}");
    assert!(
        chart_points(&c, "#files-chart").await > 1000,
        "a point per minute"
    );
    let files = text(&c, "#files").await;
    assert!(
        files.contains(HOSTILE),
        "the hostile name shows as text:\n{files}"
    );
    assert!(
        c.find_all(Locator::Css("img")).await.unwrap().is_empty(),
        "no element was injected"
    );
    assert!(
        c.find_all(Locator::Css("script")).await.unwrap().is_empty(),
        "no script at all"
    );
    screenshot(&c, backend, "overview").await;

    // Sensors, and a sensor's charts.
    c.goto(&format!("{base}/sensors")).await.unwrap();
    let sensors = text(&c, "#sensors").await;
    assert!(
        sensors.contains("s1") && sensors.contains(HOSTILE_SENSOR),
        "{sensors}"
    );
    assert!(
        c.find_all(Locator::Css("#sensors i"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(&c, backend, "sensors").await;
    c.find(Locator::LinkText(HOSTILE_SENSOR))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&c, "#sensor-id").await, HOSTILE_SENSOR);
    for chart in ["#temperature-chart", "#humidity-chart", "#pressure-chart"] {
        assert!(chart_points(&c, chart).await > 200, "{chart} drawn");
    }
    c.goto(&format!("{base}/sensor?id=s1&range=7d"))
        .await
        .unwrap();
    // A week in about 480 buckets of 21 minutes: the day of readings fills ~69.
    let week = chart_points(&c, "#temperature-chart").await;
    assert!((50..=480).contains(&week), "downsampled: {week} points");
    c.goto(&format!("{base}/sensor?id=s1")).await.unwrap();
    screenshot(&c, backend, "sensor").await;

    // The quarantined file's page quotes the offending line.
    c.goto(&format!("{base}/files")).await.unwrap();
    c.find(Locator::LinkText(HOSTILE))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&c, "#file-name").await, HOSTILE);
    let quoted = text(&c, "#quoted").await;
    assert!(
        quoted.contains("2024-05-01T12:01:00Z,s-1,abc,40"),
        "{quoted}"
    );
    assert!(text(&c, "#problems").await.contains("not_a_number"));
    assert!(c.find_all(Locator::Css("img")).await.unwrap().is_empty());
    screenshot(&c, backend, "file").await;

    // Retry: no button before signing in; a forged POST is refused.
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    assert!(text(&c, "#quarantine").await.contains(HOSTILE));
    assert!(
        c.find_all(Locator::Css(".retry-button"))
            .await
            .unwrap()
            .is_empty()
    );
    let headers = form_post(port);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let forged = format!("name={}&csrf=00", encode(HOSTILE));
    let (code, _, _) = http(port, "POST", "/quarantine/retry", &headers, &forged)
        .await
        .unwrap();
    assert_eq!(code, 403, "no session, no retry");
    assert!(env.quarantine().join(HOSTILE).exists());

    // A wrong token is refused; the right one signs in.
    c.goto(&format!("{base}/login")).await.unwrap();
    find(&c, "#token")
        .await
        .send_keys("not the token at all")
        .await
        .unwrap();
    find(&c, "#sign-in").await.click().await.unwrap();
    assert!(text(&c, "#login-error").await.contains("not the token"));
    find(&c, "#token").await.send_keys(TOKEN).await.unwrap();
    find(&c, "#sign-in").await.click().await.unwrap();
    if c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("logout"))
        .await
        .is_err()
    {
        panic!("not signed in:\n{}", c.source().await.unwrap_or_default());
    }

    c.goto(&format!("{base}/quarantine")).await.unwrap();
    screenshot(&c, backend, "quarantine").await;
    find(&c, ".retry-button").await.click().await.unwrap();
    assert!(
        text(&c, "#message")
            .await
            .contains("is back where it was dropped")
    );
    // The agent takes it again and, the content being the same, quarantines it again.
    let again = eventually(Duration::from_secs(30), async || {
        quarantined_attempts(&env).await == 2 && env.quarantine().join(HOSTILE).exists()
    })
    .await;
    assert!(again, "the retried file went through the pipeline again");
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    let row = text(&c, "#quarantine tbody tr").await;
    assert!(
        row.contains(HOSTILE) && row.contains(" 2"),
        "two attempts: {row}"
    );
    c.close().await.unwrap();
}

/// A followed file (append mode) on `/followed`: its name, the offset of its last
/// complete line, its size, the lines before the offset, the partial last line as lag,
/// and its last increment's ledger status.
#[rstest]
#[tokio::test]
async fn a_followed_file_shows_on_the_dashboard_with_its_offset_in_chromium(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let Some((_driver, driver_port)) = chromedriver() else {
        return;
    };
    let env = env_or_skip!(TestEnv::with_vars(backend, &[("SOURCE_MODE", "append")]));
    env.pipeline().await;
    let complete = "timestamp,sensor_id,temperature\n\
        2024-05-01T00:00:00Z,a,1.5\n\
        2024-05-01T00:01:00Z,a,2.5\n";
    let partial = "2024-05-01T00:02:00Z,a,";
    env.drop_file("logger.csv", format!("{complete}{partial}"));
    let port = free_port();
    let mut cmd = command(&env, &["run"]);
    cmd.env("SOURCE_MODE", "append")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"));
    let _agent = Killed(spawn_logged(cmd, &agent_log(&env)));
    let loaded = eventually(Duration::from_secs(30), async || {
        env.db.count("SELECT count(*) FROM followed_files").await == 1
    })
    .await;
    assert!(loaded, "followed:\n{}", read_log(&agent_log(&env)));

    let c = browser(driver_port).await;
    c.goto(&format!("http://127.0.0.1:{port}/followed"))
        .await
        .unwrap();
    let cells: Vec<String> = {
        let row = find(&c, "#followed tbody tr").await;
        let mut cells = Vec::new();
        for td in row.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(td.text().await.unwrap());
        }
        cells
    };
    let size = complete.len() + partial.len();
    assert_eq!(
        cells[..5],
        [
            "logger.csv".to_owned(),
            complete.len().to_string(),
            size.to_string(),
            "3".to_owned(),
            partial.len().to_string(),
        ],
        "name, offset, size, lines, lag"
    );
    assert_eq!(cells[7], "loaded");
    screenshot(&c, backend, "followed").await;
    c.find(Locator::LinkText("loaded"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text(&c, "#file-name").await, "logger.csv");
    c.close().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_dashboard_queries_answer_alike_and_cannot_write(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    use sensor_ingest::config::DatabaseSettings;
    use sensor_ingest::sink::EntryStatus;
    use sensor_ingest::sink::mysql::MysqlStore;
    use sensor_ingest::sink::postgres::PgStore;
    use sensor_ingest::sink::sqlite::SqliteStore;

    let env = env_or_skip!(TestEnv::new(backend));
    let pipeline = env.pipeline().await;
    // s-1 every minute from 10:00 to 10:59, temperature 20.0 + minute / 10, but for a
    // one-minute spike to 35 at 10:30.
    let mut csv = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for m in 0..60 {
        let t = if m == 30 {
            35.0
        } else {
            20.0 + f64::from(m) / 10.0
        };
        csv.push_str(&format!("2024-05-01T10:{m:02}:00Z,s-1,{t:.1},50,1000\n"));
    }
    env.drop_file("hour.csv", csv);
    env.process(&pipeline, "hour.csv").await.expect("loads");
    env.drop_file("bad.csv", BAD);
    let _ = env.process(&pipeline, "bad.csv").await;

    let db = sensor_ingest::sink::open_read_only(&env.settings.database, 2);
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let (from, to) = (at("2024-05-01T10:00:00Z"), at("2024-05-01T11:00:00Z"));

    // 5-minute buckets: 12 of them, each the mean of its 5 readings.
    let series = db.series("s-1", from, to, 300).await.unwrap();
    assert_eq!(series.len(), 12);
    assert_eq!(series[0].at, from);
    assert_eq!(series[0].readings, 5);
    let t = series[0].temperature.unwrap();
    assert!(
        (t.mean - 20.2).abs() < 1e-9 && t.min == 20.0 && t.max == 20.4,
        "{t:?}"
    );
    assert_eq!(series[11].at, at("2024-05-01T10:55:00Z"));
    // Quality flags per bucket and measure, as stored: the temperature spike is flagged
    // in its bucket (10:30–10:35); an hour of the same humidity and pressure is too
    // short to be a flat line.
    for (m, mask) in [(0, 15), (1, 240), (2, 3840)] {
        let stored = env
            .db
            .count(&format!(
                "SELECT count(*) FROM sensor_readings WHERE qc_flags & {mask} <> 0"
            ))
            .await;
        let charted: u64 = series.iter().map(|p| p.flagged[m]).sum();
        assert_eq!(charted, stored as u64, "measure {m}");
        assert_eq!(stored > 0, m == 0, "measure {m}: {stored} flagged");
    }
    assert!(series[6].flagged[0] > 0, "{:?}", series[6]);
    // The range is half-open and by sensor.
    assert!(
        db.series("s-1", to, at("2024-05-02T00:00:00Z"), 300)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(db.series("s-2", from, to, 300).await.unwrap().is_empty());

    let sensors = db.sensors(at("2024-05-01T12:00:00Z")).await.unwrap();
    assert_eq!(sensors.len(), 1);
    let s1 = &sensors[0];
    assert_eq!((s1.sensor_id.as_str(), s1.day_readings), ("s-1", 60));
    assert_eq!(s1.last_reading, at("2024-05-01T10:59:00Z"));
    assert_eq!(s1.usual_interval_seconds(), Some(60.0));

    let files = db.recent_files(10, 0).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].file_name, "bad.csv", "newest first");
    assert_eq!(files[0].status, EntryStatus::Quarantined);
    assert_eq!(files[1].row_count, 60);
    assert_eq!(db.recent_files(10, 1).await.unwrap().len(), 1);
    let loaded = db.file(files[1].id).await.unwrap().expect("the row");
    assert_eq!(loaded.archived_as.as_deref(), Some("hour.csv"));
    let metrics = db.file_metrics(loaded.id).await.unwrap();
    let temperature = metrics.iter().find(|m| m.column == "temperature").unwrap();
    assert_eq!(
        (temperature.values, temperature.min, temperature.max),
        (60, Some(20.0), Some(35.0))
    );
    let history = db.history(&loaded.content_hash, "hour.csv").await.unwrap();
    assert_eq!(history.len(), 1);

    let now = Utc::now();
    let minutes = db
        .per_minute(now - TimeDelta::hours(1), now + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(minutes.iter().map(|m| m.files).sum::<u64>(), 2);
    assert_eq!(
        minutes.iter().map(|m| m.rows).sum::<u64>(),
        60,
        "rows loaded only"
    );
    assert_eq!(
        db.agents_since(now - TimeDelta::hours(1))
            .await
            .unwrap()
            .len(),
        1
    );

    // The dashboard's connections refuse to write, whatever SQL a page might send.
    let write = "DELETE FROM ingest_files";
    let refused = match &env.settings.database {
        DatabaseSettings::Postgres(pg) => sqlx::query(write)
            .execute(PgStore::read_only(pg, 1).pool())
            .await
            .expect_err("a read-only connection wrote"),
        DatabaseSettings::Sqlite(file) => sqlx::query(write)
            .execute(SqliteStore::read_only(file, 1).pool())
            .await
            .expect_err("a read-only connection wrote"),
        DatabaseSettings::Mysql(my) => sqlx::query(write)
            .execute(MysqlStore::read_only(my, 1).pool())
            .await
            .expect_err("a read-only connection wrote"),
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("read-only")
            || refused.contains("readonly")
            || refused.contains("READ ONLY transaction"),
        "{refused}"
    );
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 2);
}
