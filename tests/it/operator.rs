//! The operator tools, end to end through the real binary on a temp folder and a fresh
//! database: `quarantine list/show/retry/purge`, `status`, `simulate`, the gold-layer
//! views, `once`'s progress lines, and `run`'s `/metrics`, `/healthz` and `/readyz`.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use crate::common::binary::{PASSWORD, command};
use crate::common::{Backend, CutProxy, TestEnv, TestStore, env_or_skip, eventually, files_in};
use rstest::rstest;
use sensor_ingest::ops::simulate::{SimOptions, Simulator, default_start};

fn run(env: &TestEnv, args: &[&str]) -> Output {
    command(env, args).output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn both(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn rows_csv(n: usize, offset: usize) -> String {
    let mut s = String::from("timestamp,sensor_id,temperature,humidity,pressure\n");
    for i in 0..n {
        s.push_str(&format!(
            "{},s{},{}.5,{},{}\n",
            1_700_000_000 + offset + i,
            i % 3,
            i % 40,
            i % 100,
            950 + i % 100
        ));
    }
    s
}

const BAD: &str = "timestamp,sensor_id,temperature,humidity\n\
    2024-05-01T12:00:00Z,s-1,21.5,40\n\
    2024-05-01T12:01:00Z,s-1,abc,40\n\
    2024-05-01T12:02:00Z,s-1,22.0,41\n";
const FIXED: &str = "timestamp,sensor_id,temperature,humidity\n\
    2024-05-01T12:00:00Z,s-1,21.5,40\n\
    2024-05-01T12:01:00Z,s-1,21.7,40\n\
    2024-05-01T12:02:00Z,s-1,22.0,41\n";

fn list_json(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = run(env, &["quarantine", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[rstest]
#[tokio::test]
async fn quarantine_list_show_and_retry_until_the_fixed_file_loads(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    env.drop_file("bad.csv", BAD);
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["bad.csv", "bad.csv.error.json"]
    );

    // list: a table that fits 80 columns, and the same as JSON.
    let out = run(&env, &["quarantine", "list"]);
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
    let row = table.lines().nth(1).expect("one row");
    assert!(row.starts_with("bad.csv "), "{table}");
    assert!(row.contains("not a number"), "{table}");
    assert!(row.ends_with("1      1"), "bad rows 1, attempts 1: {table}");
    let listed = list_json(&env);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["file"], "bad.csv");
    assert_eq!(listed[0]["rule"], "not_a_number");
    assert_eq!(listed[0]["invalid_rows"], 1);
    assert_eq!(listed[0]["attempts"], 1);

    // show: the offending line quoted with its number, and advice for the rule.
    let out = run(&env, &["quarantine", "show", "bad.csv"]);
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        shown.contains("     3 | 2024-05-01T12:01:00Z,s-1,abc,40"),
        "{shown}"
    );
    assert!(
        shown.contains("     1 | timestamp,sensor_id,temperature,humidity"),
        "{shown}"
    );
    assert!(
        shown.contains("line 3, column temperature: \"abc\" is not a number"),
        "{shown}"
    );
    assert!(
        shown.contains("not_a_number (1×): A measurement cell is not a decimal number"),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD));

    // retry unchanged: quarantined again; the first report is kept; the ledger links
    // both attempts by content hash.
    let out = run(&env, &["quarantine", "retry", "bad.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(files_in(&env.data()), vec!["bad.csv"]);
    assert!(
        files_in(&env.quarantine()).is_empty() || files_in(&env.quarantine()) == vec![".attempts"]
    );
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    assert_eq!(
        files_in(&env.quarantine().join(".attempts")),
        vec!["bad.csv.1.error.json"]
    );
    let listed = list_json(&env);
    assert_eq!(listed[0]["attempts"], 2, "{listed:?}");
    let shown = stdout(&run(&env, &["quarantine", "show", "bad.csv"]));
    assert!(shown.contains(".attempts/bad.csv.1.error.json"), "{shown}");
    assert_eq!(
        shown.matches("quarantined bad.csv").count(),
        2,
        "both attempts in the history: {shown}"
    );
    let ledger = env.db.ledger().await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0].content_hash, ledger[1].content_hash);

    // Fix it in the quarantine folder, retry: it loads.
    std::fs::write(env.quarantine().join("bad.csv"), FIXED).unwrap();
    let out = run(&env, &["quarantine", "retry", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&env, &["once"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(files_in(&env.processed()), vec!["bad.csv"]);
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        3
    );
    let statuses: Vec<String> = env
        .db
        .ledger()
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec!["quarantined", "quarantined", "loaded"]);
    assert_eq!(
        files_in(&env.quarantine().join(".attempts")),
        vec!["bad.csv.1.error.json", "bad.csv.2.error.json"]
    );
    assert!(list_json(&env).is_empty());
    assert_eq!(
        stdout(&run(&env, &["quarantine", "list"])),
        "The quarantine is empty.\n"
    );
}

#[tokio::test]
async fn retry_never_overwrites_a_file_waiting_under_the_same_name() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("x.csv", BAD);
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    env.drop_file("x.csv", rows_csv(2, 0));
    let out = run(&env, &["quarantine", "retry", "x.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already has an item named \"x.csv\""),
        "{}",
        both(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.data().join("x.csv")).unwrap(),
        rows_csv(2, 0)
    );
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["x.csv", "x.csv.error.json"],
        "the entry stays whole"
    );
    let out = run(&env, &["quarantine", "show", "nothing.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in the quarantine (see"));
}

#[tokio::test]
async fn purge_deletes_only_old_entries_and_asks_first() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("old.csv", BAD);
    env.drop_file("new.csv", BAD.replace("abc", "xyz"));
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    // Age old.csv's entry by 40 days, as written in its report.
    let report_path = env.quarantine().join("old.csv.error.json");
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let forty_days_ago = chrono::Utc::now() - chrono::TimeDelta::days(40);
    report["quarantined_at"] = serde_json::json!(forty_days_ago);
    std::fs::write(&report_path, serde_json::to_vec(&report).unwrap()).unwrap();

    // Not a terminal and no --yes: refused, nothing deleted.
    let out = run(&env, &["quarantine", "purge", "--older-than", "30d"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(files_in(&env.quarantine()).len(), 4);

    let out = run(
        &env,
        &["quarantine", "purge", "--older-than", "30d", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("old.csv"));
    assert_eq!(
        files_in(&env.quarantine()),
        vec!["new.csv", "new.csv.error.json"]
    );
    // The ledger keeps the history of what was purged.
    assert_eq!(env.db.count("SELECT count(*) FROM ingest_files").await, 2);

    let out = run(
        &env,
        &["quarantine", "purge", "--older-than", "30d", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("nothing to purge"));
    let out = run(&env, &["quarantine", "purge", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a bad age is a usage error");
}

/// A pseudo-terminal: the child gets the slave side as stdin, the test writes the
/// operator's answer to the master side.
fn pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 30,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the given ints and reads the
    // winsize; the name and termios arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

#[tokio::test]
async fn purge_on_a_terminal_deletes_only_after_yes() {
    use std::io::Write;
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    env.drop_file("old.csv", BAD);
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    for (answer, code, left) in [("n\n", 1, 2), ("y\n", 0, 0)] {
        let (mut master, slave) = pty();
        let child = command(&env, &["quarantine", "purge", "--older-than", "0d"])
            .stdin(Stdio::from(slave))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        master.write_all(answer.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(stdout(&out).contains("[y/N]"), "{}", both(&out));
        assert_eq!(out.status.code(), Some(code), "{}", both(&out));
        assert_eq!(files_in(&env.quarantine()).len(), left, "after {answer:?}");
    }
}

#[tokio::test]
async fn once_draws_a_progress_bar_on_a_terminal() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    for i in 0..3 {
        env.drop_file(&format!("f{i}.csv"), rows_csv(2000, i * 10_000));
    }
    let (mut master, slave) = pty();
    let mut child = command(&env, &["once"])
        .env("TERM", "xterm")
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // Read the terminal in a thread: it ends with EIO once the child has exited.
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    let screen = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("/3 files, "), "{screen}");
    assert!(
        screen.contains("rows/s") && screen.contains("ETA"),
        "{screen}"
    );
    assert!(
        !screen.contains("progress files_done"),
        "a terminal gets the bar, not progress lines: {screen}"
    );
    assert!(
        screen.contains("file loaded"),
        "log lines show above the bar: {screen}"
    );
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        6000
    );
}

#[rstest]
#[tokio::test]
async fn status_agrees_with_what_was_loaded(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    env.drop_file("a.csv", rows_csv(5, 0));
    env.drop_file("b.csv", rows_csv(7, 100));
    env.drop_file("bad.csv", BAD);
    assert_eq!(run(&env, &["once"]).status.code(), Some(1));
    env.drop_file("again.csv", rows_csv(5, 0));
    assert_eq!(run(&env, &["once"]).status.code(), Some(0));
    // One file left waiting, written two hours ago.
    let waiting = env.drop_file("waiting.csv", rows_csv(1, 0));
    std::fs::File::options()
        .write(true)
        .open(&waiting)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();

    let out = run(&env, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for period in ["last_hour", "last_day"] {
        let p = &s[period];
        assert_eq!(p["loaded"]["files"], 2, "{s}");
        assert_eq!(p["loaded"]["rows"], 12, "{s}");
        assert_eq!(p["quarantined"]["files"], 1, "{s}");
        assert_eq!(p["quarantined"]["rows"], 3, "{s}");
        assert_eq!(p["quarantined"]["rejected_rows"], 1, "{s}");
        assert_eq!(p["duplicate"]["files"], 1, "{s}");
    }
    assert_eq!(s["waiting"]["files"], 1);
    assert_eq!(s["waiting"]["oldest"], "waiting.csv");
    assert!(s["waiting"]["oldest_age_seconds"].as_f64().unwrap() >= 7200.0);
    assert_eq!(s["quarantine_entries"], 1);
    assert!(
        ["a.csv", "b.csv"].contains(&s["last_loaded"]["file_name"].as_str().unwrap()),
        "{s}"
    );
    assert!(s["rows_per_second_while_loading"].as_f64().unwrap() > 0.0);
    assert!((s["rows_per_minute_last_hour"].as_f64().unwrap() - 12.0 / 60.0).abs() < 1e-9);

    let out = run(&env, &["status"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(text.contains("waiting       1 file (74 bytes)"), "{text}");
    assert!(text.contains("oldest waiting.csv (2h 0m ago)"), "{text}");
    assert!(text.contains("12 rows"), "{text}");
    let expected_db = match &env.db {
        TestStore::Sqlite(db) => format!("sqlite://{}", db.path.display()),
        TestStore::Postgres(db) => db.name.clone(),
        TestStore::Mysql(db) => db.name.clone(),
    };
    assert!(text.contains(&expected_db), "{text}");
    assert!(
        !text.contains(PASSWORD) && !stdout(&run(&env, &["status", "--json"])).contains(PASSWORD)
    );
}

#[rstest]
#[tokio::test]
async fn the_hourly_and_daily_views_summarise_the_readings(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    // Two sensors across two hours of one day and one hour of the next.
    env.drop_file(
        "v.csv",
        "timestamp,sensor_id,temperature,humidity\n\
         2024-05-01T10:05:00Z,a,10,50\n\
         2024-05-01T10:35:00Z,a,20,\n\
         2024-05-01T11:00:00Z,a,30,40\n\
         2024-05-01T10:10:00Z,b,5,60\n\
         2024-05-02T00:00:00Z,a,1,70\n",
    );
    assert_eq!(run(&env, &["once"]).status.code(), Some(0));
    let total = "SELECT CAST(sum(readings) AS BIGINT) FROM sensor_hourly";
    assert_eq!(env.db.count(total).await, 5);
    assert_eq!(env.db.count("SELECT count(*) FROM sensor_hourly").await, 4);
    assert_eq!(env.db.count("SELECT count(*) FROM sensor_daily").await, 3);
    let hour_a = "sensor_id = 'a' AND readings = 2";
    assert_eq!(
        env.db
            .count(&format!(
                "SELECT CAST(temperature_mean * 10 AS BIGINT) FROM sensor_hourly WHERE {hour_a}"
            ))
            .await,
        150
    );
    assert_eq!(
        env.db
            .count(&format!(
                "SELECT humidity_count * 1000 + CAST(humidity_max AS BIGINT) FROM sensor_hourly WHERE {hour_a}"
            ))
            .await,
        1050,
        "one humidity value, the empty cell left out"
    );
    let day_a = "sensor_id = 'a' AND readings = 3";
    assert_eq!(
        env.db
            .count(&format!(
                "SELECT CAST(temperature_min AS BIGINT) * 100 + CAST(temperature_max AS BIGINT) \
                 FROM sensor_daily WHERE {day_a}"
            ))
            .await,
        1030
    );
}

#[tokio::test]
async fn simulated_files_are_reproducible_and_fail_check_only_on_the_intended_rows() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let args = [
        "simulate",
        "--sensors",
        "7",
        "--files",
        "3",
        "--rows",
        "400",
        "--bad-rate",
        "0.03",
        "--seed",
        "42",
        "--once",
    ];
    let out = run(&env, &args);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let names = files_in(&env.data());
    assert_eq!(names.len(), 3, "no temporary file is left: {names:?}");
    let first: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(env.data().join(n)).unwrap())
        .collect();

    // The same seed into another folder: the same bytes.
    let other = env.dir.path().join("other");
    let mut cmd = command(&env, &args);
    cmd.env("DATA_FOLDER", &other);
    assert_eq!(cmd.output().unwrap().status.code(), Some(0));
    for (name, bytes) in names.iter().zip(&first) {
        assert_eq!(&std::fs::read(other.join(name)).unwrap(), bytes, "{name}");
    }

    // check finds exactly the rows the simulator made invalid, and nothing else.
    let mut sim = Simulator::new(SimOptions {
        sensors: 7,
        files: 3,
        rows: 400,
        bad_rate: 0.03,
        seed: 42,
        start: default_start(),
        sample_every: Duration::from_secs(60),
        ranges: env.settings.ranges,
        anomalies: 0.0,
    });
    let mut intended_total = 0;
    for name in &names {
        let (expected_name, content, bad_lines) = sim.next_file();
        assert_eq!(&expected_name, name);
        assert_eq!(
            content.as_bytes(),
            std::fs::read(env.data().join(name)).unwrap()
        );
        intended_total += bad_lines.len();
        let out = run(
            &env,
            &["check", "--json", env.data().join(name).to_str().unwrap()],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut lines: Vec<u64> = report[0]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect();
        lines.dedup();
        assert_eq!(lines, bad_lines, "{name}: {report}");
        assert_eq!(report[0]["rows_read"], 400);
    }
    assert!(intended_total > 0, "the bad rate produced bad rows");

    // Without bad rows, everything loads.
    let clean = env.dir.path().join("clean");
    let mut cmd = command(
        &env,
        &[
            "simulate",
            "--sensors",
            "5",
            "--files",
            "2",
            "--rows",
            "300",
            "--bad-rate",
            "0",
            "--seed",
            "1",
            "--once",
        ],
    );
    cmd.env("DATA_FOLDER", &clean);
    assert_eq!(cmd.output().unwrap().status.code(), Some(0));
    let mut cmd = command(&env, &["once"]);
    cmd.env("DATA_FOLDER", &clean);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        env.db.count("SELECT count(*) FROM sensor_readings").await,
        600
    );
    // Not on a terminal, progress comes as plain log lines.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("progress files_done=2 files_total=2 rows=600"),
        "{stderr}"
    );
}

#[tokio::test]
async fn simulate_keeps_writing_rounds_until_interrupted() {
    let env = env_or_skip!(TestEnv::new(Backend::Sqlite));
    let mut child = Running(
        command(
            &env,
            &[
                "simulate",
                "--sensors",
                "3",
                "--files",
                "2",
                "--rows",
                "20",
                "--interval",
                "100ms",
                "--seed",
                "5",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let rounds = eventually(Duration::from_secs(30), async || {
        files_in(&env.data())
            .iter()
            .filter(|n| n.ends_with(".csv"))
            .count()
            >= 6
    })
    .await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.0.wait().unwrap();
    assert!(rounds, "three rounds written: {:?}", files_in(&env.data()));
    assert_eq!(status.code(), Some(0));
    let names = files_in(&env.data());
    assert!(
        names[..6]
            == [
                "sim-5-000000.csv",
                "sim-5-000001.csv",
                "sim-5-000002.csv",
                "sim-5-000003.csv",
                "sim-5-000004.csv",
                "sim-5-000005.csv"
            ],
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporary left: {names:?}"
    );
}

/// Sends one GET and returns the status code and body.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        Some(text)
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()??;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running agent, killed when the test ends, even by a failed assertion.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_run(mut cmd: Command, port: u16) -> Running {
    Running(
        cmd.arg("run")
            .env("METRICS_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent starts"),
    )
}

/// Stops the agent as a supervisor would, and checks it exits cleanly.
fn stop(mut agent: Running) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    assert_eq!(agent.0.wait().unwrap().code(), Some(0), "clean stop");
}

#[rstest]
#[tokio::test]
async fn metrics_and_health_answer_over_http(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let port = free_port();
    let agent = spawn_run(command(&env, &[]), port);
    let up = eventually(Duration::from_secs(30), async || {
        http_get(port, "/healthz")
            .await
            .is_some_and(|(code, body)| code == 200 && body == "ok\n")
    })
    .await;
    assert!(up, "/healthz answers 200 ok");

    env.drop_file("good.csv", rows_csv(10, 0));
    env.drop_file("bad.csv", BAD);
    let processed = eventually(Duration::from_secs(30), async || {
        env.processed().join("good.csv").exists() && env.quarantine().join("bad.csv").exists()
    })
    .await;
    assert!(processed);
    let mut text = String::new();
    let counted = eventually(Duration::from_secs(10), async || {
        text = http_get(port, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        text.contains("sensor_ingest_files_total{outcome=\"quarantined\"} 1")
            && text.contains("sensor_ingest_files_total{outcome=\"loaded\"} 1")
    })
    .await;
    assert!(counted, "{text}");
    let size = (rows_csv(10, 0).len() + BAD.len()) as u64;
    for needle in [
        "sensor_ingest_rows_loaded_total 10\n".to_owned(),
        "sensor_ingest_rows_rejected_total 1\n".to_owned(),
        "sensor_ingest_database_retries_total 0\n".to_owned(),
        format!("sensor_ingest_read_bytes_total {size}\n"),
        "sensor_ingest_files_waiting 0\n".to_owned(),
        "sensor_ingest_drop_to_commit_seconds_count 1\n".to_owned(),
        "sensor_ingest_drop_to_commit_seconds_bucket{le=\"+Inf\"} 1\n".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from\n{text}");
    }

    let (code, body) = http_get(port, "/readyz").await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        "database: ok\ndata folder: ok\nprocessed folder: ok\nquarantine folder: ok\n"
    );

    // Nothing waits: the age gauge is zero, not the age of a file long gone.
    let (_, text) = http_get(port, "/metrics").await.unwrap();
    assert!(
        text.contains("sensor_ingest_oldest_waiting_age_seconds 0.0\n"),
        "{text}"
    );
    stop(agent);
}

#[tokio::test]
async fn readyz_says_503_while_the_database_is_unreachable() {
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    // Down from the start: the endpoint is up before the database is.
    let proxy = CutProxy::start(false).await;
    let port = free_port();
    let mut cmd = command(&env, &[]);
    let o = crate::common::admin_options();
    cmd.env(
        "DATABASE_URL",
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            o.get_username(),
            proxy.port,
            env.db.pg().name
        ),
    );
    let agent = spawn_run(cmd, port);
    let mut text = String::new();
    let retried = eventually(Duration::from_secs(30), async || {
        text = http_get(port, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("sensor_ingest_database_retries_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert!(retried, "startup retries are counted: {text}");
    let (code, body) = http_get(port, "/readyz").await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        http_get(port, "/healthz").await.map(|r| r.0),
        Some(200),
        "alive while waiting for the database"
    );

    proxy.set_up(true);
    let ready = eventually(Duration::from_secs(30), async || {
        http_get(port, "/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;
    assert!(ready);
    // Past startup: a file loads.
    env.drop_file("a.csv", rows_csv(3, 0));
    let loaded = eventually(Duration::from_secs(30), async || {
        env.processed().join("a.csv").exists()
    })
    .await;
    assert!(loaded);

    proxy.set_up(false);
    let mut last = None;
    let unready = eventually(Duration::from_secs(30), async || {
        last = http_get(port, "/readyz").await;
        last.as_ref().is_some_and(|(code, _)| *code == 503)
    })
    .await;
    assert!(unready, "{last:?}");
    let (_, body) = last.unwrap();
    assert!(body.starts_with("database: "), "{body}");
    assert!(!body.starts_with("database: ok"), "{body}");
    assert!(body.contains("data folder: ok"), "{body}");
    assert_eq!(
        http_get(port, "/healthz").await.map(|r| r.0),
        Some(200),
        "still alive"
    );

    proxy.set_up(true);
    let back = eventually(Duration::from_secs(30), async || {
        http_get(port, "/readyz")
            .await
            .is_some_and(|(code, _)| code == 200)
    })
    .await;
    assert!(back);
    stop(agent);
}
