//! Append mode (issue 25), on every backend: a followed file is loaded one increment of
//! complete lines at a time and never moved; a partial last line waits for its newline;
//! a rewritten, truncated or rotated file is read again from its first data line, the
//! readings stored already with the same values skipped and a different value refused
//! (`rewritten_value`, also what a logger clock set back gives); a TOA5-style metadata
//! line still names the station in every increment; a read-only folder loads and
//! nothing is written there; and the agent (`run`) follows growth by itself.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::common::binary::{command, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, files_in};
use rstest::rstest;
use sensor_ingest::ops::followed;
use sensor_ingest::pipeline::Outcome;
use sensor_ingest::read::ContentHash;
use sensor_ingest::report::QuarantineReport;
use sensor_ingest::sink::{
    EntryStatus, ErrorClass, FileAttempt, FollowMark, FollowedFile, LedgerEntry, ProfileRef,
};

const HEADER: &str = "timestamp,sensor_id,temperature\n";

fn line(minute: u32, value: f64) -> String {
    format!("2024-05-01T00:{minute:02}:00Z,a,{value}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

async fn env(backend: Backend) -> Option<TestEnv> {
    TestEnv::with_vars(backend, &[("SOURCE_MODE", "append")]).await
}

fn rows(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Loaded { rows, .. } => *rows,
        other => panic!("expected a load, got {other:?}"),
    }
}

/// The minutes stored for sensor `a`, in time order, with their temperatures.
async fn stored(env: &TestEnv) -> Vec<(u32, f64)> {
    let mut r: Vec<(u32, f64)> = env
        .db
        .readings()
        .await
        .into_iter()
        .map(|r| {
            use chrono::Timelike;
            (r.ts.minute(), r.temperature.unwrap())
        })
        .collect();
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    r
}

/// The one quarantine report in `env`'s quarantine folder.
fn only_report(env: &TestEnv) -> QuarantineReport {
    let reports: Vec<String> = files_in(&env.quarantine())
        .into_iter()
        .filter(|n| n.ends_with(".error.json"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let text = std::fs::read_to_string(env.quarantine().join(&reports[0])).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[rstest]
#[tokio::test]
async fn growth_loads_each_complete_line_once_and_holds_a_partial_line_back(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("logger.csv");
    std::fs::write(
        &path,
        format!("{HEADER}{}{}2024-05-01T00:02", line(0, 10.0), line(1, 11.0)),
    )
    .unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        2
    );
    // `status` (and the metrics) show the partial line as the file's lag.
    let followed = followed::collect(&env.data(), env.store().as_ref(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(followed.len(), 1);
    assert_eq!(
        (
            followed[0].file_name.as_str(),
            followed[0].lag_bytes,
            followed[0].lines
        ),
        ("logger.csv", "2024-05-01T00:02".len() as u64, 3)
    );
    // Nothing new but the partial line: nothing loaded, nothing moved.
    assert!(matches!(
        env.process(&pipeline, "logger.csv").await.unwrap(),
        Outcome::Skipped { .. }
    ));
    append(&path, ":00Z,a,12\n");
    append(&path, &line(3, 13.0));
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        2
    );
    for m in 4..7 {
        append(&path, &line(m, 10.0 + f64::from(m)));
        assert_eq!(
            rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
            1
        );
    }
    assert_eq!(
        stored(&env).await,
        (0..7).map(|m| (m, 10.0 + f64::from(m))).collect::<Vec<_>>()
    );
    // The lines keep their place in the followed file.
    let mut lines: Vec<i64> = env.db.readings().await.iter().map(|r| r.line).collect();
    lines.sort();
    assert_eq!(lines, (2..9).collect::<Vec<_>>());
    // One ledger row per increment, never a content hash; the file stays in place.
    let ledger = env.db.ledger().await;
    assert_eq!(ledger.len(), 5);
    assert!(ledger.iter().all(|l| l.status == "loaded"
        && l.file_name == "logger.csv"
        && l.content_hash.starts_with("append-")
        && l.archived_as.is_none()));
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert!(files_in(&env.processed()).is_empty());
    let size = std::fs::metadata(&path).unwrap().len() as i64;
    assert_eq!(
        env.db
            .count("SELECT committed_offset FROM followed_files WHERE file_name = 'logger.csv'")
            .await,
        size
    );
    // The range probe an increment asks before looking readings up one by one: a
    // stored reading within a sensor's span, ends included; none between readings or
    // for another sensor.
    let at = |m: u32, s: u32| {
        chrono::DateTime::parse_from_rfc3339(&format!("2024-05-01T00:{m:02}:{s:02}Z"))
            .unwrap()
            .to_utc()
    };
    let store = env.store();
    let probe = async |sensor: &str, from, to| {
        store
            .any_stored_within(&[(sensor.to_owned(), from, to)])
            .await
            .unwrap()
    };
    assert!(probe("a", at(3, 0), at(3, 0)).await);
    assert!(probe("a", at(2, 30), at(3, 0)).await);
    assert!(!probe("a", at(2, 1), at(2, 59)).await);
    assert!(!probe("b", at(0, 0), at(6, 0)).await);
    assert!(
        store
            .any_stored_within(&[
                ("b".to_owned(), at(0, 0), at(6, 0)),
                ("a".to_owned(), at(6, 0), at(7, 0)),
            ])
            .await
            .unwrap()
    );
    // The dashboard's read-only query: the position and the last increment's status.
    let dashboard = sensor_ingest::sink::open_read_only(&env.settings.database, 1);
    let listed = dashboard.followed().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].position.offset, listed[0].position.lines),
        (size as u64, 8)
    );
    assert_eq!(
        listed[0].last_status,
        Some(sensor_ingest::sink::EntryStatus::Loaded)
    );
}

#[rstest]
#[tokio::test]
async fn a_rewrite_skips_stored_values_and_refuses_a_different_one(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("logger.csv");
    let first: String = (0..3).map(|m| line(m, 20.0)).collect();
    std::fs::write(&path, format!("{HEADER}{first}")).unwrap();
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        3
    );
    // Rewritten in place with the same lines plus one: only the new one loads.
    std::fs::write(&path, format!("{HEADER}{}{first}", "")).unwrap();
    let grown = format!("{HEADER}{first}{}", line(3, 21.0));
    let tmp = env.dir.path().join("rewrite.tmp");
    std::fs::write(&tmp, &grown).unwrap();
    std::fs::copy(&tmp, &path).unwrap();
    // The same size as before the new line was copied in: made different by the tail.
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        1
    );
    // Rewritten with another value for a stored minute: refused, nothing stored.
    std::fs::write(
        &path,
        format!(
            "{HEADER}{}{}{}",
            line(0, 20.0),
            line(1, 25.0),
            line(2, 20.0)
        ),
    )
    .unwrap();
    match env.process(&pipeline, "logger.csv").await.unwrap() {
        Outcome::Quarantined { .. } => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let report = only_report(&env);
    assert_eq!(report.rule.name(), "rewritten_value");
    assert!(report.reason.contains("line 3"), "{}", report.reason);
    assert_eq!(
        stored(&env).await,
        vec![(0, 20.0), (1, 20.0), (2, 20.0), (3, 21.0)]
    );
    // The followed file itself was never moved; its refused lines were copied.
    assert!(path.exists());
    let quarantined: Vec<String> = files_in(&env.quarantine())
        .into_iter()
        .filter(|n| !n.ends_with(".error.json"))
        .collect();
    assert_eq!(quarantined.len(), 1);
    let copy = std::fs::read_to_string(env.quarantine().join(&quarantined[0])).unwrap();
    assert!(
        copy.starts_with(HEADER) && copy.contains(",a,25\n"),
        "{copy}"
    );
}

#[rstest]
#[tokio::test]
async fn rotation_and_truncation_start_over_without_loading_twice(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("day.csv");
    std::fs::write(&path, format!("{HEADER}{}{}", line(0, 1.0), line(1, 2.0))).unwrap();
    assert_eq!(rows(&env.process(&pipeline, "day.csv").await.unwrap()), 2);
    // Rotated by rename and recreate (the old name's file is out of the pattern).
    std::fs::rename(&path, env.data().join("day.csv.1")).unwrap();
    std::fs::write(&path, format!("{HEADER}{}", line(2, 3.0))).unwrap();
    assert_eq!(rows(&env.process(&pipeline, "day.csv").await.unwrap()), 1);
    // Truncated to its header, then written again: the new lines load.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(HEADER.len() as u64)
        .unwrap();
    assert!(matches!(
        env.process(&pipeline, "day.csv").await.unwrap(),
        Outcome::Skipped { .. }
    ));
    append(&path, &line(3, 4.0));
    assert_eq!(rows(&env.process(&pipeline, "day.csv").await.unwrap()), 1);
    // A rotation that repeats a stored line with its stored value skips it.
    std::fs::rename(&path, env.data().join("day.csv.2")).unwrap();
    std::fs::write(&path, format!("{HEADER}{}{}", line(3, 4.0), line(4, 5.0))).unwrap();
    assert_eq!(rows(&env.process(&pipeline, "day.csv").await.unwrap()), 1);
    assert_eq!(
        stored(&env).await,
        vec![(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0)]
    );
}

#[rstest]
#[tokio::test]
async fn a_clock_set_back_is_refused_and_the_lines_after_it_load(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("clock.csv");
    std::fs::write(&path, format!("{HEADER}{}{}", line(0, 1.0), line(1, 2.0))).unwrap();
    assert_eq!(rows(&env.process(&pipeline, "clock.csv").await.unwrap()), 2);
    // The logger's clock went back a minute: minute 1 again, another value.
    append(&path, &line(1, 9.0));
    assert!(matches!(
        env.process(&pipeline, "clock.csv").await.unwrap(),
        Outcome::Quarantined { .. }
    ));
    assert_eq!(only_report(&env).rule.name(), "rewritten_value");
    // The clock fixed: the next line loads, the refused one stays refused.
    append(&path, &line(2, 3.0));
    assert_eq!(rows(&env.process(&pipeline, "clock.csv").await.unwrap()), 1);
    assert_eq!(stored(&env).await, vec![(0, 1.0), (1, 2.0), (2, 3.0)]);
    let statuses: Vec<String> = env
        .db
        .ledger()
        .await
        .into_iter()
        .map(|l| l.status)
        .collect();
    assert_eq!(statuses, ["loaded", "quarantined", "loaded"]);
}

/// A TOA5-style export: a metadata line naming the station, the header, a units line.
const TOA5_PROFILE: &str = "match = [\"pond_*.dat\"]\nmissing = [\"NAN\"]\n\
    [layout]\npreamble = 1\nskip_after_header = 1\n\
    [metadata]\nline = 1\nfields = { station = 2 }\n\
    [sensor]\nmetadata = \"station\"\n\
    [time]\ncolumn = \"TIMESTAMP\"\nzone = \"UTC\"\n\
    [measures.temperature]\ncolumn = \"AirT_C\"\nunit = \"degC\"\n\
    [measures.humidity]\ncolumn = \"RH\"\n\
    [source]\nmode = \"append\"\n";

#[rstest]
#[tokio::test]
async fn a_profile_in_append_mode_reads_every_increment_with_its_metadata_line(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("pond.toml", TOA5_PROFILE)],
        &[]
    ));
    let pipeline = env.pipeline().await;
    let path = env.data().join("pond_table1.dat");
    let head = "\"TOA5\",\"PondNorth\",\"CR1000\"\n\"TIMESTAMP\",\"AirT_C\",\"RH\"\n\
        \"TS\",\"Deg C\",\"%\"\n";
    std::fs::write(&path, format!("{head}\"2024-05-01 00:00:00\",12.5,50\n")).unwrap();
    assert_eq!(
        rows(&env.process(&pipeline, "pond_table1.dat").await.unwrap()),
        1
    );
    append(
        &path,
        "\"2024-05-01 00:01:00\",NAN,51\n\"2024-05-01 00:02:00\",13,52\n",
    );
    assert_eq!(
        rows(&env.process(&pipeline, "pond_table1.dat").await.unwrap()),
        2
    );
    let readings = env.db.readings().await;
    assert_eq!(readings.len(), 3);
    assert!(readings.iter().all(|r| r.sensor_id == "PondNorth"));
    assert_eq!(
        readings.iter().filter(|r| r.temperature.is_none()).count(),
        1
    );
    assert!(path.exists() && files_in(&env.processed()).is_empty());
    // A file of another profile in the same folder is still moved once loaded.
    env.drop_file("whole.csv", format!("{HEADER}{}", line(5, 1.0)));
    assert!(matches!(
        env.process(&pipeline, "whole.csv").await.unwrap(),
        Outcome::Loaded {
            archived_as: Some(_),
            ..
        }
    ));
}

#[rstest]
#[tokio::test]
async fn a_read_only_folder_loads_and_nothing_is_written_there(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let data = env.data();
    let path = data.join("ro.csv");
    std::fs::write(&path, format!("{HEADER}{}", line(0, 1.0))).unwrap();
    let before = std::fs::metadata(&path).unwrap();
    // A read-only bind mount where the kernel allows one (tests run as root, and root
    // ignores permission bits); else the folder is made 0555 and checked unchanged.
    let mounted = std::process::Command::new("mount")
        .args(["--bind", "-o", "ro"])
        .arg(&data)
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let result = async {
        let pipeline = env.pipeline().await;
        let first = env.process(&pipeline, "ro.csv").await;
        let again = env.process(&pipeline, "ro.csv").await;
        (first, again)
    }
    .await;
    if mounted {
        let _ = std::process::Command::new("umount").arg(&data).status();
    }
    let (first, again) = result;
    assert_eq!(rows(&first.unwrap()), 1);
    assert!(matches!(again.unwrap(), Outcome::Skipped { .. }));
    assert_eq!(files_in(&data), ["ro.csv"]);
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec(), after.len()),
        (
            before.ino(),
            before.mtime(),
            before.mtime_nsec(),
            before.len()
        )
    );
    assert_eq!(env.db.readings().await.len(), 1);
}

#[rstest]
#[tokio::test]
async fn the_agent_follows_growth_by_itself(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    env.pipeline().await;
    let path = env.data().join("live.csv");
    std::fs::write(&path, format!("{HEADER}{}", line(0, 1.0))).unwrap();
    let log = env.dir.path().join("agent.log");
    let mut cmd = command(&env, &["run"]);
    cmd.env("SOURCE_MODE", "append");
    let mut agent = spawn_logged(cmd, &log);
    // The writer keeps the file open and appends a line at a time, as a logger does.
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    for m in 1..6 {
        writer
            .write_all(line(m, f64::from(m) + 1.0).as_bytes())
            .unwrap();
        writer.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    writer.write_all(b"2024-05-01T00:06:00Z,a,").unwrap();
    let all = eventually(Duration::from_secs(20), async || {
        env.db.readings().await.len() == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&agent, libc::SIGTERM);
    wait_exit(&mut agent, Duration::from_secs(20)).await;
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(all, "the agent did not load the six lines:\n{log_text}");
    assert_eq!(
        stored(&env).await,
        (0..6).map(|m| (m, f64::from(m) + 1.0)).collect::<Vec<_>>()
    );
    assert_eq!(files_in(&env.data()), ["live.csv"]);
}

/// A refused increment's ledger row at `offset`, starting from `previous`.
fn refused_increment(previous: Option<uuid::Uuid>, offset: u64) -> LedgerEntry {
    let id = uuid::Uuid::now_v7();
    LedgerEntry {
        attempt: FileAttempt {
            id,
            file_name: "logger.csv".into(),
            hash: ContentHash::unread(&format!("logger.csv@{offset}")),
            size: offset,
            started_at: chrono::Utc::now(),
            profile: ProfileRef::default(),
            source_identity: None,
            follow: Some(Box::new(FollowMark {
                position: FollowedFile {
                    file_name: "logger.csv".into(),
                    device: 1,
                    inode: 2,
                    offset,
                    lines: offset / 10,
                    header_hash: "h".into(),
                    tail_hash: format!("t{offset}"),
                    grown_at: chrono::Utc::now(),
                    ledger_id: id,
                },
                previous,
            })),
        },
        status: EntryStatus::Quarantined,
        rows_read: 1,
        rejected_rows: 1,
        error_summary: Some("test".into()),
        duplicate_of: None,
    }
}

/// The offset's compare-and-set, at the store: of two attempts from one position only
/// the first advances it, and the second's ledger row is rolled back with its position
/// (a transient error: the next attempt starts from the new position).
#[rstest]
#[tokio::test]
async fn two_attempts_from_one_position_cannot_both_advance_it(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(TestEnv::new(backend));
    let store = env.store();
    store.prepare().await.unwrap();
    let first = refused_increment(None, 100);
    store.record(&first).await.unwrap();
    let not_first = store
        .record(&refused_increment(None, 120))
        .await
        .unwrap_err();
    assert_eq!(not_first.class, ErrorClass::Transient, "{not_first}");

    let second = refused_increment(Some(first.attempt.id), 200);
    store.record(&second).await.unwrap();
    let stale = store
        .record(&refused_increment(Some(first.attempt.id), 250))
        .await
        .unwrap_err();
    assert_eq!(stale.class, ErrorClass::Transient, "{stale}");

    let at = store.followed_file("logger.csv").await.unwrap().unwrap();
    assert_eq!(
        (at.offset, at.lines, at.tail_hash.as_str(), at.ledger_id),
        (200, 20, "t200", second.attempt.id)
    );
    assert_eq!(store.followed_files().await.unwrap(), vec![at]);
    assert!(store.followed_file("other.csv").await.unwrap().is_none());
    let mut sizes: Vec<i64> = env.db.ledger().await.iter().map(|l| l.size_bytes).collect();
    sizes.sort();
    assert_eq!(sizes, [100, 200]);
}

/// `check` on a followed file: the committed offset, the size, the complete lines
/// pending after the offset, the partial last line held back (and not validated: the
/// agent never reads it), and whether the bytes before the offset still match; without
/// a database, that it would be followed from its start.
#[rstest]
#[tokio::test]
async fn check_shows_where_a_followed_file_stands(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("logger.csv");
    std::fs::write(&path, format!("{HEADER}{}{}", line(0, 1.0), line(1, 2.0))).unwrap();
    let offset = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        2
    );
    append(
        &path,
        &format!("{}{}2024-05-01T00:04", line(2, 3.0), line(3, 4.0)),
    );
    let check = |extra: &[(&str, &str)]| {
        let mut cmd = command(&env, &["check", "--json", path.to_str().unwrap()]);
        cmd.env("SOURCE_MODE", "append");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0].clone()
    };
    let v = check(&[]);
    assert_eq!(v["valid"], true, "the partial line is not read: {v}");
    let f = &v["followed"];
    assert_eq!(f["stored"]["committed_offset"], offset, "{f}");
    assert_eq!(f["stored"]["committed_lines"], 3);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(f["now"]["size"], size);
    assert_eq!(f["now"]["start"], offset);
    assert_eq!(f["now"]["pending_lines"], 2);
    assert_eq!(f["now"]["partial_bytes"], "2024-05-01T00:04".len());
    assert_eq!(f["now"]["before_offset_matches"], true);

    // A byte before the offset rewritten in place (same file, same size): seen.
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let at = HEADER.len() + line(0, 1.0).len() - 2;
        file.write_all_at(b"9", at as u64).unwrap();
    }
    let f = check(&[])["followed"].clone();
    assert_eq!(f["now"]["before_offset_matches"], false, "{f}");
    assert_eq!(f["now"]["read_from_start"], "rewritten");
    assert_eq!(f["now"]["start"], HEADER.len());
    assert_eq!(f["now"]["pending_lines"], 4);

    // Without a database: followed from its start; nothing is created.
    let missing = env.dir.path().join("none.db");
    let url = format!("sqlite://{}", missing.display());
    let f = check(&[("DATABASE_URL", url.as_str())])["followed"].clone();
    assert!(f["stored"].is_null(), "{f}");
    assert!(
        f["no_position"]
            .as_str()
            .unwrap()
            .contains("no database yet"),
        "{f}"
    );
    assert_eq!(f["now"]["read_from_start"], "new");
    assert!(!missing.exists());
    let mut cmd = command(&env, &["check", path.to_str().unwrap()]);
    cmd.env("SOURCE_MODE", "append").env("DATABASE_URL", &url);
    let text = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert!(
        text.contains("without a stored position it would be followed from its start"),
        "{text}"
    );
}

/// A refused increment's report counts lines of the followed file (where a person looks
/// for them), and `quarantine show` still quotes them from the copy beside the report.
#[rstest]
#[tokio::test]
async fn a_refused_increment_reports_the_followed_file_s_line_numbers(
    #[values(Backend::Postgres, Backend::Sqlite, Backend::Mysql)] backend: Backend,
) {
    use sensor_ingest::ops::quarantine;
    let env = env_or_skip!(env(backend));
    let pipeline = env.pipeline().await;
    let path = env.data().join("logger.csv");
    let first: String = (0..4).map(|m| line(m, 20.0)).collect();
    std::fs::write(&path, format!("{HEADER}{first}")).unwrap();
    assert_eq!(
        rows(&env.process(&pipeline, "logger.csv").await.unwrap()),
        4
    );
    // Lines 6 and 7 of the followed file; line 7 is not a number.
    append(
        &path,
        &format!("{}2024-05-01T00:05:00Z,a,abc\n", line(4, 21.0)),
    );
    match env.process(&pipeline, "logger.csv").await.unwrap() {
        Outcome::Quarantined { .. } => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let report = only_report(&env);
    assert_eq!(report.errors[0].line, Some(7), "{report:?}");
    assert_eq!(report.errors[0].value, "abc");
    let area = sensor_ingest::source::FolderQuarantine::new(env.quarantine(), env.data());
    let entry = quarantine::find(&area, &report.quarantined_as).unwrap();
    let details = quarantine::details(&area, entry).unwrap();
    assert_eq!(
        details.lines.get(&7).map(String::as_str),
        Some("2024-05-01T00:05:00Z,a,abc"),
        "{:?}",
        details.lines
    );
    assert_eq!(details.header.as_deref(), Some(HEADER.trim_end()));
}
