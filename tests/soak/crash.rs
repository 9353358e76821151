//! Crash safety: the real binary, SIGKILLed at seeded-random moments while a stream of
//! files arrives, restarted each time. At the end nothing is lost, nothing is half
//! moved, every loaded file's rows are in the database exactly once, and the ledger
//! agrees with the folders.
//!
//! Sizes come from the environment so that `scripts/crash-soak` can run a long soak
//! with the same test:
//! - `CRASH_SEED`: the RNG seed (printed at the start; set it to replay a failure);
//! - `CRASH_FILES` (default 200) and `CRASH_KILLS` (default 20);
//! - `CRASH_MAX_DELAY_MS` (default 700): longest wait between a start and its kill.
//!
//! About one new content in six is a logger-style export read through a source profile
//! (`*.dat`: a metadata line, semicolons, decimal commas, °F, a missing-value code), so
//! the same promises are checked for profiled files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::binary::{command, deliver, entries, read_log, signal, spawn_logged, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually};
use sensor_ingest::read::ContentHash;

/// splitmix64: small, seedable, good enough to pick sizes and moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// What one distinct content must end up as.
#[derive(Debug, Clone)]
struct Expected {
    valid: bool,
    /// Written in the style of [`PROFILE`].
    profiled: bool,
    /// Physical line of every data row (valid contents only).
    lines: Vec<i64>,
    temperature_sum: f64,
}

/// The profile that reads the `*.dat` files of the harness.
const PROFILE: &str = r#"
match = ["*.dat"]
missing = ["-9999"]
[layout]
delimiter = ";"
decimal = ","
preamble = 1
[metadata]
line = 1
fields = { site = 2 }
[measures.temperature]
column = "T_F"
unit = "degF"
"#;

/// One file's content: `rows` rows unique to `index`, an optional blank line, and for
/// an invalid file one bad temperature. `profiled`: the logger style of [`PROFILE`].
fn make_content(
    index: u64,
    rows: u64,
    rng: &mut Rng,
    valid: bool,
    profiled: bool,
) -> (Vec<u8>, Expected) {
    let mut text = if profiled {
        String::from("logger;crash-site\ntimestamp;sensor_id;T_F;humidity;pressure\n")
    } else {
        String::from("timestamp,sensor_id,temperature,humidity,pressure\n")
    };
    let sep = if profiled { ';' } else { ',' };
    let blank_at = rng.chance(15).then(|| rng.range(0, rows - 1));
    let bad_at = (!valid).then(|| rng.range(0, rows - 1));
    let mut line = if profiled { 2i64 } else { 1i64 };
    let mut lines = Vec::new();
    let mut temperature_sum = 0.0;
    for j in 0..rows {
        if blank_at == Some(j) {
            text.push('\n');
            line += 1;
        }
        line += 1;
        let t = (j % 40) as f64 + 0.25;
        let temperature = if bad_at == Some(j) {
            "hot".to_owned()
        } else if profiled {
            format!("{:.4}", t * 1.8 + 32.0).replace('.', ",")
        } else {
            format!("{t}")
        };
        text.push_str(&format!(
            "{}{sep}c{index}-s{}{sep}{temperature}{sep}{}{sep}{}\n",
            1_600_000_000 + index * 1_000_000 + j,
            j % 7,
            j % 100,
            900 + j % 200
        ));
        lines.push(line);
        temperature_sum += t;
    }
    (
        text.into_bytes(),
        Expected {
            valid,
            profiled,
            lines,
            temperature_sum,
        },
    )
}

fn hash_of(bytes: &[u8]) -> String {
    ContentHash::of_reader(bytes).unwrap().0.to_string()
}

/// Content hash of every regular file in `dir`, by name (reports left out).
fn hashes_in(dir: &Path) -> BTreeMap<String, String> {
    entries(dir)
        .into_iter()
        .filter(|n| !n.ends_with(".error.json"))
        .map(|n| {
            let h = hash_of(&std::fs::read(dir.join(&n)).unwrap());
            (n, h)
        })
        .collect()
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_loads_nothing_twice(
    #[values(Backend::Postgres, Backend::Mysql)] backend: Backend,
) {
    let _alone = crate::one_at_a_time().await;
    let env = env_or_skip!(TestEnv::with_profiles(
        backend,
        &[("logger.toml", PROFILE)],
        &[]
    ));
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let n_files = env_u64("CRASH_FILES", 200);
    let kills = env_u64("CRASH_KILLS", 20);
    let max_delay = env_u64("CRASH_MAX_DELAY_MS", 700);
    eprintln!(
        "crash harness: CRASH_SEED={seed} CRASH_FILES={n_files} CRASH_KILLS={kills} \
         CRASH_MAX_DELAY_MS={max_delay} (set CRASH_SEED to replay)"
    );
    let mut rng = Rng(seed);
    let started = Instant::now();
    let log = env.dir.path().join("agent.log");
    let staging = env.dir.path().join("staging");

    // Plan every file up front: new valid content, new invalid content, or the exact
    // bytes of an earlier file; a fresh name or one used before.
    let mut contents: Vec<(Vec<u8>, &str)> = Vec::new();
    let mut expected: HashMap<String, Expected> = HashMap::new();
    let mut plan: Vec<(String, usize)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for i in 0..n_files {
        let roll = rng.range(0, 99);
        let index = if roll < 20 && !contents.is_empty() {
            rng.range(0, contents.len() as u64 - 1) as usize
        } else {
            let valid = roll >= 35;
            let rows = if rng.chance(6) {
                rng.range(5_000, 20_000)
            } else {
                rng.range(1, 60)
            };
            let profiled = rng.chance(16);
            let (bytes, exp) = make_content(i, rows, &mut rng, valid, profiled);
            expected.insert(hash_of(&bytes), exp);
            contents.push((bytes, if profiled { "dat" } else { "csv" }));
            contents.len() - 1
        };
        // A name used before, of the same kind (a .dat name is read by the profile).
        let ext = contents[index].1;
        let same_kind: Vec<&String> = names.iter().filter(|n| n.ends_with(ext)).collect();
        let name = if !same_kind.is_empty() && rng.chance(25) {
            same_kind[rng.range(0, same_kind.len() as u64 - 1) as usize].clone()
        } else {
            format!("f{i:04}.{ext}")
        };
        names.push(name.clone());
        plan.push((name, index));
    }

    // Feed the plan in `kills + 1` slices; the agent is killed after each slice but
    // the last, at a random moment.
    let mut delivered: Vec<(String, usize)> = Vec::new();
    let slices = kills + 1;
    let mut fed = 0usize;
    for round in 0..slices {
        let mut agent = spawn_logged(command(&env, &["run"]), &log);
        let end = ((round + 1) * n_files / slices) as usize;
        let kill_at = Instant::now() + Duration::from_millis(rng.range(0, max_delay));
        while fed < end {
            let (name, index) = &plan[fed];
            let mut name = name.clone();
            // A name still waiting in data/ is not reused: the producer would replace
            // an undelivered file, which no agent can account for.
            let (bytes, ext) = &contents[*index];
            if !deliver(&staging, &env.data(), &name, bytes) {
                name = format!("f{fed:04}-again.{ext}");
                assert!(deliver(&staging, &env.data(), &name, bytes));
            }
            delivered.push((name, *index));
            fed += 1;
            if rng.chance(30) {
                tokio::time::sleep(Duration::from_millis(rng.range(0, 15))).await;
            }
        }
        if round + 1 == slices {
            let drained = eventually(Duration::from_secs(90), async || {
                entries(&env.data()).is_empty()
            })
            .await;
            assert!(
                drained,
                "data/ still holds {:?} (seed {seed})\n{}",
                entries(&env.data()),
                read_log(&log)
            );
            signal(&agent, libc::SIGTERM);
            let status = wait_exit(&mut agent, Duration::from_secs(30)).await;
            assert_eq!(status.code(), Some(0), "seed {seed}");
        } else {
            tokio::time::sleep_until(kill_at.into()).await;
            signal(&agent, libc::SIGKILL);
            wait_exit(&mut agent, Duration::from_secs(10)).await;
        }
    }
    let elapsed = started.elapsed();

    // Every valid profiled content was loaded through the profile, once.
    let profiled_loads = env
        .db
        .count("SELECT count(*) FROM ingest_files WHERE profile = 'logger' AND status = 'loaded'")
        .await;
    let profiled_valid = expected.values().filter(|e| e.valid && e.profiled).count();
    assert_eq!(profiled_loads as usize, profiled_valid, "seed {seed}");

    let tally = verify(&env, &delivered, &contents, &expected, seed).await;
    println!(
        "crash soak tallies: seed={seed} kills={kills} files={} distinct_contents={} \
         valid_contents={} invalid_contents={} rows_expected={} rows_found={} \
         duplicate_rows_found={} processed_files={} quarantined_files={} \
         ledger_loaded={} ledger_duplicate={} ledger_quarantined={} profiled_loaded={} \
         elapsed={:.1}s",
        delivered.len(),
        contents.len(),
        expected.values().filter(|e| e.valid).count(),
        expected.values().filter(|e| !e.valid).count(),
        tally.rows_expected,
        tally.rows_found,
        tally.duplicate_rows,
        tally.processed,
        tally.quarantined,
        tally.ledger["loaded"],
        tally.ledger["duplicate"],
        tally.ledger["quarantined"],
        profiled_loads,
        elapsed.as_secs_f64()
    );
}

struct Tally {
    rows_expected: i64,
    rows_found: i64,
    duplicate_rows: i64,
    processed: usize,
    quarantined: usize,
    ledger: HashMap<&'static str, i64>,
}

/// Checks every promise; panics with the seed on the first one broken.
async fn verify(
    env: &TestEnv,
    delivered: &[(String, usize)],
    contents: &[(Vec<u8>, &str)],
    expected: &HashMap<String, Expected>,
    seed: u64,
) -> Tally {
    // 1. The data folder is empty: nothing left behind, no temp files.
    assert_eq!(entries(&env.data()), Vec::<String>::new(), "seed {seed}");
    for dir in [env.processed(), env.quarantine()] {
        let hidden: Vec<String> = entries(&dir)
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(
            hidden.is_empty(),
            "temp leftovers in {}: {hidden:?}",
            dir.display()
        );
    }

    // 2. Every delivered file is in exactly one of processed/ or quarantine/, with its
    // bytes: the multiset of contents on disk equals the multiset delivered.
    let processed = hashes_in(&env.processed());
    let quarantined = hashes_in(&env.quarantine());
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (_, index) in delivered {
        *want.entry(hash_of(&contents[*index].0)).or_default() += 1;
    }
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for (folder, valid) in [(&processed, true), (&quarantined, false)] {
        for (name, hash) in folder {
            let e = expected
                .get(hash)
                .unwrap_or_else(|| panic!("{name} holds bytes never delivered (seed {seed})"));
            assert_eq!(
                e.valid,
                valid,
                "{name}: a {} file ended in the wrong folder (seed {seed})",
                if e.valid { "valid" } else { "invalid" }
            );
            *found.entry(hash.clone()).or_default() += 1;
        }
    }
    assert_eq!(found, want, "files lost or doubled on disk (seed {seed})");

    // 3. Reports and quarantined files come in pairs.
    for name in entries(&env.quarantine()) {
        if let Some(file) = name.strip_suffix(".error.json") {
            assert!(
                quarantined.contains_key(file),
                "report {name} without its file (seed {seed})"
            );
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(env.quarantine().join(&name)).unwrap())
                    .unwrap();
            assert_eq!(report["content_hash"], quarantined[file].as_str());
            assert_eq!(report["quarantined_as"], file);
            assert_eq!(report["rule"], "not_a_number", "{name}");
        } else {
            assert!(
                entries(&env.quarantine()).contains(&format!("{name}.error.json")),
                "quarantined {name} has no report (seed {seed})"
            );
        }
    }

    // 4. The ledger: one 'loaded' row per valid content delivered, none for invalid
    // contents; its rows are exactly the file's rows.
    let ledger = env.db.ledger().await;
    let mut by_status: HashMap<&'static str, i64> =
        [("loaded", 0), ("duplicate", 0), ("quarantined", 0)].into();
    let mut loaded_ids: HashMap<String, uuid::Uuid> = HashMap::new();
    for row in &ledger {
        let (status, hash) = (row.status.clone(), row.content_hash.clone());
        let key = match status.as_str() {
            "loaded" => "loaded",
            "duplicate" => "duplicate",
            _ => "quarantined",
        };
        *by_status.get_mut(key).unwrap() += 1;
        let e = expected
            .get(&hash)
            .unwrap_or_else(|| panic!("ledger row for unknown content {hash} (seed {seed})"));
        match key {
            "loaded" => {
                assert!(e.valid, "invalid content loaded (seed {seed})");
                assert!(
                    loaded_ids.insert(hash.clone(), row.id).is_none(),
                    "content loaded twice (seed {seed})"
                );
                assert_eq!(row.row_count, e.lines.len() as i64);
            }
            "duplicate" => {
                assert!(e.valid);
                assert!(row.duplicate_of.is_some());
            }
            _ => assert!(!e.valid, "a valid content was quarantined (seed {seed})"),
        }
        // A recorded archive name points at a file with this very content.
        if let Some(name) = row.archived_as.clone() {
            let dir = if key == "quarantined" {
                &quarantined
            } else {
                &processed
            };
            assert_eq!(
                dir.get(&name),
                Some(&hash),
                "ledger says {status} content is archived as {name} (seed {seed})"
            );
        }
    }
    let delivered_hashes: HashSet<&String> = want.keys().collect();
    for (hash, e) in expected {
        if !delivered_hashes.contains(hash) {
            continue;
        }
        if e.valid {
            assert!(
                loaded_ids.contains_key(hash),
                "valid content never loaded (seed {seed})"
            );
        } else {
            let n = ledger
                .iter()
                .filter(|r| r.content_hash == *hash && r.status == "quarantined")
                .count();
            assert!(
                n >= 1,
                "quarantined content has no ledger row (seed {seed})"
            );
        }
    }
    // Duplicates point at the loaded row of the same content.
    for row in &ledger {
        if let Some(of) = row.duplicate_of {
            assert_eq!(loaded_ids.get(&row.content_hash), Some(&of), "seed {seed}");
        }
    }

    // 5. Rows: per loaded file exactly its lines and values; no stray rows. Read back
    // through the helpers that decode every backend alike, and summed here.
    let readings = env.db.readings().await;
    let mut per_file: HashMap<uuid::Uuid, (i64, i64, HashSet<i64>, f64)> = HashMap::new();
    for r in &readings {
        let f = per_file.entry(r.file_id).or_default();
        f.0 += 1;
        f.1 += r.line;
        f.2.insert(r.line);
        f.3 += r.temperature.unwrap_or(0.0);
    }
    let hash_of_id: HashMap<uuid::Uuid, &String> =
        loaded_ids.iter().map(|(h, id)| (*id, h)).collect();
    let mut rows_found = 0i64;
    for (id, (n, lines, distinct, t)) in &per_file {
        let hash = hash_of_id
            .get(id)
            .unwrap_or_else(|| panic!("rows for a file that is not loaded (seed {seed})"));
        let e = &expected[*hash];
        assert_eq!(
            *n,
            e.lines.len() as i64,
            "row count of {hash} (seed {seed})"
        );
        assert_eq!(distinct.len() as i64, *n);
        assert_eq!(*lines, e.lines.iter().sum::<i64>());
        assert!((t - e.temperature_sum).abs() < 1e-6, "seed {seed}");
        rows_found += n;
    }
    assert_eq!(
        per_file.len(),
        loaded_ids.len(),
        "a loaded file has no rows"
    );
    let rows_expected: i64 = loaded_ids
        .keys()
        .map(|h| expected[h].lines.len() as i64)
        .sum();
    // Every content's sensor ids and timestamps are its own: a row loaded twice under
    // two file ids shows up here.
    let distinct: HashSet<(&str, chrono::DateTime<chrono::Utc>)> = readings
        .iter()
        .map(|r| (r.sensor_id.as_str(), r.ts))
        .collect();
    let duplicate_rows = readings.len() as i64 - distinct.len() as i64;
    assert_eq!(duplicate_rows, 0, "rows loaded twice (seed {seed})");
    assert_eq!(rows_found, rows_expected, "seed {seed}");

    Tally {
        rows_expected,
        rows_found,
        duplicate_rows,
        processed: processed.len(),
        quarantined: quarantined.len(),
        ledger: by_status,
    }
}
